"""A SIP party on one UDP socket, for tests that must write requests by hand:
forged in-dialog requests, oversized or malformed ones. Loopback only.

It keeps every datagram it gets, requests too, and a subclass may answer them
(``on_message``); ``sip_socket.SipSocket`` is the caller that keeps only the
responses, by Call-ID, for tests that place many calls.

Any 127.0.0.0/8 address is this machine's loopback, so ``bind="127.0.0.2"``
is a stranger that is no trunk, on the same machine.
"""

from __future__ import annotations

import socket
import threading
import time


def parse(data: bytes) -> tuple[str, dict, str]:
    """(first line, headers lower-cased with every value kept in order, body)."""
    text = data.decode(errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return lines[0], headers, body


class SipParty:
    """Sends requests by hand and collects what comes back, for a bounded time."""

    def __init__(self, bind="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.addr = self.sock.getsockname()
        self.received: list[tuple[float, bytes]] = []
        self.cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._rx, daemon=True)
        self._thread.start()

    def _rx(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self.received.append((time.time(), data))
                self.cond.notify_all()
            self.on_message(data)

    def on_message(self, data: bytes):
        """Each datagram once it is kept, on the receiving thread: a party that answers
        requests does it here."""

    def send(self, text: str, to):
        self.sock.sendto(text.encode() if isinstance(text, str) else text, to)

    def wait(self, pred, timeout=5.0):
        """The first message received (parsed) that satisfies ``pred``, or None."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for _, data in self.received:
                    m = parse(data)
                    if pred(m):
                        return m
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.1))

    def final(self, call_id, timeout=5.0, method="INVITE"):
        """The final response (>= 200) to ``method`` in call ``call_id``."""
        def pred(m):
            first, h, _ = m
            return (first.startswith("SIP/2.0 ") and int(first.split()[1]) >= 200
                    and h.get("call-id", [""])[0] == call_id
                    and h.get("cseq", [""])[0].endswith(method))
        return self.wait(pred, timeout)

    def messages(self):
        with self.cond:
            return [d for _, d in self.received]

    def close(self):
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()


def request(method, ruri, *, via_addr, call_id, cseq=1, from_tag="caller", to_tag=None,
            to="sip:201@127.0.0.1", route=None, body="", extra="", branch=None,
            content_type="application/sdp"):
    """The text of one request."""
    branch = branch or f"z9hG4bK{call_id}{method}{cseq}{time.time_ns()}"
    lines = [f"{method} {ruri} SIP/2.0",
             f"Via: SIP/2.0/UDP {via_addr[0]}:{via_addr[1]};branch={branch};rport",
             "Max-Forwards: 70",
             f"From: <sip:5551234@{via_addr[0]}>;tag={from_tag}",
             f"To: <{to}>" + (f";tag={to_tag}" if to_tag else ""),
             f"Call-ID: {call_id}",
             f"CSeq: {cseq} {method}",
             f"Contact: <sip:caller@{via_addr[0]}:{via_addr[1]}>"]
    if route:
        lines.append(f"Route: {route}")
    if extra:
        lines.append(extra.rstrip("\r\n"))
    if body:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def sdp(addr="127.0.0.1", port=40000):
    return (f"v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
