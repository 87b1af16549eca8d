"""SIP callers on one UDP socket that keep the responses they get by Call-ID.

``SipSocket`` is the base: one socket, requests written by hand, a thread that
keeps every response by Call-ID (requests sent to it are dropped), so a test can
place many calls. ``telephony_support.Uac`` is the well-behaved caller built on
it; ``RawSip`` sends exactly what a test tells it to (INVITEs with any body or
none, CANCEL, ACK, BYE), for the tests that feed workers and the front what a
scanner or a broken gateway would send. ``sip_party.SipParty`` is the other
hand-written party: it keeps every datagram, requests too."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import NamedTuple

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


class Reply(NamedTuple):
    """A response received: when (``perf_counter``), its code, its headers (lower-cased,
    the first value of each) and its reason phrase."""
    t: float
    code: int
    headers: dict
    reason: str


class SipSocket:
    """One UDP socket on loopback that writes requests and keeps every response by Call-ID
    (a thread receives them); ``user`` names it in From and Contact."""

    user = "sip"

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.replies: dict[str, list[Reply]] = {}
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
            t = time.perf_counter()
            text = data.decode(errors="replace")
            if not text.startswith("SIP/2.0"):
                continue
            status = text.split("\r\n", 1)[0].split(" ", 2)
            headers = {}
            for line in text.split("\r\n")[1:]:
                if not line:
                    break
                k, _, v = line.partition(":")
                headers.setdefault(k.strip().lower(), v.strip())
            cid = headers.get("call-id") or headers.get("i")
            with self.cond:
                self.replies.setdefault(cid, []).append(
                    Reply(t, int(status[1]), headers, status[2] if len(status) > 2 else ""))
                self.cond.notify_all()

    def request(self, method, number, host, port, cid, branch, *, body=None, ctype=None,
                to_tag=None, cseq=1) -> bytes:
        """The bytes of one request to ``sip:number@host:port``."""
        body = body or ""
        to = f"<sip:{number}@{host}>" + (f";tag={to_tag}" if to_tag else "")
        head = (f"{method} sip:{number}@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{self.user}@127.0.0.1>;tag=t{cid}\r\nTo: {to}\r\n"
                f"Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>\r\n")
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        return (head + f"Content-Length: {len(body)}\r\n\r\n{body}").encode()

    def new_call(self) -> tuple[str, str]:
        """A fresh (Call-ID, branch)."""
        self.n += 1
        cid = f"{self.user}{os.getpid()}x{self.n}x{time.time_ns()}"
        return cid, f"z9hG4bK{cid}"

    def reply(self, cid, pred, timeout=5.0, method=None) -> Reply | None:
        """The first response on call ``cid`` (to ``method``, if given) whose code satisfies
        ``pred``, waiting up to ``timeout`` s for it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while time.monotonic() < deadline:
                for r in self.replies.get(cid, []):
                    if pred(r.code) and (method is None or r.headers.get("cseq", "").endswith(method)):
                        return r
                self.cond.wait(0.05)
        return None


class RawSip(SipSocket):
    user = "fuzz"

    def _send(self, method, number, target, cid, branch, body_kind="sdp", to_tag=None,
              cseq=1):
        host, port = target
        ctype, body = BODIES[body_kind] if method == "INVITE" else (None, None)
        body = (body or "").replace("{rtp}", str(self.port + 2))
        self.sock.sendto(self.request(method, number, host, port, cid, branch, body=body,
                                      ctype=ctype, to_tag=to_tag, cseq=cseq), target)

    def invite(self, number, target, body_kind="sdp"):
        cid, branch = self.new_call()
        self._send("INVITE", number, target, cid, branch, body_kind)
        return cid, branch

    def wait(self, cid, pred, timeout=5.0, method="INVITE"):
        """(code, headers) of the first reply to ``method`` on call ``cid`` that ``pred`` takes."""
        r = self.reply(cid, pred, timeout, method)
        return None if r is None else (r.code, r.headers)

    def codes(self, cid) -> list[int]:
        with self.cond:
            return [r.code for r in self.replies.get(cid, [])]

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
