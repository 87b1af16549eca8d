"""Trunks: digest registration to a real Kamailio registrar, calls through it, fault lamp on loss."""

import os

import pytest

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.core.state import Fault, LineState
from firmware.telephony.adapter import TelephonyAdapter
from firmware.records.calls import JsonLinesRecords

from telephony_support import BoardLoop, Registrar, finish, have_tools, sipp, wait_for

pytestmark = pytest.mark.telephony

DESK = load_board("boards/desk.toml")


def site(tmp_path, registrar_port, password, transport="tcp", front=""):
    p = tmp_path / "desk.site.toml"
    p.write_text(f"""
[front]
listen = "127.0.0.1"
port = 0
{front}
[[trunks]]
name = "provider"
mode = "register"
registrar = "sip:127.0.0.1:{registrar_port}"
transport = "{transport}"
username = "4155550100"
password = "{password}"
expires = 10
retry_min_s = 1
retry_max_s = 4
[numbers]
"4155550100" = "202"
""")
    os.chmod(p, 0o600)
    return load_site(p, DESK)


@pytest.fixture
def registrar(tmp_path):
    have_tools()
    r = Registrar(tmp_path, {"4155550100": "s3cret"}).start()
    yield r
    r.stop()


def board_with(tmp_path, s):
    board = BoardLoop(DESK, tmp_path / "data")
    adapter = TelephonyAdapter(DESK, s, run_dir=tmp_path / "tel", port=0, workers=1,
                               records=JsonLinesRecords(tmp_path / "calls.jsonl"))
    board.add_adapter(adapter)
    board.start()
    assert adapter.wait_ready(60), adapter.error
    return board, adapter


def test_ok__registers_with_digest_and_a_call_through_the_registrar_rings_the_line(tmp_path, registrar):
    board, adapter = board_with(tmp_path, site(tmp_path, registrar.port, "s3cret"))
    try:
        wait_for(lambda: adapter.status()["trunks"]["provider"]["registered"], 10, "registration")
        assert board.faults() == {}
        # A caller reaches the board through the provider: INVITE to the registered user.
        caller = sipp("ring_cancel.xml", registrar.port, ["4155550100"], tmp_path, hold_ms=1500)
        wait_for(lambda: board.line("202") is LineState.RINGING, 10, "line 202 ringing")
        assert finish(caller, 20) == 0
        wait_for(lambda: board.line("202") is LineState.IDLE, 10, "line 202 idle")
    finally:
        board.stop()


def test_fail__wrong_password_lights_the_fault_lamp(tmp_path, registrar):
    board, adapter = board_with(tmp_path, site(tmp_path, registrar.port, "wrong"))
    try:
        faults = wait_for(lambda: board.faults(), 10, "a fault")
        assert "trunk provider" in faults, faults
        assert any(code in faults["trunk provider"] for code in ("401", "403")), faults
        wait_for(lambda: board.call(lambda: board.state._cadence["fault"].value) == "steady",
                 5, "fault lamp steady")
        assert not adapter.status()["trunks"]["provider"]["registered"]
    finally:
        board.stop()


def test_ok__lost_registration_faults_then_reregisters_with_backoff(tmp_path, registrar):
    board, adapter = board_with(tmp_path, site(tmp_path, registrar.port, "s3cret"))
    try:
        wait_for(lambda: adapter.status()["trunks"]["provider"]["registered"], 10, "registration")
        registrar.stop()
        # the refresh (every few seconds with expires = 10) fails: fault lamp on
        wait_for(lambda: "trunk provider" in board.faults(), 20, "the trunk's fault")
        assert adapter.status()["trunks"]["provider"]["retry_in_s"] is not None
        registrar.start()
        wait_for(lambda: "trunk provider" not in board.faults(), 20, "the fault cleared")
        assert adapter.status()["trunks"]["provider"]["registered"]
        posted = [e for e in board.events if isinstance(e, Fault)]
        assert posted[-1].message is None and any(e.message for e in posted)
    finally:
        board.stop()


def tls_caller(port, number, ringing):
    """INVITE over TLS; once the board rings, CANCEL; return the response codes seen."""
    import socket
    import ssl
    import time
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw)
    lp = s.getsockname()[1]
    cid, branch = f"tls{time.time_ns()}", f"z9hG4bKtls{time.time_ns()}"

    def req(method, to_tag=""):
        sdp = "" if method != "INVITE" else (
            "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\n")
        msg = (f"{method} sip:{number}@127.0.0.1:{port};transport=tls SIP/2.0\r\n"
               f"Via: SIP/2.0/TLS 127.0.0.1:{lp};branch={branch};rport\r\nMax-Forwards: 70\r\n"
               f"From: <sip:tls@127.0.0.1>;tag=f{cid}\r\nTo: <sip:{number}@127.0.0.1>{to_tag}\r\n"
               f"Call-ID: {cid}\r\nCSeq: 1 {method}\r\n"
               f"Contact: <sip:tls@127.0.0.1:{lp};transport=tls>\r\n"
               + ("Content-Type: application/sdp\r\n" if sdp else "")
               + f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
        s.sendall(msg.encode())

    codes, buf, tag = [], "", ""

    def read_until(code, timeout=10):
        nonlocal buf, tag
        deadline = time.time() + timeout
        while time.time() < deadline:
            while "\r\n\r\n" in buf:
                head, _, buf = buf.partition("\r\n\r\n")
                c = int(head.split(" ", 2)[1])
                codes.append(c)
                for line in head.split("\r\n"):
                    if line.lower().startswith("to:") and "tag=" in line:
                        tag = ";tag=" + line.split("tag=", 1)[1].split(";")[0]
                if c == code:
                    return
            s.settimeout(max(0.05, deadline - time.time()))
            buf += s.recv(65535).decode()
        raise AssertionError(f"no {code} over TLS; saw {codes}")

    req("INVITE")
    read_until(180)
    wait_for(ringing, 10, "the line ringing")
    req("CANCEL")
    read_until(487)
    req("ACK", tag)
    s.close()
    return codes


def test_ok__tls_both_ways_registration_and_a_caller_into_the_front(tmp_path, registrar):
    """The trunk registers over TLS; a caller reaches the board's front over TLS."""
    from telephony_support import self_signed
    cert, key = self_signed(tmp_path)
    s = site(tmp_path, registrar.tls_port, "s3cret", transport="tls",
             front=f'transports = ["udp", "tls"]\ntls_certificate = "{cert}"\n'
                   f'tls_private_key = "{key}"')
    board, adapter = board_with(tmp_path, s)
    try:
        wait_for(lambda: adapter.status()["trunks"]["provider"]["registered"], 10,
                 "registration over TLS")
        assert adapter.status()["trunks"]["provider"]["code"] == 200
        # Debian's SIPp has no TLS: a few lines of Python are the caller here.
        codes = tls_caller(adapter.front.tls_port, "201",
                           lambda: board.line("201") is LineState.RINGING)
        assert codes[:2] == [100, 180] and 487 in codes, codes
        wait_for(lambda: board.line("201") is LineState.IDLE, 10, "201 idle")
    finally:
        board.stop()
