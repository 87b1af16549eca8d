import pytest
"""Overflow: a line nobody picks up answers itself, announces, and takes a voice message."""

import dataclasses
import os

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.core.state import LineState, MessageWaiting
from firmware.telephony.adapter import TelephonyAdapter
from firmware.records.calls import JsonLinesRecords

from telephony_support import BoardLoop, finish, have_tools, sipp, tone_energy, ulaw_tone, wait_for

pytestmark = pytest.mark.telephony

# the desk board, ringing fast so the test is quick
DESK = dataclasses.replace(load_board("boards/desk.toml"), ring_seconds=1.0)


def test_ok__rung_out_call_leaves_a_message_and_lights_the_message_lamp(tmp_path):
    have_tools()
    p = tmp_path / "desk.site.toml"
    p.write_text('[front]\nport = 0\n[[trunks]]\nname = "lo"\nmode = "peer"\n'
                 'peers = ["127.0.0.1"]\n[overflow]\nrings = 2\naction = "message"\n')
    site = load_site(p, DESK)
    board = BoardLoop(DESK, tmp_path / "data")
    adapter = TelephonyAdapter(DESK, site, run_dir=tmp_path / "tel", workers=1,
                               records=JsonLinesRecords(tmp_path / "calls.jsonl"))
    board.add_adapter(adapter)
    board.start()
    try:
        assert adapter.wait_ready(60), adapter.error
        tone = ulaw_tone(tmp_path / "tone.wav", 1000, 4)
        t0 = os.times().elapsed
        caller = sipp("answered.xml", adapter.front.port, ["202"], tmp_path, hold_ms=3000, tone=tone)
        wait_for(lambda: board.line("202") is LineState.RINGING, 10, "202 ringing")
        assert finish(caller, 30) == 0       # answered by the board itself, spoke, hung up
        assert os.times().elapsed - t0 >= 2.0     # not before two rings
        ev = wait_for(lambda: next((e for e in board.events if isinstance(e, MessageWaiting)), None),
                      10, "a message waiting")
        assert ev.line == "202" and ev.count == 1
        wait_for(lambda: board.call(lambda: board.state._cadence["msg-202"].value) == "steady",
                 5, "the message lamp lit")
        assert board.line("202") is LineState.IDLE
        msg = adapter.messages["202"][0]
        energy, _ = tone_energy(msg["path"], 1000)
        assert energy > 1000 and msg["seconds"] >= 2.5, msg
        r = wait_for(lambda: JsonLinesRecords(tmp_path / "calls.jsonl").read(), 5, "a record")[-1]
        assert (r["line"], r["outcome"], r["position"]) == ("202", "overflowed", None)
        assert r["rings"] >= 2
    finally:
        board.stop()
