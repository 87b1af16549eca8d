"""Everything the reports need from the daemon's data folder, read once and checked.

The telephony's call records, the time clock's slips and counts, call
retention's counts of purged days, the customers and the schedule's log, as
the plain records of ``firmware.records.recordset``: what billing, the
figures and the balance read.
"""

from __future__ import annotations

import json
from datetime import date, timezone
from pathlib import Path

from firmware.errors import ConfigError
from firmware.records.recordset import (call_from, check_customer, counts_from_timeclock,
                                        read_json_records, stamp_from)
from firmware.records.retention import load_counts, monthly_summaries


def from_data_dir(data_dir, tz=timezone.utc, since: date | None = None, until: date | None = None,
                  billable=("answered", "transferred")) -> dict:
    """Everything the reports need from the daemon's data folder, read-only:
    the telephony's ``calls.jsonl``, the time clock's day journals and its
    counts of purged days, the customers' store and the schedule's log (which
    names the customer of each wake-up and reminder call)."""
    d = Path(data_dir)
    if not d.is_dir():
        raise ConfigError(d, "", None, None, message=f"{d}: no such folder; give the daemon's "
                          "data folder (its --data-dir, $SWITCHBOARD_DATA or ./var)")
    out = {"customers": [], "calls": [], "stamps": [], "counts": []}
    raw_calls = read_json_records(d / "calls.jsonl") if (d / "calls.jsonl").exists() else []
    if (d / "schedule.json").exists():
        from firmware.schedule.scheduler import billing_records
        log = json.loads((d / "schedule.json").read_text(encoding="utf-8")).get("log", [])
        raw_calls = billing_records(log, raw_calls)
    out["calls"] = [call_from(r, (str(d / "calls.jsonl"), f"[{i}]"), tz) for i, r in enumerate(raw_calls)]
    out["counts"] += monthly_summaries(load_counts(d), billable, tz)
    if (d / "customers.jsonl").exists():
        from firmware.timeclock.customers import Customers
        store = Customers(d, readonly=True)
        try:
            out["customers"] = [check_customer(c, (str(store.path), f"customers.{c.get('id')}"))
                                for c in store.all()]
        finally:
            store.db.close()
    if (d / "slips").is_dir():
        from firmware.timeclock.clock import TimeClock
        tc = TimeClock(d, readonly=True)
        try:
            out["stamps"] = [stamp_from(s, (str(d / "slips"), f"slip {s.get('slip')}"), tz)
                             for s in tc.stamps(since, until)]
            out["counts"] += counts_from_timeclock([dict(x) for x in tc.meta.table("counts").all()], tz)
        finally:
            tc.meta.close()
    return out
