"""The switchboard daemon: one asyncio loop owns the board's state.

Events reach the loop from the panel (keys), from adapters (telephony, time
clock) and from the control socket; ``BoardState`` turns each into commands;
the loop hands ``SetLamp`` to the panel and every command to the adapters and
to whoever follows the board (the diagnostic tool, the view).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import os
import signal
import sys
import time
from pathlib import Path

from firmware.runtime import control

from firmware.runtime import paths

from firmware.timeclock import adapter as timeclock_adapter
from firmware.config.board import find_board, load_board
from firmware.errors import ConfigError, ControlError, SwitchboardError
from firmware.panel.gpio import Panel
from firmware.core.state import (BoardState, BusyOut, CustomerAnswered, CustomerHungUp, DialNumber, KeyChanged,
                    KeyTest, LampCadence, LampTest, LineChanged, LineCleared, LineRinging,
                    Notice, SetLamp, SwitchChanged, KeyReport)


def event_dict(cmd) -> dict:
    """A command as the plain dict that followers of the board receive."""
    if isinstance(cmd, LampCadence):
        return {"type": "lamp", "lamp": cmd.lamp, "cadence": cmd.cadence.value}
    if isinstance(cmd, LineChanged):
        return {"type": "line", "line": cmd.line, "state": cmd.state.value,
                "position": cmd.position, "rings": cmd.rings}
    if isinstance(cmd, KeyReport):
        return {"type": "key", "key": cmd.key, "down": cmd.down, "note": cmd.note}
    if isinstance(cmd, SwitchChanged):
        return {"type": "switch", "switch": cmd.switch, "on": cmd.on}
    if isinstance(cmd, Notice):
        return {"type": "notice", "text": cmd.text}
    d = {"type": "command", "command": type(cmd).__name__}
    for f in dataclasses.fields(cmd):
        v = getattr(cmd, f.name)
        d[f.name] = v.value if isinstance(v, enum.Enum) else v
    return d


class Daemon:
    """The board's state, its panel, its adapters and its followers, on one loop."""

    def __init__(self, board, panel: Panel, *, sim=None, clock=time.monotonic):
        self.board = board
        self.panel = panel
        self.sim = sim
        self.clock = clock
        self.state = BoardState(board, clock(), keys_down=panel.keys_down())
        self.adapters = []
        self.commands = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._followers: set[asyncio.Queue] = set()
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self.started_at = time.time()
        self.lamp_changes = 0
        for name in ("status", "press", "release", "tap", "ring", "hangup",
                     "customer-answer", "customer-hangup", "busy", "lamp-test", "key-test",
                     "callback"):
            self.commands[name] = getattr(self, "_cmd_" + name.replace("-", "_"))

    # -- wiring ------------------------------------------------------------
    def add_adapter(self, adapter):
        self.adapters.append(adapter)

    def add_command(self, name, handler):
        """A control-socket command: ``async handler(args: dict) -> dict``."""
        self.commands[name] = handler

    def post(self, event):
        """Hand an event to the board's state; safe from any thread."""
        if self.loop is None:
            raise RuntimeError("the daemon is not running")
        self.loop.call_soon_threadsafe(self.handle, event)

    def handle(self, event):
        """Apply one event now (on the loop's thread)."""
        self._apply(self.state.handle(event, self.clock()))
        if self._wake is not None:
            self._wake.set()

    def _apply(self, commands):
        for cmd in commands:
            if isinstance(cmd, SetLamp):
                self.panel.set_lamp(cmd.lamp, cmd.on)
                self.lamp_changes += 1
                continue
            if self._followers:
                ev = event_dict(cmd)
                for q in list(self._followers):
                    if q.qsize() < 10000:    # a follower that stopped reading loses events, not us
                        q.put_nowait(ev)
            for adapter in self.adapters:
                try:
                    adapter.handle(cmd)
                except Exception as e:      # one broken adapter must not stop the board
                    print(f"switchboard: {adapter.name}: {type(e).__name__}: {e}",
                          file=sys.stderr)

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue()
        self._followers.add(q)
        return q

    def unsubscribe(self, q):
        self._followers.discard(q)

    def snapshot(self) -> dict:
        snap = self.state.snapshot(self.clock())
        snap["sim"] = self.sim is not None
        snap["keys"] = [{"name": k.name, "role": k.role, "position": k.position,
                         "line": k.line, "digit": k.digit, "latching": k.latching}
                        for k in self.board.keys.values()]
        snap["uptime_s"] = round(time.time() - self.started_at, 1)
        for adapter in self.adapters:
            try:
                snap[adapter.name] = adapter.status()
            except Exception as e:
                snap[adapter.name] = {"error": str(e)}
        return snap

    async def request(self, name: str, args: dict) -> dict:
        handler = self.commands.get(name)
        if handler is None:
            raise ControlError(f"unknown command {name!r}; commands: "
                               + ", ".join(sorted(self.commands)))
        return await handler(args or {})

    # -- the loop ----------------------------------------------------------
    async def run(self, ready=None):
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._apply(self.state.start(self.clock()))
        self.panel.start(lambda name, down: self.post(KeyChanged(name, down)))
        for adapter in self.adapters:
            adapter.start(self)
        if ready is not None:
            await ready()
        try:
            while not self._stopping.is_set():
                now = self.clock()
                self._apply(self.state.tick(now))
                now = self.clock()
                # Sleep until the state has something to do: an idle board wakes
                # once a second, a flashing one at the interrupter's edges only.
                delay = self.state.next_deadline(now) - now
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), max(delay, 0.001))
                except asyncio.TimeoutError:
                    pass
        finally:
            for adapter in reversed(self.adapters):
                try:
                    adapter.stop()
                except Exception as e:
                    print(f"switchboard: stopping {adapter.name}: {e}", file=sys.stderr)
            for lamp in self.board.lamps:
                self.panel.set_lamp(lamp, False)
            self.panel.flush()

    def stop(self):
        if self._stopping is not None:
            self._stopping.set()
            self._wake.set()

    # -- built-in commands -------------------------------------------------
    def _need_sim(self, what):
        if self.sim is None:
            raise ControlError(f"{what} works on the simulated board only; on a real board "
                               "press the key itself")

    def _line(self, args) -> str:
        line = str(args.get("line", ""))
        if line not in self.board.line_by_number:
            raise ControlError(f"no line {line!r} on the {self.board.name} board; lines: "
                               + ", ".join(ln.number for ln in self.board.lines))
        return line

    def _key(self, args) -> str:
        key = str(args.get("key", ""))
        if key not in self.board.keys:
            raise ControlError(f"no key {key!r} on the {self.board.name} board; keys are named "
                               "as in the board file: line-201, p1-hold, p1-release, p1-stamp, "
                               "p1-dial-5, p1-dial-star, secrecy, split")
        return key

    async def _settle(self):
        # Chained keys are read by the scanner: wait a scan or two for the edge.
        if any(c.type == "74HC165" for c in self.board.chains.values()):
            await asyncio.sleep(2.5 * self.board.scan_ms / 1000.0)
        else:
            await asyncio.sleep(0)

    async def _cmd_status(self, args):
        return self.snapshot()

    async def _cmd_press(self, args):
        self._need_sim("press")
        key = self._key(args)
        self.sim.press(key)
        await self._settle()
        return {"key": key, "down": True}

    async def _cmd_release(self, args):
        self._need_sim("release")
        key = self._key(args)
        self.sim.release(key)
        await self._settle()
        return {"key": key, "down": False}

    async def _cmd_tap(self, args):
        await self._cmd_press(args)
        await asyncio.sleep(self.board.debounce_ms / 1000.0 + 0.01)
        return await self._cmd_release(args)

    async def _cmd_ring(self, args):
        self._need_sim("ring")
        line = self._line(args)
        self.handle(LineRinging(line, args.get("caller")))
        return {"line": line, "state": self.state.lines[line].state.value}

    async def _cmd_hangup(self, args):
        self._need_sim("hangup")
        line = self._line(args)
        self.handle(LineCleared(line, "caller hung up"))
        return {"line": line, "state": self.state.lines[line].state.value}

    async def _cmd_customer_answer(self, args):
        self._need_sim("customer-answer")
        line = self._line(args)
        self.handle(CustomerAnswered(line))
        return {"line": line, "state": self.state.lines[line].state.value}

    async def _cmd_customer_hangup(self, args):
        self._need_sim("customer-hangup")
        line = self._line(args)
        self.handle(CustomerHungUp(line))
        return {"line": line, "state": self.state.lines[line].state.value}

    async def _cmd_busy(self, args):
        line = self._line(args)
        on = args.get("on", True)
        if not isinstance(on, bool):
            raise ControlError(f"busy: on = {on!r}: expected true or false")
        self.handle(BusyOut(line, on))
        return {"line": line, "state": self.state.lines[line].state.value}

    async def _cmd_lamp_test(self, args):
        step = args.get("step_s", 0.25)
        if not isinstance(step, (int, float)) or not 0.01 <= step <= 10:
            raise ControlError(f"lamp-test: step_s = {step!r}: expected 0.01 to 10 seconds")
        self.handle(LampTest(float(step)))
        return {"lamps": list(self.board.lamps), "step_s": step,
                "seconds": round(step * len(self.board.lamps), 2)}

    async def _cmd_callback(self, args):
        """Call a customer back: dial a number from their card on a seized office line."""
        line = self._line(args)
        which = args.get("contact", "emergency")
        if which not in ("emergency", "on_call", "alternate"):
            raise ControlError(f"callback: contact = {which!r}: expected emergency, on_call "
                               "or alternate")
        index = args.get("index", 0)
        position = args.get("position", self.state.serving_position(line))
        if position not in self.state.positions:
            raise ControlError(f"callback: position = {position!r}: expected one of "
                               + ", ".join(map(str, self.state.positions)))
        if "card" not in self.commands:
            raise ControlError("callback: no customer records on this board (time clock off)")
        card = (await self.request("card", {"line": line})).get("card") or {}
        numbers = card.get(which) or []
        if not isinstance(index, int) or not 0 <= index < len(numbers):
            raise ControlError(f"callback: line {line}'s card has {len(numbers)} {which} "
                               f"number(s); index = {index!r}")
        contact = numbers[index]
        digits = "".join(ch for ch in str(contact.get("number", "")) if ch.isdigit() or ch in "*")
        if not digits:
            raise ControlError(f"callback: {contact!r} has no number to dial")
        before = self.state.positions[position].digits
        self.handle(DialNumber(position, digits))
        if self.state.positions[position].digits == before:
            raise ControlError(f"callback: position {position} has no office line seized: "
                               "press an idle office line's key first")
        return {"line": line, "position": position, "contact": contact, "dialled": digits,
                "on_line": self.state.positions[position].line}

    async def _cmd_key_test(self, args):
        on = args.get("on", True)
        if not isinstance(on, bool):
            raise ControlError(f"key-test: on = {on!r}: expected true or false")
        self.handle(KeyTest(on))
        return {"key_test": on}


def choose_panel(board, want_sim: bool, pin_factory: str | None):
    """Return (panel, sim, message): the real pins when there are some, else the simulator."""
    from firmware.panel.sim import SimBoard
    if not want_sim:
        from gpiozero import Device
        try:
            if pin_factory:
                os.environ["GPIOZERO_PIN_FACTORY"] = pin_factory
            factory = Device._default_pin_factory()
        except Exception as e:   # gpiozero raises BadPinFactory, ImportError, ...
            msg = (f"no GPIO on this machine ({type(e).__name__}: {e}); running the "
                   "simulated board instead (pass --sim to choose it)")
        else:
            return Panel(board, pin_factory=factory), None, None
    else:
        msg = None
    sim = SimBoard(board)
    return Panel(board, pin_factory=sim.factory), sim, msg


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        prog="switchboard",
        description="Run an answering-service switchboard: keys and lamps on GPIO, "
                    "a control socket for switchboard-diag, and the board's view.")
    ap.add_argument("--board", default=os.environ.get("SWITCHBOARD_BOARD", "desk"),
                    help="board file, or a shipped board's name (desk, tas100); default desk")
    ap.add_argument("--sim", action="store_true",
                    help="run the simulated board (gpiozero MockFactory) instead of real pins")
    ap.add_argument("--pin-factory", default=None,
                    help="gpiozero pin factory (lgpio, rpigpio, pigpio, native); "
                         "default: GPIOZERO_PIN_FACTORY or gpiozero's choice")
    ap.add_argument("--socket", default=None, help="control socket path (default: "
                    "$SWITCHBOARD_SOCKET, /run/switchboard/control.sock or a per-user one)")
    ap.add_argument("--web-allow-host", action="append", default=[], metavar="NAME",
                    help="another name the view may be reached by (e.g. the Pi's LAN DNS "
                         "name); repeatable")
    ap.add_argument("--web-host", default="127.0.0.1",
                    help="address the board's view listens on (default 127.0.0.1)")
    ap.add_argument("--web-port", type=int, default=8557,
                    help="port of the board's view (0 picks a free one; default 8557)")
    ap.add_argument("--no-web", action="store_true", help="do not serve the board's view")
    ap.add_argument("--site", default=os.environ.get("SWITCHBOARD_SITE"),
                    help="site file (trunks, numbers, headsets): starts the telephony, e.g. "
                         "boards/desk.site.toml; without it calls are only simulated")
    ap.add_argument("--sip-port", type=int, default=None,
                    help="override the site file's front port (0 picks a free one)")
    ap.add_argument("--data-dir", default=None,
                    help="where records are kept (default: $SWITCHBOARD_DATA or ./var)")
    timeclock_adapter.add_arguments(ap)
    return ap.parse_args(argv)


async def _amain(args) -> int:
    board = load_board(find_board(args.board))
    panel, sim, msg = choose_panel(board, args.sim, args.pin_factory)
    if msg:
        print(f"switchboard: {msg}", file=sys.stderr)
    daemon = Daemon(board, panel, sim=sim)
    # Absolute: helpers such as Kamailio run in a directory of their own.
    daemon.data_dir = Path(args.data_dir or os.environ.get("SWITCHBOARD_DATA", "var")).resolve()
    daemon.args = args
    daemon.add_adapter(timeclock_adapter.from_args(args, daemon.data_dir))
    if args.site:
        from firmware.config.site import load_site
        try:
            from firmware.telephony.adapter import TelephonyAdapter
        except ImportError as e:
            raise SwitchboardError(
                f"--site needs PJSUA2 for the telephony ({e}): pip install pjsua2-python on "
                "x86_64, or build pjproject's Python binding on a Pi (README, \"On a Raspberry "
                "Pi: building pjproject\"); or start without --site") from None
        telephony = TelephonyAdapter(board, load_site(args.site, board), port=args.sip_port)
        daemon.add_adapter(telephony)
        telephony.register_commands(daemon)
        # Call records older than 30 days go; their counts stay for billing.
        from firmware.records.retention import CallRetentionAdapter
        daemon.add_adapter(CallRetentionAdapter(lambda: telephony.records, daemon.data_dir))
    # Wake-up and reminder calls: the schedule is kept in the data directory.
    from firmware.records.recordset import zone
    from firmware.schedule.scheduler import ScheduleAdapter, clock_from_env
    daemon.add_adapter(ScheduleAdapter(daemon.data_dir / "schedule.json",
                                       zone(os.environ.get("SWITCHBOARD_TZ"), "SWITCHBOARD_TZ", ""),
                                       clock=clock_from_env()))
    from firmware.records import figures
    figures.add_command(daemon, zone(os.environ.get("SWITCHBOARD_TZ"), "SWITCHBOARD_TZ", ""))
    sock_path = Path(args.socket) if args.socket else paths.control_socket()
    web_runner = None
    server = None

    async def ready():
        nonlocal server, web_runner
        server = await control.serve(daemon, sock_path)
        url = None
        if not args.no_web:
            from firmware.runtime import web
            web_runner, url = await web.start_web(daemon, args.web_host, args.web_port,
                                                  allowed_hosts=tuple(args.web_allow_host))
        kind = "simulated" if sim is not None else "GPIO"
        print(f"switchboard: ready: board {board.name} ({kind}), control socket {sock_path}"
              + (f", view {url}" if url else ""), flush=True)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stop)
    try:
        await daemon.run(ready)
    finally:
        if server is not None:
            server.close()
            control.remove_socket(sock_path)
        if web_runner is not None:
            await web_runner.cleanup()
        panel.close()
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(_amain(args))
    except (ConfigError, SwitchboardError, OSError) as e:
        print(f"switchboard: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
