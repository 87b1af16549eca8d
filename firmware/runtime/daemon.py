"""The switchboard daemon: one asyncio loop owns the board's state.

Events reach the loop from the panel (keys), from adapters (telephony, time
clock) and from the control socket; ``BoardState`` turns each into commands;
the loop hands ``SetLamp`` to the panel and every command to the adapters and
to whoever follows the board (the diagnostic tool, the view).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import logging
import sys
import time
from pathlib import Path

from firmware.core.state import (BoardState, BusyOut, CustomerAnswered, CustomerHungUp,
                                 DialNumber, Fault, KeyChanged, KeyReport, KeyTest, LampCadence, LampTest,
                                 LineChanged, LineCleared, LineRinging, Notice, SetLamp,
                                 SwitchChanged)
from firmware.errors import ControlError
from firmware.panel.gpio import Panel
from firmware.runtime import control
from firmware.runtime.adapter import Adapter, Context
from firmware.runtime.commands import KEY, LINE, Arg, Command, Commands

log = logging.getLogger("switchboard")


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

    def __init__(self, board, panel: Panel, *, sim=None, clock=time.monotonic,
                 data_dir: Path | None = None):
        self.board = board
        self.panel = panel
        self.sim = sim
        self.clock = clock
        self.data_dir = data_dir
        self.state = BoardState(board, clock(), keys_down=panel.keys_down())
        self.adapters: list[Adapter] = []
        self.commands = Commands(board)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._followers: set[asyncio.Queue] = set()
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self.started_at = time.time()
        self.lamp_changes = 0
        for cmd in self._builtin_commands():
            self.commands.add(cmd)

    # -- wiring ------------------------------------------------------------
    def add_adapter(self, adapter: Adapter):
        """An adapter (``firmware.runtime.adapter``): its commands now, its start with the loop."""
        self.adapters.append(adapter)
        for cmd in adapter.commands():
            self.commands.add(cmd)

    def add_command(self, command: Command):
        """A control-socket command that belongs to no adapter (``firmware.runtime.commands``)."""
        self.commands.add(command)

    def context(self, adapter) -> Context:
        """What ``adapter`` is given when the loop starts."""
        return Context(board=self.board, data_dir=self.data_dir, post=self.post,
                       clock=self.clock, loop=self.loop, state=self.state,
                       log=logging.getLogger(f"switchboard.{adapter.name}"))

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
                    log.error("%s: %s: %s", adapter.name, type(e).__name__, e)
                    log.debug("%s: handling %r", adapter.name, cmd, exc_info=True)

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
        """Run a control command (checked against its declared arguments)."""
        return await self.commands.run(name, args or {})

    # -- the loop ----------------------------------------------------------
    async def run(self, ready=None):
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._apply(self.state.start(self.clock()))
        # Chain faults (a wrong marker, a bad loop-back) light the fault lamp.
        self.panel.start(lambda name, down: self.post(KeyChanged(name, down)),
                         lambda source, message: self.post(Fault(source, message)))
        for adapter in self.adapters:
            adapter.start(self.context(adapter))
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
                    log.error("stopping %s: %s", adapter.name, e)
            for lamp in self.board.lamps:
                self.panel.set_lamp(lamp, False)
            self.panel.flush()

    def stop(self):
        if self._stopping is not None:
            self._stopping.set()
            self._wake.set()

    # -- built-in commands -------------------------------------------------
    def _builtin_commands(self) -> list[Command]:
        line = Arg("line", LINE, required=True)
        key = Arg("key", KEY, required=True)
        follow = (Arg("seconds", float, min=0.001, expected="a positive number"),
                  Arg("count", int, min=1, expected="a positive number"))
        return [
            Command("status", self._cmd_status, help="the whole board"),
            Command("press", self._cmd_press, (key,), "a key goes down (simulated board)"),
            Command("release", self._cmd_release, (key,), "a key comes up (simulated board)"),
            Command("tap", self._cmd_tap, (key,), "press and release (simulated board)"),
            Command("ring", self._cmd_ring, (line, Arg("caller")),
                    "a call comes in on a line (simulated board)"),
            Command("hangup", self._cmd_hangup, (line,), "the caller hangs up (simulated board)"),
            Command("customer-answer", self._cmd_customer_answer, (line,),
                    "the customer answers their own phone (simulated board)"),
            Command("customer-hangup", self._cmd_customer_hangup, (line,),
                    "the customer hangs up (simulated board)"),
            Command("busy", self._cmd_busy, (line, Arg("on", bool, default=True)),
                    "busy a line out, or back in"),
            Command("lamp-test", self._cmd_lamp_test,
                    (Arg("step_s", float, default=0.25, min=0.01, max=10,
                         expected="0.01 to 10 seconds"), Arg("follow", bool)),
                    "light every lamp in turn",
                    stream=functools.partial(control.lamp_test_stream, self),
                    streams=lambda args: bool(args.get("follow"))),
            Command("key-test", self._cmd_key_test, (Arg("on", bool, default=True), *follow),
                    "report each key as it is pressed; the keys do nothing else meanwhile",
                    stream=functools.partial(control.key_test_stream, self)),
            Command("events", self._cmd_events, follow, "follow the board live",
                    stream=functools.partial(control.events_stream, self)),
            Command("callback", self._cmd_callback,
                    (line, Arg("contact", default="emergency",
                               choices=("emergency", "on_call", "alternate"),
                               expected="emergency, on_call or alternate"),
                     Arg("index", int, default=0, min=0), Arg("position", int)),
                    "dial a number from the line's customer card on a seized office line"),
        ]

    def _need_sim(self, what):
        if self.sim is None:
            raise ControlError(f"{what} works on the simulated board only; on a real board "
                               "press the key itself")

    async def _settle(self):
        # Chained keys are read by the scanner and taken when two scans agree: wait
        # for three more scans (one may have begun before the edge), at most 2 s.
        if any(c.type == "74HC165" for c in self.board.chains.values()):
            target = self.panel.scans + 3
            deadline = time.monotonic() + 2.0
            while self.panel.scans < target and time.monotonic() < deadline:
                await asyncio.sleep(self.board.scan_ms / 1000.0)
        await asyncio.sleep(0)                   # the key's event, posted by the scan

    async def _cmd_status(self, args):
        return self.snapshot()

    async def _cmd_events(self, args):
        raise ControlError("events: follows the board on the control socket only "
                           "(switchboard-diag events)")

    async def _cmd_press(self, args):
        self._need_sim("press")
        self.sim.press(args["key"])
        await self._settle()
        return {"key": args["key"], "down": True}

    async def _cmd_release(self, args):
        self._need_sim("release")
        self.sim.release(args["key"])
        await self._settle()
        return {"key": args["key"], "down": False}

    async def _cmd_tap(self, args):
        await self._cmd_press(args)
        await asyncio.sleep(self.board.debounce_ms / 1000.0 + 0.01)
        return await self._cmd_release(args)

    def _line_event(self, what, event):
        self._need_sim(what)
        self.handle(event)
        return {"line": event.line, "state": self.state.lines[event.line].state.value}

    async def _cmd_ring(self, args):
        return self._line_event("ring", LineRinging(args["line"], args.get("caller")))

    async def _cmd_hangup(self, args):
        return self._line_event("hangup", LineCleared(args["line"], "caller hung up"))

    async def _cmd_customer_answer(self, args):
        return self._line_event("customer-answer", CustomerAnswered(args["line"]))

    async def _cmd_customer_hangup(self, args):
        return self._line_event("customer-hangup", CustomerHungUp(args["line"]))

    async def _cmd_busy(self, args):
        line = args["line"]
        self.handle(BusyOut(line, args["on"]))
        return {"line": line, "state": self.state.lines[line].state.value}

    async def _cmd_lamp_test(self, args):
        step = args["step_s"]
        self.handle(LampTest(step))
        return {"lamps": list(self.board.lamps), "step_s": step,
                "seconds": round(step * len(self.board.lamps), 2)}

    async def _cmd_callback(self, args):
        """Call a customer back: dial a number from their card on a seized office line."""
        line, which, index = args["line"], args["contact"], args["index"]
        position = args.get("position", self.state.serving_position(line))
        if position not in self.state.positions:
            raise ControlError(f"callback: position = {position!r}: expected one of "
                               + ", ".join(map(str, self.state.positions)))
        if "card" not in self.commands:
            raise ControlError("callback: no customer records on this board (time clock off)")
        card = (await self.request("card", {"line": line})).get("card") or {}
        numbers = card.get(which) or []
        if not 0 <= index < len(numbers):
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
        self.handle(KeyTest(args["on"]))
        return {"key_test": args["on"]}


def main(argv=None) -> int:
    """The ``switchboard`` command (``python -m firmware.runtime.daemon``): see ``firmware.app``."""
    from firmware.app import main as app_main
    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main())
