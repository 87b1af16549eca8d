"""Call records purged after 30 days, their counts kept: the bill is the same before and after."""

import json
import subprocess
import threading
from datetime import date, datetime, timedelta, timezone

from conftest import project_env, python_cmd
from firmware.records import retention as callretention
from firmware.records.calls import JsonLinesRecords

UTC = timezone.utc


def month_of_calls(n_per_day=4, start=date(2026, 10, 20), days=45):
    """Calls on line 201 (customer by line) and wake-ups with their customer, day by day."""
    out, k = [], 0
    for d in range(days):
        day = datetime.combine(start + timedelta(days=d), datetime.min.time(), UTC)
        for i in range(n_per_day):
            k += 1
            t = day + timedelta(hours=8 + i * 2)
            outcome = ("answered", "answered", "abandoned", "transferred")[i % 4]
            out.append({"id": f"R{k}", "line": "201", "direction": "in", "kind": "call", "caller": "555",
                        "callee": "201", "offered": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                        "answered": None if outcome == "abandoned" else t.strftime("%Y-%m-%dT%H:%M:09.000Z"),
                        "ended": t.strftime("%Y-%m-%dT%H:%M:50.000Z"), "rings": 2, "position": 1,
                        "hold_s": 0, "outcome": outcome})
        k += 1
        t = day + timedelta(hours=6, minutes=30)
        out.append({"id": f"R{k}", "line": "901", "direction": "out", "kind": "wakeup", "caller": "901",
                    "callee": "5551234", "offered": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "answered": t.strftime("%Y-%m-%dT%H:%M:08.000Z") if d % 3 else None,
                    "ended": t.strftime("%Y-%m-%dT%H:%M:30.000Z"), "rings": 3, "position": None,
                    "hold_s": 0, "outcome": "answered" if d % 3 else "no-answer", "customer": "marys-gloves"})
    return out


CUSTOMERS = [{"id": "marys-gloves", "line": "201", "name": "Mary's Gloves", "kind": "other", "plan": "small",
              "contract_start": "2026-01-01", "notice_date": None, "last_month_prepaid": False}]


def write_all(records, recs):
    for r in recs:
        records.write(r)


def test_ok__old_days_go_and_their_counts_stay(tmp_path):
    recs = month_of_calls()
    store = JsonLinesRecords(tmp_path / "calls.jsonl")
    write_all(store, recs)
    out = callretention.purge(store, tmp_path, date(2026, 11, 25), CUSTOMERS)
    assert out == {"purged": 6 * 5, "cutoff": "2026-10-26"}      # Oct 20..25, 5 records a day
    left = store.read()
    assert [r["id"] for r in left] == [r["id"] for r in recs[30:]]
    counts = callretention.load_counts(tmp_path)
    assert [c["day"] for c in counts] == [f"2026-10-{d}" for d in range(20, 26)]
    assert counts[0] == {"day": "2026-10-20", "customer": "marys-gloves",
                         "in": {"answered": 2, "abandoned": 1, "transferred": 1},
                         "wakeup": {"no-answer": 1}, "reminder": {}}
    assert callretention.purge(store, tmp_path, date(2026, 11, 25), CUSTOMERS)["purged"] == 0


def test_ok__a_crash_between_counting_and_removing_counts_nothing_twice(tmp_path):
    store = JsonLinesRecords(tmp_path / "calls.jsonl")
    write_all(store, month_of_calls())

    class Crash(Exception):
        pass

    class DiesBeforeRemoving(JsonLinesRecords):
        def remove_before(self, day):
            raise Crash()
    try:
        callretention.purge(DiesBeforeRemoving(tmp_path / "calls.jsonl"), tmp_path, date(2026, 11, 25), CUSTOMERS)
    except Crash:
        pass
    first = callretention.load_counts(tmp_path)
    assert len(store.read()) == 45 * 5                    # nothing removed yet
    callretention.purge(store, tmp_path, date(2026, 11, 25), CUSTOMERS)
    assert callretention.load_counts(tmp_path) == first   # set again, not added
    assert len(store.read()) == 39 * 5


def test_ok__records_written_during_a_purge_are_kept(tmp_path):
    store = JsonLinesRecords(tmp_path / "calls.jsonl")
    write_all(store, month_of_calls())
    late = month_of_calls(start=date(2026, 11, 26), days=20)
    for i, r in enumerate(late):
        r["id"] = f"L{i}"
    t = threading.Thread(target=write_all, args=(store, late))
    t.start()
    callretention.purge(store, tmp_path, date(2026, 11, 25), CUSTOMERS)
    t.join(30)
    ids = {r["id"] for r in store.read()}
    assert all(r["id"] in ids for r in late) and len(ids) == 39 * 5 + len(late)


def bill(data):
    r = subprocess.run(python_cmd("switchboard_tools.billing", "--month", "2026-11", "--data-dir", data, "--json"),
                       env=project_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["statements"][0]


def test_ok__the_bill_is_the_same_before_and_after_a_purge_in_the_middle_of_the_month(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    from firmware.timeclock.customers import Customers
    cs = Customers(data)
    cs.add({k: v for k, v in CUSTOMERS[0].items() if v is not None})
    cs.db.close()
    store = JsonLinesRecords(data / "calls.jsonl")
    write_all(store, month_of_calls(n_per_day=6, days=50))   # Oct 20 .. Dec 8
    before = bill(data)
    # On Dec 10 the records before Nov 10 go: November is cut in two.
    assert callretention.purge(store, data, date(2026, 12, 10), CUSTOMERS)["cutoff"] == "2026-11-10"
    after = bill(data)
    amounts = lambda st: [(i["code"], i["quantity"], i["amount"]) for i in st["items"]]   # noqa: E731
    assert amounts(after) == amounts(before) and after["total"] == before["total"]
    # 6 calls a day, 5 billable (answered or transferred); small plan: 40 for 25.00, 0.30 over
    assert amounts(before) == [("base", 1, "25.00"), ("over", 110, "33.00"), ("wakeup", 20, "10.00")]
    over = [i for i in after["items"] if i["code"] == "over"][0]
    base = [i for i in after["items"] if i["code"] == "base"][0]
    assert base["summarised"] == 40 and base["calls"] == []          # the allowance went on the purged days
    assert over["summarised"] == 9 * 5 - 40 and len(over["calls"]) == 21 * 5
    assert any(n.startswith("Call records before 2026-11-10 00:00 were purged") for n in after["notes"])
    assert after["activity"]["calls_offered"] == before["activity"]["calls_offered"] == 30 * 6


def test_ok__adapter_purges_on_its_clock_and_reports(tmp_path):
    store = JsonLinesRecords(tmp_path / "calls.jsonl")
    write_all(store, month_of_calls())
    a = callretention.CallRetentionAdapter(store, tmp_path,
                                           clock=lambda: datetime(2026, 11, 25, 3, tzinfo=UTC))
    assert a.run_once() == {"purged": 30, "cutoff": "2026-10-26"}
    assert a.status() == {"last": {"purged": 30, "cutoff": "2026-10-26"}, "error": None, "retention_days": 30}
    with open(tmp_path / "calls.jsonl", "a") as f:
        f.write('{"id": "bad", "offered": "2026-10-01T00:00:00Z"}\n')     # damaged: reported, nothing removed
    a.run_once()
    assert "calls.jsonl: [" in a.status()["error"] and len(store.read()) == 39 * 5 + 1
