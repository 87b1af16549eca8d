"""The supervisor's figures: are callers answered, and how quickly.

From the call records and stamps of a period, per line, customer, position
and hour of the day: calls offered, answered, abandoned (and how long those
rang before the caller gave up), the average and 90th-percentile time to
answer, time on hold, and messages taken and read back. ``compute`` returns
plain JSON-ready data (the board's view draws it); the host tool draws the PNGs
(``switchboard_tools.office.plots``).

Only incoming customer calls count as offered; wake-up and reminder calls are
the service's own and are counted apart. The 90th percentile is the
nearest-rank one (the smallest time at or under which 90 % of calls were
answered), so it is always a time some caller actually waited.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from firmware.errors import ControlError
from firmware.runtime.commands import Arg, Command

#: Upper edges (seconds) of the time-to-answer histogram's bins; the last is open.
WAIT_BINS = (5, 10, 15, 20, 25, 30, 40, 50, 60, 90, 120)


def percentile(values, q: float):
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


class _Acc:
    __slots__ = ("offered", "answered", "abandoned", "waits", "rang", "hold", "messages", "read_backs",
                 "outcomes")

    def __init__(self):
        self.offered = self.answered = self.abandoned = self.messages = self.read_backs = 0
        self.waits, self.rang = [], []
        self.hold = 0.0
        self.outcomes = {}

    def call(self, c):
        self.offered += 1
        self.outcomes[c.outcome] = self.outcomes.get(c.outcome, 0) + 1
        if c.answered is not None:
            self.answered += 1
            self.waits.append((c.answered - c.offered).total_seconds())
        elif c.outcome == "abandoned":
            self.abandoned += 1
            if c.ended is not None:
                self.rang.append((c.ended - c.offered).total_seconds())
        self.hold += c.hold_s or 0.0

    def out(self) -> dict:
        r = lambda v: None if v is None else round(v, 1)       # noqa: E731
        return {
            "offered": self.offered, "answered": self.answered, "abandoned": self.abandoned,
            "outcomes": dict(sorted(self.outcomes.items())),
            "answer_rate": r(100 * self.answered / self.offered) if self.offered else None,
            "wait_mean_s": r(sum(self.waits) / len(self.waits)) if self.waits else None,
            "wait_p90_s": r(percentile(self.waits, 90)),
            "abandoned_rang_mean_s": r(sum(self.rang) / len(self.rang)) if self.rang else None,
            "abandoned_rang_max_s": r(max(self.rang)) if self.rang else None,
            "hold_s": r(self.hold), "hold_mean_s": r(self.hold / self.answered) if self.answered else None,
            "messages": self.messages, "read_backs": self.read_backs,
        }


def compute(calls, stamps=(), customers=(), tz=timezone.utc, start: datetime | None = None,
            end: datetime | None = None) -> dict:
    """Figures for the calls offered in [start, end) (all when not given)."""
    line_owner = {}
    for cust in customers:        # the latest contract on a line names it
        line_owner[cust["line"]] = cust
    total, by_line, by_cust, by_pos, by_hour = _Acc(), {}, {}, {}, {}
    placed: dict[str, dict] = {}
    days = set()
    waits_all, rang_all = [], []
    first = last = None
    for c in calls:
        if (start and c.offered < start) or (end and c.offered >= end):
            continue
        local = c.offered.astimezone(tz)
        if c.direction == "out" or c.kind != "call":
            p = placed.setdefault(c.kind if c.kind != "call" else "callback", {})
            p[c.outcome] = p.get(c.outcome, 0) + 1
            continue
        days.add(local.date())
        first = c.offered if first is None or c.offered < first else first
        last = c.offered if last is None or c.offered > last else last
        cust = c.customer or (line_owner[c.line]["id"] if c.line in line_owner else None)
        groups = [total, by_line.setdefault(c.line, _Acc()), by_hour.setdefault(local.hour, _Acc())]
        if cust:
            groups.append(by_cust.setdefault(cust, _Acc()))
        if c.position is not None:
            groups.append(by_pos.setdefault(str(c.position), _Acc()))
        for g in groups:
            g.call(c)
        if c.answered is not None:
            waits_all.append((c.answered - c.offered).total_seconds())
        elif c.outcome == "abandoned" and c.ended is not None:
            rang_all.append((c.ended - c.offered).total_seconds())
    for s in stamps:
        if (start and s.time < start) or (end and s.time >= end):
            continue
        if s.what not in ("message", "read-back"):
            continue
        local = s.time.astimezone(tz)
        cust = s.customer or (line_owner[s.line]["id"] if s.line in line_owner else None)
        groups = [total, by_hour.setdefault(local.hour, _Acc())]
        if s.line:
            groups.append(by_line.setdefault(s.line, _Acc()))
        if cust:
            groups.append(by_cust.setdefault(cust, _Acc()))
        if s.position is not None:
            groups.append(by_pos.setdefault(str(s.position), _Acc()))
        for g in groups:
            if s.what == "message":
                g.messages += 1
            else:
                g.read_backs += 1
    hist = _histogram(waits_all), _histogram(rang_all)
    return {
        # An average day: over the days asked for, or else the days that had calls.
        "period": {"first_call": first.isoformat() if first else None,
                   "last_call": last.isoformat() if last else None,
                   "days": max(1, round((end - start).total_seconds() / 86400)) if start and end
                   else len(days),
                   "timezone": str(tz)},
        "totals": total.out(),
        "by_line": {k: v.out() for k, v in sorted(by_line.items())},
        "by_customer": {k: v.out() for k, v in sorted(by_cust.items())},
        "by_position": {k: v.out() for k, v in sorted(by_pos.items())},
        "by_hour": {f"{h:02d}": by_hour[h].out() if h in by_hour else _Acc().out() for h in range(24)},
        "wait_histogram": {"upper_edges_s": list(WAIT_BINS) + [None],
                           "answered": hist[0], "abandoned": hist[1]},
        "placed_calls": placed,
    }


def _histogram(values) -> list[int]:
    counts = [0] * (len(WAIT_BINS) + 1)
    for v in values:
        for i, edge in enumerate(WAIT_BINS):
            if v < edge:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
    return counts


def command(data_dir, tz=timezone.utc) -> Command:
    """``figures`` on the control socket (and so for the board's view): the
    figures of the records in ``data_dir``, ``{"from": "YYYY-MM-DD", "to":
    "YYYY-MM-DD"}`` (local days, ``to`` excluded; default: today)."""
    import asyncio
    from datetime import timedelta as _td

    from firmware.records.datadir import from_data_dir
    from firmware.records.recordset import parse_date

    def work(args):
        today = datetime.now(tz).date()
        try:
            lo = parse_date(args.get("from") or today.isoformat(), ("figures", "from"))
            hi = parse_date(args["to"], ("figures", "to")) if args.get("to") else lo + _td(days=1)
        except ValueError as e:
            raise ControlError(str(e)) from None
        data = from_data_dir(data_dir, tz, lo - _td(days=1), hi)
        start = datetime.combine(lo, datetime.min.time(), tz)
        end = datetime.combine(hi, datetime.min.time(), tz)
        out = compute(data["calls"], data["stamps"], data["customers"], tz, start, end)
        out["period"].update({"from": lo.isoformat(), "to": hi.isoformat()})
        return out

    async def handler(args):
        return await asyncio.get_running_loop().run_in_executor(None, work, dict(args))
    return Command("figures", handler,
                   (Arg("from", help="first local day, YYYY-MM-DD (default today)"),
                    Arg("to", help="the day after the last, YYYY-MM-DD")),
                   "the supervisor's figures of the daemon's own records")
