"""Call records, time-clock stamps and customers as plain records, checked once.

Billing, the supervisor's figures and the board balance work on plain dicts so
they do not care where the records are kept (TinyDB, a JSON export, a test).
This module reads those records from a file (a JSON list, JSON lines, or a
TinyDB file), checks every field the reports use, and turns times into aware
datetimes once, so the reports never parse or guess.

Shapes (extra keys are kept and ignored):

- call: ``id, line, direction (in|out), kind (call|wakeup|reminder), caller,
  callee, offered, answered, ended (ISO 8601 or null), rings, position,
  hold_s, outcome (answered|abandoned|overflowed|transferred|no-answer|failed)``
  and, for placed calls, optionally ``customer`` and ``schedule``.
- stamp: ``slip, time, line, customer, position, what
  (message|read-back|answer|stamp), call, text``.
- customer: ``id, line, name, kind, plan, contract_start (date),
  notice_date (date|null), last_month_prepaid (bool)``.
- monthly count (what survives the 30-day purge): ``customer, month
  (YYYY-MM), purged_before (ISO 8601)`` and the numbers in COUNT_FIELDS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path

from firmware.records.journal import decode_line
from firmware.errors import ConfigError
from firmware.records.calls import OUTCOMES

DIRECTIONS = ("in", "out")
CALL_KINDS = ("call", "wakeup", "reminder")
STAMP_WHATS = ("message", "read-back", "answer", "stamp")
#: Counts a retention summary carries for one customer and month.
COUNT_FIELDS = ("calls_offered", "calls_answered", "wakeups_answered",
                "reminders_answered", "messages", "read_backs")


def parse_time(value, where: tuple, tz: tzinfo = timezone.utc, *, optional=False):
    """ISO 8601 text -> aware datetime; a time without an offset is in ``tz``."""
    if value is None and optional:
        return None
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            t = None
    else:
        t = None
    if t is None:
        raise ConfigError(where[0], where[1], value,
                          "an ISO 8601 time such as \"2026-11-03T09:15:00+00:00\""
                          + (" or null" if optional else ""))
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return t


def parse_date(value, where: tuple, *, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(where[0], where[1], value,
                      "a date such as \"2026-11-01\"" + (" or null" if optional else ""))


def parse_month(text: str, where=("command line", "--month")) -> tuple[date, date]:
    """``"2026-11"`` -> (first day, first day of the next month)."""
    try:
        y, m = (int(p) for p in str(text).split("-"))
        first = date(y, m, 1)
    except (ValueError, TypeError):
        raise ConfigError(where[0], where[1], text, "a month such as \"2026-11\"") from None
    nxt = date(y + (m == 12), 1 if m == 12 else m + 1, 1)
    return first, nxt


def month_of(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


@dataclass(frozen=True)
class Call:
    """One call record with its times parsed (``raw`` is the record as stored)."""
    id: str
    line: str
    direction: str
    kind: str
    caller: str
    callee: str
    offered: datetime
    answered: datetime | None
    ended: datetime | None
    rings: int
    position: int | None
    hold_s: float
    outcome: str
    customer: str | None
    raw: dict

    @property
    def wait_s(self) -> float | None:
        """Time to answer (answered) or how long it rang before the caller gave up."""
        end = self.answered or self.ended
        return None if end is None else max(0.0, (end - self.offered).total_seconds())


@dataclass(frozen=True)
class Stamp:
    slip: int
    time: datetime
    line: str
    customer: str | None
    position: int | None
    what: str
    call: str | None
    text: str
    raw: dict


def _need(rec, key, where, expected, check):
    if key not in rec:
        raise ConfigError(where[0], f"{where[1]}.{key}", None, None,
                          message=f"{where[0]}: {where[1]}.{key}: missing; expected {expected}")
    v = rec[key]
    if not check(v):
        raise ConfigError(where[0], f"{where[1]}.{key}", v, expected)
    return v


def _is_text(v):
    return isinstance(v, str) and v != ""


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0


def call_from(rec: dict, where=("calls", "[0]"), tz=timezone.utc) -> Call:
    if not isinstance(rec, dict):
        raise ConfigError(where[0], where[1], rec, "a call record (a JSON object)")
    f, k = where
    return Call(
        id=str(_need(rec, "id", where, "a call id", lambda v: _is_text(v) or _is_int(v))),
        line=str(_need(rec, "line", where, "a line number such as \"201\"",
                       lambda v: _is_text(v) or _is_int(v))),
        direction=_need(rec, "direction", where, "\"in\" or \"out\"", lambda v: v in DIRECTIONS),
        kind=_need(rec, "kind", where, "one of " + ", ".join(CALL_KINDS), lambda v: v in CALL_KINDS),
        caller=str(rec.get("caller") or ""),
        callee=str(rec.get("callee") or ""),
        offered=parse_time(rec.get("offered"), (f, k + ".offered"), tz),
        answered=parse_time(rec.get("answered"), (f, k + ".answered"), tz, optional=True),
        ended=parse_time(rec.get("ended"), (f, k + ".ended"), tz, optional=True),
        rings=int(_need(rec, "rings", where, "a number of rings >= 0",
                        lambda v: _is_int(v) and v >= 0)) if "rings" in rec else 0,
        position=(_need(rec, "position", where, "a position number or null",
                        lambda v: v is None or _is_int(v)) if "position" in rec else None),
        hold_s=float(_need(rec, "hold_s", where, "seconds on hold (a number >= 0)",
                           lambda v: v is None or _is_num(v)) or 0) if "hold_s" in rec else 0.0,
        outcome=_need(rec, "outcome", where, "one of " + ", ".join(OUTCOMES), lambda v: v in OUTCOMES),
        customer=(str(rec["customer"]) if rec.get("customer") not in (None, "") else None),
        raw=rec,
    )


def stamp_from(rec: dict, where=("stamps", "[0]"), tz=timezone.utc) -> Stamp:
    if not isinstance(rec, dict):
        raise ConfigError(where[0], where[1], rec, "a stamp record (a JSON object)")
    f, k = where
    return Stamp(
        slip=_need(rec, "slip", where, "a slip number (an integer)", _is_int),
        time=parse_time(rec.get("time"), (f, k + ".time"), tz),
        line=str(rec.get("line") or ""),
        customer=(str(rec["customer"]) if rec.get("customer") not in (None, "") else None),
        position=rec.get("position") if _is_int(rec.get("position")) else None,
        what=_need(rec, "what", where, "one of " + ", ".join(STAMP_WHATS), lambda v: v in STAMP_WHATS),
        call=(str(rec["call"]) if rec.get("call") not in (None, "") else None),
        text=str(rec.get("text") or ""),
        raw=rec,
    )


def check_customer(rec: dict, where=("customers", "[0]")) -> dict:
    """The customer with its dates parsed; other keys are kept as they are."""
    if not isinstance(rec, dict):
        raise ConfigError(where[0], where[1], rec, "a customer record (a JSON object)")
    out = dict(rec)
    out["id"] = str(_need(rec, "id", where, "a customer id", lambda v: _is_text(v) or _is_int(v)))
    out["line"] = str(_need(rec, "line", where, "a line number such as \"201\"",
                            lambda v: _is_text(v) or _is_int(v)))
    out["name"] = _need(rec, "name", where, "the customer's name", _is_text)
    out["kind"] = str(rec.get("kind") or "other")
    out["contract_start"] = parse_date(rec.get("contract_start"), (where[0], where[1] + ".contract_start"))
    out["notice_date"] = parse_date(rec.get("notice_date"), (where[0], where[1] + ".notice_date"),
                                    optional=True)
    lmp = rec.get("last_month_prepaid", False)
    if not isinstance(lmp, bool):
        raise ConfigError(where[0], where[1] + ".last_month_prepaid", lmp, "true or false")
    out["last_month_prepaid"] = lmp
    return out


CALL_COUNTS = ("calls_offered", "calls_answered", "wakeups_answered", "reminders_answered")
STAMP_COUNTS = ("messages", "read_backs")


def check_count(rec: dict, where=("counts", "[0]"), tz=timezone.utc) -> dict:
    """One retention summary; ``covers`` says whether it stands in for purged
    calls, purged stamps or both (only the counts it carries)."""
    if not isinstance(rec, dict):
        raise ConfigError(where[0], where[1], rec, "a monthly count (a JSON object)")
    out = {"customer": str(_need(rec, "customer", where, "a customer id",
                                 lambda v: _is_text(v) or _is_int(v))),
           "month": _need(rec, "month", where, "a month such as \"2026-11\"", _is_text),
           "purged_before": parse_time(rec.get("purged_before"), (where[0], where[1] + ".purged_before"), tz)}
    parse_month(out["month"], (where[0], where[1] + ".month"))
    covers = set(rec.get("covers") or ())
    for name in COUNT_FIELDS:
        out[name] = int(_need(rec, name, where, "a count >= 0", lambda v: _is_int(v) and v >= 0)) \
            if name in rec else 0
        if name in rec:
            covers.add("calls" if name in CALL_COUNTS else "stamps")
    out["covers"] = sorted(covers)
    return out


def counts_from_timeclock(docs, tz=timezone.utc) -> list[dict]:
    """The time clock's per-day stamp counts (``{"day", "customer", "message",
    "read-back", ...}``, kept when a day's slips are purged) as monthly summaries:
    the stamps of those days are gone, so the summary covers stamps up to the
    day after the last purged day."""
    acc: dict[tuple, dict] = {}
    for d in docs:
        day = parse_date(d.get("day"), ("counts", "day"))
        key = (str(d.get("customer") or ""), f"{day.year:04d}-{day.month:02d}")
        a = acc.setdefault(key, {"customer": key[0], "month": key[1], "purged_before": None,
                                 "messages": 0, "read_backs": 0, "covers": ["stamps"]})
        a["messages"] += int(d.get("message", 0))
        a["read_backs"] += int(d.get("read-back", 0))
        nxt = datetime.combine(day, datetime.min.time(), tz) + timedelta(days=1)
        a["purged_before"] = max(a["purged_before"] or nxt, nxt)
    for a in acc.values():
        for name in CALL_COUNTS:
            a[name] = 0
    return list(acc.values())


_CRC_LINE = re.compile(r"[0-9a-f]{8} [\[{]")


def read_json_records(path, table: str | None = None) -> list[dict]:
    """Records from a JSON list, JSON lines, or a TinyDB file (one table or all)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(p, "", None, None, message=f"{p}: cannot read: {e.strerror}") from None
    stripped = text.strip()
    if not stripped:
        return []
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        data = []
        lines = text.splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            rec = decode_line(line.encode()) if _CRC_LINE.match(line) else None
            if rec is not None:       # a checksummed line (call records, journals)
                data.append(rec)
                continue
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError as e:
                if n == len(lines) and not text.endswith("\n"):
                    break      # a last line torn by a power cut: it was never acknowledged
                raise ConfigError(p, f"line {n}", line[:60], None, message=(
                    f"{p}: line {n}: not JSON ({e.msg}); expected a JSON list, JSON lines "
                    "or a TinyDB file")) from None
        return data
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        tables = [table] if table and table in data else list(data)
        out = []
        for t in tables:
            out.extend(v for _, v in sorted(data[t].items(), key=lambda kv: _doc_order(kv[0])))
        return out
    raise ConfigError(p, "", type(data).__name__, "a JSON list, JSON lines or a TinyDB file")


def _doc_order(key):
    return (0, int(key)) if str(key).isdigit() else (1, str(key))


def load_calls(path, tz=timezone.utc, table=None) -> list[Call]:
    return [call_from(r, (str(path), f"[{i}]"), tz) for i, r in enumerate(read_json_records(path, table))]


def load_stamps(path, tz=timezone.utc, table=None) -> list[Stamp]:
    return [stamp_from(r, (str(path), f"[{i}]"), tz) for i, r in enumerate(read_json_records(path, table))]


def load_customers(path, table=None) -> list[dict]:
    out = [check_customer(r, (str(path), f"[{i}]")) for i, r in enumerate(read_json_records(path, table))]
    seen = {}
    for i, c in enumerate(out):
        if c["id"] in seen:
            raise ConfigError(path, f"[{i}].id", c["id"], f"a unique id (also at [{seen[c['id']]}])")
        seen[c["id"]] = i
    return out


def load_counts(path, tz=timezone.utc, table=None) -> list[dict]:
    """Monthly summaries, or the time clock's per-day counts (records with ``day``)."""
    recs = read_json_records(path, table)
    daily = [r for r in recs if isinstance(r, dict) and "day" in r]
    out = [check_count(r, (str(path), f"[{i}]"), tz) for i, r in enumerate(recs)
           if not (isinstance(r, dict) and "day" in r)]
    return out + counts_from_timeclock(daily, tz)
