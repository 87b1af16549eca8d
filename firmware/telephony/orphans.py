"""Ending the calls of a worker that died, for their callers.

A worker that dies takes its side of each call with it: a caller whose call
was answered stays connected to nothing, and one whose call was ringing
hears it ring until Kamailio's INVITE timer runs out (15 minutes). The
worker reported each caller's dialog as it saw it (``protocol.Dialog``: the
INVITE's headers as received and the tag it answered with), so the daemon
can speak for the dead worker, through the front as the worker would have:

- an answered call gets a ``BYE`` (Request-URI the caller's Contact, routed
  by the INVITE's Record-Route, i.e. through the front);
- a ringing call gets ``480 Temporarily Unavailable`` to its INVITE, sent to
  the front (the INVITE's top Via), which matches it to its transaction and
  passes it on to the caller. (Not 486 or 503: on those the front would try
  another worker.)
"""

from __future__ import annotations

import logging
import os
import socket

from firmware.telephony.protocol import WORKER_LOST

log = logging.getLogger("switchboard.telephony.orphans")

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact"}


def _headers(head: str) -> list[tuple[str, str]]:
    """(lower-case name, value) of each header line, folded lines joined, in order."""
    out: list[tuple[str, str]] = []
    for line in head.split("\r\n")[1:]:
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        out.append((COMPACT.get(name, name), value.strip()))
    return out


def _split_list(value: str) -> list[str]:
    """A header's comma-separated values (commas inside <> or quotes kept)."""
    parts, cur, depth, quoted = [], "", 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            depth += 1
        elif ch == ">" and not quoted:
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _all(headers, name) -> list[str]:
    return [v for n, value in headers if n == name for v in _split_list(value)]


def _one(headers, name) -> str:
    return next((v for n, v in headers if n == name), "")


def _uri(value: str) -> str:
    """``"Ann" <sip:x@h;lr>;tag=1`` -> ``sip:x@h;lr``."""
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0].strip()


def _hostport(uri: str) -> tuple[str, int]:
    """Where a SIP URI (or a Via's sent-by) points: (host, port)."""
    rest = uri.split(":", 1)[1] if uri.startswith(("sip:", "sips:")) else uri
    rest = rest.split("@", 1)[-1].split(";", 1)[0].split("?", 1)[0]
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = rest.partition(":")
    return host, int(port) if port.isdigit() else 5060


def bye(invite: str, tag: str, via_host: str, via_port: int) -> tuple[bytes, tuple[str, int]]:
    """The BYE ending an answered call, and where to send it."""
    h = _headers(invite)
    routes = _all(h, "record-route")
    target = _uri(_one(h, "contact"))
    first = _uri(routes[0]) if routes else target
    call_id = _one(h, "call-id")
    lines = [f"BYE {target} SIP/2.0",
             f"Via: SIP/2.0/UDP {via_host}:{via_port};branch=z9hG4bK{os.urandom(8).hex()};rport",
             "Max-Forwards: 70"]
    lines += [f"Route: {r}" for r in routes]
    lines += [f"From: {_one(h, 'to')};tag={tag}", f"To: {_one(h, 'from')}",
              f"Call-ID: {call_id}", "CSeq: 9001 BYE",
              f'Reason: SIP;cause={WORKER_LOST.code};text="the board lost this call"',
              "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode(), _hostport(first)


def final_answer(invite: str, tag: str) -> tuple[bytes, tuple[str, int]]:
    """The final answer to a ringing call's INVITE, and where to send it (its top Via)."""
    h = _headers(invite)
    vias = _all(h, "via")
    lines = [f"SIP/2.0 {WORKER_LOST.code} {WORKER_LOST.reason}"]
    lines += [f"Via: {v}" for v in vias]
    lines += [f"From: {_one(h, 'from')}", f"To: {_one(h, 'to')};tag={tag}",
              f"Call-ID: {_one(h, 'call-id')}", f"CSeq: {_one(h, 'cseq')}",
              "Content-Length: 0", "", ""]
    sent_by = vias[0].split(None, 1)[1] if vias and " " in vias[0] else ""
    return "\r\n".join(lines).encode(), _hostport(sent_by)


def end_calls(dialogs, host: str = "127.0.0.1", port: int = 0) -> int:
    """End each (invite, tag, answered) for its caller; returns how many were sent.

    Sent from the dead worker's own address (``port``) when it is still free, so that
    the front sees them come from where that worker was (else from any port)."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            s.bind((host, 0))
        port = s.getsockname()[1]
        for invite, tag, answered in dialogs:
            try:
                data, dest = bye(invite, tag, host, port) if answered else final_answer(invite, tag)
                s.sendto(data, dest)
                sent += 1
            except (OSError, ValueError, IndexError) as e:
                log.warning("could not end a lost call for its caller: %s", e)
    return sent
