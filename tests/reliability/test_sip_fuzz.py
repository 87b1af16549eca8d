"""A bounded fuzz pass of the SIP front with ``hypothesis`` (issue 10, proof).

Malformed and odd requests over UDP and TCP to a real Kamailio front (a SIPp
stand-in for a worker behind it, always full). Every request whose transaction
headers are whole gets a final answer; garbage gets none but never takes the
front down: it answers an OPTIONS after every example.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from firmware.telephony.front import Front, free_port

from sip_party import SipParty, request, sdp
from telephony_support import SIPP_DIR, have_tools

pytestmark = pytest.mark.telephony

# Each example is a real round trip through Kamailio: 100 take about a minute here.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300")) // 3


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    have_tools()
    tmp = tmp_path_factory.mktemp("sipfuzz")
    wport = free_port()
    worker = subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / "uas_busy.xml"), "-i", "127.0.0.1", "-p", str(wport),
         "-mi", "127.0.0.1", "-mp", str(free_port()), "-nostdin", "-timeout", "600s"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    fr = Front(tmp / "front", listen="127.0.0.1", port=0, transports=("udp", "tcp"),
               peers=["127.0.0.1"], numbers=["201", "202"], workers=[(wport, 3)])
    fr.start()
    party = SipParty("127.0.0.1")
    yield fr, party
    party.close()
    fr.stop()
    worker.kill()
    worker.wait()
    log = (tmp / "front" / "kamailio.log").read_text(errors="replace")
    # While it shuts down, Kamailio's TCP processes may log "CRITICAL ... receive_fd(): EOF"
    # as the main process closes their sockets: only what came before the stop counts.
    log = log.split("Thank you for flying kamailio")[0]
    assert "CRITICAL" not in log and "segfault" not in log.lower(), log[-3000:]


def alive(fr, party):
    cid = f"alive-{time.time_ns()}"
    party.send(request("OPTIONS", f"sip:127.0.0.1:{fr.port}", via_addr=party.addr, call_id=cid,
                       to=f"sip:127.0.0.1:{fr.port}"), ("127.0.0.1", fr.port))
    first, _, _ = party.final(cid, timeout=5, method="OPTIONS")
    return first.startswith("SIP/2.0 200")


printable = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
header_names = st.sampled_from(["Subject", "X-Fuzz", "Supported", "Require", "Proxy-Require",
                                "Allow", "Accept", "Expires", "Session-Expires", "Max-Forwards",
                                "Content-Disposition", "P-Asserted-Identity", "Route", "Record-Route"])
sdp_lines = st.lists(st.one_of(
    st.sampled_from(["c=IN IP4 999.1.1.1", "c=IN IP4 127.0.0.1", "c=IN IP6 ::1", "c=IN IP4",
                     "c=", "m=audio 0 RTP/AVP 0", "m=audio 99999 RTP/AVP 0", "m=video 4000 RTP/AVP 96",
                     "a=rtpmap:0", "a=sendonly", "o=- 0 0 IN IP4 x", "v=1", "s=", "t=a b",
                     "c=IN IP4 127.0.0.1/300", "c=IN IP4 1.2.3.4.5", "c=IN IP4 127.0.0.1 extra"]),
    printable.map(lambda t: "a=" + t)), max_size=12)


@st.composite
def invites(draw):
    number = draw(st.sampled_from(["201", "202", "999", "", "201;x=y", "+1201"]) | printable)
    body = draw(st.one_of(st.just(sdp()), sdp_lines.map(lambda ls: "\r\n".join(ls) + "\r\n"),
                          st.just("")))
    extra = draw(st.lists(st.tuples(header_names, printable), max_size=6))
    vias = draw(st.integers(0, 40))
    ctype = draw(st.sampled_from(["application/sdp", "text/plain", "application/sdp;x=1",
                                  "multipart/mixed"]))
    return number, body, extra, vias, ctype


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(inv=invites())
def test_fuzz__every_whole_invite_gets_a_final_answer(front, inv):
    fr, party = front
    number, body, extra, vias, ctype = inv
    cid = f"fz-{time.time_ns()}"
    lines = [f"{k}: {v}" for k, v in extra]
    lines += [f"Via: SIP/2.0/UDP 10.9.{i // 200}.{i % 200 + 1}:5060;branch=z9hG4bK{i}f"
              for i in range(vias)]
    msg = request("INVITE", f"sip:{number}@127.0.0.1:{fr.port}", via_addr=party.addr,
                  call_id=cid, body=body, extra="\r\n".join(lines), content_type=ctype)
    party.send(msg, ("127.0.0.1", fr.port))
    reply = party.final(cid, timeout=2.5)
    if reply is None:
        # Only a request Kamailio cannot parse may go unanswered; the front must live.
        assert alive(fr, party), "the front stopped answering"
        assert any(k.lower() in ("route", "record-route", "require", "proxy-require",
                                 "max-forwards", "expires", "session-expires", "content-disposition",
                                 "p-asserted-identity")
                   for k, _ in extra) or not number or any(c in number for c in ' <>"'), inv
        return
    code = int(reply[0].split()[1])
    assert 400 <= code < 700, reply[0]


@settings(max_examples=EXAMPLES // 2, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.binary(max_size=3000) | st.text(max_size=3000).map(str.encode),
       tcp=st.booleans())
def test_fuzz__garbage_over_udp_and_tcp_never_takes_the_front_down(front, data, tcp):
    fr, party = front
    if tcp:
        with socket.create_connection(("127.0.0.1", fr.port), timeout=5) as s:
            s.sendall(data + b"\r\n\r\n")
            s.settimeout(0.3)
            try:
                s.recv(65535)
            except (socket.timeout, ConnectionError):
                pass
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(data or b"\0", ("127.0.0.1", fr.port))
    assert alive(fr, party)


def test_fuzz__oversized_requests_over_tcp_are_answered(front):
    fr, party = front
    cid = f"tcpbig-{time.time_ns()}"
    with socket.create_connection(("127.0.0.1", fr.port), timeout=5) as s:
        port = s.getsockname()[1]
        extra = "\r\n".join(f"Via: SIP/2.0/TCP 10.0.0.{i % 250 + 1}:5060;branch=z9hG4bK{i}t"
                            for i in range(199))
        msg = request("INVITE", f"sip:201@127.0.0.1:{fr.port}", via_addr=("127.0.0.1", port),
                      call_id=cid, body=sdp(), extra=extra).replace("SIP/2.0/UDP", "SIP/2.0/TCP", 1)
        s.sendall(msg.encode())
        s.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data or data.startswith(b"SIP/2.0 100"):
            chunk = s.recv(65535)
            assert chunk, "connection closed without an answer"
            data = data[data.find(b"\r\n\r\n") + 4:] if data.startswith(b"SIP/2.0 100") and \
                b"\r\n\r\n" in data else data + chunk
        assert data.split(b" ", 2)[1] in (b"400", b"513"), data[:200]
