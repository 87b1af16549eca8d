"""The journal storage, the time clock's day journals, retention and the rack, on real files."""

import datetime as dt
import time

import pytest
from tinydb import TinyDB, where

from firmware.timeclock.rack import Rack, RackError
from firmware.records.journal import (JournalStorage, StoreCorrupt, StoreError, encode_line,
                            verify_journal)
from firmware.timeclock.clock import StampError, TimeClock

from settable_clock import TZ, Clock  # noqa: E402



def test_ok__journal_round_trip_keeps_only_changes(tmp_path):
    path = tmp_path / "db.jsonl"
    db = TinyDB(path, storage=JournalStorage)
    db.insert({"a": 1})
    db.insert({"a": 2, "nested": {"x": [1, 2]}})
    db.table("other").insert({"b": 3})
    db.update({"a": 5}, where("a") == 1)
    db.remove(where("a") == 2)
    db.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 5
    # Each write appended only what changed: the last one only a deletion.
    assert b'"_default","2",null' in lines[-1] and b'"a":5' not in lines[-1]
    db = TinyDB(path, storage=JournalStorage)
    assert [dict(d) for d in db.all()] == [{"a": 5}]
    assert [dict(d) for d in db.table("other").all()] == [{"b": 3}]
    db.close()


@pytest.mark.parametrize("tail", [b'1234abcd {"n":9,"op', b"\x00" * 300, b"garbage\n"])
def test_ok__torn_tail_is_cut_off(tmp_path, tail):
    path = tmp_path / "db.jsonl"
    db = TinyDB(path, storage=JournalStorage)
    for i in range(3):
        db.insert({"i": i})
    db.close()
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(tail)
    ro = TinyDB(path, storage=JournalStorage, readonly=True)
    assert len(ro.all()) == 3 and path.stat().st_size == good + len(tail)  # readers never cut
    db = TinyDB(path, storage=JournalStorage)
    assert len(db.all()) == 3
    assert db.storage.torn_bytes == len(tail) and path.stat().st_size == good
    db.insert({"i": 3})
    db.close()
    assert len(TinyDB(path, storage=JournalStorage, readonly=True).all()) == 4


def test_fail__damage_in_the_middle_is_reported_not_hidden(tmp_path):
    path = tmp_path / "db.jsonl"
    db = TinyDB(path, storage=JournalStorage)
    for i in range(3):
        db.insert({"i": i})
    db.close()
    data = bytearray(path.read_bytes())
    second = data.index(b"\n") + 1
    data[second + 20] ^= 0x01           # one flipped bit in the second record
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt) as e:
        TinyDB(path, storage=JournalStorage)
    assert str(path) in str(e.value) and f"byte {second}" in str(e.value)
    assert verify_journal(path)["bad"] == [second]


def test_fail__second_writer_is_refused(tmp_path):
    path = tmp_path / "db.jsonl"
    db = TinyDB(path, storage=JournalStorage)
    with pytest.raises(StoreError, match="in use by another program"):
        TinyDB(path, storage=JournalStorage)
    db.close()


def test_fail__missing_data_folder_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="data folder does not exist"):
        TinyDB(tmp_path / "nope" / "db.jsonl", storage=JournalStorage)


def test_ok__compaction_rewrites_by_rename_and_keeps_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(JournalStorage, "COMPACT_MIN_OPS", 50)
    path = tmp_path / "db.jsonl"
    db = TinyDB(path, storage=JournalStorage)
    doc = db.insert({"n": 0})
    for i in range(200):
        db.update({"n": i + 1}, doc_ids=[doc])
    db.close()
    # Compacted while running, once the journal was mostly changes:
    assert len(path.read_bytes().splitlines()) < 201
    with open(path, "ab") as f:                     # as if written by an older run
        for i in range(300):
            f.write(encode_line({"n": 1000 + i, "ops": [["_default", "1", {"n": 200}]]}))
    db = TinyDB(path, storage=JournalStorage)       # compacts on open
    assert len(path.read_bytes().splitlines()) == 1
    db.insert({"n": "after"})
    db.close()
    db = TinyDB(path, storage=JournalStorage, readonly=True)
    assert sorted(str(d["n"]) for d in db.all()) == ["200", "after"]
    assert not (tmp_path / "db.jsonl.tmp").exists()


def test_ok__slips_are_gapless_across_days_and_restarts(tmp_path):
    clock = Clock()
    tc = TimeClock(tmp_path, clock=clock)
    a = tc.stamp("answer", line="201", customer="marys-gloves", position=1, call="c1")
    clock.advance(hours=20)          # next day
    b = tc.stamp("stamp", position=2)
    tc.close()
    assert (a["slip"], b["slip"]) == (1, 2)
    assert a == {"slip": 1, "time": "2026-11-02T09:00:00-05:00", "line": "201",
                 "customer": "marys-gloves", "position": 1, "what": "answer",
                 "call": "c1", "text": None}
    assert sorted(p.name for p in (tmp_path / "slips").iterdir()) == \
        ["2026-11-02.jsonl", "2026-11-03.jsonl"]
    tc = TimeClock(tmp_path, clock=clock)
    assert tc.stamp("stamp")["slip"] == 3
    clock.advance(days=-3)            # the clock is set back: numbering carries on
    back = tc.stamp("stamp")
    assert back["slip"] == 4 and back["time"].startswith("2026-10-31")
    tc.close()
    tc = TimeClock(tmp_path, clock=clock)
    assert tc.last_slip == 4
    rep = tc.verify()
    assert rep["ok"] and rep["stamps"] == 4 and rep["last"] == 4, rep


@pytest.mark.parametrize("kw,msg", [
    ({"what": "lunch"}, "what = 'lunch'"),
    ({"what": "stamp", "position": 0}, "position = 0"),
    ({"what": "stamp", "line": 201}, "line = 201"),
])
def test_fail__bad_stamp_requests(tmp_path, kw, msg):
    tc = TimeClock(tmp_path, clock=Clock())
    with pytest.raises(StampError, match=msg):
        tc.stamp(**kw)
    assert tc.last_slip == 0
    tc.close()


def test_fail__retention_below_30_days_is_refused(tmp_path):
    with pytest.raises(StampError, match="at least 30"):
        TimeClock(tmp_path, retention_days=7)


def test_ok__purge_keeps_30_days_and_the_billing_counts(tmp_path):
    clock = Clock(dt.datetime(2026, 9, 1, 9, 0, tzinfo=TZ))
    tc = TimeClock(tmp_path, clock=clock)
    rack = Rack(tc)
    rec = tmp_path / "call-1.wav"
    rec.write_bytes(b"RIFF")
    for day in range(60):             # September and October
        rack.take("201", "marys-gloves", f"message {day}", position=1)
        tc.stamp("answer", line="202", customer="acme-plumbing", position=1)
        clock.advance(days=1)
    old = rack.take("201", "marys-gloves", "still waiting", recording=str(rec))
    for m in rack.waiting(customer="marys-gloves")[:-1]:
        rack.read_back(m["slip"])
    before = tc.monthly_counts("2026-09")
    assert before["marys-gloves"]["message"] == 30 and before["acme-plumbing"]["answer"] == 30
    clock.advance(days=45)            # mid-December
    rep = tc.purge(keep_paths=rack.recordings())
    assert rep["cutoff"] == "2026-11-15"
    assert "2026-09-01" in rep["purged_days"] and "2026-10-31" in rep["purged_days"]
    assert tc.days() == []            # the read-backs (dead box) were on 2026-10-31
    assert tc.monthly_counts("2026-09") == before      # billing survives the purge
    assert tc.monthly_counts("2026-10")["marys-gloves"]["read-back"] == 60
    assert rec.exists()               # the waiting message's recording stays
    assert [m["slip"] for m in rack.waiting()] == [old["slip"]]
    assert tc.stamp("stamp")["slip"] == tc.floor() + 1 == old["slip"] + 61
    rack.read_back(old["slip"])
    clock.advance(days=31)
    tc.purge(keep_paths=rack.recordings())
    assert not rec.exists()           # gone with its dead-box slip
    tc.close()


def test_ok__rack_catches_up_with_stamps_it_missed(tmp_path):
    clock = Clock()
    tc = TimeClock(tmp_path, clock=clock)
    rack = Rack(tc)
    m1 = rack.take("201", "marys-gloves", "call Mrs Lee")
    rack.close()
    # Stamps the rack never saw (as if the daemon died between stamp and rack write):
    m2 = tc.stamp("message", line="201", customer="marys-gloves", text="second")
    tc.stamp("read-back", line="201", customer="marys-gloves", of=m1["slip"], text=m1["text"])
    rack = Rack(tc)
    assert [m["slip"] for m in rack.waiting(customer="marys-gloves")] == [m2["slip"]]
    assert rack.count("201", "marys-gloves") == 1
    with pytest.raises(RackError, match=f"slip {m1['slip']} is not waiting"):
        rack.read_back(m1["slip"])
    with pytest.raises(RackError, match="needs its text"):
        rack.take("201", "marys-gloves", "   ")
    rb = rack.read_back(m2["slip"], position=2)
    assert rb["what"] == "read-back" and rb["of"] == m2["slip"] and rb["text"] == "second"
    assert rack.waiting() == []
    tc.close()


def test_ok__search_by_customer_date_and_text(tmp_path):
    clock = Clock()
    tc = TimeClock(tmp_path, clock=clock)
    rack = Rack(tc)
    rack.take("201", "marys-gloves", "Mrs Lee: gloves ready?")
    clock.advance(days=1)
    rack.take("202", "acme-plumbing", "Leak at 5 Elm St")
    rack.take("201", "marys-gloves", "Order 12 pairs")
    tc.close()
    ro = TimeClock(tmp_path, readonly=True)
    assert [s["slip"] for s in ro.stamps(customer="marys-gloves")] == [1, 3]
    assert [s["slip"] for s in ro.stamps(since=dt.date(2026, 11, 3))] == [2, 3]
    assert [s["slip"] for s in ro.stamps(search="LEAK")] == [2]
    assert ro.stamps(until=dt.date(2026, 11, 1)) == []
    with pytest.raises(StoreError, match="read-only"):
        ro.stamp("stamp")
    with pytest.raises(StoreError, match="no time clock data"):
        TimeClock(tmp_path / "elsewhere", readonly=True)


def test_ok__storage_insert_appends_one_line_and_tinydb_sees_it(tmp_path):
    path = tmp_path / "db.jsonl"
    db = TinyDB(path, storage=JournalStorage)
    db.table("stamps").insert({"slip": 0})           # TinyDB's own insert
    before = path.stat().st_size
    db.storage.insert("stamps", 7, {"slip": 7, "tags": ["x"]})
    db.table("stamps").clear_cache()
    assert path.read_bytes()[before:].count(b"\n") == 1
    assert db.table("stamps").get(doc_id=7) == {"slip": 7, "tags": ["x"]}
    with pytest.raises(StoreError, match="document 7 already exists"):
        db.storage.insert("stamps", 7, {"slip": 7})
    db.close()
    ro = TinyDB(path, storage=JournalStorage, readonly=True)
    assert sorted(d["slip"] for d in ro.table("stamps").all()) == [0, 7]
    with pytest.raises(StoreError, match="read-only"):
        ro.storage.insert("stamps", 8, {})


def test_ok__one_customers_search_opens_only_their_days(tmp_path, monkeypatch):
    clock = Clock()
    tc = TimeClock(tmp_path, clock=clock)
    for day in range(20):
        tc.stamp("answer", line="202", customer="acme")
        if day in (3, 17):
            tc.stamp("message", line="201", customer="marys-gloves", text=f"day {day}")
        clock.advance(days=1)
    tc.stamp("stamp", line="201", customer="marys-gloves")      # today, not indexed yet
    tc.close()
    ro = TimeClock(tmp_path, readonly=True)
    opened = []
    real = TimeClock.read_day
    monkeypatch.setattr(TimeClock, "read_day", lambda self, day: opened.append(day) or
                        real(self, day))
    got = ro.stamps(customer="marys-gloves")
    assert [s["text"] for s in got] == ["day 3", "day 17", None]
    assert opened == ["2026-11-05", "2026-11-19", "2026-11-22"]
    opened.clear()
    assert len(ro.stamps(customer="acme")) == 20 and len(opened) == 21   # + today


def test_ok__a_restarting_writer_waits_for_the_old_one_to_let_go(tmp_path):
    import threading
    path = tmp_path / "db.jsonl"
    old = TinyDB(path, storage=JournalStorage)
    threading.Timer(0.3, old.close).start()
    t = time.monotonic()
    new = TinyDB(path, storage=JournalStorage, lock_wait_s=5)
    assert 0.2 < time.monotonic() - t < 3
    new.close()
