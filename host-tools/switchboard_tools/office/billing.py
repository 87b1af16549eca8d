"""Monthly bills from the call records and the time-clock stamps.

The rules of the trade, with the plans (fees, allowances, rates, currency) read
from a TOML file (``plans/plans.toml``):

- the base fee covers an allowance of answered calls a month; each answered
  call over it is billed at the plan's per-call rate;
- wake-up and reminder calls the board placed are billed per answered call;
- a partial month (the first, or the last after a cancellation) is billed as
  a full month, with the full allowance;
- a cancellation takes effect ``notice_days`` (30) after the notice date: calls
  from then on are not the contract's, and the month in which it falls is the
  last month billed;
- the last month's base fee may be paid up front: charged on the first bill,
  credited on the last.

Money is ``Decimal`` throughout; every amount is rounded once, when a line
item is made, to the currency's minor unit with the configured rounding, and
the total is the sum of the rounded items (so the statement adds up).

Every line item names the call ids and slip numbers it counts, so a customer
who disputes a bill can be shown the records; calls of the month that were
*not* billed are listed with the reason. When records older than 30 days were
purged, the retention summary (monthly counts) stands in for them and the
item says so.
"""

from __future__ import annotations

import csv
import decimal
import io
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from firmware.errors import ConfigError
from firmware.records.recordset import month_of, parse_month
from firmware.records.times import zone

ROUNDINGS = ("ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_UP", "ROUND_DOWN", "ROUND_CEILING",
             "ROUND_FLOOR", "ROUND_HALF_DOWN")
PLAN_KEYS = {"title", "currency", "base_fee", "allowance", "over_rate", "wakeup_rate",
             "reminder_rate", "message_rate", "minor_units"}
CURRENCY_SIGNS = {"USD": "$", "EUR": "\u20ac", "GBP": "\u00a3", "CAD": "$", "AUD": "$"}


@dataclass(frozen=True)
class Plan:
    name: str
    title: str
    currency: str
    base_fee: Decimal
    allowance: int
    over_rate: Decimal
    wakeup_rate: Decimal
    reminder_rate: Decimal
    message_rate: Decimal = Decimal("0")
    minor_units: int = 2

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.minor_units)


@dataclass(frozen=True)
class BillingConfig:
    plans: dict
    service: dict = field(default_factory=dict)
    notice_days: int = 30
    rounding: str = "ROUND_HALF_UP"
    billable_outcomes: tuple = ("answered", "transferred")
    timezone: str = "UTC"
    path: str = "plans"

    @property
    def tz(self):
        return zone(self.timezone, self.path, "service.timezone")

    def plan_for(self, customer: dict, where=("customers", "")) -> Plan:
        name = customer.get("plan")
        if name not in self.plans:
            raise ConfigError(where[0], f"{where[1]}.plan" if where[1] else "plan", name,
                              f"one of the plans in {self.path}: " + ", ".join(sorted(self.plans)))
        return self.plans[name]


def _money(table, key, path, kp, default=None) -> Decimal:
    v = table.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise ConfigError(path, f"{kp}.{key}", v,
                          "an amount written as a decimal string such as \"35.00\" "
                          "(not a TOML float, which is inexact)")
    try:
        d = Decimal(str(v))
    except decimal.InvalidOperation:
        d = None
    if d is None or not d.is_finite() or d < 0:
        raise ConfigError(path, f"{kp}.{key}", v, "an amount >= 0 such as \"35.00\"")
    return d


def load_plans(path) -> BillingConfig:
    """Read and check a plans file; every mistake names the key path and value."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as e:
        raise ConfigError(p, "", None, None, message=f"{p}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(p, "", None, None, message=f"{p}: not valid TOML: {e}") from None
    for k in data:
        if k not in ("service", "billing", "plans"):
            raise ConfigError(p, k, None, None, message=f"{p}: {k}: unknown section; "
                              "expected [service], [billing] or [plans.<name>]")
    service = data.get("service", {})
    billing = data.get("billing", {})
    for k in billing:
        if k not in ("notice_days", "rounding", "billable_outcomes"):
            raise ConfigError(p, f"billing.{k}", billing[k],
                              "one of notice_days, rounding, billable_outcomes")
    notice = billing.get("notice_days", 30)
    if isinstance(notice, bool) or not isinstance(notice, int) or notice < 0:
        raise ConfigError(p, "billing.notice_days", notice, "a number of days >= 0")
    rounding = billing.get("rounding", "ROUND_HALF_UP")
    if rounding not in ROUNDINGS:
        raise ConfigError(p, "billing.rounding", rounding, "one of " + ", ".join(ROUNDINGS))
    outcomes = billing.get("billable_outcomes", ["answered", "transferred"])
    from firmware.records.recordset import OUTCOMES
    if not isinstance(outcomes, list) or any(o not in OUTCOMES for o in outcomes):
        raise ConfigError(p, "billing.billable_outcomes", outcomes,
                          "a list drawn from " + ", ".join(OUTCOMES))
    tzname = service.get("timezone", "UTC")
    zone(tzname, p, "service.timezone")
    plans = {}
    raw_plans = data.get("plans", {})
    if not raw_plans:
        raise ConfigError(p, "plans", None, None, message=f"{p}: plans: no plans; "
                          "expected at least one [plans.<name>] table")
    for name, t in raw_plans.items():
        kp = f"plans.{name}"
        if not isinstance(t, dict):
            raise ConfigError(p, kp, t, "a table of the plan's fees")
        for k in t:
            if k not in PLAN_KEYS:
                raise ConfigError(p, f"{kp}.{k}", t[k], "one of " + ", ".join(sorted(PLAN_KEYS)))
        cur = t.get("currency")
        if not isinstance(cur, str) or len(cur) != 3 or not cur.isalpha():
            raise ConfigError(p, f"{kp}.currency", cur, "a three-letter currency code such as \"USD\"")
        allowance = t.get("allowance")
        if isinstance(allowance, bool) or not isinstance(allowance, int) or allowance < 0:
            raise ConfigError(p, f"{kp}.allowance", allowance, "a number of calls >= 0")
        minor = t.get("minor_units", 2)
        if isinstance(minor, bool) or not isinstance(minor, int) or not 0 <= minor <= 4:
            raise ConfigError(p, f"{kp}.minor_units", minor, "0 to 4 decimal places")
        plans[name] = Plan(
            name=name, title=str(t.get("title", name)), currency=cur.upper(),
            base_fee=_money(t, "base_fee", p, kp), allowance=allowance,
            over_rate=_money(t, "over_rate", p, kp), wakeup_rate=_money(t, "wakeup_rate", p, kp),
            reminder_rate=_money(t, "reminder_rate", p, kp),
            message_rate=_money(t, "message_rate", p, kp, "0"), minor_units=minor)
    return BillingConfig(plans=plans, service=dict(service), notice_days=notice, rounding=rounding,
                         billable_outcomes=tuple(outcomes), timezone=tzname, path=str(p))


# -- the statement --------------------------------------------------------
@dataclass(frozen=True)
class LineItem:
    code: str                 # base, over, wakeup, reminder, message, prepay, prepay-credit
    description: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    calls: tuple = ()         # call ids this item counts
    slips: tuple = ()         # slip numbers this item counts
    summarised: int = 0       # how many it counts from a retention summary (records purged)

    def to_json(self) -> dict:
        d = {"code": self.code, "description": self.description, "quantity": self.quantity,
             "unit_price": str(self.unit_price), "amount": str(self.amount),
             "calls": list(self.calls), "slips": list(self.slips)}
        if self.summarised:
            d["summarised"] = self.summarised
        return d


@dataclass
class Statement:
    customer: dict
    plan: Plan
    month: str
    contract_start: date
    contract_end: date | None     # first day no longer covered (notice + notice_days)
    items: list
    total: Decimal
    activity: dict                # offered/answered/abandoned/messages/read_backs...
    not_billed: dict              # reason -> [call ids]
    notes: list
    calls: dict                   # call id -> Call, for the detail pages

    def to_json(self) -> dict:
        c = self.customer
        return {
            "customer": {"id": c["id"], "name": c["name"], "line": c["line"], "kind": c.get("kind"),
                         "plan": self.plan.name},
            "month": self.month, "currency": self.plan.currency,
            "contract_start": self.contract_start.isoformat(),
            "contract_end": self.contract_end.isoformat() if self.contract_end else None,
            "items": [i.to_json() for i in self.items], "total": str(self.total),
            "activity": self.activity, "not_billed": self.not_billed, "notes": self.notes,
        }


def contract_end(customer: dict, notice_days: int) -> date | None:
    """The first day the contract no longer covers, or None while it runs."""
    nd = customer.get("notice_date")
    return None if nd is None else nd + timedelta(days=notice_days)


def _last_month(end: date | None) -> str | None:
    return None if end is None else month_of(end - timedelta(days=1))


class _Attributor:
    """Which customer a record belongs to: its own ``customer`` field, or the
    customer whose line it came in on *on that day* (lines are re-used)."""

    def __init__(self, customers, notice_days):
        self.by_id = {c["id"]: c for c in customers}
        self.by_line: dict[str, list] = {}
        for c in customers:
            self.by_line.setdefault(c["line"], []).append(
                (c["contract_start"], contract_end(c, notice_days), c["id"]))

    def who(self, customer_id, line, day: date):
        if customer_id is not None:
            return customer_id if customer_id in self.by_id else None
        for start, end, cid in self.by_line.get(line, ()):
            if start <= day and (end is None or day < end):
                return cid
        # Outside every contract on that line: the customer nearest in time, so
        # the record shows on their statement as not billed (never dropped).
        best = None
        for start, end, cid in self.by_line.get(line, ()):
            gap = (start - day).days if day < start else ((day - end).days if end else 0)
            if best is None or gap < best[0]:
                best = (gap, cid)
        return best[1] if best else None


def _item(plan, rounding, code, description, qty, unit, calls=(), slips=(), summarised=0):
    amount = (Decimal(qty) * unit).quantize(plan.quantum, rounding=rounding)
    return LineItem(code, description, qty, unit, amount, tuple(calls), tuple(slips), summarised)


def bill_customer(customer: dict, cfg: BillingConfig, month: str, calls, stamps=(), counts=(),
                  tz=None) -> Statement | None:
    """One customer's statement for ``month`` ("YYYY-MM"), or None if not billed then.

    ``calls``/``stamps`` are this customer's records (any months: the ones
    outside ``month`` are skipped); ``counts`` its retention summaries.
    """
    tz = tz or cfg.tz
    plan = cfg.plan_for(customer)
    first, nxt = parse_month(month)
    start = customer["contract_start"]
    end = contract_end(customer, cfg.notice_days)
    if start >= nxt or (end is not None and end <= first):
        return None
    rounding = cfg.rounding
    lo = datetime.combine(first, datetime.min.time(), tz)
    hi = datetime.combine(nxt, datetime.min.time(), tz)

    sums = [c for c in counts if c["month"] == month]
    call_sums = [c for c in sums if "calls" in c["covers"]]
    stamp_sums = [c for c in sums if "stamps" in c["covers"]]
    cut = max((c["purged_before"] for c in call_sums), default=None)
    stamp_cut = max((c["purged_before"] for c in stamp_sums), default=None)

    not_billed: dict[str, list] = {}
    billable, wakeups, reminders = [], [], []
    offered = answered = abandoned = 0
    for c in sorted(calls, key=lambda c: (c.offered, c.id)):
        if not lo <= c.offered < hi:
            continue
        if cut is not None and c.offered < cut:
            not_billed.setdefault("calls counted in the retention summary", []).append(c.id)
            continue
        day = c.offered.astimezone(tz).date()
        in_contract = start <= day and (end is None or day < end)
        if not in_contract:
            not_billed.setdefault("calls outside the contract", []).append(c.id)
            continue
        if c.kind == "call" and c.direction == "in":
            offered += 1
            answered += c.outcome in ("answered", "transferred")
            abandoned += c.outcome == "abandoned"
        if c.kind == "call":
            if c.direction == "in" and c.outcome in cfg.billable_outcomes:
                billable.append(c)
            else:
                reason = f"{c.outcome} calls" if c.direction == "in" else "calls the service made"
                not_billed.setdefault(reason, []).append(c.id)
        elif c.outcome == "answered":
            (wakeups if c.kind == "wakeup" else reminders).append(c)
        else:
            what = "wake-up" if c.kind == "wakeup" else "reminder"
            not_billed.setdefault(f"{what} calls not answered", []).append(c.id)

    msgs, reads = {}, {}
    for s in stamps:
        if not lo <= s.time < hi or (stamp_cut is not None and s.time < stamp_cut):
            continue
        if s.what == "message":
            msgs.setdefault(s.slip, s)
        elif s.what == "read-back":          # its own slip; ``of`` names the message's
            reads.setdefault(s.raw.get("of", s.slip), s)
    slips = sorted(msgs)

    s_calls = sum(c["calls_answered"] for c in call_sums)
    s_wake = sum(c["wakeups_answered"] for c in call_sums)
    s_rem = sum(c["reminders_answered"] for c in call_sums)
    s_msg = sum(c["messages"] for c in stamp_sums)
    notes = []
    for what, t in (("Call records", cut), ("Message slips", stamp_cut)):
        if t is not None:
            notes.append(f"{what} before {t.astimezone(tz):%Y-%m-%d %H:%M} were purged after 30 days; "
                         "their counts come from the retention summary.")

    items = []
    # Base fee: covers the first `allowance` answered calls (purged ones first: they are older).
    in_allowance = max(0, plan.allowance - s_calls)
    covered, over = billable[:in_allowance], billable[in_allowance:]
    partial = start > first or (end is not None and end < nxt)
    desc = f"Base fee, {plan.title}: up to {plan.allowance} calls"
    if partial:
        desc += " (partial month, billed as a full month)"
    items.append(_item(plan, rounding, "base", desc, 1, plan.base_fee,
                       calls=[c.id for c in covered], summarised=min(s_calls, plan.allowance)))
    n_over = len(over) + max(0, s_calls - plan.allowance)
    if n_over:
        items.append(_item(plan, rounding, "over", f"Calls over the allowance of {plan.allowance}",
                           n_over, plan.over_rate, calls=[c.id for c in over],
                           summarised=max(0, s_calls - plan.allowance)))
    if wakeups or s_wake:
        items.append(_item(plan, rounding, "wakeup", "Wake-up calls", len(wakeups) + s_wake,
                           plan.wakeup_rate, calls=[c.id for c in wakeups], summarised=s_wake))
    if reminders or s_rem:
        items.append(_item(plan, rounding, "reminder", "Appointment reminder calls",
                           len(reminders) + s_rem, plan.reminder_rate,
                           calls=[c.id for c in reminders], summarised=s_rem))
    if plan.message_rate and (slips or s_msg):
        items.append(_item(plan, rounding, "message", "Messages taken", len(slips) + s_msg,
                           plan.message_rate, slips=slips, summarised=s_msg))
    if customer.get("last_month_prepaid"):
        if month == month_of(start):
            items.append(_item(plan, rounding, "prepay", "Last month's base fee, paid in advance",
                               1, plan.base_fee))
        if month == _last_month(end):
            items.append(_item(plan, rounding, "prepay-credit",
                               "Credit: last month's base fee paid in advance", 1, -plan.base_fee))
    if end is not None and month == _last_month(end):
        notes.append(f"Notice given {customer['notice_date']:%Y-%m-%d}; the contract ends "
                     f"{end - timedelta(days=1):%Y-%m-%d}. This is the last bill.")
    total = sum((i.amount for i in items), Decimal(0)).quantize(plan.quantum)
    activity = {"calls_offered": offered + sum(c["calls_offered"] for c in call_sums),
                "calls_answered": answered + s_calls,
                "calls_abandoned": abandoned,
                "messages": len(slips) + s_msg, "read_backs": len(reads) + sum(c["read_backs"] for c in stamp_sums),
                "message_slips": slips, "read_back_slips": sorted(reads)}
    kept = {c.id: c for c in billable + wakeups + reminders}
    return Statement(customer, plan, month, start, end, items, total, activity, not_billed, notes, kept)


def bill_month(customers, cfg: BillingConfig, month: str, calls, stamps=(), counts=(),
               tz=None) -> tuple[list, list]:
    """Statements of every customer billed in ``month``, and the records of the
    month no customer could be found for (to look into, never silently dropped)."""
    tz = tz or cfg.tz
    first, nxt = parse_month(month)
    lo = datetime.combine(first, datetime.min.time(), tz)
    hi = datetime.combine(nxt, datetime.min.time(), tz)
    who = _Attributor(customers, cfg.notice_days)
    by_c_calls: dict[str, list] = {}
    by_c_stamps: dict[str, list] = {}
    orphans = []
    for c in calls:
        if not lo <= c.offered < hi:
            continue
        cid = who.who(c.customer, c.line, c.offered.astimezone(tz).date())
        if cid is None:
            if c.direction == "in" or c.kind != "call":
                orphans.append({"call": c.id, "line": c.line, "offered": c.raw.get("offered")})
            continue
        by_c_calls.setdefault(cid, []).append(c)
    for s in stamps:
        if not lo <= s.time < hi:
            continue
        cid = who.who(s.customer, s.line, s.time.astimezone(tz).date())
        if cid is None:
            orphans.append({"slip": s.slip, "line": s.line, "time": s.raw.get("time")})
            continue
        by_c_stamps.setdefault(cid, []).append(s)
    by_c_counts: dict[str, list] = {}
    for n in counts:
        by_c_counts.setdefault(n["customer"], []).append(n)
    out = []
    for i, cust in enumerate(customers):
        cfg.plan_for(cust, ("customers", f"[{i}]"))
        st = bill_customer(cust, cfg, month, by_c_calls.get(cust["id"], ()),
                           by_c_stamps.get(cust["id"], ()), by_c_counts.get(cust["id"], ()), tz)
        if st is not None:
            out.append(st)
    return out, orphans


def monthly_counts(customers, cfg: BillingConfig, calls, stamps, purged_before: datetime,
                   tz=None) -> list[dict]:
    """The retention summary billing needs for records about to be purged.

    Retention calls this with the records older than ``purged_before`` and keeps
    the result (one dict per customer and month) when it deletes them.
    """
    tz = tz or cfg.tz
    who = _Attributor(customers, cfg.notice_days)
    acc: dict[tuple, dict] = {}

    def slot(cid, t):
        key = (cid, month_of(t.astimezone(tz).date()))
        return acc.setdefault(key, {"customer": cid, "month": key[1], "purged_before": purged_before,
                                    "calls_offered": 0, "calls_answered": 0, "wakeups_answered": 0,
                                    "reminders_answered": 0, "messages": 0, "read_backs": 0,
                                    "covers": ["calls", "stamps"], "_slips": set(), "_reads": set()})
    for c in calls:
        if c.offered >= purged_before:
            continue
        cid = who.who(c.customer, c.line, c.offered.astimezone(tz).date())
        if cid is None:
            continue
        a = slot(cid, c.offered)
        if c.kind == "call" and c.direction == "in":
            a["calls_offered"] += 1
            a["calls_answered"] += c.outcome in cfg.billable_outcomes
        elif c.kind in ("wakeup", "reminder") and c.outcome == "answered":
            a[c.kind + "s_answered"] += 1
    for s in stamps:
        if s.time >= purged_before:
            continue
        cid = who.who(s.customer, s.line, s.time.astimezone(tz).date())
        if cid is None:
            continue
        a = slot(cid, s.time)
        if s.what == "message":
            a["_slips"].add(s.slip)
        elif s.what == "read-back":
            a["_reads"].add(s.raw.get("of", s.slip))
    out = []
    for a in acc.values():
        a["messages"] = len(a.pop("_slips"))
        a["read_backs"] = len(a.pop("_reads"))
        out.append(a)
    return out


def trace(statements, orphans, calls, stamps, ref: str) -> dict:
    """Where a call id or slip number went on the month's bills: the statement
    and line item that count it, or why it was not billed, with the record."""
    ref = str(ref)
    rec = next((c.raw for c in calls if c.id == ref), None)
    slip = next((s.raw for s in stamps if str(s.slip) == ref), None)
    out = {"ref": ref, "record": rec or slip, "found_in": []}
    for st in statements:
        for i in st.items:
            if ref in i.calls or ref in (str(x) for x in i.slips):
                out["found_in"].append({"customer": st.customer["id"], "item": i.code,
                                        "description": i.description, "unit_price": str(i.unit_price)})
        for reason, ids in st.not_billed.items():
            if ref in ids:
                out["found_in"].append({"customer": st.customer["id"], "not_billed": reason})
        a = st.activity
        if ref in (str(x) for x in a["message_slips"] + a["read_back_slips"]) and not out["found_in"]:
            out["found_in"].append({"customer": st.customer["id"],
                                    "not_billed": "a slip counted among the month's messages; "
                                                  "this plan does not charge per message"})
    for o in orphans:
        if str(o.get("call", o.get("slip"))) == ref:
            out["found_in"].append({"customer": None, "not_billed": "belongs to no customer"})
    return out


# -- output: CSV, text, PDF, ESC/POS -----------------------------------------
CSV_FIELDS = ("month", "customer", "name", "line", "plan", "currency", "code", "description",
              "quantity", "unit_price", "amount", "calls", "slips", "summarised")


def to_csv(statements) -> str:
    """The month for the bookkeeper: one row per line item (amounts add up to the totals)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_FIELDS)
    for st in statements:
        c = st.customer
        for i in st.items:
            w.writerow((st.month, c["id"], c["name"], c["line"], st.plan.name, st.plan.currency,
                        i.code, i.description, i.quantity, i.unit_price, i.amount,
                        len(i.calls), len(i.slips), i.summarised))
    return buf.getvalue()


def money(amount: Decimal, plan: Plan) -> str:
    sign = "-" if amount < 0 else ""
    sym = CURRENCY_SIGNS.get(plan.currency)
    num = f"{abs(amount):,.{plan.minor_units}f}"
    return f"{sign}{sym}{num}" if sym else f"{sign}{num} {plan.currency}"


def statement_lines(st: Statement, width: int = 42, service: dict | None = None) -> list[tuple]:
    """The statement as (style, text) lines for a narrow printer: style is
    "title", "bold", "total" or "" ."""
    service = service or {}
    c = st.customer
    out = []
    if service.get("name"):
        out.append(("title", service["name"]))
    out.append(("bold", f"Statement {st.month}"))
    out.append(("", f"{c['name']} (line {c['line']})"))
    out.append(("", f"Plan: {st.plan.title}"))
    out.append(("", "-" * width))
    for i in st.items:
        amt = money(i.amount, st.plan)
        label = i.description if i.quantity == 1 else f"{i.quantity} x {money(i.unit_price, st.plan)} {i.description}"
        while len(label) + len(amt) + 1 > width:
            cut = label.rfind(" ", 0, width - 1)
            cut = cut if cut > 0 else width - 1
            out.append(("", label[:cut]))
            label = "  " + label[cut:].lstrip()
        out.append(("", label + " " * (width - len(label) - len(amt)) + amt))
    out.append(("", "-" * width))
    tot = money(st.total, st.plan)
    out.append(("total", "TOTAL" + " " * (width - 5 - len(tot)) + tot))
    a = st.activity
    out.append(("", f"Calls answered {a['calls_answered']}, messages {a['messages']}"))
    for n in st.notes:
        out.append(("", n))
    return out


def to_escpos(st: Statement, width: int = 42, service: dict | None = None) -> bytes:
    """The statement for the slip printer (ESC/POS)."""
    from firmware.timeclock import escpos
    doc = escpos.Document(width)
    for style, text in statement_lines(st, width, service):
        if style == "title":
            doc.line(text, bold=True, align="center", double=True)
        elif style == "bold":
            doc.line(text, bold=True, align="center")
        elif style == "total":
            doc.line(text, bold=True)
        else:
            doc.wrapped(text)
    doc.feed(3)
    doc.cut()
    return doc.bytes()


_FONT = None


def _fonts():
    """DejaVu Sans when it is installed (any customer's name prints), else Helvetica."""
    global _FONT
    if _FONT is None:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont
        base = Path("/usr/share/fonts/truetype/dejavu")
        try:
            pdfmetrics.registerFont(TTFont("DejaVuSans", str(base / "DejaVuSans.ttf")))
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(base / "DejaVuSans-Bold.ttf")))
            _FONT = ("DejaVuSans", "DejaVuSans-Bold")
        except Exception:          # no TTF: the PDF standard font (Latin-1 only)
            _FONT = ("Helvetica", "Helvetica-Bold")
    return _FONT


def to_pdf(st: Statement, service: dict | None = None, detail: bool = True, tz=timezone.utc) -> bytes:
    """A printable A4 statement; with ``detail``, the pages listing every call billed."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold = _fonts()
    service = service or {}
    body = ParagraphStyle("body", fontName=regular, fontSize=10, leading=13)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10)
    head = ParagraphStyle("head", parent=body, fontName=bold, fontSize=16, leading=20)
    h2 = ParagraphStyle("h2", parent=body, fontName=bold, fontSize=12, leading=16, spaceBefore=8)
    esc = lambda s: str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # noqa: E731

    c, plan = st.customer, st.plan
    flow = []
    if service.get("name"):
        flow.append(Paragraph(esc(service["name"]), head))
        sub = " \u00b7 ".join(esc(service[k]) for k in ("address", "phone") if service.get(k))
        if sub:
            flow.append(Paragraph(sub, small))
    flow.append(Spacer(1, 6 * mm))
    flow.append(Paragraph(f"Statement for {st.month}", h2))
    addr = "".join(f"{esc(part.strip())}<br/>" for part in str(c.get("address") or "").split("\n")
                   if part.strip())
    flow.append(Paragraph(f"{esc(c['name'])}<br/>{addr}Customer {esc(c['id'])}, line {esc(c['line'])}<br/>"
                          f"Plan: {esc(plan.title)} ({plan.allowance} calls for "
                          f"{money(plan.base_fee, plan)}, then {money(plan.over_rate, plan)} a call)",
                          body))
    flow.append(Spacer(1, 4 * mm))
    rows = [["Item", "Qty", "Price", "Amount"]]
    for i in st.items:
        rows.append([Paragraph(esc(i.description), body), str(i.quantity), money(i.unit_price, plan),
                     money(i.amount, plan)])
    rows.append(["Total", "", "", money(st.total, plan)])
    t = Table(rows, colWidths=[95 * mm, 15 * mm, 25 * mm, 30 * mm])
    t.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), regular, 10),
        ("FONT", (0, 0), (-1, 0), bold, 10), ("FONT", (0, -1), (-1, -1), bold, 11),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
    ]))
    flow.append(t)
    a = st.activity
    flow.append(Spacer(1, 4 * mm))
    flow.append(Paragraph(f"This month: {a['calls_offered']} calls came in, {a['calls_answered']} were "
                          f"answered, {a['messages']} messages were taken and {a['read_backs']} read back.",
                          body))
    if st.not_billed:
        flow.append(Paragraph("Not billed: " + "; ".join(
            f"{len(ids)} {esc(reason)}" for reason, ids in sorted(st.not_billed.items())) + ".", body))
    for n in st.notes:
        flow.append(Paragraph(esc(n), body))
    if detail and st.calls:
        flow.append(Paragraph("Calls billed", h2))
        flow.append(Paragraph("Every call counted above, with its record number, so any of them can "
                              "be looked up.", small))
        code_of = {}
        for i in st.items:
            for cid in i.calls:
                code_of[cid] = i.code
        rows = [["Record", "Date and time", "Caller", "Counted as"]]
        label = {"base": "allowance", "over": "over allowance", "wakeup": "wake-up",
                 "reminder": "reminder"}
        for cid, call in sorted(st.calls.items(), key=lambda kv: (kv[1].offered, kv[0])):
            rows.append([cid, call.offered.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                         (call.callee if call.direction == "out" else call.caller) or "",
                         label.get(code_of.get(cid), "")])
        t = Table(rows, colWidths=[45 * mm, 40 * mm, 45 * mm, 35 * mm], repeatRows=1)
        t.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), regular, 8),
                               ("FONT", (0, 0), (-1, 0), bold, 8),
                               ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                               ("TOPPADDING", (0, 0), (-1, -1), 1),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
        flow.append(t)
    if a["message_slips"]:
        flow.append(Paragraph("Message slips", h2))
        flow.append(Paragraph(", ".join(str(s) for s in a["message_slips"]), small))
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm,
                            title=f"Statement {st.month} {c['name']}",
                            author=service.get("name", ""), invariant=True)
    doc.build(flow)
    return buf.getvalue()
