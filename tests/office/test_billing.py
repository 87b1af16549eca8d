"""Billing rules as a table of cases, and statements read back from PDF, ESC/POS and CSV."""

import csv
import io
import json
import os
import re
import subprocess
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from switchboard_tools.office import billing
from firmware.errors import ConfigError
from firmware.records.recordset import call_from, check_customer, stamp_from
from conftest import ROOT, project_env, python_cmd

PLANS = ROOT / "plans" / "plans.toml"
CFG = billing.load_plans(PLANS)
UTC = timezone.utc


def customer(**kw):
    rec = {"id": "C1", "line": "205", "name": "Dr. Adams", "kind": "doctor", "plan": "standard",
           "contract_start": "2026-01-01", "notice_date": None, "last_month_prepaid": False}
    rec.update(kw)
    return check_customer(rec)


_n = [0]


def calls(n, start="2026-11-02T09:00:00+00:00", outcome="answered", kind="call", direction="in",
          line="205", step_min=30, **extra):
    """``n`` call records ``step_min`` minutes apart from ``start``."""
    t0 = datetime.fromisoformat(start)
    out = []
    for i in range(n):
        _n[0] += 1
        t = t0 + timedelta(minutes=step_min * i)
        rec = {"id": f"X{_n[0]}", "line": line, "direction": direction, "kind": kind,
               "caller": "5550001", "callee": line, "offered": t.isoformat(),
               "answered": (t + timedelta(seconds=9)).isoformat() if outcome in ("answered", "transferred") else None,
               "ended": (t + timedelta(seconds=70)).isoformat(), "rings": 2, "position": 1,
               "hold_s": 0, "outcome": outcome}
        rec.update(extra)
        out.append(call_from(rec))
    return out


def bill(cust, month, recs, counts=(), cfg=CFG, tz=UTC):
    sts, _ = billing.bill_month([cust], cfg, month, recs, (), counts, tz)
    return sts[0] if sts else None


def items(st):
    return {i.code: (i.quantity, str(i.amount)) for i in st.items}


# Each case: (name, customer fields, month, records, expected items {code: (qty, amount)}, total)
CASES = [
    ("no calls", {}, "2026-11", lambda: [], {"base": (1, "35.00")}, "35.00"),
    ("allowance exactly used", {}, "2026-11", lambda: calls(75), {"base": (1, "35.00")}, "35.00"),
    ("one call over", {}, "2026-11", lambda: calls(76), {"base": (1, "35.00"), "over": (1, "0.25")}, "35.25"),
    ("abandoned calls are not billed", {}, "2026-11", lambda: calls(75) + calls(10, outcome="abandoned"),
     {"base": (1, "35.00")}, "35.00"),
    ("transferred calls count", {}, "2026-11", lambda: calls(80) + calls(3, outcome="transferred",
                                                                            start="2026-11-20T10:00:00+00:00"),
     {"base": (1, "35.00"), "over": (8, "2.00")}, "37.00"),
    ("outgoing callbacks are not billed as calls", {}, "2026-11",
     lambda: calls(75) + calls(5, direction="out"), {"base": (1, "35.00")}, "35.00"),
    ("calls of other months are left out", {}, "2026-11",
     lambda: calls(75) + calls(5, start="2026-10-31T20:00:00+00:00", step_min=10)
     + calls(5, start="2026-12-01T00:00:00+00:00"), {"base": (1, "35.00")}, "35.00"),
    ("partial first month billed in full, with the full allowance", {"contract_start": "2026-11-20"},
     "2026-11", lambda: calls(10, start="2026-11-10T09:00:00+00:00") + calls(76, start="2026-11-20T00:00:00+00:00",
                                                                              step_min=10),
     {"base": (1, "35.00"), "over": (1, "0.25")}, "35.25"),
    ("notice on the 1st: the month is the last one", {"notice_date": "2026-11-01"}, "2026-11",
     lambda: calls(76), {"base": (1, "35.00"), "over": (1, "0.25")}, "35.25"),
    ("notice on the 2nd: one more (partial) month billed in full", {"notice_date": "2026-11-02"}, "2026-12",
     lambda: calls(3, start="2026-12-01T09:00:00+00:00") + calls(4, start="2026-12-02T00:00:00+00:00"),
     {"base": (1, "35.00")}, "35.00"),
    ("last month paid up front: charged on the first bill", {"contract_start": "2026-11-05",
                                                            "last_month_prepaid": True}, "2026-11",
     lambda: calls(5, start="2026-11-06T09:00:00+00:00"), {"base": (1, "35.00"), "prepay": (1, "35.00")}, "70.00"),
    ("last month paid up front: credited on the last bill", {"notice_date": "2026-11-10",
                                                            "last_month_prepaid": True}, "2026-12",
     lambda: calls(80, start="2026-12-01T00:00:00+00:00", step_min=60),
     {"base": (1, "35.00"), "over": (5, "1.25"), "prepay-credit": (1, "-35.00")}, "1.25"),
    ("wake-up and reminder calls billed per answered call", {}, "2026-11",
     lambda: calls(3, kind="wakeup", direction="out", line="901", customer="C1")
     + calls(2, kind="wakeup", direction="out", line="901", customer="C1", outcome="no-answer")
     + calls(4, kind="reminder", direction="out", line="902", customer="C1"),
     {"base": (1, "35.00"), "wakeup": (3, "1.50"), "reminder": (4, "2.00")}, "38.50"),
]


@pytest.mark.parametrize("name,fields,month,make,expected,total", CASES, ids=[c[0] for c in CASES])
def test_ok__billing_rules(name, fields, month, make, expected, total):
    st = bill(customer(**fields), month, make())
    assert items(st) == expected
    assert str(st.total) == total
    assert st.total == sum(i.amount for i in st.items)


@pytest.mark.parametrize("fields,month", [
    ({"contract_start": "2026-12-01"}, "2026-11"),          # before the contract
    ({"notice_date": "2026-11-01"}, "2026-12"),             # notice ran out on Dec 1
    ({"notice_date": "2026-10-01"}, "2026-11"),             # ended Oct 31
])
def test_ok__no_bill_outside_the_contract(fields, month):
    assert bill(customer(**fields), month, calls(5, start=f"{month}-03T09:00:00+00:00")) is None


def test_ok__every_billed_call_is_referenced_once_and_reasons_given_for_the_rest():
    recs = calls(80) + calls(4, outcome="abandoned") + calls(2, outcome="no-answer")
    st = bill(customer(), "2026-11", recs)
    base, over = st.items[0], st.items[1]
    answered = [c.id for c in recs if c.outcome == "answered"]
    assert list(base.calls) == answered[:75] and list(over.calls) == answered[75:]
    assert sorted(st.not_billed["abandoned calls"]) == sorted(c.id for c in recs if c.outcome == "abandoned")
    assert len(st.not_billed["no-answer calls"]) == 2
    assert set(st.calls) == set(answered)


def test_ok__partial_month_calls_before_start_listed_as_outside_the_contract():
    before = calls(3, start="2026-11-10T09:00:00+00:00")
    st = bill(customer(contract_start="2026-11-20"), "2026-11", before + calls(2, start="2026-11-21T09:00:00+00:00"))
    assert sorted(st.not_billed["calls outside the contract"]) == sorted(c.id for c in before)
    assert "partial month" in st.items[0].description
    assert st.activity["calls_offered"] == st.activity["calls_answered"] == 2   # only since the start


# A month with a purge in the middle: records before the 15th are gone and the
# retention summary stands in for them.
PURGE = datetime(2026, 11, 15, tzinfo=UTC)


@pytest.mark.parametrize("summary_calls,later,expected,total", [
    (60, 20, {"base": (1, "35.00"), "over": (5, "1.25")}, "36.25"),
    (75, 0, {"base": (1, "35.00")}, "35.00"),
    (75, 1, {"base": (1, "35.00"), "over": (1, "0.25")}, "35.25"),
    (80, 10, {"base": (1, "35.00"), "over": (15, "3.75")}, "38.75"),
])
def test_ok__purge_in_the_middle_of_the_month(summary_calls, later, expected, total):
    cust = customer()
    # What retention kept when it purged the first half of the month:
    old = calls(summary_calls, start="2026-11-01T00:00:00+00:00", step_min=60 * 24 * 14 // max(summary_calls, 1))
    counts = billing.monthly_counts([cust], CFG, old, [], PURGE)
    assert counts[0]["calls_answered"] == summary_calls
    new = calls(later, start="2026-11-16T00:00:00+00:00")
    st = bill(cust, "2026-11", new, counts)
    assert items(st) == expected and str(st.total) == total
    assert sum(i.summarised for i in st.items if i.code in ("base", "over")) == summary_calls
    assert sum(len(i.calls) for i in st.items) == later
    assert any("retention summary" in n for n in st.notes)
    # A record the purge missed is not counted twice.
    st2 = bill(cust, "2026-11", old[:3] + new, counts)
    assert str(st2.total) == total
    assert len(st2.not_billed["calls counted in the retention summary"]) == 3


@pytest.mark.parametrize("rounding,rate,n,amount", [
    ("ROUND_HALF_UP", "0.105", 1, "0.11"),
    ("ROUND_HALF_EVEN", "0.105", 1, "0.10"),
    ("ROUND_HALF_UP", "0.125", 3, "0.38"),
    ("ROUND_DOWN", "0.125", 3, "0.37"),
])
def test_ok__rounding_is_explicit(tmp_path, rounding, rate, n, amount):
    p = tmp_path / "plans.toml"
    p.write_text(f'[billing]\nrounding = "{rounding}"\n[plans.standard]\ncurrency = "EUR"\nbase_fee = "10"\n'
                 f'allowance = 0\nover_rate = "{rate}"\nwakeup_rate = "0"\nreminder_rate = "0"\n')
    st = bill(customer(), "2026-11", calls(n), cfg=billing.load_plans(p))
    assert str(st.items[1].amount) == amount and st.plan.currency == "EUR"
    assert st.total == Decimal("10.00") + Decimal(amount)


def test_ok__month_boundaries_follow_the_service_time_zone():
    ny = ZoneInfo("America/New_York")
    # 23:30 in New York on Nov 30 is Dec 1 in UTC: it is November's call.
    late = calls(1, start="2026-11-30T23:30:00-05:00")
    assert len(bill(customer(), "2026-11", calls(75) + late, tz=ny).items) == 2
    assert len(bill(customer(), "2026-11", calls(75) + late, tz=UTC).items) == 1


def test_ok__a_reused_line_bills_each_call_to_the_customer_of_that_day():
    a = customer(id="A", notice_date="2026-10-11")           # ends 2026-11-10
    b = customer(id="B", name="Plumber Bee", contract_start="2026-11-15")
    ra = calls(3, start="2026-11-05T09:00:00+00:00")
    gap = calls(2, start="2026-11-12T09:00:00+00:00")
    rb = calls(4, start="2026-11-16T09:00:00+00:00")
    sts, orphans = billing.bill_month([a, b], CFG, "2026-11", ra + gap + rb, (), (), UTC)
    by = {s.customer["id"]: s for s in sts}
    assert list(by["A"].items[0].calls) == [c.id for c in ra]
    assert sorted(by["A"].not_billed["calls outside the contract"]) == sorted(c.id for c in gap)
    assert list(by["B"].items[0].calls) == [c.id for c in rb]
    assert orphans == []


@pytest.mark.parametrize("text,needle", [
    ('[plans.x]\ncurrency="USD"\nbase_fee=35.0\nallowance=75\nover_rate="0.25"\nwakeup_rate="0.5"\n'
     'reminder_rate="0.5"\n', "plans.x.base_fee = 35.0: expected an amount written as a decimal string"),
    ('[plans.x]\ncurrency="USD"\nbase_fee="35"\nallowance=75\nover_rate="0.25"\nwakeup_rate="0.5"\n'
     'reminder_rate="0.5"\nbonus="1"\n', "plans.x.bonus"),
    ('[plans.x]\ncurrency="dollars"\n', "plans.x.currency = 'dollars'"),
    ('[plans.x]\ncurrency="USD"\nallowance=1\nbase_fee="-1"\n', "plans.x.base_fee = '-1'"),
    ('[billing]\nrounding="NEAREST"\n[plans.x]\n', "billing.rounding = 'NEAREST'"),
    ('[service]\ntimezone="Mars/Olympus"\n[plans.x]\n', "service.timezone = 'Mars/Olympus'"),
    ('[plans]\n', "no plans"),
    ('not toml', "not valid TOML"),
])
def test_fail__plans_file(tmp_path, text, needle):
    p = tmp_path / "plans.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        billing.load_plans(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_fail__customer_with_unknown_plan():
    with pytest.raises(ConfigError, match=r"customers: \[0\]\.plan = 'gold': expected one of the plans"):
        billing.bill_month([customer(plan="gold")], CFG, "2026-11", [], (), (), UTC)


# -- statements read back ---------------------------------------------------
def _statement():
    cust = customer(name="Dr. Zoë Adams & Partners", last_month_prepaid=True, contract_start="2026-11-01",
                    address="4 Elm Row\nSpringfield")
    recs = calls(77) + calls(2, kind="wakeup", direction="out", line="901", customer="C1", callee="5557777")
    recs += calls(2, outcome="abandoned", start="2026-11-25T10:00:00+00:00")
    stamps = [stamp_from({"slip": 500 + i, "time": f"2026-11-0{3 + i}T10:00:00+00:00", "line": "205",
                          "customer": "C1", "position": 1, "what": w, "call": None, "text": ""})
              for i, w in enumerate(("message", "message", "read-back"))]
    sts, _ = billing.bill_month([cust], CFG, "2026-11", recs, stamps, (), UTC)
    return sts[0], recs


def test_ok__pdf_statement_reads_back():
    st, recs = _statement()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(billing.to_pdf(st, CFG.service))).pages)
    assert "Main Street Answering Service" in text
    assert "Dr. Zoë Adams & Partners\n4 Elm Row\nSpringfield" in text
    assert "Statement for 2026-11" in text
    for line in ("Base fee, Standard answering", "Calls over the allowance of 75", "Wake-up calls",
                 "Last month's base fee, paid in advance"):
        assert line in text
    assert "$71.50" in text           # 35 + 2 x 0.25 + 2 x 0.50 + 35 + (slips free)
    assert str(st.total) == "71.50"
    for c in recs:                      # every billed call is listed by its record id
        assert bool(re.search(rf"\b{c.id}\b", text)) == (c.outcome == "answered")
    assert "5557777" in text           # the number a wake-up call went to
    assert "500, 501" in text           # message slips
    assert "Not billed: 2 abandoned calls." in text


def decode_escpos(data: bytes):
    """Strip the ESC/POS commands the encoder may send; return (lines, bold lines, cut)."""
    i, text, bold, cut = 0, bytearray(), False, False
    lines, bold_lines = [], set()
    args = {b"\x1b@": 0, b"\x1bt": 1, b"\x1bE": 1, b"\x1ba": 1, b"\x1d!": 1, b"\x1bd": 1, b"\x1dV": 1}
    assert data.startswith(b"\x1b@")
    while i < len(data):
        two = data[i:i + 2]
        if two in args:
            if two == b"\x1bE":
                bold = data[i + 2] == 1
            if two == b"\x1dV":
                cut = True
            if two == b"\x1bt":
                assert data[i + 2] == 19         # PC858
            i += 2 + args[two]
            continue
        assert data[i] >= 0x20 or data[i] == 0x0a, f"unknown control byte {data[i]:#x} at {i}"
        if data[i] == 0x0a:
            lines.append(text.decode("cp858"))
            if bold:
                bold_lines.add(len(lines) - 1)
            text = bytearray()
        else:
            text.append(data[i])
        i += 1
    return lines, {lines[n] for n in bold_lines}, cut


@pytest.mark.parametrize("width", [32, 42])
def test_ok__slip_printer_bytes_decode(width):
    st, _ = _statement()
    lines, bold, cut = decode_escpos(billing.to_escpos(st, width, CFG.service))
    assert cut
    assert all(len(ln) <= width for ln in lines)
    total = [ln for ln in lines if ln.startswith("TOTAL")]
    assert total == [f"TOTAL{'$71.50':>{width - 5}}"] and total[0] in bold
    assert "Statement 2026-11" in bold
    assert any(ln.endswith("$0.50") and "over" in " ".join(lines) for ln in lines)
    assert "Dr. Zoë Adams & Partners (line 205)" in " ".join(lines)   # ë through code page 858


def test_ok__euro_sign_prints_in_code_page_858(tmp_path):
    p = tmp_path / "plans.toml"
    p.write_text('[plans.standard]\ncurrency = "EUR"\nbase_fee = "30"\nallowance = 10\nover_rate = "0.2"\n'
                 'wakeup_rate = "0.4"\nreminder_rate = "0.4"\n')
    st = bill(customer(), "2026-11", calls(3), cfg=billing.load_plans(p))
    data = billing.to_escpos(st)
    assert b"\xd530.00" in data                 # 0xD5 is the euro sign in PC858
    lines, _, _ = decode_escpos(data)
    assert any(ln.endswith("\u20ac30.00") for ln in lines)
    text = PdfReader(io.BytesIO(billing.to_pdf(st))).pages[0].extract_text()
    assert "\u20ac30.00" in text


def test_ok__bookkeeper_csv_adds_up():
    st, _ = _statement()
    st2 = bill(customer(id="C2", line="206"), "2026-11", calls(80, line="206"))
    rows = list(csv.DictReader(io.StringIO(billing.to_csv([st, st2]))))
    assert [r["code"] for r in rows] == ["base", "over", "wakeup", "prepay", "base", "over"]
    for s in (st, st2):
        mine = [r for r in rows if r["customer"] == s.customer["id"]]
        assert sum(Decimal(r["amount"]) for r in mine) == s.total
    assert rows[1]["calls"] == "2" and rows[1]["quantity"] == "2"


# -- the host tool ----------------------------------------------------------
def _write_month(tmp_path):
    cust = [{"id": "C1", "line": "205", "name": "Dr. Adams", "kind": "doctor", "plan": "standard",
             "contract_start": "2026-01-01", "notice_date": None, "last_month_prepaid": False},
            {"id": "C2", "line": "206", "name": "Bob's Plumbing", "kind": "plumber", "plan": "small",
             "contract_start": "2026-11-10", "notice_date": None, "last_month_prepaid": False}]
    recs = [c.raw for c in calls(78)] + [c.raw for c in calls(41, line="206", start="2026-11-10T08:00:00+00:00")]
    recs.append({**recs[0], "id": "Z9", "line": "299"})       # a line nobody has
    (tmp_path / "customers.json").write_text(json.dumps(cust))
    # calls as JSON lines, stamps as a TinyDB file: the formats the other parts keep
    (tmp_path / "calls.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    (tmp_path / "stamps.json").write_text(json.dumps({"stamps": {"1": {
        "slip": 7, "time": "2026-11-04T10:00:00+00:00", "line": "205", "customer": "C1", "position": 1,
        "what": "message", "call": recs[0]["id"], "text": "call back"}}}))
    return recs


def test_ok__host_tool_writes_statements_csv_and_prints_slips(tmp_path):
    recs = _write_month(tmp_path)
    master, slave = os.openpty()              # the slip printer's serial line
    try:
        r = subprocess.run(python_cmd("switchboard_tools.billing", "--month", "2026-11",
                                      "--customers", tmp_path / "customers.json",
                                      "--calls", tmp_path / "calls.jsonl", "--stamps", tmp_path / "stamps.json",
                                      "--out", tmp_path / "out", "--printer", os.ttyname(slave), "--json"),
                           env=project_env(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        os.set_blocking(master, False)
        printed = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            printed += chunk
    finally:
        os.close(master)
        os.close(slave)
    out = json.loads(r.stdout)
    assert out["totals"] == {"USD": "61.05"}        # 35 + 3 x 0.25 ; 25 + 1 x 0.30
    assert out["unattributed"] == [{"call": "Z9", "line": "299", "offered": recs[0]["offered"]}]
    c1 = out["statements"][0]
    assert c1["items"][1]["calls"] == [r["id"] for r in recs[75:78]]
    assert c1["activity"]["message_slips"] == [7]
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["bookkeeping-2026-11.csv", "statement-2026-11-C1.escpos", "statement-2026-11-C1.pdf",
                     "statement-2026-11-C2.escpos", "statement-2026-11-C2.pdf"]
    lines, _, _ = decode_escpos(printed.split(b"\x1dV\x01")[0] + b"\x1dV\x01")
    assert "Dr. Adams (line 205)" in lines
    assert printed.count(b"\x1dV\x01") == 2         # one slip per customer, each cut
    # In text, the call of no customer is a warning through logging: one line on stderr.
    r = subprocess.run(python_cmd("switchboard_tools.billing", "--month", "2026-11",
                                  "--customers", tmp_path / "customers.json",
                                  "--calls", tmp_path / "calls.jsonl", "--stamps", tmp_path / "stamps.json"),
                       env=project_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "2 statements for 2026-11" in r.stdout, r.stderr
    assert r.stderr == ("switchboard-billing: warning: 1 records of 2026-11 belong to no customer "
                        "(see --json, key unattributed)\n")


@pytest.mark.parametrize("mutate,needle", [
    (lambda recs: recs[2].update(offered="yesterday"),
     "calls.jsonl: [2].offered = 'yesterday': expected an ISO 8601 time"),
    (lambda recs: recs[4].update(outcome="maybe"), "calls.jsonl: [4].outcome = 'maybe': expected one of answered"),
    (lambda recs: recs[1].pop("direction"), "calls.jsonl: [1].direction: missing"),
])
def test_fail__host_tool_names_the_bad_record(tmp_path, mutate, needle):
    recs = _write_month(tmp_path)
    mutate(recs)
    (tmp_path / "calls.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    r = subprocess.run(python_cmd("switchboard_tools.billing", "--month", "2026-11",
                                  "--customers", tmp_path / "customers.json", "--calls", tmp_path / "calls.jsonl"),
                       env=project_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_ok__time_clock_daily_counts_stand_in_for_purged_slips(tmp_path):
    """The time clock keeps per-day counts when it purges a day's slips; a
    read-back is its own slip naming the message's slip in ``of``."""
    cust = customer(plan="busy")                          # busy: 0.05 a message
    daily = [{"day": f"2026-11-{d:02d}", "customer": "C1", "message": 3, "read-back": 2, "answer": 3,
              "stamp": 0} for d in range(1, 15)]
    (tmp_path / "counts.json").write_text(json.dumps(daily))
    from firmware.records.recordset import load_counts
    counts = load_counts(tmp_path / "counts.json")
    assert counts[0]["covers"] == ["stamps"] and counts[0]["messages"] == 42
    stamps = []
    for i in range(5):
        t = f"2026-11-2{i}T10:00:00+00:00"
        stamps.append(stamp_from({"slip": 900 + 2 * i, "time": t, "line": "205", "customer": "C1",
                                  "what": "message", "call": None, "text": "x"}))
        stamps.append(stamp_from({"slip": 901 + 2 * i, "time": t.replace("T10", "T15"), "line": "205",
                                  "customer": "C1", "what": "read-back", "of": 900 + 2 * i, "text": "x"}))
    stale = stamp_from({"slip": 5, "time": "2026-11-03T10:00:00+00:00", "line": "205", "customer": "C1",
                        "what": "message", "text": "left behind by the purge"})
    sts, _ = billing.bill_month([cust], CFG, "2026-11", calls(10), stamps + [stale], counts, UTC)
    st = sts[0]
    msg = [i for i in st.items if i.code == "message"][0]
    assert (msg.quantity, str(msg.amount), msg.summarised) == (47, "2.35", 42)
    assert list(msg.slips) == [900, 902, 904, 906, 908]
    assert st.activity["read_back_slips"] == [900, 902, 904, 906, 908]
    assert st.activity["read_backs"] == 28 + 5
    assert any(n.startswith("Message slips before 2026-11-15 00:00 were purged") for n in st.notes)


def test_ok__host_tool_reads_the_daemons_data_folder(tmp_path):
    """The live stores as the other parts keep them: the time clock's day journals
    (with November's first days purged, their counts kept), the customers' store,
    the telephony's calls.jsonl (its last line torn by a power cut) and the
    schedule's log, which names the customer of a wake-up call."""
    from datetime import datetime as dt
    from firmware.timeclock.customers import Customers
    from firmware.schedule.scheduler import Scheduler
    from firmware.records.calls import JsonLinesRecords
    from firmware.timeclock.clock import TimeClock
    data = tmp_path / "var"
    now = [dt(2026, 11, 1, 9, 0, tzinfo=UTC)]
    tc = TimeClock(data, clock=lambda: now[0])
    for day in (1, 2, 3, 20):
        now[0] = dt(2026, 11, day, 9, 0, tzinfo=UTC)
        m = tc.stamp("message", line="201", customer="marys-gloves", position=1, text="call back")
        now[0] = now[0] + timedelta(hours=2)
        tc.stamp("read-back", line="201", customer="marys-gloves", position=1, of=m["slip"])
    now[0] = dt(2026, 12, 5, 9, 0, tzinfo=UTC)
    assert tc.purge()["purged_days"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    tc.close()
    cs = Customers(data)
    cs.add({"id": "marys-gloves", "name": "Mary's Gloves", "line": "201", "kind": "other", "plan": "busy",
            "contract_start": "2026-01-01"})
    cs.db.close()
    records = JsonLinesRecords(data / "calls.jsonl")
    for c in calls(152, start="2026-11-20T08:00:00+00:00", line="201", step_min=20):
        records.write({k: v for k, v in c.raw.items()})
    records.write({"id": "placed-1", "line": "901", "direction": "out", "kind": "call", "caller": "901",
                   "callee": "5551234", "offered": "2026-11-21T06:30:00Z", "answered": "2026-11-21T06:30:09Z",
                   "ended": "2026-11-21T06:30:30Z", "rings": 2, "position": None, "hold_s": 0,
                   "outcome": "answered"})
    with open(data / "calls.jsonl", "a") as f:
        f.write('{"id": "torn", "line": "2')                # the power went here
    sched = Scheduler(data / "schedule.json", UTC, dt(2026, 11, 20, tzinfo=UTC))
    sched.log.append({"occurrence": "w@1", "schedule": "w", "customer": "marys-gloves", "kind": "wakeup",
                      "number": "5551234", "due": "2026-11-21T06:30:00+00:00", "outcome": "answered",
                      "attempts": 1, "calls": ["placed-1"], "finished": "2026-11-21T06:31:00+00:00", "note": ""})
    sched._save()
    r = subprocess.run(python_cmd("switchboard_tools.billing", "--month", "2026-11", "--data-dir", data, "--json"),
                       env=project_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)["statements"][0]
    assert st["customer"]["id"] == "marys-gloves"
    got = {i["code"]: (i["quantity"], i["amount"]) for i in st["items"]}
    assert got == {"base": (1, "60.00"), "over": (2, "0.40"), "wakeup": (1, "0.45"), "message": (4, "0.20")}
    assert st["total"] == "61.05"
    msg = [i for i in st["items"] if i["code"] == "message"][0]
    assert msg["summarised"] == 3 and len(msg["slips"]) == 1
    assert st["activity"]["read_backs"] == 4
    assert any(n.startswith("Message slips before 2026-11-04 00:00 were purged") for n in st["notes"])


def test_ok__host_tool_traces_a_disputed_call(tmp_path):
    recs = _write_month(tmp_path)
    run = lambda *a: subprocess.run(python_cmd("switchboard_tools.billing", "--month", "2026-11",  # noqa: E731
                                               "--customers", tmp_path / "customers.json",
                                               "--calls", tmp_path / "calls.jsonl",
                                               "--stamps", tmp_path / "stamps.json", *a),
                                    env=project_env(), capture_output=True, text=True, timeout=60)
    over, first, nobody = recs[77]["id"], recs[0]["id"], "Z9"
    r = run("--trace", over, "--trace", first, "--trace", nobody, "--trace", "7", "--trace", "nope")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"{over}: customer C1, billed as Calls over the allowance of 75 at 0.25" in lines
    assert f"{first}: customer C1, billed as Base fee, Standard answering: up to 75 calls" in lines
    assert f"{nobody}: no customer, not billed: belongs to no customer" in lines
    assert "7: customer C1, not billed: a slip counted among the month's messages; " \
        "this plan does not charge per message" in lines
    assert "nope: no such call or slip in 2026-11" in lines
    assert f'"id": "{over}"' in r.stdout                     # the record itself is shown
    r = run("--trace", over, "--json")
    t = json.loads(r.stdout)["trace"][0]
    assert t["record"]["id"] == over and t["found_in"][0]["item"] == "over"
