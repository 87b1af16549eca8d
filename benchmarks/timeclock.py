"""How long from the stamp key to a durable stamp, as slips pile up.

For stores already holding 1 000, 30 000 and 300 000 slips (1 000 a day, the
last 1 000 today, so today's journal is a busy day's), it times:

  stamp     TimeClock.stamp(): next slip, one journal line appended and fsynced
  message   Rack.take(): the stamp plus the rack's own index write
  baseline  a plain os.write + os.fsync of the same bytes the stamp appended,
            to a file in the same folder, in the same run

and prints median and p99 in milliseconds, and how long the store took to
open (with the rack's index and the customer index already built, as a
running daemon keeps them). It also times one customer's messages for the last
30 days ("cust 30d"), and one seldom-called customer over all history ("rare
all": the customer index skips the days without them), as a host tool reads.
Run: ``python benchmarks/timeclock.py [--stamps 300] [--dir DIR]``.
The folder must be on the disk you care about (not tmpfs: fsync is free there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a checkout

from firmware.timeclock.rack import Rack  # noqa: E402
from firmware.records.journal import write_snapshot  # noqa: E402
from firmware.timeclock.clock import TimeClock  # noqa: E402

PER_DAY = 1000
TZ = dt.timezone(dt.timedelta(hours=-5))
TODAY = dt.datetime(2026, 11, 24, 8, 0, tzinfo=TZ)


def what_of(slip: int, n: int):
    """The kind of each generated slip: messages, their read-backs, answers, stamps;
    the last 100 messages are still waiting in the rack."""
    if slip > n - 400:
        return ("message", "answer", "answer", "stamp")[slip % 4], None
    kind = ("message", "read-back", "answer", "stamp")[slip % 4]
    return kind, (slip - 1 if kind == "read-back" else None)


def generate(data: Path, n: int) -> float:
    """Write ``n`` slips as day journals ending today, and the rack's index;
    returns seconds taken."""
    t0 = time.perf_counter()
    (data / "slips").mkdir(parents=True)
    days = (n + PER_DAY - 1) // PER_DAY
    slip = 0
    waiting = {}
    index = {}
    for d in range(days):
        day = (TODAY - dt.timedelta(days=days - 1 - d)).date()
        docs = {}
        for k in range(min(PER_DAY, n - slip)):
            slip += 1
            t = dt.datetime.combine(day, dt.time(8), TZ) + dt.timedelta(seconds=40 * k)
            what, of = what_of(slip, n)
            rare = k == 500 and d in (0, days // 2, days - 2)    # a customer seldom called
            docs[slip] = {"slip": slip, "time": t.isoformat(timespec="seconds"),
                          "line": str(201 + slip % 100),
                          "customer": "rare" if rare else f"cust-{slip % 100}",
                          "position": 1 + slip % 2, "what": what,
                          "call": f"call-{slip}", "text": f"Please call back about order {slip}"}
            if of:
                docs[slip]["of"] = of
            if what == "message" and slip > n - 400:
                waiting[slip] = docs[slip]
        write_snapshot(data / "slips" / f"{day.isoformat()}.jsonl", {"stamps": docs},
                       durable=False)
        if d < days - 1:                 # every finished day is in the customer index
            counts = {}
            for x in docs.values():
                counts[x["customer"]] = counts.get(x["customer"], 0) + 1
            index[d + 1] = {"day": day.isoformat(), "customers": counts}
    write_snapshot(data / "index.jsonl", {"days": index}, durable=False)
    write_snapshot(data / "rack.jsonl", {"waiting": waiting, "meta": {1: {"upto": n}}},
                   durable=False)
    os.sync()
    return time.perf_counter() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(base: Path, n: int, count: int) -> dict:
    data = base / f"store-{n}"
    gen = generate(data, n)
    t0 = time.perf_counter()
    clock_now = [TODAY + dt.timedelta(hours=10)]
    tc = TimeClock(data, clock=lambda: clock_now[0])
    rack = Rack(tc)
    opened = time.perf_counter() - t0
    assert tc.last_slip == n and len(rack.waiting()) == 100
    stamp_ms, msg_ms, base_ms = [], [], []
    journal = data / "slips" / f"{TODAY.date().isoformat()}.jsonl"
    plain = os.open(data / "plain.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for i in range(count):
            before = journal.stat().st_size
            t = time.perf_counter()
            tc.stamp("stamp", line="201", customer="cust-1", position=1, call=f"b{i}")
            stamp_ms.append((time.perf_counter() - t) * 1000)
            with open(journal, "rb") as f:   # the very bytes the stamp appended
                f.seek(before)
                line = f.read()
            t = time.perf_counter()
            os.write(plain, line)
            os.fsync(plain)
            base_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            rack.take("202", "cust-2", f"benchmark message {i}", position=1)
            msg_ms.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(plain)
    rack.close()
    tc.close()
    ro = TimeClock(data, readonly=True)
    t = time.perf_counter()
    month = ro.stamps(customer="cust-7", since=(TODAY - dt.timedelta(days=30)).date())
    month_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    rare = ro.stamps(customer="rare")
    rare_ms = (time.perf_counter() - t) * 1000
    ro.close()
    assert month and rare
    return {"n": n, "gen_s": gen, "open_ms": opened * 1000, "month_ms": month_ms,
            "rare_ms": rare_ms,
            "stamp": (statistics.median(stamp_ms), pct(stamp_ms, 99)),
            "message": (statistics.median(msg_ms), pct(msg_ms, 99)),
            "baseline": (statistics.median(base_ms), pct(base_ms, 99))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stamps", type=int, default=300, help="stamps timed per size")
    ap.add_argument("--sizes", default="1000,30000,300000")
    ap.add_argument("--dir", default=None, help="where to build the stores (default: a "
                    "temporary folder beside this script, on the same disk as the checkout)")
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-", dir=args.dir or Path(__file__).parent))
    try:
        print(f"time clock: stamp key to durable stamp, {args.stamps} stamps per store, "
              f"in {base}")
        print(f"{'stored':>8} {'gen s':>6} {'open ms':>8}   "
              f"{'stamp med/p99 ms':>17}   {'message med/p99':>16}   "
              f"{'append+fsync med/p99':>20}   {'cust 30d ms':>11} {'rare all ms':>11}")
        for n in (int(x) for x in args.sizes.split(",")):
            r = run(base, n, args.stamps)
            print(f"{r['n']:>8} {r['gen_s']:>6.1f} {r['open_ms']:>8.1f}   "
                  f"{r['stamp'][0]:>8.2f}/{r['stamp'][1]:<8.2f}   "
                  f"{r['message'][0]:>7.2f}/{r['message'][1]:<8.2f}   "
                  f"{r['baseline'][0]:>10.2f}/{r['baseline'][1]:<9.2f}   "
                  f"{r['month_ms']:>11.1f} {r['rare_ms']:>11.1f}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
