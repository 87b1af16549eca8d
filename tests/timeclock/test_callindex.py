"""The call records' index: the same answers as reading calls.jsonl whole, kept up with
appends (a line still being written waits), the retention purge's rewrite (the kept
records are not indexed again), any other file put in its place, and a damaged index."""

import datetime as dt
import json
import os

import pytest

from firmware.records.calls import JsonLinesRecords
from firmware.records.journal import encode_line
from firmware.records.retention import purge
from firmware.timeclock.adapter import read_call_records
from firmware.timeclock.callindex import FILE, CallIndex, national

START = dt.datetime(2026, 11, 1, 8, tzinfo=dt.timezone.utc)


def record(i, day=None, caller=None, line=None):
    at = START + dt.timedelta(days=day if day is not None else i // 10, minutes=i)
    return {"id": f"w0-{i}", "line": line or str(201 + i % 3), "direction": "in", "kind": "call",
            "caller": caller or f"+1 415 555 {i % 7:04d}", "callee": "201",
            "offered": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "answered": None, "ended": None,
            "rings": 2, "position": 1, "hold_s": 0, "outcome": "answered"}


def whole(path, n, caller=None, line=None):
    """What the adapter did before the index: read every record, sort, take the last."""
    rs = [r for r in read_call_records(path)
          if (caller and national(r.get("caller")) == caller) or (line and r.get("line") == line)]
    rs.sort(key=lambda r: r.get("offered") or "")
    return rs[-n:][::-1]


@pytest.fixture
def calls(tmp_path):
    records = JsonLinesRecords(tmp_path / "calls.jsonl")
    for i in range(60):
        records.write(record(i))
    return records


def test_ok__same_answers_as_reading_the_records_whole(tmp_path, calls):
    with open(calls.path, "ab") as f:                # a line an older version wrote
        f.write(b'{"id": "old-1", "line": "201", "caller": "4155550003", '
                b'"offered": "2026-11-06T00:00:00Z"}\n')
    calls.write({**record(3), "offered": "2026-11-09T00:00:00.000Z"})   # an id written twice
    ix = CallIndex(tmp_path, calls.path)
    for caller in ("4155550003", "4155550006", "2125550000"):
        assert ix.last(5, caller=caller) == whole(calls.path, 5, caller=caller)
    for line in ("201", "203", "999"):
        assert ix.last(5, line=line) == whole(calls.path, 5, line=line)
    got = ix.by_id(["w0-3", "w0-59", "old-1", "nobody"])
    assert set(got) == {"w0-3", "w0-59", "old-1"}
    assert got["w0-3"]["offered"] == "2026-11-09T00:00:00.000Z"        # the last one written
    ix.close()


def test_ok__appends_are_found_and_a_line_being_written_waits(tmp_path, calls):
    ix = CallIndex(tmp_path, calls.path)
    assert ix.refresh() == 60 and ix.refresh() == 0
    calls.write(record(60, caller="2125550123"))
    assert [r["id"] for r in ix.last(5, caller="2125550123")] == ["w0-60"]
    half = encode_line(record(61, caller="2125550123"))
    with open(calls.path, "ab") as f:
        f.write(half[:40])                          # the writer is in the middle of it
        f.flush()
        assert ix.refresh() == 0
        f.write(half[40:])
    assert [r["id"] for r in ix.last(5, caller="2125550123")] == ["w0-61", "w0-60"]
    ix.close()
    # Opened again: it goes on from where it was, nothing indexed twice.
    ix = CallIndex(tmp_path, calls.path)
    assert ix.refresh() == 0 and len(ix.last(100, caller="2125550123")) == 2
    ix.close()


def test_ok__the_purge_rewrite_keeps_what_was_indexed(tmp_path, calls):
    ix = CallIndex(tmp_path, calls.path)
    ix.refresh()
    ino = os.stat(calls.path).st_ino
    out = purge(calls, tmp_path, dt.date(2026, 12, 3), retention_days=30)   # before 11-03
    assert out["purged"] == 20 and os.stat(calls.path).st_ino != ino
    assert ix.refresh() == 0                        # the 40 kept were not indexed again
    assert ix.by_id(["w0-5", "w0-19"]) == {} and set(ix.by_id(["w0-20", "w0-59"])) == \
        {"w0-20", "w0-59"}
    calls.write(record(60))
    assert ix.refresh() == 1
    for line in ("201", "202"):
        assert ix.last(50, line=line) == whole(calls.path, 50, line=line)
    ix.close()


def test_ok__another_file_in_its_place_is_indexed_from_its_start(tmp_path, calls):
    ix = CallIndex(tmp_path, calls.path)
    ix.refresh()
    other = tmp_path / "other.jsonl"
    other.write_bytes(b"".join(encode_line(record(i, caller="3125550000")) for i in range(100, 130)))
    os.replace(other, calls.path)
    assert ix.refresh() == 30
    assert ix.by_id(["w0-5"]) == {} and len(ix.last(50, caller="3125550000")) == 30
    # Rewritten in place, the same inode and longer: told apart by its first bytes.
    with open(calls.path, "r+b") as f:
        f.write(b"".join(encode_line(record(i, caller="3125550001")) for i in range(200, 240)))
    assert ix.refresh() == 40 and ix.last(50, caller="3125550000") == []
    calls.path.unlink()
    assert ix.refresh() == 0 and ix.by_id(["w0-200"]) == {}
    ix.close()


def test_ok__a_damaged_or_deleted_index_is_built_again(tmp_path, calls):
    ix = CallIndex(tmp_path, calls.path)
    ix.refresh()
    ix.close()
    (tmp_path / FILE).write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"{FILE}{suffix}").unlink(missing_ok=True)
    ix = CallIndex(tmp_path, calls.path)
    assert ix.refresh() == 60
    ix.close()
    (tmp_path / FILE).unlink()
    ix = CallIndex(tmp_path, calls.path)
    assert len(ix.by_id([f"w0-{i}" for i in range(60)])) == 60
    ix.close()


def test_ok__damaged_lines_skipped_as_the_records_reader_does(tmp_path, calls):
    with open(calls.path, "ab") as f:
        f.write(b"0badf00d {\"id\": \"forged\"}\n" + encode_line(record(70)))
    ix = CallIndex(tmp_path, calls.path)
    assert ix.refresh() == 61 and ix.by_id(["forged"]) == {}
    assert [r["id"] for r in read_call_records(calls.path)][-1] == "w0-70"
    assert json.loads(json.dumps(ix.by_id(["w0-70"])["w0-70"])) == record(70)
    ix.close()


def test_ok__the_adapter_answers_the_same_with_the_index_and_without(tmp_path, calls):
    from firmware.timeclock.adapter import TimeClockAdapter
    from firmware.timeclock.customers import Customers

    from test_console import answer
    from test_customers import MARY
    from test_timeclock_adapter import TZ, MiniDaemon

    cs = Customers(tmp_path)
    cs.add({**MARY, "delivery": {"method": "hold", "to": None}})
    cs.close()
    d = MiniDaemon()
    a = TimeClockAdapter(tmp_path, clock=lambda: dt.datetime(2026, 11, 24, 10, tzinfo=TZ))
    d.add_adapter(a)
    try:
        for i in (57, 58):                           # slips taken on two of those calls
            answer(d, a, "201", call=f"w0-{i}")
            d.call("take-message", line="201", text=f"about call {i}")
            d.press("p1-release")
        answers = []
        for _ in range(2):
            h = d.call("history", customer="marys-gloves", caller="415-555-0003")
            rec = d.call("deadbox", search="about call")["slips"]
            answers.append((h, [s["call_record"] for s in rec], a._calls_by_id({"w0-57"})))
            a.callindex._db.close()                  # the index fails: the records are read whole
        assert answers[0] == answers[1]
        h, _, by_id = answers[0]
        assert [c["id"] for c in h["caller_calls"]] == ["w0-59", "w0-52", "w0-45", "w0-38", "w0-31"]
        assert [c["id"] for c in h["customer_calls"]][:2] == ["w0-57", "w0-54"]
        assert [r["id"] for r in answers[0][1]] == ["w0-58", "w0-57"] and by_id["w0-57"]["id"] == "w0-57"
    finally:
        a.stop()
