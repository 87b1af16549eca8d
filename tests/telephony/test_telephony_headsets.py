import pytest
"""Headsets on real PyAudio streams (ALSA file-plugin cards): the board's own position endpoints."""

import time

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.core.state import LineState
from firmware.telephony.adapter import TelephonyAdapter
from firmware.records.calls import JsonLinesRecords

from alsa_fixture import FakeCard, tone, tone_level
from telephony_support import BoardLoop, have_tools, wait_for

pytestmark = [pytest.mark.telephony, pytest.mark.audio]

DESK = load_board("boards/desk.toml")
RATE = 16000


def test_ok__caller_in_the_right_earpiece_only_and_the_microphone_to_the_caller(
        tmp_path, monkeypatch):
    have_tools()
    with FakeCard(tmp_path / "home", ["hs1", "hs2"], rate=RATE) as card:
        monkeypatch.setenv("HOME", card.env()["HOME"])      # the positions find the card here
        p = tmp_path / "desk.site.toml"
        p.write_text('[front]\nport = 0\n[[trunks]]\nname = "lo"\nmode = "peer"\n'
                     'peers = ["127.0.0.1"]\n[[positions]]\nheadset = "hs1"\n'
                     '[[positions]]\nheadset = "hs2"\n')
        board = BoardLoop(DESK, tmp_path / "data")
        adapter = TelephonyAdapter(DESK, load_site(p, DESK), run_dir=tmp_path / "tel", workers=2,
                                   records=JsonLinesRecords(tmp_path / "calls.jsonl"))
        board.add_adapter(adapter)
        board.start()
        try:
            assert adapter.wait_ready(60), adapter.error
            assert board.faults() == {}, "a headset did not open"
            t = adapter.ring("201")                  # the caller sends a 1 kHz tone
            wait_for(lambda: board.line("201") is LineState.RINGING, 10, "201 ringing")
            board.press("line-201")                  # position 1 (split off: one position)
            wait_for(lambda: t["answered_t"], 10, "answered")
            # the worker offers G.722 first: speex, PJSUA2's own first choice, cost ~23 ms
            # more caller -> earpiece through the board (benchmarks/modem.py --sip-only)
            legs = adapter.position_procs[1].status()["calls"]
            assert [c["codec"] for c in legs] == ["G722/16000"], legs
            time.sleep(2.0)
            since = time.monotonic() - 1.5
            ear1 = tone_level(card.ear("hs1", since), RATE, 1000)
            ear2 = tone_level(card.ear("hs2", since), RATE, 1000)
            assert ear1 > 0.05 and ear2 < ear1 / 20, (ear1, ear2)
            # the operator speaks: a 440 Hz tone into position 1's microphone
            assert (adapter.levels(t["worker"], t["id"]) or {}).get("heard") == 0
            card.say("hs1", tone(440, 3.0, RATE))
            heard = 0
            for _ in range(25):
                heard = max(heard, (adapter.levels(t["worker"], t["id"]) or {}).get("heard") or 0)
                time.sleep(0.1)
            assert heard > 0, "the operator's microphone did not reach the caller"
            board.press("p1-release")
            wait_for(lambda: t["ended_t"], 10, "the call ended")
        finally:
            board.stop()
