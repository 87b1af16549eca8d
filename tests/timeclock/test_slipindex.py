"""The dead box's index (SQLite FTS5) gives the same answers as reading the journals, is fed
as slips are stamped, and survives a kill in the middle of a write, torn slips and a
damaged file: the journals stay the truth."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pytest

from firmware.records.journal import write_snapshot
from firmware.timeclock.adapter import TimeClockAdapter
from firmware.timeclock.clock import TimeClock
from firmware.timeclock.customers import Customers
from firmware.timeclock.slipindex import FILE, SlipIndex

from test_customers import MARY
from test_timeclock_adapter import TZ, MiniDaemon

HOLD = {**MARY, "delivery": {"method": "hold", "to": None}}
DAY0 = dt.date(2026, 11, 20)


def journals(data, days=5, per_day=60):
    """Day journals as the time clock writes them: messages, their read-backs, answers."""
    slip = 0
    for d in range(days):
        day = DAY0 + dt.timedelta(days=d)
        docs = {}
        for k in range(per_day):
            slip += 1
            t = dt.datetime.combine(day, dt.time(8), TZ) + dt.timedelta(minutes=k)
            what = ("message", "read-back", "answer")[slip % 3]
            docs[slip] = {"slip": slip, "time": t.isoformat(timespec="seconds"), "line": "201",
                          "customer": "acme" if (slip - (what == "read-back")) % 5 == 0
                          else "marys-gloves",
                          "position": 1, "what": what, "call": f"call-{slip}",
                          "text": None}
            if what != "answer":       # a read-back copies its message's text
                docs[slip]["text"] = f"Ring Mrs Lee about Order {slip - (what == 'read-back')}"
            if what == "read-back":
                docs[slip]["of"] = slip - 1
        write_snapshot(data / "slips" / f"{day.isoformat()}.jsonl", {"stamps": docs},
                       durable=False)
    return slip


@pytest.fixture
def store(tmp_path):
    (tmp_path / "slips").mkdir()
    last = journals(tmp_path)
    cs = Customers(tmp_path)
    cs.add(HOLD)
    cs.add({**HOLD, "id": "acme", "name": "Acme Plumbing", "line": "202"})
    cs.close()
    return tmp_path, last


def open_adapter(data):
    clock = lambda: dt.datetime.combine(DAY0 + dt.timedelta(days=4), dt.time(18), TZ)  # noqa: E731
    d = MiniDaemon()
    a = TimeClockAdapter(data, clock=clock)
    d.add_adapter(a)
    a._reader.submit(lambda: None).result()       # the index's catch-up ran
    return d, a


QUERIES = [{"search": "order 12"}, {"search": "ORDER 1"}, {"search": "ee"},
           {"search": "mrs lee about order 300"}, {"search": "no such words"},
           {"customer": "acme"}, {"customer": "acme", "search": "order 1"},
           {"since": "2026-11-21", "until": "2026-11-22"}, {"until": "2026-11-20"},
           {"slip": 121}, {"slip": 122}, {"slip": 123}, {"slip": 99999},
           {"slip": 121, "since": "2026-11-22"}, {"limit": 7}, {}]


def search_both(a, q):
    full = {"customer": None, "since": None, "until": None, "search": None, "slip": None,
            "limit": 200, **q}
    assert a.index.ready
    fast = a._deadbox(full)
    a.index.ready = False
    try:
        slow = a._deadbox(full)
    finally:
        a.index.ready = True
    return fast, slow


def brief(r):
    return [(s["slip"], (s["read_back"] or {}).get("slip")) for s in r["slips"]], r["found"]


@pytest.mark.parametrize("q", QUERIES, ids=[str(q) for q in QUERIES])
def test_ok__index_answers_as_the_journals_do(store, q):
    data, last = store
    d, a = open_adapter(data)
    try:
        fast, slow = search_both(a, q)
        if q.get("until"):
            # The journals only see read-backs up to "until"; the index sees a message
            # read back the next day as read back (slip 60, read back as 61 on the 21st).
            assert [s["slip"] for s in fast["slips"]] == [s["slip"] for s in slow["slips"]]
            if q["until"] == "2026-11-20":
                assert fast["slips"][0]["slip"] == 60 and fast["slips"][0]["read_back"]["slip"] == 61
                assert slow["slips"][0]["read_back"] is None
        else:
            assert brief(fast) == brief(slow)
        if q.get("search") == "order 12":      # messages 12, 120, 123, 126, 129
            assert [s["slip"] for s in fast["slips"]] == [129, 126, 123, 120, 12]
            assert fast["slips"][0]["read_back"]["slip"] == 130
    finally:
        a.stop()


def test_ok__new_stamps_and_read_backs_are_found_at_once(store):
    data, last = store
    d, a = open_adapter(data)
    try:
        assert a.index.ready and a.index.through() == last
        msg = d.call("take-message", line="202", text="Burst pipe at Elm Street")["stamp"]
        hit = d.call("deadbox", search="elm str")
        assert [s["slip"] for s in hit["slips"]] == [msg["slip"]] and hit["slips"][0]["read_back"] is None
        back = d.call("read-back", slip=msg["slip"])["stamp"]
        hit = d.call("deadbox", search="ELM STREET")
        assert hit["slips"][0]["read_back"]["slip"] == back["slip"]
        assert [s["slip"] for s in d.call("deadbox", slip=back["slip"])["slips"]] == [msg["slip"]]
        assert a.index.through() == back["slip"]
        h = d.call("history", customer="acme")
        assert h["messages"][0]["slip"] == msg["slip"]
    finally:
        a.stop()


def test_ok__purged_days_leave_the_index(store):
    data, last = store
    d, a = open_adapter(data)
    try:
        ix = a.index
        assert ix.search(until=DAY0)[1] == 60
        assert ix.drop_before((DAY0 + dt.timedelta(days=1)).isoformat()) == 60
        assert ix.search(until=DAY0)[1] == 0
        assert ix.search(search="order 1")[1] == len([s for s in range(61, last + 1)
                                                      if s % 3 != 2 and "order 1" in f"order {s - (s % 3 == 1)}"])
    finally:
        a.stop()


def test_ok__torn_slips_and_a_damaged_file_are_rebuilt_from_the_journals(store):
    data, last = store
    ix = SlipIndex(data)
    tc = TimeClock(data, readonly=True)
    ix.catch_up(tc)
    # A stamp that reached the index but not (whole) the journal: its number is given again.
    ix.add({"slip": last + 1, "time": "2026-11-24T18:00:00-05:00", "what": "message",
            "customer": "acme", "text": "never acknowledged"}, "2026-11-24")
    ix.close()
    ix = SlipIndex(data)
    ix.catch_up(tc)
    assert ix.search(search="never ack")[1] == 0 and ix.through() == last
    ix.close()
    # Garbage over the file: thrown away and built again.
    for suffix in ("-wal", "-shm"):
        try:
            os.unlink(f"{data / FILE}{suffix}")
        except FileNotFoundError:
            pass
    (data / FILE).write_bytes(b"this is not a database" * 100)
    ix = SlipIndex(data)
    assert ix.through() == 0
    assert ix.catch_up(tc) == last and ix.search(what="message")[1] == last // 3
    ix.close()
    tc.close()


CHILD = r"""
import sys, time
from firmware.timeclock.clock import TimeClock
from firmware.timeclock.slipindex import SlipIndex
import firmware.timeclock.slipindex as si
si.BATCH = 50              # many statements in the one transaction: the kill lands inside it
data = sys.argv[1]
tc = TimeClock(data, readonly=True)
ix = SlipIndex(data)
orig = ix._insert
def slow(stamps, text_too=True):
    orig(stamps, text_too)
    print("inserting", flush=True)
    time.sleep(0.05)
ix._insert = slow
ix.catch_up(tc)
print("done", flush=True)
"""


def test_ok__killed_mid_write_the_index_is_before_or_after(tmp_path):
    (tmp_path / "slips").mkdir()
    last = journals(tmp_path, days=4, per_day=1000)
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                         text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while seen < 3 and time.monotonic() < deadline:
            line = p.stdout.readline()
            assert line, "the child ended before it was killed"
            seen += line.startswith("inserting")
        assert seen == 3
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.kill()
        p.wait(30)
        p.stdout.close()
    ix = SlipIndex(tmp_path)
    assert ix.through() in (0, last) and ix.search()[1] in (0, min(last, 5001))
    tc = TimeClock(tmp_path, readonly=True)
    ix.catch_up(tc)
    ix.ready = True
    assert ix.through() == last
    hits, n = ix.search(search="order 3999")
    assert [h["slip"] for h in hits] == [4000, 3999] and n == 2     # the message, its read-back
    assert ix.search(what="message")[1] == len([s for s in range(1, last + 1) if s % 3 == 0])
    ix.close()
    tc.close()
