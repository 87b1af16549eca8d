"""switchboard-messages: look through the time clock's stamps and the message rack.

    switchboard-messages --data DIR list [--customer ID] [--line 201] [--since 2026-11-01]
                                         [--until 2026-11-30] [--what message] [--search TEXT]
    switchboard-messages --data DIR waiting [--customer ID]        what is in the rack
    switchboard-messages --data DIR print CUSTOMER [--since ...] [--printer /dev/ttyUSB0]
    switchboard-messages --data DIR export [FILE.csv] [filters as for list]
    switchboard-messages --data DIR verify                         checksums, gapless slips
    switchboard-messages --data DIR counts 2026-11                 billing counts for a month

Read-only: safe while the daemon runs. Every command takes ``--json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
from pathlib import Path

from firmware.timeclock.customers import Customers
from firmware import logs
from firmware.errors import SwitchboardError
from firmware.logs import add_verbose
from firmware.timeclock.rack import Rack
from firmware.records.journal import StoreError, verify_journal
from firmware.timeclock.clock import FIELDS, WHATS, TimeClock, parse_day

DEFAULT_DATA = os.environ.get("SWITCHBOARD_DATA", "var")
CSV_FIELDS = FIELDS + ("of", "recording", "status", "unverified")

log = logging.getLogger("switchboard.messages")


def _filters(p):
    p.add_argument("--customer")
    p.add_argument("--line")
    p.add_argument("--since", help="YYYY-MM-DD (inclusive)")
    p.add_argument("--until", help="YYYY-MM-DD (inclusive)")
    p.add_argument("--what", choices=WHATS)
    p.add_argument("--search", help="text the message contains (any case)")


def _select(tc, rack, ns, customer=None):
    since = parse_day(ns.since, "--since") if ns.since else None
    until = parse_day(ns.until, "--until") if ns.until else None
    if since and until and since > until:
        raise SwitchboardError(f"--since {ns.since} is after --until {ns.until}")
    stamps = tc.stamps(since=since, until=until, customer=customer or ns.customer,
                       line=getattr(ns, "line", None), what=getattr(ns, "what", None),
                       search=getattr(ns, "search", None))
    waiting = {m["slip"] for m in rack.waiting()}
    read = {s["of"]: s["slip"] for s in tc.stamps(since=since, what="read-back")}
    for s in stamps:
        if s["what"] == "message":
            s["status"] = ("waiting" if s["slip"] in waiting else
                           f"read back, slip {read[s['slip']]}" if s["slip"] in read else
                           "read back")
    return stamps


def _line(s) -> str:
    extra = f" of {s['of']}" if s.get("of") else ""
    status = f"  [{s['status']}]" if s.get("status") else ""
    text = s.get("text") or (f"(recording {s['recording']})" if s.get("recording") else "")
    when = f"{s['time']}?" if s.get("unverified") else s["time"]   # ? : clock was not set
    return (f"{s['slip']:>7}  {when}  {s['what']:<9}{extra:<8} {s.get('line') or '-':>5}  "
            f"{s.get('customer') or '-':<20} {text}{status}")


def _slip_text(s, name) -> str:
    out = [f"--- {s['what'].upper()}  No. {s['slip']}  {s['time']}"
           + ("  (time unverified: clock not set)" if s.get("unverified") else ""),
           f"    {name or s.get('customer') or '-'}  line {s.get('line') or '-'}  "
           f"position {s.get('position') or '-'}"]
    if s.get("text"):
        out.append(f"    {s['text']}")
    if s.get("recording"):
        out.append(f"    recording: {s['recording']}")
    if s.get("status"):
        out.append(f"    {s['status']}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="switchboard-messages",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--data", "--data-dir", default=DEFAULT_DATA,
                    help=f"the daemon's data folder (default {DEFAULT_DATA} or $SWITCHBOARD_DATA)")
    ap.add_argument("--json", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    _filters(sub.add_parser("list", help="stamps and messages, filtered"))
    w = sub.add_parser("waiting", help="messages in the rack, waiting for check-in")
    w.add_argument("--customer")
    p = sub.add_parser("print", help="a customer's messages as slips (or on a slip printer)")
    p.add_argument("customer")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--waiting", action="store_true", help="only those still in the rack")
    p.add_argument("--printer", help="serial port of an ESC/POS printer to print them on")
    p.add_argument("--speed", type=int, default=9600)
    p.add_argument("--paper-mm", type=int, default=58)
    e = sub.add_parser("export", help="stamps as CSV")
    e.add_argument("file", nargs="?")
    _filters(e)
    sub.add_parser("verify", help="check every journal's checksums and the slip numbers")
    c = sub.add_parser("counts", help="per-customer counts for a month (billing)")
    c.add_argument("month", help="YYYY-MM")
    add_verbose(ap)
    for sp in sub.choices.values():
        sp.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        add_verbose(sp, sub=True)
    ns = ap.parse_args(argv)
    logs.setup("switchboard-messages", ns.verbose)

    try:
        data = Path(ns.data)
        tc = TimeClock(data, readonly=True)
        rack = Rack(tc)
        code = 0
        if ns.cmd == "list":
            result = _select(tc, rack, ns)
            text = "\n".join(_line(s) for s in result) or "no stamps match"
        elif ns.cmd == "waiting":
            result = rack.waiting(customer=ns.customer)
            text = "\n".join(_line(s) for s in result) or "the rack is empty"
        elif ns.cmd == "print":
            names = {c["id"]: c["name"] for c in Customers(data, readonly=True).all()}
            if ns.customer not in names and not tc.stamps(customer=ns.customer):
                raise SwitchboardError(f"customer {ns.customer!r}: no such customer and no "
                                       "stamps for it (switchboard-customers list)")
            if ns.waiting:
                result = rack.waiting(customer=ns.customer)
            else:
                ns.what = "message"
                result = _select(tc, rack, ns, customer=ns.customer)
            if ns.printer:
                _to_printer(ns, result, names)
            text = "\n".join(_slip_text(s, names.get(s.get("customer"))) for s in result) \
                or f"no messages for {ns.customer}"
        elif ns.cmd == "export":
            result = _select(tc, rack, ns)
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore",
                               lineterminator="\n")
            w.writeheader()
            w.writerows(result)
            if ns.file:
                Path(ns.file).write_text(buf.getvalue())
                text = f"{len(result)} stamps written to {ns.file}"
                result = {"exported": len(result), "file": ns.file}
            elif ns.json:
                pass
            else:
                sys.stdout.write(buf.getvalue())
                return 0
        elif ns.cmd == "verify":
            result = tc.verify()
            for name in ("clock.jsonl", "rack.jsonl", "customers.jsonl"):
                if (data / name).exists():
                    rep = verify_journal(data / name)
                    result["problems"] += [f"{rep['path']}: byte {b}: line fails its checksum"
                                           for b in rep["bad"]]
            result["ok"] = not result["problems"]
            text = (f"{'OK' if result['ok'] else 'PROBLEMS'}: {result['stamps']} stamps in "
                    f"{result['days']} day journals, slips {result['first']}-{result['last']}")
            text = "\n".join([text] + result["problems"] + result["notes"])
            code = 0 if result["ok"] else 1
        elif ns.cmd == "counts":
            if len(ns.month) != 7 or ns.month[4] != "-":
                raise SwitchboardError(f"month {ns.month!r}: expected YYYY-MM")
            parse_day(ns.month + "-01", "month")
            result = tc.monthly_counts(ns.month)
            text = "\n".join(f"{c or '(no customer)':<24} " + "  ".join(
                f"{w} {n}" for w, n in v.items()) for c, v in result.items()) or "no stamps"
    except (SwitchboardError, StoreError) as err:
        log.error("%s", err)
        log.debug("details", exc_info=True)
        return 2
    print(json.dumps(result, indent=2) if ns.json else text)
    return code


def _to_printer(ns, stamps, names):
    from firmware.timeclock.printer import SlipPrinter, printer_config, render_slip
    cfg = printer_config({"port": ns.printer, "speed": ns.speed, "paper_mm": ns.paper_mm},
                         "command line", "--printer")
    p = SlipPrinter(cfg, os.devnull)
    p.check()
    for s in stamps:
        p._ser.write(render_slip(s, cfg["columns"], names.get(s.get("customer"))))
    p._ser.flush()
    p._close()


if __name__ == "__main__":
    sys.exit(main())
