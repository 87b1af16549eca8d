"""switchboard-customers: add, change, list, show, import and export customers.

    switchboard-customers --data DIR add --id marys-gloves --name "Mary's Gloves" \\
        --line 201 --kind shop --plan "Basic 100" --contract-start 2026-01-01 \\
        --instruction "mon-fri 08:00-17:00=Put orders through" --collect name \\
        --emergency "Mary at home=555-0101" --delivery text --delivery-to 555-0199
    switchboard-customers --data DIR change marys-gloves --notice-date 2026-12-01
    switchboard-customers --data DIR change acme --on-call "Joe=555-0142" --on-call "Ann=555-0143" \
        --callout-retries 3 --callout-retry-after 10
    switchboard-customers --data DIR list | show ID | export FILE.csv | import FILE.csv

The daemon may be running: it reads the customers and picks up changes.
Every command takes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from firmware.config.board import find_board, load_board
from firmware.timeclock.blocklist import BlockList
from firmware.timeclock.customers import (CALLOUT, CustomerError, Customers, detail_lines,
                                          whole_number)
from firmware import logs
from firmware.errors import SwitchboardError
from firmware.logs import add_verbose

DEFAULT_DATA = os.environ.get("SWITCHBOARD_DATA", "var")   # as the daemon's --data-dir

log = logging.getLogger("switchboard.customers")


def _pair(text, a, b):
    left, sep, right = text.partition("=")
    if not sep or not left.strip() or not right.strip():
        raise SystemExit(f"switchboard-customers: {text!r}: expected {a}={b}")
    return left.strip(), right.strip()


def _fields(ns, partial: bool) -> dict:
    """The record fields given on the command line (all for add, some for change)."""
    f = {}
    simple = {"id": "id", "name": "name", "line": "line", "kind": "kind", "answer": "answer",
              "pronounce": "pronounce", "plan": "plan", "contract_start": "contract_start",
              "notice_date": "notice_date", "address": "address"}
    for attr, key in simple.items():
        v = getattr(ns, attr, None)
        if v is not None:
            f[key] = v
    if ns.instruction is not None:
        f["instructions"] = [dict(zip(("when", "text"), _pair(t, "WHEN", "TEXT")))
                             for t in ns.instruction]
    if ns.collect is not None:
        f["collect"] = ns.collect
    for attr in ("emergency", "on_call", "alternate"):
        v = getattr(ns, attr)
        if v is not None:
            f[attr] = [dict(zip(("label", "number"), _pair(t, "NAME", "NUMBER"))) for t in v]
    if ns.holiday is not None:
        f["holidays"] = ns.holiday
    if ns.delivery is not None or ns.delivery_to is not None:
        f["delivery"] = {"method": ns.delivery or "hold", "to": ns.delivery_to}
    if ns.prepaid is not None:
        f["last_month_prepaid"] = ns.prepaid == "yes"
    if ns.record_calls is not None:
        f["record_calls"] = ns.record_calls == "yes"
    for key in CALLOUT:
        v = getattr(ns, key)
        if v is not None:
            f[key] = whole_number(v)        # validate names anything else
    return f


def _record_args(p, add: bool):
    if add:
        p.add_argument("--id", required=True, help="short name: marys-gloves")
    p.add_argument("--name", required=add)
    p.add_argument("--line", required=add)
    p.add_argument("--kind", required=add, help="doctor, plumber, ...")
    p.add_argument("--answer", help='answer phrase, default "{name}, this is {operator}"')
    p.add_argument("--instruction", action="append", metavar="WHEN=TEXT",
                   help='"mon-fri 08:00-17:00=...", "holiday=...", "always=..." (repeat)')
    p.add_argument("--collect", action="append", metavar="WHAT")
    p.add_argument("--pronounce")
    p.add_argument("--emergency", action="append", metavar="NAME=NUMBER")
    p.add_argument("--on-call", dest="on_call", action="append", metavar="NAME=NUMBER")
    p.add_argument("--alternate", action="append", metavar="NAME=NUMBER")
    p.add_argument("--holiday", action="append", metavar="YYYY-MM-DD")
    p.add_argument("--delivery", help="hold, call, text or email")
    p.add_argument("--delivery-to", dest="delivery_to")
    p.add_argument("--plan", required=add)
    p.add_argument("--contract-start", dest="contract_start", required=add)
    p.add_argument("--notice-date", dest="notice_date")
    p.add_argument("--last-month-prepaid", dest="prepaid", choices=("yes", "no"))
    p.add_argument("--record-calls", dest="record_calls", choices=("yes", "no"),
                   help="record the operator's conversations on this line (default no)")
    p.add_argument("--callout-retries", dest="callout_retries", metavar="N",
                   help="an urgent message is called out to the on-call contacts in turn; "
                   "nobody answering, the round is made again N times (0-10, default 2)")
    p.add_argument("--callout-retry-after", dest="callout_retry_after", metavar="MINUTES",
                   help="minutes between those rounds (1-240, default 5)")
    p.add_argument("--address")


def show_text(c: dict) -> str:
    out = [f"{c['name']}  [{c['id']}]  line {c['line']}  ({c['kind']})",
           f"  answer:       {c['answer']}"]
    for r in c["instructions"]:
        out.append(f"  when {r['when']}: {r['text']}")
    out += detail_lines(c)
    d = c["delivery"]
    out.append(f"  messages:     {d['method']}{' ' + d['to'] if d['to'] else ''}")
    out.append(f"  plan:         {c['plan']}, since {c['contract_start']}"
               f"{', notice given ' + c['notice_date'] if c['notice_date'] else ''}"
               f"{', last month prepaid' if c['last_month_prepaid'] else ''}")
    if c.get("record_calls"):
        out.append("  recording:    the operator's calls on this line are recorded")
    if c["on_call"]:
        n, every = (c.get(k, CALLOUT[k][2]) for k in CALLOUT)
        whom = "each on-call contact in turn" if len(c["on_call"]) > 1 else "the on-call contact"
        out.append(f"  urgent:       called out to {whom}"
                   + (f", again {n} time(s) {every} min apart if nobody answers" if n else ""))
    if c["holidays"]:
        out.append(f"  holidays:     {', '.join(c['holidays'])}")
    if c["address"]:
        out.append(f"  address:      {c['address']}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="switchboard-customers", description=__doc__.split("\n")[0])
    ap.add_argument("--data", "--data-dir", default=DEFAULT_DATA,
                    help=f"the daemon's data folder (default {DEFAULT_DATA}, or $SWITCHBOARD_DATA)")
    ap.add_argument("--board", help="check lines against this board (name or file)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    sub = ap.add_subparsers(dest="cmd", required=True)
    _record_args(sub.add_parser("add", help="add a customer"), add=True)
    ch = sub.add_parser("change", help="change fields of a customer")
    ch.add_argument("cid", metavar="ID")
    _record_args(ch, add=False)
    sub.add_parser("list", help="list customers")
    s = sub.add_parser("show", help="show one customer's card")
    s.add_argument("cid", metavar="ID")
    r = sub.add_parser("remove", help="remove a customer")
    r.add_argument("cid", metavar="ID")
    e = sub.add_parser("export", help="write all customers as CSV")
    e.add_argument("file", nargs="?", help="file to write (default: standard output)")
    i = sub.add_parser("import", help="add or replace customers from CSV (all rows or none)")
    i.add_argument("file")
    b = sub.add_parser("block", help="refuse a caller (busy) or flag them as a nuisance")
    b.add_argument("pattern", help="a number; * any digits, ? one (e.g. 5550199, 415555*)")
    b.add_argument("--customer", help="only for this customer's line (default: the whole site)")
    b.add_argument("--nuisance", action="store_true",
                   help="let the call ring, with a warning on the card, instead of refusing it")
    b.add_argument("--note", default="", help="why, shown on the card")
    u = sub.add_parser("unblock", help="take a pattern off the block list")
    u.add_argument("pattern")
    u.add_argument("--customer")
    sub.add_parser("blocked", help="the block list, with how many calls it refused")
    add_verbose(ap)
    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        p.add_argument("--board", default=argparse.SUPPRESS)
        add_verbose(p, sub=True)
    ns = ap.parse_args(argv)
    logs.setup("switchboard-customers", ns.verbose)

    try:
        data = Path(ns.data)
        if not data.is_dir():
            raise CustomerError(data, "--data", str(data), "an existing folder (the daemon's "
                                "data folder; create it first)")
        board = load_board(find_board(ns.board)) if ns.board else None
        readonly = ns.cmd in ("list", "show", "export", "block", "unblock", "blocked")
        cs = Customers(data, readonly=readonly, board=board)
        if ns.cmd in ("block", "unblock") and ns.customer:
            cs.get(ns.customer)                         # an unknown customer is named
        if ns.cmd == "block":
            result = BlockList(data).add(ns.pattern, ns.customer,
                                         "nuisance" if ns.nuisance else "block", ns.note)
        elif ns.cmd == "unblock":
            BlockList(data).remove(ns.pattern, ns.customer)
            result = {"unblocked": ns.pattern, "customer": ns.customer}
        elif ns.cmd == "blocked":
            result = BlockList(data).entries
        elif ns.cmd == "add":
            result = cs.add(_fields(ns, False), source="command line")
        elif ns.cmd == "change":
            result = cs.change(ns.cid, **_fields(ns, True))
        elif ns.cmd == "list":
            result = cs.all()
        elif ns.cmd == "show":
            result = cs.get(ns.cid)
        elif ns.cmd == "remove":
            cs.remove(ns.cid)
            result = {"removed": ns.cid}
        elif ns.cmd == "export":
            text = cs.export_csv()
            if ns.file:
                Path(ns.file).write_text(text)
                result = {"exported": len(cs.all()), "file": ns.file}
            else:
                sys.stdout.write(text)
                return 0
        elif ns.cmd == "import":
            try:
                text = Path(ns.file).read_text(encoding="utf-8-sig")
            except OSError as err:
                raise CustomerError(ns.file, None, message=f"{ns.file}: cannot read: "
                                    f"{err.strerror}") from None
            result = {"imported": [c["id"] for c in cs.import_csv(text, source=ns.file)]}
        cs.close()
    except SwitchboardError as err:
        log.error("%s", err)
        log.debug("details", exc_info=True)
        return 2
    if ns.json:
        print(json.dumps(result, indent=2))
    elif ns.cmd == "list":
        for c in result:
            print(f"{c['line']:>5}  {c['id']:<24} {c['name']}  ({c['kind']})")
    elif ns.cmd == "blocked":
        for e in result:
            print(f"{e['action']:<9} {e['pattern']:<16} {e.get('customer') or '(whole site)':<20} "
                  f"{e['note']}")
        if not result:
            print("nobody is blocked")
    elif ns.cmd in ("show", "add", "change"):
        print(show_text(result))
    else:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
