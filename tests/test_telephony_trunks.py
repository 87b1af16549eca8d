"""Trunks: digest registration to a real Kamailio registrar, calls through it, fault lamp on loss."""

import os

import pytest

from firmware.boardfile import load_board
from firmware.sitefile import load_site
from firmware.state import Fault, LineState
from firmware.telephony.adapter import TelephonyAdapter
from firmware.telephony.records import JsonLinesRecords

from telephony_support import BoardLoop, Registrar, finish, have_tools, sipp, wait_for

DESK = load_board("boards/desk.toml")


def site(tmp_path, registrar_port, password, transport="tcp"):
    p = tmp_path / "desk.site.toml"
    p.write_text(f"""
[front]
listen = "127.0.0.1"
port = 0
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
