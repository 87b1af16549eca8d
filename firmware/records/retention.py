"""Call records are kept 30 days; what billing needs of them is kept for good.

Every few hours (and at start-up) the records of whole days older than the
retention period are taken out of ``calls.jsonl``. Before they go, each day's
counts per customer (incoming calls by outcome, wake-up and reminder calls by
outcome) are written to ``call-counts.json``. The counts of a day are *set*,
not added, and written before the records are removed, so a crash at any
point followed by another purge gives the same counts: nothing is lost and
nothing is counted twice. Billing reads them as the month's retention summary
(``monthly_summaries``), the way it reads the time clock's counts of purged
slips.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from firmware.records.recordset import call_from
from firmware.records.files import atomic_write_json
from firmware.runtime.adapter import Adapter

COUNTS_FILE = "call-counts.json"
log = logging.getLogger("switchboard.retention")


def _owner(customers, line, day):
    best = None
    for c in customers:
        if c.get("line") != line:
            continue
        start = c.get("contract_start")
        start = date.fromisoformat(start) if isinstance(start, str) else start
        if start is not None and start <= day and (best is None or start > best[0]):
            best = (start, c["id"])
    return best[1] if best else None


def day_counts(records, customers=()) -> dict:
    """{(day, customer): counts} of raw call records; the customer is the
    record's own, else the one on its line on that day."""
    out: dict[tuple, dict] = {}
    for i, r in enumerate(records):
        c = call_from(r, ("calls.jsonl", f"[{i}]"))
        day = c.offered.astimezone(timezone.utc).date()
        who = c.customer or _owner(customers, c.line, day) or ""
        d = out.setdefault((day.isoformat(), who), {"day": day.isoformat(), "customer": who,
                                                    "in": {}, "wakeup": {}, "reminder": {}})
        if c.kind == "call" and c.direction == "in":
            d["in"][c.outcome] = d["in"].get(c.outcome, 0) + 1
        elif c.kind in ("wakeup", "reminder"):
            d[c.kind][c.outcome] = d[c.kind].get(c.outcome, 0) + 1
    return out


def load_counts(data_dir) -> list[dict]:
    p = Path(data_dir) / COUNTS_FILE
    if not p.exists():
        return []
    return json.loads(p.read_text(encoding="utf-8"))


def purge(records, data_dir, today: date, customers=(), retention_days: int = 30) -> dict:
    """Purge whole days before ``today - retention_days`` from ``records``
    (a ``JsonLinesRecords``), keeping their counts."""
    cutoff = (today - timedelta(days=retention_days)).isoformat()
    old = [r for r in records.read() if str(r.get("offered") or "")[:10] < cutoff]
    if not old:
        return {"purged": 0, "cutoff": cutoff}
    counts = {(d["day"], d["customer"]): d for d in load_counts(data_dir)}
    counts.update(day_counts(old, customers))          # set per day: a re-run changes nothing
    path = Path(data_dir) / COUNTS_FILE
    atomic_write_json(path, sorted(counts.values(), key=lambda d: (d["day"], d["customer"])))
    removed = records.remove_before(cutoff)
    return {"purged": len(removed), "cutoff": cutoff}


def monthly_summaries(docs, billable=("answered", "transferred"), tz=timezone.utc) -> list[dict]:
    """Per-day counts -> the monthly summaries billing reads (covering calls)."""
    acc: dict[tuple, dict] = {}
    for d in docs:
        day = date.fromisoformat(d["day"])
        key = (d["customer"], f"{day.year:04d}-{day.month:02d}")
        a = acc.setdefault(key, {"customer": key[0], "month": key[1], "purged_before": None,
                                 "calls_offered": 0, "calls_answered": 0, "wakeups_answered": 0,
                                 "reminders_answered": 0, "messages": 0, "read_backs": 0,
                                 "covers": ["calls"]})
        a["calls_offered"] += sum(d["in"].values())
        a["calls_answered"] += sum(n for o, n in d["in"].items() if o in billable)
        a["wakeups_answered"] += d["wakeup"].get("answered", 0)
        a["reminders_answered"] += d["reminder"].get("answered", 0)
        nxt = datetime.combine(day + timedelta(days=1), time(), timezone.utc)
        a["purged_before"] = max(a["purged_before"] or nxt, nxt)
    return list(acc.values())


class CallRetentionAdapter(Adapter):
    """Runs ``purge`` on the telephony's call records at start-up and every
    ``every_s`` (in a worker thread: it rewrites a file)."""

    name = "call-retention"

    def __init__(self, records, data_dir, retention_days: int = 30, every_s: float = 6 * 3600,
                 clock=lambda: datetime.now(timezone.utc)):
        self.records, self.data_dir = records, Path(data_dir)
        self.retention_days, self.every_s, self.clock = retention_days, every_s, clock
        self.last: dict = {}
        self.error: str | None = None
        self._task = None

    def _customers(self):
        if not (self.data_dir / "customers.jsonl").exists():
            return []
        from firmware.timeclock.customers import Customers
        store = Customers(self.data_dir, readonly=True)
        try:
            return store.all()
        finally:
            store.db.close()

    def run_once(self) -> dict:
        try:
            self.last = purge(self.records, self.data_dir, self.clock().date(), self._customers(),
                              self.retention_days)
            self.error = None
        except (OSError, ValueError) as e:
            self.error = f"{type(e).__name__}: {e}"
            log.error("call retention: %s", self.error)
        return self.last

    def commands(self) -> list:
        return []

    def start(self, ctx):
        import asyncio

        async def loop():
            while True:
                await asyncio.get_running_loop().run_in_executor(None, self.run_once)
                await asyncio.sleep(self.every_s)
        if ctx.loop is not None:
            self._task = ctx.loop.create_task(loop())

    def handle(self, command):
        pass

    def status(self) -> dict:
        return {"last": self.last, "error": self.error, "retention_days": self.retention_days}

    def stop(self):
        if self._task is not None:
            self._task.cancel()
