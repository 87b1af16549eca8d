"""switchboard-billing: the month's statements, the bookkeeper's CSV, slips.

    switchboard-billing --month 2026-11 --data-dir var/ --out bills/
    switchboard-billing --month 2026-11 --customers customers.json \\
        --calls calls.jsonl --stamps stamps.jsonl [--counts counts.json] \\
        [--plans plans/plans.toml] --out bills/ [--customer C001] [--printer URL]

``--data-dir`` reads the daemon's own data folder (read only); the file
options read exports and override the folder's records one kind at a time.
``--trace ID`` shows where a disputed call (or slip) went: the line item that
counts it, or why it was not billed, and the record itself.

Writes one PDF and one ESC/POS file per customer and ``bookkeeping-<month>.csv``
into ``--out``; ``--printer`` sends the slips to a serial slip printer
(a device such as /dev/ttyUSB0 or a pyserial URL). ``--json`` prints every
statement with the call ids and slip numbers each amount counts.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from switchboard_tools.office import billing

from firmware.records import datadir, recordset
from firmware.records.times import zone
from firmware.errors import ConfigError
from firmware.config.shipped import shipped
from firmware.logs import add_verbose

from switchboard_tools._common import dumps, log, run


def parser():
    p = argparse.ArgumentParser(prog="switchboard-billing", description=__doc__.split("\n")[0])
    p.add_argument("--month", required=True, help="the month to bill, YYYY-MM")
    p.add_argument("--data-dir", help="the daemon's data folder: calls, stamps, customers, counts, "
                   "schedule log (read only)")
    p.add_argument("--customers", help="customers: JSON list, JSON lines or TinyDB file")
    p.add_argument("--calls", help="call records (same formats)")
    p.add_argument("--stamps", help="time-clock stamps (same formats)")
    p.add_argument("--counts", help="retention's monthly counts of purged records")
    p.add_argument("--plans", help="plans file (default: the shipped plans/plans.toml)")
    p.add_argument("--timezone", help="override the plans file's service.timezone")
    p.add_argument("--customer", action="append", help="only this customer id (repeatable)")
    p.add_argument("--out", help="directory for the PDFs, slips and CSV")
    p.add_argument("--no-detail", action="store_true", help="leave out the pages listing each call")
    p.add_argument("--width", type=int, default=42, help="slip printer columns (42 on 80 mm, 32 on 58 mm)")
    p.add_argument("--printer", help="send the slips to this serial port or pyserial URL")
    p.add_argument("--baud", type=int, default=19200)
    p.add_argument("--trace", action="append", metavar="ID",
                   help="show where a call id or slip number went on the bills, with its record")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_verbose(p)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return run("switchboard-billing", lambda: _main(args), args)


def _main(args) -> int:
    plans_path = args.plans or shipped("plans/plans.toml")
    if plans_path is None:
        raise ConfigError("--plans", "", None, None, message="no plans file: pass --plans FILE")
    cfg = billing.load_plans(plans_path)
    tz = zone(args.timezone, "command line", "--timezone") if args.timezone else cfg.tz
    first, nxt = recordset.parse_month(args.month)
    data = datadir.from_data_dir(args.data_dir, tz, first - timedelta(days=1), nxt,
                                   cfg.billable_outcomes) if args.data_dir \
        else {"customers": None, "calls": None, "stamps": [], "counts": []}
    if args.customers is None and data["customers"] is None:
        raise ConfigError("command line", "--customers", None, None,
                          message="command line: give --customers FILE or --data-dir DIR")
    if args.calls is None and data["calls"] is None:
        raise ConfigError("command line", "--calls", None, None,
                          message="command line: give --calls FILE or --data-dir DIR")
    customers = recordset.load_customers(args.customers, table="customers") if args.customers \
        else data["customers"]
    calls = recordset.load_calls(args.calls, tz, table="calls") if args.calls else data["calls"]
    stamps = recordset.load_stamps(args.stamps, tz, table="stamps") if args.stamps else data["stamps"]
    counts = recordset.load_counts(args.counts, tz, table="counts") if args.counts else data["counts"]
    for i, c in enumerate(customers):
        cfg.plan_for(c, (args.customers, f"[{i}]") if args.customers else
                     (f"{args.data_dir}/customers.jsonl", f"customers.{c['id']}"))
    statements, orphans = billing.bill_month(customers, cfg, args.month, calls, stamps, counts, tz)
    if args.customer:
        want = set(args.customer)
        unknown = want - {c["id"] for c in customers}
        if unknown:
            raise ConfigError("command line", "--customer", sorted(unknown)[0],
                              f"a customer id in {args.customers}")
        statements = [s for s in statements if s.customer["id"] in want]
    files = []
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for st in statements:
            stem = out / f"statement-{args.month}-{st.customer['id']}"
            stem.with_suffix(".pdf").write_bytes(
                billing.to_pdf(st, cfg.service, detail=not args.no_detail, tz=tz))
            stem.with_suffix(".escpos").write_bytes(billing.to_escpos(st, args.width, cfg.service))
            files += [str(stem.with_suffix(".pdf")), str(stem.with_suffix(".escpos"))]
        csv_path = out / f"bookkeeping-{args.month}.csv"
        csv_path.write_text(billing.to_csv(statements), encoding="utf-8", newline="")
        files.append(str(csv_path))
    if args.printer:
        import serial
        try:
            port = serial.serial_for_url(args.printer, baudrate=args.baud, timeout=2, write_timeout=10)
        except (serial.SerialException, ValueError) as e:
            raise ConfigError("command line", "--printer", args.printer,
                              f"a serial port or pyserial URL that opens ({e})") from None
        with port:
            for st in statements:
                port.write(billing.to_escpos(st, args.width, cfg.service))
            port.flush()
    if args.trace:
        found = [billing.trace(statements, orphans, calls, stamps, ref) for ref in args.trace]
        if args.json:
            print(dumps({"ok": True, "month": args.month, "trace": found}))
            return 0
        for t in found:
            if t["record"] is None and not t["found_in"]:
                print(f"{t['ref']}: no such call or slip in {args.month}")
                continue
            for f in t["found_in"] or [{"customer": None, "not_billed": "not on any bill"}]:
                where = f"customer {f['customer']}" if f["customer"] else "no customer"
                what = f"not billed: {f['not_billed']}" if "not_billed" in f else \
                    f"billed as {f['description']}" + (
                        f" at {f['unit_price']}" if f["item"] != "base" else "")
                print(f"{t['ref']}: {where}, {what}")
            print("  record: " + json.dumps(t["record"], sort_keys=True))
        return 0
    totals: dict[str, str] = {}
    for st in statements:
        cur = st.plan.currency
        totals[cur] = str(billing.Decimal(totals.get(cur, "0")) + st.total)
    if args.json:
        print(dumps({"ok": True, "month": args.month, "statements": [s.to_json() for s in statements],
                     "totals": totals, "unattributed": orphans, "files": files}))
        return 0
    for st in statements:
        print(f"{st.customer['id']:>8}  {st.customer['name'][:30]:30}  {billing.money(st.total, st.plan):>12}")
    print(f"{len(statements)} statements for {args.month}; total "
          + ", ".join(f"{v} {k}" for k, v in totals.items()))
    if orphans:
        log.warning("warning: %d records of %s belong to no customer (see --json, key "
                    "unattributed)", len(orphans), args.month)
    if files:
        print(f"wrote {len(files)} files into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
