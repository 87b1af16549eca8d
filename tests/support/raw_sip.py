"""A SIP caller on one UDP socket that sends exactly what a test tells it to: INVITEs with
any body (or none), CANCEL, ACK, BYE; replies are kept by Call-ID.

For the tests that feed workers and the front what a scanner or a broken gateway
would send; ``telephony_support.Uac`` is the well-behaved caller."""

from __future__ import annotations

import os
import socket
import threading
import time

GOOD_SDP = ("v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio {rtp} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

#: INVITE bodies by name: (content type or None, body or None).
BODIES = {
    "sdp": ("application/sdp", GOOD_SDP),
    "late-offer": (None, None),                   # no body: the offer comes in the 200
    "no-audio": ("application/sdp", "v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
                                    "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"),
    "bad-sdp": ("application/sdp", "this is not SDP\r\n"),
    "bad-address": ("application/sdp", GOOD_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 999.1.1.1")),
    "not-sdp": ("text/plain", "hello\r\n"),
    "empty-sdp": ("application/sdp", None),       # says SDP, carries nothing
}


class RawSip:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.replies: dict[str, list] = {}
        self.cond = threading.Condition()
        self.n = 0
        threading.Thread(target=self._rx, daemon=True).start()

    def close(self):
        self.sock.close()

    def _rx(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(65535)
            except OSError:
                return
            text = data.decode(errors="replace")
            if not text.startswith("SIP/2.0"):
                continue
            code = int(text.split(" ", 2)[1])
            headers = {}
            for line in text.split("\r\n")[1:]:
                if not line:
                    break
                k, _, v = line.partition(":")
                headers.setdefault(k.strip().lower(), v.strip())
            cid = headers.get("call-id") or headers.get("i")
            with self.cond:
                self.replies.setdefault(cid, []).append((code, headers))
                self.cond.notify_all()

    def _send(self, method, number, target, cid, branch, body_kind="sdp", to_tag=None,
              cseq=1):
        host, port = target
        ctype, body = BODIES[body_kind] if method == "INVITE" else (None, None)
        body = (body or "").replace("{rtp}", str(self.port + 2))
        to = f"<sip:{number}@{host}>" + (f";tag={to_tag}" if to_tag else "")
        head = (f"{method} sip:{number}@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:fuzz@127.0.0.1>;tag=f{cid}\r\nTo: {to}\r\n"
                f"Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:fuzz@127.0.0.1:{self.port}>\r\n")
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        self.sock.sendto((head + f"Content-Length: {len(body)}\r\n\r\n{body}").encode(), target)

    def invite(self, number, target, body_kind="sdp"):
        self.n += 1
        cid = f"fz{os.getpid()}x{self.n}x{time.time_ns()}"
        branch = f"z9hG4bK{cid}"
        self._send("INVITE", number, target, cid, branch, body_kind)
        return cid, branch

    def wait(self, cid, pred, timeout=5.0, method="INVITE"):
        """The first reply to ``method`` on call ``cid`` whose code satisfies ``pred``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while time.monotonic() < deadline:
                for code, headers in self.replies.get(cid, []):
                    if pred(code) and headers.get("cseq", "").endswith(method):
                        return code, headers
                self.cond.wait(0.05)
        return None

    def codes(self, cid) -> list[int]:
        with self.cond:
            return [c for c, _ in self.replies.get(cid, [])]

    def cancel(self, number, target, cid, branch):
        self._send("CANCEL", number, target, cid, branch)

    def ack(self, number, target, cid, branch, to_tag):
        self._send("ACK", number, target, cid, branch, to_tag=to_tag)

    def finish(self, number, target, cid, branch, timeout=5.0):
        """End whatever the INVITE became: CANCEL it while it rings, ACK its final answer
        (and BYE a 200). Returns the final code, or None if none came."""
        final = self.wait(cid, lambda c: c >= 200, 0.3)
        if final is None and self.wait(cid, lambda c: 100 < c < 200, 0.01) is not None:
            self.cancel(number, target, cid, branch)
        final = final or self.wait(cid, lambda c: c >= 200, timeout)
        if final is None:
            return None
        code, headers = final
        tag = headers.get("to", "").partition("tag=")[2].split(";")[0] or None
        self.ack(number, target, cid, branch, tag)
        if 200 <= code < 300:
            self._send("BYE", number, target, cid, f"z9hG4bKbye{cid}", to_tag=tag, cseq=2)
        return code
