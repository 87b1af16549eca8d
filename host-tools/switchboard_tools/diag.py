"""switchboard-diag: the technician's diagnostic tool for a running switchboard.

Talks to the daemon's control socket (on the Pi itself, or over ssh:
``ssh pi@board switchboard-diag status``). Every command takes ``--json`` for
scripts; without it the output is for people.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

from firmware import paths


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
        self.sock.sendall((json.dumps({"cmd": cmd, "args": args}) + "\n").encode())

    def read(self) -> dict:
        line = self.file.readline()
        if not line:
            raise DiagError("the daemon closed the connection")
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
            msgs = f"{ln['messages']} ({s['lamps'][f'msg-' + ln['number']]['cadence']})"
        out.append(f"{ln['number']:>6}  {ln['label'][:24]:<24} {ln['kind']:<8} {ln['half']:>4}  "
                   f"{ln['state']:<9} {ln['rings'] or '':>5}  {ln['position'] or '':>3}  "
                   f"{lamp:<7} {msgs}")
    for name, value in s.items():
        if isinstance(value, dict) and name not in ("switches", "lamps", "faults"):
            out.append(f"{name}: " + ", ".join(f"{k}={v}" for k, v in value.items()))
    return "\n".join(out)


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
    p = add("lamp-test", "light every lamp in turn, so a dead bulb shows")
    p.add_argument("--step", type=float, default=0.25, help="seconds per lamp (default 0.25)")
    p = add("key-test", "report each key as it is pressed; keys do nothing else meanwhile")
    p.add_argument("--seconds", type=float, default=60, help="how long to listen (default 60)")
    p.add_argument("--count", type=int, default=None, help="stop after this many key edges")
    p = add("events", "follow the board live")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--count", type=int, default=None, help="stop after this many events")
    p = add("call", "send any control command: call NAME [JSON-ARGS]")
    p.add_argument("name")
    p.add_argument("args", nargs="?", default="{}")
    return ap


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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except DiagError as e:
        print(f"switchboard-diag: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except socket.timeout:
        print("switchboard-diag: the daemon did not answer in time", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
