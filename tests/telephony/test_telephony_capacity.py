"""Capacity: no caller turned away while a line is free (the project's PJSUA2 build: 128 calls
a process, 2 workers for the TAS-100)."""


import pytest

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.core.state import LineState
from firmware.telephony.adapter import TelephonyAdapter
from firmware.records.calls import JsonLinesRecords

from telephony_support import BoardLoop, PeerProc, finish, have_tools, sipp, wait_for

pytestmark = pytest.mark.telephony

TAS = load_board("boards/tas100.toml")
TAS_SITE = load_site("boards/tas100.site.toml", TAS)
ALL_LINES = [ln.number for ln in TAS.lines]


@pytest.fixture(scope="module")
def tas100(tmp_path_factory):
    """One TAS-100 (2 workers) for both tests: each test checks its own calls' records."""
    have_tools()
    tmp_path = tmp_path_factory.mktemp("tas100")
    position = PeerProc(tmp_path, "position1", record=False)
    board = BoardLoop(TAS, tmp_path / "data")
    adapter = TelephonyAdapter(TAS, TAS_SITE, run_dir=tmp_path / "tel", port=0,
                               records=JsonLinesRecords(tmp_path / "calls.jsonl"),
                               position_uris={1: position.uri})
    board.add_adapter(adapter)
    board.start()
    assert adapter.wait_ready(90), adapter.error
    yield board, adapter, position
    board.stop()
    position.stop()


def records(adapter, after=0):
    return adapter.records.read()[after:]


def test_ok__all_115_lines_ring_at_once_none_turned_away(tas100, tmp_path):
    board, adapter, _ = tas100
    st = adapter.status()
    # the limit is measured, not assumed; the pool is sized from it
    per = st["calls_per_worker"]
    assert per >= 1 and all(w["limit"] == per for w in st["workers"])
    assert st["capacity"] >= 115 and st["free"] == st["capacity"]
    before = len(adapter.records.read())
    caller = sipp("ring_cancel.xml", adapter.front.port, ALL_LINES, tmp_path,
                  rate=200, hold_ms=6000, timeout_s=40)
    wait_for(lambda: board.count(LineState.RINGING) == 115, 30, "all 115 lines ringing")
    st = adapter.status()
    assert st["in_use"] == 115 and st["turned_away"] == 0
    assert st["free"] == st["capacity"] - 115
    assert finish(caller, 40) == 0, (tmp_path / "sipp-errors.log").read_text()[-2000:] \
        if (tmp_path / "sipp-errors.log").exists() else "SIPp failed"
    wait_for(lambda: board.count(LineState.IDLE) == 115, 15, "every line idle again")
    recs = wait_for(lambda: len(records(adapter, before)) == 115 and records(adapter, before),
                    10, "115 call records")
    assert {r["outcome"] for r in recs} == {"abandoned"}
    assert sorted(r["line"] for r in recs) == sorted(ALL_LINES)


def test_ok__32_calls_ringing_talking_and_held_at_once(tas100, tmp_path):
    board, adapter, position = tas100
    lines = ALL_LINES[:32]
    before = len(adapter.records.read())
    seen_before = sum(1 for e in position.seen if e["event"] == "incoming")
    caller = sipp("answered.xml", adapter.front.port, lines, tmp_path, rate=100,
                  hold_ms=6000, timeout_s=60, tone=None)
    wait_for(lambda: board.count(LineState.RINGING) == 32, 20, "32 lines ringing")
    for n in lines[:20]:        # each pick-up puts the call before it on hold
        board.press(f"line-{n}")
    wait_for(lambda: board.count(LineState.HELD) == 19, 10, "19 calls held")
    assert board.line(lines[19]) is LineState.OPERATOR
    assert board.count(LineState.RINGING) == 12
    st = adapter.status()
    assert st["in_use"] == 32 and st["turned_away"] == 0
    for n in lines[20:]:
        board.press(f"line-{n}")
    assert finish(caller, 60) == 0, "a caller was not answered or was dropped"
    wait_for(lambda: board.count(LineState.IDLE) == 115, 15, "every line idle again")
    recs = wait_for(lambda: len(records(adapter, before)) == 32 and records(adapter, before),
                    10, "32 call records")
    assert {r["outcome"] for r in recs} == {"answered"} and {r["position"] for r in recs} == {1}
    assert sum(1 for r in recs if r["hold_s"] > 0) == 31   # all but the last one picked up
    # the position took one leg at a time: a leg per pick-up, hung up on hold
    assert sum(1 for e in position.seen if e["event"] == "incoming") - seen_before == 32
