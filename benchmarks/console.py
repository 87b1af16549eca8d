"""The operator's console: stamp key to the rack on screen, and the rack and dead box
with 30 days of a busy board's slips.

1. **Stamp to rack on screen**: the real daemon (simulated desk board) and the
   console's rack in headless Chromium; a draft is kept on position 1's pad, the
   stamp key is tapped through the control socket, and the time until the new
   slip's row is in the page is taken. Baseline, in the same run: the page's
   bare ``fetch`` round trip to ``/api/clock``.
2. **Rack and dead box at 300 000 slips** (30 days of 10 000 a day; the
   generator of ``benchmarks/timeclock.py``): the ``rack`` command, and
   ``deadbox`` searches by text, customer, slip number and one day, as the view
   asks them. Baseline, in the same run: reading the same 30 day journals and
   matching the same text with nothing else (checksum and ``json.loads`` of each file and a
   substring test per slip).

   With the dead-box index (``firmware/timeclock/slipindex.py``) each search is
   timed on the index and, as the "before", on the journals alone; both must
   find the same slips. Then every prefix of the text is searched in turn, as
   the box does while the supervisor types.

   The board's call records are written too: one a slip (``call-<slip>``, 30 days,
   in ``calls.jsonl`` as the telephony writes it), as each dead-box slip shows
   its call record and each card its caller's and customer's last calls. The
   card's history is timed for a caller who called before and a new caller.
   Baseline: reading ``calls.jsonl`` whole, as each of those did before the call
   index (``firmware/timeclock/callindex.py``); then the index's first build,
   and its catching up after the daily purge rewrote the file.

Run: ``python benchmarks/console.py [--slips 300000] [--stamps 20]`` from the
repository root (it measures this checkout; ``--stamps 0`` leaves the browser out).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "host-tools"))
sys.path.append(str(ROOT / "tests" / "support"))

import timeclock as gen  # noqa: E402  (benchmarks/timeclock.py: the slips' generator)
from firmware.timeclock.adapter import TimeClockAdapter, read_call_records  # noqa: E402
from firmware.timeclock.customers import Customers  # noqa: E402
from firmware.timeclock.slipindex import COUNT_UP_TO  # noqa: E402
from firmware.records.calls import JsonLinesRecords  # noqa: E402
from firmware.records.journal import decode_line, encode_line  # noqa: E402
from firmware.timeclock.callindex import CallIndex  # noqa: E402
from switchboard_tools.diag import Client  # noqa: E402
from view_support import view_url  # noqa: E402

CUSTOMER = {"kind": "shop", "answer": "{name}, this is {operator}", "instructions": [],
            "collect": ["name", "number"], "pronounce": "", "emergency": [], "on_call": [],
            "alternate": [], "holidays": [], "delivery": {"method": "hold", "to": None},
            "plan": "Basic 100", "contract_start": "2026-01-01", "notice_date": None,
            "last_month_prepaid": False}


def ms(xs):
    xs = sorted(xs)
    return f"{statistics.median(xs) * 1000:.1f} / {xs[min(len(xs) - 1, int(0.99 * len(xs)))] * 1000:.1f} ms"


# -- 2. the rack and the dead box at 300 000 slips -------------------------------------
class _Board:
    """What the adapter needs of a daemon, for timing it alone."""
    loop = None
    state = None

    def post(self, event):
        pass

    def add_command(self, name, handler):
        pass


def timed(fn, n=5):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = fn()
        out.append(time.perf_counter() - t)
    return out, r


def caller_of(slip: int) -> str:
    """A busy board's callers: 5 000 numbers, each calling every few days."""
    return f"415555{slip % 5000:04d}"


def write_calls(data: Path, slips: int) -> float:
    """One call record a slip, as the telephony appends them (checksummed lines,
    in the order the calls ended); returns seconds taken."""
    t = time.perf_counter()
    days = (slips + gen.PER_DAY - 1) // gen.PER_DAY
    with open(data / "calls.jsonl", "wb") as f:
        slip = 0
        for d in range(days):
            day = (gen.TODAY - dt.timedelta(days=days - 1 - d)).date()
            for k in range(min(gen.PER_DAY, slips - slip)):
                slip += 1
                at = (dt.datetime.combine(day, dt.time(0), gen.TZ)        # round the clock
                      + dt.timedelta(seconds=86400 * k // gen.PER_DAY)).astimezone(dt.timezone.utc)
                z = "%Y-%m-%dT%H:%M:%S.000Z"
                f.write(encode_line({
                    "id": f"call-{slip}", "line": str(201 + slip % 100), "direction": "in",
                    "kind": "call", "caller": caller_of(slip), "callee": str(201 + slip % 100),
                    "offered": at.strftime(z), "answered": (at + dt.timedelta(seconds=8)).strftime(z),
                    "ended": (at + dt.timedelta(seconds=95)).strftime(z), "rings": 2,
                    "position": 1 + slip % 2, "hold_s": 0, "outcome": "answered"}))
    return time.perf_counter() - t


def store(base: Path, slips: int):
    data = base / "busy"
    gen.PER_DAY = max(1, slips // 30)
    took = gen.generate(data, slips) + write_calls(data, slips)
    cs = Customers(data)
    for i in range(100):
        cs.add({**CUSTOMER, "id": f"cust-{i}", "name": f"Customer {i}", "line": str(201 + i)})
    cs.add({**CUSTOMER, "id": "rare", "name": "Seldom Called", "line": "301"})
    cs.close()
    return data, took


def searches(data: Path, slips: int):
    t = time.perf_counter()
    a = TimeClockAdapter(data, clock=lambda: gen.TODAY + dt.timedelta(hours=10))
    a.start(_Board())
    opened = time.perf_counter() - t
    # The index is built in the background from the journals the first time: wait for it.
    a._reader.submit(lambda: None).result()
    built = time.perf_counter() - t
    assert a.index is not None and a.index.ready, "the dead-box index did not catch up"
    w = a._pool.submit
    rows = {}
    try:
        rows["rack (every customer's waiting slips)"] = timed(lambda: w(a._rack_view).result())
        needle = f"order {slips - 4320}"  # a message slip
        cases = {
            f"dead box: text \"{needle}\", 30 days": {"search": needle},
            "dead box: one customer, 30 days": {"customer": "cust-8"},
            "dead box: seldom-called customer": {"customer": "rare"},
            "dead box: slip number": {"slip": slips - 4320},
            "dead box: one day": {"since": gen.TODAY.date().isoformat(),
                                  "until": gen.TODAY.date().isoformat()},
        }
        for label, args in cases.items():
            full = {"customer": None, "since": None, "until": None, "search": None, "slip": None,
                    "limit": 200, **args}
            fast = timed(lambda full=full: a._deadbox(full), n=5)
            a.index.ready = False               # before: the same search on the journals
            slow = timed(lambda full=full: a._deadbox(full), n=1)
            a.index.ready = True
            assert [s["slip"] for s in fast[1]["slips"]] == [s["slip"] for s in slow[1]["slips"]] \
                and fast[1]["found"] == min(slow[1]["found"], COUNT_UP_TO), \
                f"{label}: index and journals differ"
            rows[label] = fast
            rows[label + " (journals)"] = slow
            shown = fast[1]["slips"]
            assert all(s["call_record"] and s["call_record"]["id"] == s["call"] for s in shown), \
                f"{label}: a slip without its call record"
        # The card's history: a caller who called before, and one who never did.
        known = caller_of(slips - 7)
        rows["card history: a customer and a caller who called before"] = timed(
            lambda: a._history("cust-8", known), n=5)
        rows["card history: a customer and a new caller"] = timed(
            lambda: a._history("cust-8", "2125550000"), n=5)
        h = rows["card history: a customer and a caller who called before"][1]
        assert h["caller_calls"] and h["customer_calls"], "the card's history found no calls"
        # Before the call index, in the same run: the records read whole each time.
        ci, a.callindex = a.callindex, None
        rows["card history: a customer and a caller who called before (calls.jsonl whole)"] = \
            timed(lambda: a._history("cust-8", known), n=3)
        text = {"customer": None, "since": None, "until": None, "search": f"order {slips - 4320}",
                "slip": None, "limit": 200}
        rows["dead box: text, 30 days (calls.jsonl whole)"] = timed(lambda: a._deadbox(text), n=3)
        rows["dead box: one customer, 30 days (calls.jsonl whole)"] = timed(
            lambda: a._deadbox({**text, "search": None, "customer": "cust-8"}), n=3)
        a.callindex = ci
        assert rows["dead box: text, 30 days (calls.jsonl whole)"][1] == \
            rows[f"dead box: text \"order {slips - 4320}\", 30 days"][1], "index and file differ"
        assert rows["card history: a customer and a caller who called before (calls.jsonl whole)"][1] \
            == h, "the card's history differs without the call index"
        # Search as you type: every prefix of the needle the box sends (3 letters and up).
        typed = []
        for i in range(3, len(needle) + 1):
            full = {"customer": None, "since": None, "until": None, "search": needle[:i],
                    "slip": None, "limit": 200}
            typed += timed(lambda full=full: a._deadbox(full), n=1)[0]
        rows[f"dead box: typing \"{needle}\", slowest of {len(typed)} keystrokes"] = \
            ([max(typed)], {"found": "-"})
        # Baseline: the same files read and matched with nothing else.
        def plain():
            found = 0
            for p in sorted((data / "slips").glob("*.jsonl")):
                for line in p.read_bytes().splitlines():
                    rec = decode_line(line)
                    for op in rec["ops"]:
                        d = op[2]
                        if d and needle in (d.get("text") or "").lower():
                            found += 1
            return found
        rows["baseline: read and match the 30 journals"] = timed(plain, n=3)
        rows["baseline: read calls.jsonl whole (30 days of call records)"] = timed(
            lambda: len(read_call_records(data / "calls.jsonl")), n=3)
        # The call index: built once (at the first start, in the background), then kept up;
        # the daily purge rewrites calls.jsonl without the oldest day.
        fresh = data / "fresh-callindex"
        fresh.mkdir()
        rows["call index built from calls.jsonl (first start only)"] = timed(
            lambda: CallIndex(fresh, data / "calls.jsonl").refresh(), n=1)
        cutoff = (gen.TODAY - dt.timedelta(days=28)).astimezone(dt.timezone.utc).date().isoformat()
        gone = len(JsonLinesRecords(data / "calls.jsonl").remove_before(cutoff))
        rows[f"call index after the purge took {gone} calls out of calls.jsonl"] = timed(
            lambda: a.callindex.refresh(), n=1)
        assert not a._calls_by_id({"call-1"}) and a._calls_by_id({f"call-{slips}"})
    finally:
        a.stop()
    return opened, built, rows


# -- 1. stamp key to the rack on screen -------------------------------------------------
def control(sock, cmd, **args):
    """One control command's result (switchboard-diag's client; a refusal raises)."""
    c = Client(sock)
    try:
        return c.call(cmd, **args)
    finally:
        c.close()


def on_screen(base: Path, stamps: int):
    from playwright.sync_api import sync_playwright
    data = base / "screen"
    data.mkdir()
    cs = Customers(data)
    cs.add({**CUSTOMER, "id": "marys-gloves", "name": "Mary's Gloves", "line": "201"})
    cs.close()
    sock = base / "ctl.sock"
    log = open(base / "daemon.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "firmware.runtime.daemon", "--sim", "--board",
                             "desk", "--web-port", "0", "--socket", str(sock), "--data-dir",
                             str(data)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = view_url(log, proc)
        assert url, "the daemon did not start"
        lat, rtt = [], []
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                   args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = b.new_page(viewport={"width": 800, "height": 480})
            page.goto(url + "console")
            page.keyboard.press("F2")
            page.wait_for_selector("#rack .idle, #rack .slip")
            for i in range(stamps):
                control(sock, "draft", position=1, line="201",
                        fields={"name": f"Caller {i}", "message": f"benchmark {i}"})
                t = time.perf_counter()
                r = control(sock, "tap", key="p1-stamp")
                page.wait_for_selector(f'#rack .slip:has-text("benchmark {i}")', timeout=10000)
                lat.append(time.perf_counter() - t)
                rtt.append(page.evaluate("""async () => { const t = performance.now();
                    await fetch('api/clock'); return (performance.now() - t) / 1000; }"""))
                del r
            b.close()
        return lat, rtt
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slips", type=int, default=300_000)
    ap.add_argument("--stamps", type=int, default=20)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
        base = Path(tmp)
        if args.stamps:
            lat, rtt = on_screen(base, args.stamps)
            print(f"stamp key -> new slip in the rack on screen, median / p99 ({args.stamps} stamps): "
                  f"{ms(lat)}   baseline, the page's bare fetch round trip: {ms(rtt)}")
        data, took = store(base, args.slips)
        print(f"{args.slips} slips and as many call records over 30 days written in {took:.1f} s "
              f"(calls.jsonl {(data / 'calls.jsonl').stat().st_size / 1e6:.0f} MB)")
        opened, built, rows = searches(data, args.slips)
        print(f"time clock opened (rack index, customer index) in {opened:.2f} s; "
              f"dead-box and call indexes built (first start only) in {built:.1f} s, "
              f"{(data / 'slipindex.sqlite').stat().st_size / 1e6:.0f} MB and "
              f"{(data / 'callindex.sqlite').stat().st_size / 1e6:.0f} MB")
        for label, (times, r) in rows.items():
            n = (f"{r['found']} found" if isinstance(r, dict) and "found" in r else
                 f"{r['waiting']} waiting" if isinstance(r, dict) and "waiting" in r else
                 f"{len(r['caller_calls'])} + {len(r['customer_calls'])} calls"
                 if isinstance(r, dict) else f"{r} found")
            print(f"  {label:<75} median {statistics.median(times) * 1000:8.1f} ms  ({n})")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
