"""switchboard-balance: propose which lines go to which half of a split board.

    switchboard-balance --board boards/tas100.toml --calls calls.jsonl \\
        --customers customers.json [--hours 8-18] [--measure erlang|calls] \\
        [--out boards/tas100-balanced.toml] [--diff] [--json]

Shows the load of each half and how each kind of customer is spread, before
and after; with ``--out`` writes a copy of the board file in which only the
``half = `` values change (loaded back to prove it is valid), and ``--diff``
prints the change as a unified diff a technician can review and apply.
"""

from __future__ import annotations

import argparse
import sys

from switchboard_tools.office import balance

from firmware.records import datadir, recordset
from firmware.records.times import zone
from firmware.config.board import load_board
from firmware.errors import ConfigError
from firmware.logs import add_verbose

from switchboard_tools._common import dumps, run


def parser():
    p = argparse.ArgumentParser(prog="switchboard-balance", description=__doc__.split("\n")[0])
    p.add_argument("--board", required=True, help="the board file (TOML)")
    p.add_argument("--data-dir", help="the daemon's data folder (read only)")
    p.add_argument("--calls", help="call records: JSON list, JSON lines or TinyDB file")
    p.add_argument("--customers", help="customers, for their kinds (doctor, plumber, ...)")
    p.add_argument("--measure", choices=("erlang", "calls"), default="erlang",
                   help="load as operator time (erlang, default) or calls offered")
    p.add_argument("--hours", help="only calls offered in these hours, e.g. 8-18 (when the board is split)")
    p.add_argument("--timezone", default="UTC")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="a difference up to this share of the load is balanced; then fewest moves win")
    p.add_argument("--out", help="write the patched board file here")
    p.add_argument("--diff", action="store_true", help="print the change as a unified diff")
    p.add_argument("--json", action="store_true")
    add_verbose(p)
    return p


def _hours(text):
    try:
        a, b = (int(x) for x in text.split("-"))
        if 0 <= a < b <= 24:
            return a, b
    except ValueError:
        pass
    raise ConfigError("command line", "--hours", text, "two hours such as 8-18 (0 to 24, first smaller)")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return run("switchboard-balance", lambda: _main(args), args)


def _main(args) -> int:
    board = load_board(args.board)
    tz = zone(args.timezone, "command line", "--timezone")
    if args.calls is None and args.data_dir is None:
        raise ConfigError("command line", "--calls", None, None,
                          message="command line: give --calls FILE or --data-dir DIR")
    data = datadir.from_data_dir(args.data_dir, tz) if args.data_dir else {"calls": [], "customers": []}
    calls = recordset.load_calls(args.calls, tz, table="calls") if args.calls else data["calls"]
    customers = recordset.load_customers(args.customers, table="customers") if args.customers \
        else data["customers"]
    hours = _hours(args.hours) if args.hours else None
    load = balance.line_loads(board, calls, args.measure, hours, tz)
    kinds = balance.line_kinds(board, customers)
    prop = balance.propose(board, load, kinds, tolerance=args.tolerance)
    diff = None
    if args.out:
        diff, _ = balance.write_patched_board(args.board, prop, args.out)
    if args.json:
        out = {"ok": True, "board": str(board.path), "measure": args.measure, **prop.to_json()}
        if args.out:
            out["written"] = args.out
            out["diff"] = diff
        print(dumps(out))
        return 0
    unit = "erlang" if args.measure == "erlang" else "calls"
    b, a = prop.half_loads("before"), prop.half_loads("after")
    print(f"{'':14}{'half 1':>12}{'half 2':>12}{'difference':>12}   ({unit})")
    print(f"{'now':14}{b[1]:12.3f}{b[2]:12.3f}{abs(b[1] - b[2]):12.3f}")
    print(f"{'proposed':14}{a[1]:12.3f}{a[2]:12.3f}{abs(a[1] - a[2]):12.3f}")
    print("kinds of customer (lines in half 1 / half 2):")
    before, after = prop.kind_split("before"), prop.kind_split("after")
    for k in after:
        print(f"  {k:14} now {before[k][0]:3}/{before[k][1]:<3}  proposed {after[k][0]:3}/{after[k][1]:<3}")
    moves = prop.moves
    print(f"{len(moves)} lines move: " + ", ".join(f"{ln} {f}->{t}" for ln, f, t in moves) if moves
          else "no line needs to move")
    if args.out:
        print(f"wrote {args.out} (only 'half =' values changed; it loads)")
        if args.diff:
            print(diff, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
