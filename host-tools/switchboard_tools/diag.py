"""switchboard-diag: the technician's diagnostic tool for a running switchboard.

Talks to the daemon's control socket (on the Pi itself, or over ssh:
``ssh pi@board switchboard-diag status``). Every command takes ``--json`` for
scripts; without it the output is for people.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys

from firmware import logs
from firmware.logs import add_verbose
from firmware.runtime import paths
from firmware.timeclock.customers import detail_lines


log = logging.getLogger("switchboard.diag")


class DiagError(Exception):
    pass


class Client:
    """One connection to the control socket."""

    def __init__(self, path, timeout=10.0):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except FileNotFoundError:
            raise DiagError(f"no daemon at {self.path}: is it running? "
                            "(start one with: switchboard --sim)") from None
        except (ConnectionRefusedError, PermissionError) as e:
            raise DiagError(f"cannot reach the daemon at {self.path}: {e.strerror}") from None
        self.file = self.sock.makefile("rb")

    def send(self, cmd, **args):
        log.debug("to %s: %s %s", self.path, cmd, json.dumps(args))
        self.sock.sendall((json.dumps({"cmd": cmd, "args": args}) + "\n").encode())

    def read(self) -> dict:
        line = self.file.readline()
        if not line:
            raise DiagError("the daemon closed the connection")
        log.debug("from the daemon: %s", line.decode(errors="replace").rstrip())
        return json.loads(line)

    def call(self, cmd, **args) -> dict:
        self.send(cmd, **args)
        reply = self.read()
        if not reply.get("ok"):
            raise DiagError(reply.get("error", "the daemon refused"))
        return reply.get("result", {})

    def stream(self, cmd, **args):
        """Yield events until the daemon says done (it bounds the wait, not us)."""
        self.sock.settimeout(None)
        self.send(cmd, **args)
        while True:
            reply = self.read()
            if "event" in reply:
                yield reply["event"]
            elif not reply.get("ok"):
                raise DiagError(reply.get("error", "the daemon refused"))
            elif reply.get("done"):
                return

    def close(self):
        self.sock.close()


def _out(args, data, text):
    if args.json:
        print(json.dumps(data, indent=None if args.command in ("events", "key-test", "lamp-test") else 2))
    else:
        print(text)
    sys.stdout.flush()


def _status_text(s) -> str:
    sw = s["switches"]
    out = [f"{s['title']}  ({'simulated' if s.get('sim') else 'GPIO'} board {s['board']}, "
           f"up {s.get('uptime_s', 0):.0f} s)",
           f"secrecy {'ON' if sw['secrecy'] else 'off'}   split {'ON' if sw['split'] else 'off'}"
           f"   fault lamp {s['lamps']['fault']['cadence']}"]
    for p in s["positions"]:
        state = "in service" if p["staffed"] else "not in service"
        out.append(f"position {p['position']}: {state}, on line {p['line'] or '-'}"
                   + (f", dialled {p['digits']}" if p["digits"] else ""))
    if s["faults"]:
        out += [f"FAULT {k}: {v}" for k, v in s["faults"].items()]
    if s["stuck"]:
        out.append("stuck keys (ignored until released): " + ", ".join(s["stuck"]))
    out.append("")
    out.append(f"{'line':>6}  {'label':<24} {'kind':<8} half  {'state':<9} rings  pos  "
               f"{'lamp':<7} msgs")
    for ln in s["lines"]:
        lamp = s["lamps"][f"line-{ln['number']}"]["cadence"]
        msgs = ""
        if ln["kind"] == "customer":
            msgs = f"{ln['messages']} ({s['lamps']['msg-' + ln['number']]['cadence']})"
        out.append(f"{ln['number']:>6}  {ln['label'][:24]:<24} {ln['kind']:<8} {ln['half']:>4}  "
                   f"{ln['state']:<9} {ln['rings'] or '':>5}  {ln['position'] or '':>3}  "
                   f"{lamp:<7} {msgs}")
    for name, value in s.items():
        if name == "timeclock" and isinstance(value, dict):
            out.append(_timeclock_status_text(value))
        elif name == "telephony" and isinstance(value, dict):
            out.append(_telephony_status_text(value))
        elif name == "modems" and isinstance(value, dict):
            for trunk, m in value.items():
                out.append(f"modem trunk {trunk} (line {m.get('line')}, {m.get('device')}): "
                           f"{m.get('state')}"
                           + (f", {m['profile']} ({m.get('maker')} {m.get('identity')})"
                              if m.get("profile") else "")
                           + (f": {m['error']}" if m.get("error") else ""))
        elif isinstance(value, dict) and name not in ("switches", "lamps", "faults"):
            out.append(f"{name}: " + ", ".join(f"{k}={v}" for k, v in value.items()))
    return "\n".join(out)


def _telephony_status_text(t) -> str:
    if t.get("state") != "running":
        return f"telephony: {t.get('state')}" + (f": {t['error']}" if t.get("error") else "")
    out = (f"telephony: front {t['front']}, {len(t['workers'])} PJSUA2 workers x "
           f"{t['calls_per_worker']} calls; capacity {t['capacity']}: {t['in_use']} in use, "
           f"{t['free']} free; {t['turned_away']} turned away")
    for name, tr in t.get("trunks", {}).items():
        out += (f"\n  trunk {name}: " + ("registered" if tr["registered"] else
                f"NOT registered ({tr['code']} {tr['reason']})"
                + (f", retry in {tr['retry_in_s']:g} s" if tr.get("retry_in_s") else "")))
    return out


def _event_text(ev) -> str:
    t = ev.get("type")
    if t == "key":
        return f"key {ev['key']} {'down' if ev['down'] else 'up'}" + \
            (f"  ({ev['note']})" if ev.get("note") else "")
    if t == "line":
        return f"line {ev['line']} {ev['state']}" + \
            (f" position {ev['position']}" if ev.get("position") else "") + \
            (f" rings {ev['rings']}" if ev.get("rings") else "")
    if t == "lamp":
        return f"lamp {ev['lamp']} {ev['cadence']}"
    if t == "switch":
        return f"switch {ev['switch']} {'on' if ev['on'] else 'off'}"
    if t == "notice":
        return f"notice: {ev['text']}"
    if t == "lamp-test":
        return f"lamp {ev['index']}/{ev['of']}: {ev['lamp']} lit"
    rest = {k: v for k, v in ev.items() if k not in ("type", "command")}
    return f"{ev.get('command', t)} " + " ".join(f"{k}={v}" for k, v in rest.items())


def _common(defaults=True):
    # --json and --socket work before or after the command: the sub-commands'
    # copies must not overwrite a value given before the command.
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true",
                   default=False if defaults else argparse.SUPPRESS, help="print JSON for scripts")
    p.add_argument("--socket", default=None if defaults else argparse.SUPPRESS,
                   help="the daemon's control socket (default: as the daemon chooses)")
    add_verbose(p, sub=not defaults)
    return p


def build_parser():
    common = _common(defaults=False)
    ap = argparse.ArgumentParser(prog="switchboard-diag", parents=[_common()],
                                 description="Diagnose and drive a running switchboard.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, help):
        return sub.add_parser(name, help=help, parents=[common], description=help)

    add("status", "every line, lamp, position and switch")
    for name, help in (("press", "press a key and keep it down (simulated board)"),
                       ("release", "let a key go (simulated board)"),
                       ("tap", "press a key and let it go (simulated board)")):
        add(name, help).add_argument("key", help="a key, named as in the board file: "
                                     "line-201, p1-hold, p1-dial-5, secrecy, split")
    p = add("ring", "ring a line as an incoming call would (simulated board)")
    p.add_argument("line")
    p.add_argument("--caller", default=None, help="caller ID to show")
    for name, help in (("hangup", "the caller hangs up (simulated board)"),
                       ("customer-answer", "the customer answers their own phone (simulated)"),
                       ("customer-hangup", "the customer hangs up their phone (simulated)")):
        add(name, help).add_argument("line")
    p = add("busy", "busy a line out, or back in service")
    p.add_argument("line")
    p.add_argument("on", choices=("on", "off"))
    p = add("callback", "dial a number from a customer's card on the office line a "
                        "position has seized")
    p.add_argument("line", help="the customer's line")
    p.add_argument("--contact", default="emergency", choices=("emergency", "on_call", "alternate"))
    p.add_argument("--index", type=int, default=0, help="which of those numbers (default 0)")
    p.add_argument("--position", type=int, default=None,
                   help="the position that seized the office line (default: the line's)")
    p = add("lamp-test", "light every lamp in turn, so a dead bulb shows")
    p.add_argument("--step", type=float, default=0.25, help="seconds per lamp (default 0.25)")
    p = add("key-test", "report each key as it is pressed; keys do nothing else meanwhile")
    p.add_argument("--seconds", type=float, default=60, help="how long to listen (default 60)")
    p.add_argument("--count", type=int, default=None, help="stop after this many key edges")
    p = add("events", "follow the board live")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--count", type=int, default=None, help="stop after this many events")
    _timeclock_parsers(add)
    p = add("test-call", "trunk test: ring a line with a real SIP call, report rang, answered, "
            "and audio both ways (answer it at the board)")
    p.add_argument("line")
    p.add_argument("--answer-s", type=float, default=20, help="how long to wait for an answer")
    p.add_argument("--talk-s", type=float, default=2, help="how long to listen once answered")
    p.add_argument("--echo", action="store_true",
                   help="the board answers by itself and echoes the caller's tone back")
    p = add("transfer", "transfer (patch) the call on a line to a number; release the line "
            "key to leave them talking (at once: blind; after talking to them: attended)")
    p.add_argument("line")
    p.add_argument("number")
    p.add_argument("--consult", action="store_true",
                   help="the caller waits on the hold tone while you talk to them")
    p = add("call", "send any control command: call NAME [JSON-ARGS]")
    p.add_argument("name")
    p.add_argument("args", nargs="?", default="{}")
    return ap


def _test_call_text(r) -> str:
    if "trunk" in r or "off_hook" in r:        # a modem trunk's line: off-hook, dial tone?
        if r.get("error"):
            return f"line {r['line']}: {r['error']}\n  result      FAILED"
        return "\n".join([
            f"line {r['line']} (analog line on a modem):",
            f"  off-hook    {'yes' if r.get('off_hook') else 'no'}",
            "  dial tone   " + ("yes" if r.get("dial_tone") else "no") + (
                f" (DLE d after {r['dial_tone_ms']} ms)" if r.get("dial_tone_ms") is not None else
                (" (heard, no DLE d)" if r.get("dial_tone_heard") else "")),
            "  result      " + ("OK" if r.get("ok") else "FAILED")])

    def level(v):
        return "not measured" if v is None else (f"yes (level {v})" if v else "silence")
    rows = [f"line {r['line']}:",
            f"  rang        {'yes' if r['rang'] else 'no'}"
            + (f" ({r['ring_ms']} ms after the INVITE)" if r.get("ring_ms") is not None else "")
            + (f" (SIP {r['code']})" if r.get("code") else ""),
            f"  answered    {'yes' if r['answered'] else 'no'}"
            + (f" after {r['answer_s']} s" if r.get("answer_s") is not None else ""),
            f"  audio in    {level(r.get('audio_to_board'))}  (caller -> board)",
            f"  audio out   {level(r.get('audio_from_board'))}  (board -> caller)",
            "  result      " + ("OK" if r.get("ok") else "FAILED")]
    return "\n".join(rows)


def run(args) -> int:
    client = Client(args.socket or paths.control_socket())
    try:
        c = args.command
        if c == "status":
            s = client.call("status")
            _out(args, s, _status_text(s))
        elif c in ("press", "release", "tap"):
            r = client.call(c, key=args.key)
            _out(args, r, f"{r['key']} {'down' if r['down'] else 'up'}")
        elif c == "ring":
            r = client.call("ring", line=args.line, caller=args.caller)
            _out(args, r, f"line {r['line']} {r['state']}")
        elif c in ("hangup", "customer-answer", "customer-hangup"):
            r = client.call(c, line=args.line)
            _out(args, r, f"line {r['line']} {r['state']}")
        elif c == "busy":
            r = client.call("busy", line=args.line, on=args.on == "on")
            _out(args, r, f"line {r['line']} {r['state']}")
        elif c == "callback":
            cargs = {"line": args.line, "contact": args.contact, "index": args.index}
            if args.position is not None:
                cargs["position"] = args.position
            r = client.call("callback", **cargs)
            _out(args, r, f"position {r['position']} dialled {r['dialled']} "
                          f"({r['contact'].get('label', '')}) on line {r['on_line']}")
        elif c == "lamp-test":
            if not args.json:
                print("lamp test: watch the board; each lamp lights in turn")
            for ev in client.stream("lamp-test", step_s=args.step, follow=True):
                _out(args, ev, _event_text(ev))
        elif c in ("key-test", "events"):
            if c == "key-test" and not args.json:
                print(f"key test: press each key in turn ({args.seconds:g} s); "
                      "keys do nothing else meanwhile")
            limits = {k: v for k, v in (("seconds", args.seconds), ("count", args.count)) if v}
            for ev in client.stream(c, **limits):
                _out(args, ev, _event_text(ev))
        elif c in TIMECLOCK_COMMANDS:
            _timeclock_run(client, args)
        elif c == "test-call":
            client.sock.settimeout(args.answer_s + args.talk_s + 20)
            r = client.call("test-call", line=args.line, answer_s=args.answer_s,
                            talk_s=args.talk_s, echo=args.echo)
            _out(args, r, _test_call_text(r))
            return 0 if r.get("ok") else 1
        elif c == "transfer":
            r = client.call("transfer", line=args.line, to=args.number, consult=args.consult)
            _out(args, r, f"line {r['line']}: calling {r['to']}; release the line to leave them "
                 "talking")
        elif c == "call":
            try:
                cargs = json.loads(args.args)
            except ValueError:
                raise DiagError(f"call: {args.args!r} is not JSON; expected an object, "
                                'e.g. \'{"line": "201"}\'') from None
            r = client.call(args.name, **cargs)
            _out(args, r, json.dumps(r, indent=2))
        return 0
    finally:
        client.close()


# -- the time clock, the rack and the customers' cards -------------------------
TIMECLOCK_COMMANDS = ("card", "type-message", "take-message", "stamp", "check-in",
                      "read-back", "messages", "operator")


def _timeclock_parsers(add):
    p = add("card", "show the card of the customer on a line")
    p.add_argument("line")
    p.add_argument("--position", type=int, default=None, help="whose operator name to use")
    p = add("type-message", "type a message at a position; the stamp key takes it")
    p.add_argument("text")
    p.add_argument("--position", type=int, default=1)
    p = add("take-message", "stamp a message for a line's customer and rack it")
    p.add_argument("line")
    p.add_argument("text", nargs="?", default=None)
    p.add_argument("--position", type=int, default=1)
    p.add_argument("--customer", default=None, help="for a customer other than the line's")
    p.add_argument("--recording", default=None, help="the call's recording instead of text")
    p = add("stamp", "punch the time clock (as the stamp key does)")
    p.add_argument("--position", type=int, default=1)
    p.add_argument("--line", default=None)
    p = add("check-in", "a customer checks in: the messages waiting for them")
    p.add_argument("line", nargs="?", default=None)
    p.add_argument("--customer", default=None)
    p.add_argument("--caller", default=None, help="recognise the customer by caller ID")
    p = add("read-back", "stamp a waiting message read back: it goes to the dead box")
    p.add_argument("slip", type=int)
    p.add_argument("--position", type=int, default=1)
    p = add("messages", "stamps and messages, by customer, line, date, kind or text")
    for opt in ("customer", "line", "since", "until", "what", "search"):
        p.add_argument("--" + opt, default=None)
    p.add_argument("--waiting", action="store_true", help="only messages still in the rack")
    p = add("operator", "sign an operator on at a position (for the answer phrase)")
    p.add_argument("position", type=int)
    p.add_argument("name")


def _timeclock_status_text(t) -> str:
    if t.get("out_of_service"):
        return f"time clock: OUT OF SERVICE: {t['out_of_service']}"
    waiting = ", ".join(f"{ln}: {n}" for ln, n in t.get("waiting", {}).items()) or "none"
    pr = t.get("printer")
    printer = "none" if pr is None else (f"FAULT {pr['fault']}" if pr["fault"] else "ok") + \
        (f", {pr['waiting']} slips waiting" if pr and pr["waiting"] else "")
    out = [f"time clock: last slip {t.get('last_slip')}; messages waiting: {waiting}; "
           f"printer: {printer}" + (f"; ERROR {t['error']}" if t.get("error") else "")]
    for p, c in t.get("cards", {}).items():
        out.append(f"  position {p} card: {c['name']} (line {c['line']}): \"{c['answer']}\"")
    for ln, c in t.get("offered", {}).items():
        out.append(f"  ringing {ln}: {c['name']}" + (" (checking in)" if c.get("check_in") else ""))
    return "\n".join(out)


def _card_text(line, c) -> str:
    if c is None:
        return f"line {line}: no customer card (add one with switchboard-customers add)"
    out = [f"{c['name']}  (line {c['line']}, {c['kind']})" + ("  CHECK-IN" if c.get("check_in")
                                                           else ""),
           f"  say:          {c['answer']}"]
    if c["instructions"]:
        out.append(f"  instructions: {c['instructions']}")
    out += detail_lines(c)
    if c.get("on_notice"):
        out.append(f"  on notice since {c['on_notice']}")
    d = c["delivery"]
    out.append(f"  messages go:  {d['method']}{' ' + d['to'] if d['to'] else ''}")
    out.append(f"  waiting:      {len(c['waiting'])}")
    for m in c["waiting"]:
        out.append(f"    slip {m['slip']}  {m['time']}  {m['text'] or m['recording']}")
    return "\n".join(out)


def _stamp_text(s) -> str:
    who = s.get("customer") or "-"
    extra = f" of slip {s['of']}" if s.get("of") else ""
    text = f"  {s['text']}" if s.get("text") else ""
    return (f"slip {s['slip']:>6}  {s['time']}  {s['what']:<9}{extra}  line {s.get('line') or '-'}"
            f"  {who}  pos {s.get('position') or '-'}{text}")


def _timeclock_run(client, args):
    c = args.command
    if c == "card":
        r = client.call("card", line=args.line, position=args.position)
        _out(args, r, _card_text(args.line, r["card"]))
    elif c == "type-message":
        r = client.call("type-message", position=args.position, text=args.text)
        _out(args, r, f"position {r['position']}: message typed; press the stamp key")
    elif c in ("take-message", "stamp", "read-back"):
        kw = {"position": args.position}
        if c == "take-message":
            kw.update(line=args.line, text=args.text, customer=args.customer,
                      recording=args.recording)
        elif c == "stamp":
            kw.update(line=args.line)
        else:
            kw.update(slip=args.slip)
        r = client.call(c, **kw)
        _out(args, r, _stamp_text(r["stamp"]))
    elif c == "check-in":
        r = client.call("check-in", line=args.line, customer=args.customer, caller=args.caller)
        lines = [f"{r['name']} (line {r['line']}): {len(r['waiting'])} waiting"]
        lines += ["  " + _stamp_text(m) for m in r["waiting"]]
        _out(args, r, "\n".join(lines))
    elif c == "messages":
        kw = {k: getattr(args, k) for k in ("customer", "line", "since", "until", "what",
                                             "search") if getattr(args, k)}
        r = client.call("messages", waiting=args.waiting, **kw)
        _out(args, r, "\n".join(_stamp_text(s) for s in r["stamps"]) or "no stamps")
    elif c == "operator":
        r = client.call("operator", position=args.position, name=args.name)
        _out(args, r, ", ".join(f"position {p}: {n}" for p, n in r["operators"].items()))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup("switchboard-diag", args.verbose)
    try:
        return run(args)
    except DiagError as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (switchboard-diag status | head): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except socket.timeout:
        log.error("the daemon did not answer in time")
        return 2


if __name__ == "__main__":
    sys.exit(main())
