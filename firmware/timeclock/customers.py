"""Customers: the index card in each pigeonhole, kept in TinyDB on a journal.

One record per customer, checked field by field (``validate``)::

    id                 short name: lower-case letters, digits, dashes ("marys-gloves")
    name               business name ("Mary's Gloves")
    line               their line on the board ("201"); one customer per line
    kind               what they are: doctor, plumber, ... (free text)
    answer             answer phrase; {name} and {operator} are filled in:
                       "{name}, this is {operator}" -> "Mary's Gloves, this is Becky"
    instructions       [{"when": WHEN, "text": ...}]: on a holiday the "holiday"
                       rule applies, otherwise the first rule whose days and hours
                       match, then "always". WHEN: "always", "holiday",
                       "mon-fri 08:00-17:00", "sat,sun", "daily 17:00-08:00"
    collect            what to take from callers (["name", "number", "reason"])
    pronounce          how to say names ("Nguyen: 'win'")
    emergency, on_call, alternate   [{"label": "Dr Kay", "number": "555-0101"}]
    holidays           ["2026-12-25", ...] (the site's holidays are added to these)
    delivery           {"method": "hold"|"call"|"text"|"email", "to": number or address}
    plan               billing plan name
    contract_start     YYYY-MM-DD; notice_date YYYY-MM-DD or null
    last_month_prepaid true/false
    record_calls       true/false: record the operator's conversations on this line (off)
    callout_retries    an urgent message is called out to the on_call contacts in turn; nobody
                       answering, the round is made again this many times (0-10, default 2)
    callout_retry_after  minutes between those rounds (1-240, default 5)
    address            optional

The daemon opens the store read-only and reloads it when the host tool
``switchboard-customers`` (the only writer) has changed it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import string
from pathlib import Path

from tinydb import TinyDB, where

from firmware.errors import ConfigError
from firmware.records.journal import JournalStorage

KINDS_SEEN = ("doctor", "dentist", "veterinarian", "plumber", "electrician", "hvac",
              "locksmith", "lawyer", "funeral home", "property manager", "other")
DELIVERY = ("hold", "call", "text", "email")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FIELDS = ("id", "name", "line", "kind", "answer", "instructions", "collect", "pronounce",
          "emergency", "on_call", "alternate", "holidays", "delivery", "plan",
          "contract_start", "notice_date", "last_month_prepaid", "address", "record_calls",
          "callout_retries", "callout_retry_after")
REQUIRED = ("id", "name", "line", "kind", "plan", "contract_start")
CSV_COLUMNS = ("id", "name", "line", "kind", "answer", "instructions", "collect",
               "pronounce", "emergency", "on_call", "alternate", "holidays", "delivery",
               "delivery_to", "plan", "contract_start", "notice_date", "last_month_prepaid",
               "address", "record_calls", "callout_retries", "callout_retry_after")
DEFAULT_ANSWER = "{name}, this is {operator}"
CALLOUT_RETRIES = 2            # rounds of the on-call list again when nobody answers
CALLOUT_RETRY_AFTER = 5        # minutes between them
#: field -> (lowest, highest, default, what it is)
CALLOUT = {"callout_retries": (0, 10, CALLOUT_RETRIES, "rounds of calls to the on-call "
                               "contacts made again when nobody answers"),
           "callout_retry_after": (1, 240, CALLOUT_RETRY_AFTER, "minutes between those rounds")}

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_LINE_RE = re.compile(r"^[0-9]{1,15}$")
_NUMBER_RE = re.compile(r"^\+?[0-9][0-9 ().\-]{1,28}[0-9)]( ?(x|ext\.?) ?[0-9]{1,6})?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HHMM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_WHEN_RE = re.compile(rf"^(?P<days>[a-z,\-]+)?\s*(?P<hours>{_HHMM}-{_HHMM})?$")


class CustomerError(ConfigError):
    """A customer record is wrong: names the source, the field, the value, what was expected."""


# -- checking ----------------------------------------------------------------
def _days(text: str) -> set[int] | None:
    """"mon-fri", "sat,sun", "daily" -> weekday numbers; None if not days at all."""
    if text == "daily":
        return set(range(7))
    out = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        if a not in DAYS or (b and b not in DAYS):
            return None
        i, j = DAYS.index(a), DAYS.index(b or a)
        out.update(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
    return out


def parse_when(when: str):
    """A rule's WHEN -> ("always"|"holiday", None, None) or ("hours", days, (from, to))."""
    w = when.strip().lower()
    if w in ("always", "holiday"):
        return w, None, None
    m = _WHEN_RE.match(w)
    if not w or not m:
        return None
    days = _days(m["days"]) if m["days"] else set(range(7))
    if days is None:
        return None
    span = None
    if m["hours"]:
        a, b = m["hours"].split("-")
        span = (dt.time.fromisoformat(a), dt.time.fromisoformat(b))
    return "hours", days, span


def _text(v, blank_ok=False):
    return isinstance(v, str) and (blank_ok or v.strip() != "")


def _date(v):
    try:
        return dt.date.fromisoformat(v) if isinstance(v, str) else None
    except ValueError:
        return None


def validate(rec: dict, source="customer record", where_="") -> dict:
    """A checked, normalised copy of one customer record, or ``CustomerError``."""
    def bad(field, value, expected):
        key = f"{where_}{field}" if where_ else field
        raise CustomerError(source, key, value, expected)

    if not isinstance(rec, dict):
        raise CustomerError(source, where_.rstrip(".: ") or "record", rec, "a table of fields")
    unknown = sorted(set(rec) - set(FIELDS))
    if unknown:
        bad(unknown[0], rec[unknown[0]], f"one of the fields {', '.join(FIELDS)}")
    for f in REQUIRED:
        if rec.get(f) in (None, ""):
            bad(f, rec.get(f), "a value (this field is required)")
    out = {}
    if not isinstance(rec["id"], str) or not _ID_RE.match(rec["id"]):
        bad("id", rec["id"], "lower-case letters, digits and dashes, up to 40 (marys-gloves)")
    out["id"] = rec["id"]
    for f in ("name", "kind", "plan"):
        if not _text(rec[f]) or len(rec[f]) > 120:
            bad(f, rec[f], "text, up to 120 characters")
        out[f] = rec[f].strip()
    out["kind"] = out["kind"].lower()
    line = rec["line"]
    if isinstance(line, int) and not isinstance(line, bool):
        line = str(line)
    if not isinstance(line, str) or not _LINE_RE.match(line):
        bad("line", rec["line"], "the line's number on the board, digits (201)")
    out["line"] = line
    answer = rec.get("answer") or DEFAULT_ANSWER
    if not _text(answer):
        bad("answer", answer, "the answer phrase, text")
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(answer) if f is not None}
    except ValueError:
        names = {"?"}
    if names - {"name", "operator"}:
        bad("answer", answer, "text where only {name} and {operator} are filled in")
    out["answer"] = answer
    instr = rec.get("instructions") or []
    if not isinstance(instr, list):
        bad("instructions", instr, "a list of {when, text} rules")
    out["instructions"] = []
    for i, r in enumerate(instr):
        if not isinstance(r, dict) or set(r) != {"when", "text"} or not _text(r["text"]):
            bad(f"instructions[{i}]", r, 'a rule {"when": ..., "text": ...}')
        if not isinstance(r["when"], str) or parse_when(r["when"]) is None:
            bad(f"instructions[{i}].when", r["when"], 'always, holiday, or days and hours '
                'like "mon-fri 08:00-17:00", "sat,sun", "daily 17:00-08:00"')
        out["instructions"].append({"when": r["when"].strip().lower(), "text": r["text"].strip()})
    collect = rec.get("collect") or []
    if not isinstance(collect, list) or not all(_text(c) for c in collect):
        bad("collect", collect, "a list of things to ask callers for (name, number, ...)")
    out["collect"] = [c.strip() for c in collect]
    pron = rec.get("pronounce") or ""
    if not _text(pron, blank_ok=True):
        bad("pronounce", pron, "text")
    out["pronounce"] = pron.strip()
    for f in ("emergency", "on_call", "alternate"):
        contacts = rec.get(f) or []
        if not isinstance(contacts, list):
            bad(f, contacts, 'a list of {"label": ..., "number": ...}')
        out[f] = []
        for i, c in enumerate(contacts):
            if not isinstance(c, dict) or set(c) != {"label", "number"} or not _text(c["label"]):
                bad(f"{f}[{i}]", c, 'a contact {"label": ..., "number": ...}')
            if not isinstance(c["number"], str) or not _NUMBER_RE.match(c["number"].strip()):
                bad(f"{f}[{i}].number", c["number"], "a telephone number (555-0101, "
                    "+1 (555) 010-1234, 555-0101 x12)")
            out[f].append({"label": c["label"].strip(), "number": c["number"].strip()})
    hol = rec.get("holidays") or []
    if not isinstance(hol, list):
        bad("holidays", hol, "a list of dates YYYY-MM-DD")
    for i, d in enumerate(hol):
        if _date(d) is None:
            bad(f"holidays[{i}]", d, "a date YYYY-MM-DD")
    out["holidays"] = sorted(set(hol))
    dlv = rec.get("delivery") or {"method": "hold", "to": None}
    if isinstance(dlv, str):
        dlv = {"method": dlv, "to": None}
    if not isinstance(dlv, dict) or set(dlv) - {"method", "to"}:
        bad("delivery", dlv, '{"method": hold|call|text|email, "to": ...}')
    method, to = dlv.get("method"), dlv.get("to") or None
    if method not in DELIVERY:
        bad("delivery.method", method, "hold (held for check-in), call (phone them), "
            "text or email")
    if method in ("call", "text") and not (isinstance(to, str) and _NUMBER_RE.match(to.strip())):
        bad("delivery.to", to, f"the number to {method}")
    if method == "email" and not (isinstance(to, str) and _EMAIL_RE.match(to.strip())):
        bad("delivery.to", to, "the e-mail address to send messages to")
    out["delivery"] = {"method": method, "to": to.strip() if to else None}
    start = _date(rec["contract_start"])
    if start is None:
        bad("contract_start", rec["contract_start"], "a date YYYY-MM-DD")
    out["contract_start"] = start.isoformat()
    notice = rec.get("notice_date")
    if notice in (None, ""):
        out["notice_date"] = None
    else:
        nd = _date(notice)
        if nd is None or nd < start:
            bad("notice_date", notice, "a date YYYY-MM-DD, not before contract_start, or empty")
        out["notice_date"] = nd.isoformat()
    prepaid = rec.get("last_month_prepaid", False)
    if not isinstance(prepaid, bool):
        bad("last_month_prepaid", prepaid, "true or false")
    out["last_month_prepaid"] = prepaid
    record = rec.get("record_calls", False)
    if not isinstance(record, bool):
        bad("record_calls", record, "true or false")
    out["record_calls"] = record
    for f, (lo, hi, default, what) in CALLOUT.items():
        v = rec.get(f, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            bad(f, v, f"a whole number from {lo} to {hi}: {what}")
        out[f] = v
    addr = rec.get("address") or ""
    if not _text(addr, blank_ok=True):
        bad("address", addr, "text")
    out["address"] = addr.strip()
    return out


# -- the card ----------------------------------------------------------------
def instruction_for(cust: dict, now: dt.datetime, site_holidays=()) -> str | None:
    """The special instructions that apply at ``now`` (see the module docstring)."""
    today = now.date().isoformat()
    holiday = today in cust.get("holidays", ()) or today in site_holidays
    rules = [(parse_when(r["when"]), r["text"]) for r in cust.get("instructions", ())]
    if holiday:
        for (kind, _, _), text in rules:
            if kind == "holiday":
                return text
    t, wd = now.time().replace(tzinfo=None), now.weekday()
    for (kind, days, span), text in rules:
        if kind != "hours":
            continue
        if span is None:
            if wd in days:
                return text
            continue
        a, b = span
        if a < b:
            if wd in days and a <= t < b:
                return text
        else:   # wraps past midnight: the early hours belong to the day before
            if (wd in days and t >= a) or ((wd - 1) % 7 in days and t < b):
                return text
    for (kind, _, _), text in rules:
        if kind == "always":
            return text
    return None


def card(cust: dict, now: dt.datetime, operator: str | None = None, waiting=(),
         site_holidays=()) -> dict:
    """What the position's view shows for a customer's line."""
    op = operator or "(your name)"
    notice = cust.get("notice_date")
    return {
        "customer": cust["id"], "name": cust["name"], "line": cust["line"],
        "kind": cust["kind"], "address": cust.get("address", ""),
        "answer": cust["answer"].format(name=cust["name"], operator=op),
        "instructions": instruction_for(cust, now, site_holidays),
        "collect": cust["collect"], "pronounce": cust["pronounce"],
        "emergency": cust["emergency"], "on_call": cust["on_call"],
        "alternate": cust["alternate"], "delivery": cust["delivery"],
        "on_notice": notice if notice and notice <= now.date().isoformat() else None,
        "waiting": [{"slip": m["slip"], "time": m["time"], "text": m.get("text"),
                     "recording": m.get("recording")} for m in waiting],
    }


def detail_lines(c: dict) -> list[str]:
    """What to collect, how to say names, and whom to call: lines for a card or a record."""
    out = []
    if c["collect"]:
        out.append(f"  collect:      {', '.join(c['collect'])}")
    if c["pronounce"]:
        out.append(f"  pronounce:    {c['pronounce']}")
    for f in ("emergency", "on_call", "alternate"):
        for x in c[f]:
            out.append(f"  {f.replace('_', '-') + ':':13} {x['label']}: {x['number']}")
    return out


# -- CSV ---------------------------------------------------------------------
def _split(cell: str) -> list[str]:
    return [p.strip() for p in re.split(r"\s*\|\s*|\n", cell or "") if p.strip()]


def _pairs(cell: str, a: str, b: str, source, key) -> list[dict]:
    out = []
    for part in _split(cell):
        left, sep, right = part.partition("=")
        if not sep:
            raise CustomerError(source, key, part, f'"{a.upper()} = {b.upper()}" entries '
                                "separated by | or new lines")
        out.append({a: left.strip(), b: right.strip()})
    return out


def from_csv_row(row: dict, source, where_) -> dict:
    """One CSV row (column names as CSV_COLUMNS) -> a record for ``validate``."""
    def key(f):
        return f"{where_}{f}"
    rec = {k: (v or "").strip() for k, v in row.items() if k is not None}
    unknown = sorted(set(rec) - set(CSV_COLUMNS))
    if unknown:
        raise CustomerError(source, "columns", unknown[0], "one of " + ", ".join(CSV_COLUMNS))
    out = {k: rec[k] for k in ("id", "name", "line", "kind", "answer", "pronounce", "plan",
                                "contract_start", "notice_date", "address") if k in rec}
    out["instructions"] = _pairs(rec.get("instructions"), "when", "text", source,
                                 key("instructions"))
    out["collect"] = _split(rec.get("collect"))
    for f in ("emergency", "on_call", "alternate"):
        out[f] = _pairs(rec.get(f), "label", "number", source, key(f))
    out["holidays"] = [d for p in _split(rec.get("holidays")) for d in p.split(",") if d]
    out["delivery"] = {"method": rec.get("delivery") or "hold", "to": rec.get("delivery_to")}
    flag = rec.get("last_month_prepaid", "").lower()
    if flag not in ("", "yes", "no", "true", "false", "1", "0"):
        raise CustomerError(source, key("last_month_prepaid"), flag, "yes or no")
    out["last_month_prepaid"] = flag in ("yes", "true", "1")
    flag = rec.get("record_calls", "").lower()
    if flag not in ("", "yes", "no", "true", "false", "1", "0"):
        raise CustomerError(source, key("record_calls"), flag, "yes or no")
    out["record_calls"] = flag in ("yes", "true", "1")
    for f in CALLOUT:
        if rec.get(f):
            out[f] = whole_number(rec[f])
    return out


def whole_number(text: str):
    """"3" -> 3; anything else stays as it is, for ``validate`` to name."""
    return int(text) if re.fullmatch(r"[0-9]{1,6}", text.strip()) else text


def to_csv_row(c: dict) -> dict:
    return {
        "id": c["id"], "name": c["name"], "line": c["line"], "kind": c["kind"],
        "answer": c["answer"],
        "instructions": " | ".join(f"{r['when']} = {r['text']}" for r in c["instructions"]),
        "collect": " | ".join(c["collect"]), "pronounce": c["pronounce"],
        **{f: " | ".join(f"{x['label']} = {x['number']}" for x in c[f])
           for f in ("emergency", "on_call", "alternate")},
        "holidays": " | ".join(c["holidays"]), "delivery": c["delivery"]["method"],
        "delivery_to": c["delivery"]["to"] or "", "plan": c["plan"],
        "contract_start": c["contract_start"], "notice_date": c["notice_date"] or "",
        "last_month_prepaid": "yes" if c["last_month_prepaid"] else "no",
        "address": c["address"],
        "record_calls": "yes" if c.get("record_calls") else "no",
        **{f: c.get(f, default) for f, (_, _, default, _) in CALLOUT.items()},
    }


# -- the store ---------------------------------------------------------------
class Customers:
    """All customers, in ``<data>/customers.jsonl``."""

    def __init__(self, data_dir, readonly: bool = False, board=None):
        self.path = Path(data_dir) / "customers.jsonl"
        self.readonly = readonly
        self.board = board
        self._stat = None
        self._open()

    def _open(self):
        self.db = TinyDB(self.path, storage=JournalStorage, readonly=self.readonly)
        self.table = self.db.table("customers")
        self._stat = self._stat_now()
        self._by_line = {c["line"]: dict(c) for c in self.table.all()}

    def _stat_now(self):
        try:
            st = self.path.stat()
            return (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            return None

    def reload_if_changed(self) -> bool:
        """Pick up changes another program (the host tool) made since we looked."""
        if self._stat_now() == self._stat:
            return False
        self.db.close()
        self._open()
        return True

    def all(self) -> list[dict]:
        return sorted((dict(c) for c in self.table.all()), key=lambda c: (c["line"], c["id"]))

    def get(self, cid: str) -> dict:
        c = self.table.get(where("id") == cid)
        if c is None:
            raise CustomerError(self.path, "id", cid, "the id of a customer "
                                "(switchboard-customers list shows them)")
        return dict(c)

    def by_line(self, line: str) -> dict | None:
        return self._by_line.get(line)

    def _check_line(self, rec, source, where_):
        if self.board is not None:
            try:
                ln = self.board.line(rec["line"])
            except Exception:
                ln = None
            if ln is None or ln.kind != "customer":
                raise CustomerError(source, f"{where_}line", rec["line"],
                                    f"a customer line of board {self.board.name!r}")
        other = self._by_line.get(rec["line"])
        if other is not None and other["id"] != rec["id"]:
            raise CustomerError(source, f"{where_}line", rec["line"],
                                f"a line no other customer has (it is {other['id']}'s)")

    def add(self, rec: dict, source="customer record", where_="", replace=False) -> dict:
        c = validate(rec, source, where_)
        exists = self.table.contains(where("id") == c["id"])
        if exists and not replace:
            raise CustomerError(source, f"{where_}id", c["id"],
                                "a new id (this customer exists: use change)")
        self._check_line(c, source, where_)
        self.table.upsert(c, where("id") == c["id"])
        self._by_line = {k: v for k, v in self._by_line.items() if v["id"] != c["id"]}
        self._by_line[c["line"]] = c
        return c

    def change(self, cid: str, **fields) -> dict:
        rec = self.get(cid)
        rec.update(fields)
        return self.add(rec, source=f"customer {cid}", replace=True)

    def remove(self, cid: str) -> None:
        self.get(cid)
        self.table.remove(where("id") == cid)
        self._by_line = {k: v for k, v in self._by_line.items() if v["id"] != cid}

    def import_csv(self, text: str, source="CSV") -> list[dict]:
        """Add or replace customers from CSV; every row is checked before any is stored."""
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "id" not in reader.fieldnames:
            raise CustomerError(source, "header", reader.fieldnames,
                                "a header row naming the columns: " + ", ".join(CSV_COLUMNS))
        recs, ids, lines = [], {}, {}
        for n, row in enumerate(reader, start=2):
            where_ = f"row {n}: "
            rec = validate(from_csv_row(row, source, where_), source, where_)
            for seen, k in ((ids, "id"), (lines, "line")):
                if rec[k] in seen:
                    raise CustomerError(source, f"{where_}{k}", rec[k],
                                        f"a {k} not used again (row {seen[rec[k]]} has it)")
                seen[rec[k]] = n
            recs.append((where_, rec))
        mine = {c["id"] for _, c in recs}
        for _where, rec in recs:
            other = self._by_line.get(rec["line"])
            if other is not None and other["id"] != rec["id"] and other["id"] not in mine:
                raise CustomerError(source, f"{where_}line", rec["line"],
                                    f"a line no other customer has (it is {other['id']}'s)")
            if self.board is not None:
                self._check_line(rec, source, where_)
        # Lines may move between imported customers: clear those first.
        self._by_line = {k: v for k, v in self._by_line.items() if v["id"] not in mine}
        for _where, rec in recs:
            self.table.upsert(rec, where("id") == rec["id"])
            self._by_line[rec["line"]] = rec
        return [c for _, c in recs]

    def export_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for c in self.all():
            w.writerow(to_csv_row(c))
        return buf.getvalue()

    def close(self):
        self.db.close()
