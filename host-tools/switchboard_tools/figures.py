"""switchboard-figures: the supervisor's figures as PNG plots and JSON.

    switchboard-figures --calls calls.jsonl [--stamps stamps.jsonl] \\
        [--customers customers.json] [--from 2026-11-01] [--to 2026-12-01] \\
        --out figures/ [--json]

Writes ``calls-per-hour.png``, ``time-to-answer.png``, ``busiest-lines.png``
and ``figures.json`` (the same numbers, for the board's view) into ``--out``.
Without ``--out`` it prints the totals (or, with ``--json``, all the figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, time
from pathlib import Path

from firmware.records import figures
from switchboard_tools.office import plots

from firmware.records import datadir, recordset
from firmware.records.times import zone
from firmware.errors import ConfigError
from firmware.logs import add_verbose

from switchboard_tools._common import dumps, run


def parser():
    p = argparse.ArgumentParser(prog="switchboard-figures", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", help="the daemon's data folder (read only)")
    p.add_argument("--calls", help="call records: JSON list, JSON lines or TinyDB file")
    p.add_argument("--stamps", help="time-clock stamps (same formats)")
    p.add_argument("--customers", help="customers (to name lines by customer)")
    p.add_argument("--from", dest="start", help="first day, YYYY-MM-DD (local)")
    p.add_argument("--to", dest="end", help="day after the last, YYYY-MM-DD (local)")
    p.add_argument("--timezone", default="UTC", help="hours of the day in this zone (default UTC)")
    p.add_argument("--line", action="append", help="only this line (repeatable)")
    p.add_argument("--out", help="directory for the PNGs and figures.json")
    p.add_argument("--json", action="store_true")
    add_verbose(p)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return run("switchboard-figures", lambda: _main(args), args)


def _main(args) -> int:
    tz = zone(args.timezone, "command line", "--timezone")
    if args.calls is None and args.data_dir is None:
        raise ConfigError("command line", "--calls", None, None,
                          message="command line: give --calls FILE or --data-dir DIR")
    data = datadir.from_data_dir(args.data_dir, tz) if args.data_dir else \
        {"calls": [], "stamps": [], "customers": []}
    calls = recordset.load_calls(args.calls, tz, table="calls") if args.calls else data["calls"]
    stamps = recordset.load_stamps(args.stamps, tz, table="stamps") if args.stamps else data["stamps"]
    customers = recordset.load_customers(args.customers, table="customers") if args.customers \
        else data["customers"]
    if args.line:
        want = set(args.line)
        calls = [c for c in calls if c.line in want]
        stamps = [s for s in stamps if s.line in want]
    bound = lambda v, k: None if v is None else datetime.combine(       # noqa: E731
        recordset.parse_date(v, ("command line", k)), time(), tz)
    data = figures.compute(calls, stamps, customers, tz, bound(args.start, "--from"), bound(args.end, "--to"))
    files = []
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, fn in (("calls-per-hour.png", plots.plot_calls_per_hour),
                         ("time-to-answer.png", plots.plot_wait_distribution),
                         ("busiest-lines.png", plots.plot_lines)):
            fn(data, out / name)
            files.append(str(out / name))
        (out / "figures.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
        files.append(str(out / "figures.json"))
    if args.json:
        print(dumps({"ok": True, "figures": data, "files": files}))
        return 0
    t = data["totals"]
    print(f"{data['period']['days']} days: {t['offered']} calls offered, {t['answered']} answered "
          f"({t['answer_rate']} %), {t['abandoned']} abandoned")
    print(f"time to answer: average {t['wait_mean_s']} s, 90 % within {t['wait_p90_s']} s; "
          f"abandoned calls rang {t['abandoned_rang_mean_s']} s on average")
    print(f"messages taken {t['messages']}, read back {t['read_backs']}")
    for f in files:
        print(f"wrote {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
