"""Blocked callers refused at the front: a real Kamailio from ``front.py`` given the block
list over its control socket (``frontblock.py``), a SIPp worker behind it that must never
see a blocked caller, raw SIP callers on loopback. The list changes while a call is up
(the call goes on), and a restarted front is given it again."""

from __future__ import annotations

import time

import pytest

from firmware.telephony.front import Front
from firmware.telephony.frontblock import FrontBlocks, FrontRpc, RpcError, front_rules, rule_regex
from firmware.timeclock.blocklist import digits, pattern_digits

from sip_party import SipParty, request, sdp
from telephony_support import SippWorker, have_tools, wait_for

pytestmark = pytest.mark.telephony

NUMBERS = {"4155550123": "201", "201": "201", "202": "202"}
SITE_WIDE = ("555019?", None, "555019?|*")
MARYS = ("415555*", "201", "415555*|marys-gloves")


@pytest.fixture
def front(tmp_path, request):
    have_tools()
    worker = SippWorker(tmp_path)
    fr = Front(tmp_path / "a-rather-long-folder-name-so-the-socket-path-is-long" / "front",
               listen="127.0.0.1", port=0, transports=("udp",), peers=["127.0.0.1"],
               numbers=list(NUMBERS), workers=[(worker.port, 3)],
               refuse=getattr(request, "param", "busy"))
    fr.start()
    fr.worker = worker
    fr.blocks = FrontBlocks(FrontRpc(fr.rpc_path))
    yield fr
    fr.stop()
    worker.stop()


def invite(fr, party, caller, called, extra=""):
    cid = f"c{caller}-{called}-{time.time_ns()}"
    text = request("INVITE", f"sip:{called}@127.0.0.1:{fr.port}", via_addr=party.addr,
                   call_id=cid, body=sdp(), to=f"sip:{called}@127.0.0.1", extra=extra)
    party.send(text.replace("From: <sip:5551234@", f"From: <sip:{caller}@"), ("127.0.0.1", fr.port))
    first, h, _ = party.final(cid, timeout=10)
    return cid, first, h


def hang_up(fr, party, cid, h):
    to_tag = h["to"][0].split("tag=")[1].split(";")[0]
    contact = h["contact"][0].strip("<>").split(">")[0]
    route = ", ".join(reversed(h.get("record-route", []))) or None
    party.send(request("BYE", contact, via_addr=party.addr, call_id=cid, cseq=2,
                       to_tag=to_tag, route=route), ("127.0.0.1", fr.port))
    return party.final(cid, method="BYE", timeout=10)[0]


def test_ok__rules_match_as_the_block_list_does():
    import re
    for pattern, caller, called, hit in [
            ("555019?", "+1 (555) 0199", "201", False),       # 11 digits, not 7
            ("555019?", "5550199", "4155550123", True),
            ("415555*", "+1 415 555 0111", "201", True),     # national digits: the last 10
            ("415555*", "4155550111", "202", False),          # another customer's line
            ("+1 415 555 0111", "14155550111", "201", True)]:
        p = pattern_digits(pattern)
        rx = front_rules([(p, "201" if pattern.startswith(("415", "+1")) else None, "x")],
                         NUMBERS)
        [regex] = rx
        assert bool(re.search(regex, f"{digits(caller)}@{called}")) is hit, (pattern, caller, called)
    assert rule_regex("1*", {"+44#1"}) == "^1[0-9]*@([+]44#1)$"


def test_ok__blocked_callers_refused_at_the_front_while_calls_go_on(front):
    p = SipParty("127.0.0.1")
    try:
        front.blocks.sync(front_rules([SITE_WIDE], NUMBERS))
        # A caller not on the list is put through, and stays through the changes below.
        cid, first, h = invite(front, p, "5550123", "201")
        assert first.startswith("SIP/2.0 200"), first
        # Site-wide: refused whatever number is called, busy, before any worker.
        for called in ("201", "4155550123", "202"):
            bad, first, _ = invite(front, p, "5550195", called)
            assert first.startswith("SIP/2.0 486 Busy Here"), first
            assert bad not in front.worker.text()
        # The list changes while the call is up: one customer's pattern added.
        assert front.blocks.sync(front_rules([SITE_WIDE, MARYS], NUMBERS))
        bad, first, _ = invite(front, p, "+14155550111", "4155550123")
        assert first.startswith("SIP/2.0 486"), first
        assert bad not in front.worker.text()
        ok, first, h2 = invite(front, p, "+14155550111", "202")       # not Mary's line
        assert first.startswith("SIP/2.0 200"), first
        assert hang_up(front, p, ok, h2).startswith("SIP/2.0 200")
        # Counted, with the last one.
        front.blocks.read_counts()
        st = front.blocks.status()
        assert st["count"] == 4 and st["rules"] == 2 and st["loaded"]
        assert st["last"] == {"caller": "4155550111", "called": "4155550123",
                              "pattern": "415555*", "customer": "marys-gloves"}
        # Unblocked: the site-wide rule goes, the caller gets through.
        assert front.blocks.sync(front_rules([MARYS], NUMBERS))
        ok, first, h3 = invite(front, p, "5550195", "201")
        assert first.startswith("SIP/2.0 200"), first
        assert not front.blocks.sync(front_rules([MARYS], NUMBERS))   # nothing changed
        assert hang_up(front, p, ok, h3).startswith("SIP/2.0 200")
        # The first call lived through every change.
        assert hang_up(front, p, cid, h).startswith("SIP/2.0 200")
    finally:
        p.close()


def test_ok__a_restarted_front_is_given_the_list_again(front):
    p = SipParty("127.0.0.1")
    try:
        front.blocks.sync(front_rules([SITE_WIDE], NUMBERS))
        assert invite(front, p, "5550190", "201")[1].startswith("SIP/2.0 486")
        front.blocks.read_counts()
        front.stop()
        front.start()
        front.blocks.restarted()
        assert front.blocks.status()["loaded"] is False and front.blocks.status()["count"] == 1
        front.blocks.sync(front_rules([SITE_WIDE], NUMBERS))
        assert invite(front, p, "5550190", "201")[1].startswith("SIP/2.0 486")
        front.blocks.read_counts()
        assert front.blocks.status()["count"] == 2          # counted across the restart
    finally:
        p.close()


@pytest.mark.parametrize("front", ["announcement"], indirect=True)
def test_ok__announcement_mode_marks_the_call_for_the_worker(front):
    p = SipParty("127.0.0.1")
    try:
        front.blocks.sync(front_rules([SITE_WIDE], NUMBERS))
        cid, first, h = invite(front, p, "5550199", "201")
        assert first.startswith("SIP/2.0 200"), first       # a worker answers it
        wait_for(lambda: cid in front.worker.text(), 5, "the INVITE at the worker")
        assert "X-Switchboard-Blocked: 555019?|*" in front.worker.text()
        assert hang_up(front, p, cid, h).startswith("SIP/2.0 200")
        # A caller cannot mark its own call (nor unmark it): the front strips the header.
        cid2, first, h2 = invite(front, p, "5550123", "201",
                                 extra="X-Switchboard-Blocked: forged")
        assert first.startswith("SIP/2.0 200"), first
        wait_for(lambda: cid2 in front.worker.text(), 5, "the second INVITE at the worker")
        assert "forged" not in front.worker.text()
        assert hang_up(front, p, cid2, h2).startswith("SIP/2.0 200")
    finally:
        p.close()


def test_fail__a_front_that_is_gone_is_a_clear_error(tmp_path):
    rpc = FrontRpc(tmp_path / "rpc.sock")
    with pytest.raises(RpcError, match=r"the front's control socket .*rpc.sock: htable.flush"):
        FrontBlocks(rpc).sync({"^1@": "1|*"})


# -- the whole telephony: a real PJSUA2 worker plays the announcement ------------------------
def test_ok__announcement_played_by_a_worker_and_the_board_never_rings(tmp_path):
    import dataclasses
    import math
    import struct
    import wave

    from firmware.config.board import load_board
    from firmware.config.site import load_site
    from firmware.core.state import LineRinging, LineState
    from firmware.records.calls import JsonLinesRecords
    from firmware.telephony.adapter import TelephonyAdapter
    from telephony_support import BoardLoop, finish, sipp

    have_tools()
    wav = tmp_path / "blocked.wav"
    with wave.open(str(wav), "wb") as w:            # 1.5 s of 440 Hz: "this number is blocked"
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8000 * 2 * math.pi * 440)))
                               for i in range(12000)))
    desk = load_board("boards/desk.toml")
    site_file = tmp_path / "desk.site.toml"
    site_file.write_text(open("boards/desk.site.toml").read()
                         + f'\n[blocked]\nrefuse = "announcement"\nannouncement = "{wav}"\n')
    site = load_site(site_file, desk)
    assert site.blocked_refuse == "announcement" and site.blocked_announcement == str(wav)
    site = dataclasses.replace(site, port=0)
    board = BoardLoop(desk, tmp_path / "data")
    adapter = TelephonyAdapter(desk, site, run_dir=tmp_path / "tel", port=0, workers=1,
                               records=JsonLinesRecords(tmp_path / "calls.jsonl"))
    # caller_waits_for_bye.xml calls from 415555021: blocked for the whole site.
    adapter.block_rules = lambda: [("41555502*", None, "41555502*|*")]
    board.add_adapter(adapter)
    board.start()
    try:
        assert adapter.wait_ready(60), adapter.error
        wait_for(lambda: adapter.status()["blocked_at_front"]["rules"] == 1, 10, "rules loaded")
        t0 = time.monotonic()
        caller = sipp("caller_waits_for_bye.xml", adapter.front.port, ["201"], tmp_path,
                      timeout_s=40)
        # Answered, the announcement played, then the worker hangs up (the caller's BYE wait).
        assert finish(caller, 40) == 0, "the blocked caller was not answered and hung up"
        assert time.monotonic() - t0 >= 1.5           # not before the announcement's end
        wait_for(lambda: adapter.status()["blocked_at_front"]["count"] == 1, 10, "counted")
        assert board.line("201") is LineState.IDLE
        assert not any(isinstance(e, LineRinging) for e in board.events)
        assert adapter.status()["calls"] == []
    finally:
        board.stop()


@pytest.mark.parametrize("section, expected", [
    ('refuse = "silence"\n', r"blocked\.refuse = 'silence': expected 'busy' or 'announcement'"),
    ('refuse = "announcement"\n', r"blocked\.announcement: missing"),
    ('refuse = "announcement"\nannouncement = "nope.wav"\n', r"blocked\.announcement = 'nope\.wav'"),
    ('refuse = "busy"\nring = 3\n', r"blocked\.ring"),
])
def test_fail__bad_blocked_sections_get_a_clear_error(tmp_path, section, expected):
    from firmware.config.board import load_board
    from firmware.config.site import load_site
    from firmware.errors import ConfigError
    p = tmp_path / "t.site.toml"
    p.write_text(open("boards/desk.site.toml").read() + "\n[blocked]\n" + section)
    with pytest.raises(ConfigError, match=expected) as e:
        load_site(p, load_board("boards/desk.toml"))
    assert str(p) in str(e.value) and "\n" not in str(e.value)
