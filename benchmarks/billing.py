"""How long a month's bills and figures take for a 100-customer board.

    /tmp/venv/bin/python benchmarks/billing.py [--customers 100] [--busy 1.0]

A busy month of records is generated (benchmarks/busy_month.py: about 140
incoming calls a line, message slips and read-backs, wake-up and reminder
calls), written as JSON lines, and then timed:

- baseline: reading the same files and summing the calls per line with json
  alone (what any report costs at least);
- checking the records (firmware.records.recordset), billing every customer, the
  bookkeeper's CSV, the PDF statements (with and without the call pages), the
  ESC/POS slips, the figures and their three PNGs;
- the board balance on boards/tas100.toml (115 lines), and writing the patch.

Each step is timed once after a warm-up run (the PDF and plot steps are slow
enough that one run is steady). Peak memory is the process's maximum RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "host-tools"), str(ROOT / "benchmarks")]

from busy_month import customers as make_customers, month_of_records  # noqa: E402
from switchboard_tools.office import balance  # noqa: E402
from switchboard_tools.office import billing
from firmware.records import figures
from switchboard_tools.office import plots
from firmware.records import recordset
from firmware.config.board import load_board  # noqa: E402


def timed(fn, warm=True):
    if warm:
        fn()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100)
    ap.add_argument("--busy", type=float, default=1.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-billing-"))
    custs = make_customers(args.customers)
    calls_raw, stamps_raw = month_of_records(custs, busy=args.busy)
    (tmp / "calls.jsonl").write_text("".join(json.dumps(r) + "\n" for r in calls_raw))
    (tmp / "stamps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stamps_raw))
    (tmp / "customers.json").write_text(json.dumps(custs))
    print(f"{len(custs)} customers, {len(calls_raw)} call records, {len(stamps_raw)} stamps "
          "(2026-11)")

    def baseline():
        per_line = {}
        for name in ("calls.jsonl", "stamps.jsonl"):
            with open(tmp / name) as f:
                for line in f:
                    r = json.loads(line)
                    per_line[r["line"]] = per_line.get(r["line"], 0) + 1
        return per_line
    rows = []
    t_base, _ = timed(baseline)
    rows.append(("baseline: json read + count per line", t_base))

    cfg = billing.load_plans(ROOT / "plans" / "plans.toml")
    t, loaded = timed(lambda: (recordset.load_customers(tmp / "customers.json"),
                               recordset.load_calls(tmp / "calls.jsonl"),
                               recordset.load_stamps(tmp / "stamps.jsonl")))
    rows.append(("read + check records (recordset)", t))
    cs, calls, stamps = loaded
    t, (sts, _) = timed(lambda: billing.bill_month(cs, cfg, "2026-11", calls, stamps))
    rows.append((f"bill the month ({len(sts)} statements)", t))
    t, _ = timed(lambda: billing.to_csv(sts))
    rows.append(("bookkeeper's CSV", t))
    t, _ = timed(lambda: [billing.to_escpos(s, 42, cfg.service) for s in sts])
    rows.append(("ESC/POS slips, all customers", t))
    t, pdfs = timed(lambda: [billing.to_pdf(s, cfg.service, detail=False) for s in sts], warm=False)
    rows.append(("PDF statements, summary page only", t))
    t, pdfs = timed(lambda: [billing.to_pdf(s, cfg.service, detail=True) for s in sts], warm=False)
    rows.append((f"PDF statements with every call listed ({sum(map(len, pdfs)) // 1024} KiB)", t))
    t, fig = timed(lambda: figures.compute(calls, stamps, cs))
    rows.append(("figures (per line, customer, position, hour)", t))
    out = tmp / "fig"
    out.mkdir()
    t, _ = timed(lambda: (plots.plot_calls_per_hour(fig, out / "h.png"),
                          plots.plot_wait_distribution(fig, out / "w.png"),
                          plots.plot_lines(fig, out / "l.png")), warm=False)
    rows.append(("three PNG plots (matplotlib Agg)", t))

    board = load_board(ROOT / "boards" / "tas100.toml")
    rng = random.Random(7)
    kinds = {ln.number: "office" if ln.kind == "office" else rng.choice(
        ("doctor", "plumber", "tow", "sales", "lawyer", "dentist")) for ln in board.lines}
    load = {ln.number: rng.lognormvariate(0, 0.8) * 0.05 for ln in board.lines}
    t, prop = timed(lambda: balance.propose(board, load, kinds))
    rows.append((f"balance tas100 (115 lines; {len(prop.moves)} moves, "
                 f"imbalance {prop.imbalance('before'):.3f} -> {prop.imbalance():.5f} erlang)", t))
    t, _ = timed(lambda: balance.write_patched_board(ROOT / "boards" / "tas100.toml", prop, tmp / "b.toml"))
    rows.append(("write + reload the patched tas100 board file", t))

    width = max(len(r[0]) for r in rows)
    print(f"{'step':{width}}  {'seconds':>9}  {'x baseline':>10}")
    for name, t in rows:
        print(f"{name:{width}}  {t:9.4f}  {t / t_base:10.1f}")
    # The month's work: records, bills, CSV, slips, detailed PDFs, figures, plots.
    total = sum(t for name, t in rows[1:5]) + sum(t for name, t in rows[6:9])
    print(f"{'a month of bills and figures (all of the above but':{width}}")
    print(f"{'  the summary-only PDFs and the balance)':{width}}  {total:9.4f}  {total / t_base:10.1f}")
    shutil.rmtree(tmp)
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
