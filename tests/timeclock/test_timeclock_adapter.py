"""The time clock adapter driven by the real BoardState, as the daemon drives it."""

import asyncio
import datetime as dt
import os
import queue
import time

import pytest

from firmware.config.board import find_board, load_board
from firmware.timeclock.customers import Customers
from firmware.errors import ControlError
from firmware.core.state import BoardState, CardChanged, Fault, KeyChanged, LineRinging, ShowCard
from firmware.timeclock.clock import TimeClock
from firmware.timeclock.adapter import TimeClockAdapter
from firmware.runtime.adapter import Context
from firmware.runtime.commands import Commands

from test_customers import MARY

TZ = dt.timezone(dt.timedelta(hours=-5))


class MiniDaemon:
    """Just enough of the daemon's contract: post() feeds BoardState, commands go to adapters."""

    def __init__(self, board_name="desk"):
        self.board = load_board(find_board(board_name))
        self.t = 1000.0
        self.state = BoardState(self.board, self.t)
        self.events = queue.Queue()
        self.commands = Commands(self.board)
        self.loop = None
        self.adapters = []
        self.seen = []            # every event posted by adapters
        self.shown = []           # ShowCard commands, as the view would receive them
        self.sim = True

    def post(self, event):
        self.events.put(event)

    def add_adapter(self, a):
        self.adapters.append(a)
        for cmd in a.commands():
            self.commands.add(cmd)
        a.start(Context(self.board, a.data_dir, self.post, loop=self.loop, state=self.state))

    def feed(self, event):
        self.t += 0.05
        for cmd in self.state.handle(event, self.t):
            if isinstance(cmd, ShowCard):
                self.shown.append(cmd)
            for a in self.adapters:
                a.handle(cmd)

    def pump(self, until=None, timeout=5.0):
        """Handle posted events until ``until()`` is true (or nothing more comes)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                ev = self.events.get(timeout=0.05)
            except queue.Empty:
                if until is None or until():
                    return True
                continue
            self.seen.append(ev)
            self.feed(ev)
            if until is not None and until():
                return True
        return until is None or until()

    def press(self, key):
        self.feed(KeyChanged(key, True))
        self.t += 0.1
        self.feed(KeyChanged(key, False))

    def call(self, name, **args):
        return asyncio.run(self.commands.run(name, args))

    def lamp(self, name):
        return self.state.snapshot(self.t)["lamps"][name]["cadence"]


@pytest.fixture
def rig(tmp_path):
    cs = Customers(tmp_path)
    cs.add(MARY)
    cs.add({**MARY, "id": "acme", "name": "Acme Plumbing", "line": "202", "kind": "plumber",
            "alternate": [{"label": "Joe's mobile", "number": "+1 555 010 7777"}],
            "instructions": []})
    cs.close()
    clock = lambda: dt.datetime(2026, 11, 24, 10, 0, tzinfo=TZ)   # a Tuesday morning  # noqa: E731
    d = MiniDaemon()
    a = TimeClockAdapter(tmp_path, clock=clock, operators={1: "Becky"})
    d.add_adapter(a)
    d.pump()
    yield d, a, tmp_path
    a.stop()


def settle(a):
    a._pool.submit(lambda: None).result()


def test_ok__ring_answer_card_message_lamp_check_in_read_back(rig):
    d, a, tmp = rig
    d.feed(LineRinging("201", caller="5550123", call="call-1"))
    settle(a)
    assert a.status()["offered"]["201"]["answer"] == "Mary's Gloves, this is Becky"
    d.press("line-201")                                  # the operator answers
    settle(a)
    card = a.status()["cards"]["1"]
    assert d.pump(lambda: any(isinstance(e, CardChanged) and e.position == 1 for e in d.seen))
    shown = [c for c in d.shown if c.position == 1]
    assert shown[-1].line == "201" and shown[-1].card["name"] == "Mary's Gloves"
    assert card["name"] == "Mary's Gloves" and card["instructions"] == \
        "Put orders through to the shop"
    assert card["collect"] == ["name", "number", "glove size"]
    d.call("type-message", position=1, text="Mrs Lee: are the gloves ready?")
    d.press("p1-stamp")
    settle(a)
    assert d.pump(lambda: d.lamp("msg-201") == "steady")
    stamps = TimeClock(tmp, readonly=True).stamps()
    assert [(s["slip"], s["what"], s["call"]) for s in stamps] == \
        [(1, "answer", "call-1"), (2, "message", "call-1")]
    assert stamps[1]["text"] == "Mrs Lee: are the gloves ready?"
    assert a.status()["cards"]["1"]["waiting"][0]["slip"] == 2
    d.press("p1-release")
    # The customer checks in later: the operator reads the message back.
    got = d.call("check-in", line="201")
    assert [m["slip"] for m in got["waiting"]] == [2]
    rb = d.call("read-back", slip=2, position=1)["stamp"]
    assert rb["what"] == "read-back" and rb["of"] == 2 and rb["slip"] == 3
    assert d.pump(lambda: d.lamp("msg-201") == "dark")
    assert d.call("check-in", line="201")["waiting"] == []
    dead = d.call("messages", customer="marys-gloves", what="read-back")["stamps"]
    assert [s["of"] for s in dead] == [2]


def test_ok__lamps_come_back_lit_after_restart(tmp_path, rig):
    d, a, tmp = rig
    d.call("take-message", line="202", text="Leak at 5 Elm St")
    d.call("take-message", line="202", text="Second leak")
    assert d.pump(lambda: d.lamp("msg-202") == "steady")
    a.stop()
    d2 = MiniDaemon()
    a2 = TimeClockAdapter(tmp, clock=a.clock)
    d2.add_adapter(a2)
    assert d2.pump(lambda: d2.lamp("msg-202") == "steady")
    assert a2.status()["waiting"] == {"202": 2}
    a2.stop()


def test_ok__customer_checking_in_on_an_office_line_is_recognised(rig):
    d, a, tmp = rig
    d.call("take-message", line="202", text="Leak at 5 Elm St")
    d.feed(LineRinging("901", caller="555-010-7777", call="call-9"))
    settle(a)
    offered = a.status()["offered"]["901"]
    assert offered["customer"] == "acme" and offered["check_in"] is True
    assert [m["text"] for m in offered["waiting"]] == ["Leak at 5 Elm St"]
    assert d.call("check-in", caller="+1 (555) 010-7777")["customer"] == "acme"


@pytest.mark.parametrize("cmd,args,expected", [
    ("read-back", {"slip": 99}, "slip 99 is not waiting"),
    ("read-back", {"slip": "x"}, "slip = 'x': expected int"),
    ("take-message", {"line": "201", "text": "  "}, "needs its text"),
    ("take-message", {"text": "hi"}, "line: missing"),
    ("check-in", {"line": "204"}, "no customer for line 204"),
    ("messages", {"since": "last week"}, "since 'last week': expected a date"),
])
def test_fail__operator_command_errors(rig, cmd, args, expected):
    d, a, tmp = rig
    with pytest.raises(ControlError, match=expected):
        d.call(cmd, **args)


def test_fail__a_store_that_cannot_write_lights_the_fault_lamp(rig):
    d, a, tmp = rig
    # The disk goes bad under the daemon: the day's journal cannot be written.
    a._pool.submit(lambda: a.tc.stamp("stamp")).result()
    os.close(a.tc._db.storage._fd)
    a.tc._db.storage._fd = os.open(os.devnull, os.O_RDONLY)
    with pytest.raises(ControlError, match="write failed"):
        d.call("take-message", line="201", text="lost?")
    assert d.pump(lambda: d.lamp("fault") == "steady")
    # Typed at the position and stamped with the key: the failed stamp leaves it typed.
    d.feed(LineRinging("201"))
    d.press("line-201")
    d.call("type-message", position=1, text="keep me")
    d.press("p1-stamp")
    settle(a)
    assert a.status()["drafts"] == {"1": "keep me"}
    assert any(isinstance(e, Fault) and e.source == "timeclock" for e in d.seen)
    assert a.status()["waiting"] == {}


def test_fail__damaged_journal_puts_only_the_time_clock_out_of_service(tmp_path):
    tc = TimeClock(tmp_path, clock=lambda: dt.datetime(2026, 11, 24, 10, tzinfo=TZ))
    for _ in range(3):
        tc.stamp("stamp")
    tc.close()
    day = tmp_path / "slips" / "2026-11-24.jsonl"
    data = bytearray(day.read_bytes())
    data[12] ^= 0x01                                   # damage in the first of three lines
    day.write_bytes(bytes(data))
    d = MiniDaemon()
    a = TimeClockAdapter(tmp_path)
    d.add_adapter(a)
    try:
        assert d.pump(lambda: d.lamp("fault") == "steady")
        assert "byte 0" in a.status()["out_of_service"]
        with pytest.raises(ControlError, match="time clock is out of service: .*2026-11-24"):
            d.call("take-message", line="201", text="hello")
        d.feed(LineRinging("201"))                     # the board itself carries on
        d.press("line-201")
        assert d.state.lines["201"].state.value == "operator"
    finally:
        a.stop()


def test_ok__purge_runs_on_the_daemons_loop_timer(tmp_path):
    import asyncio as aio

    now = [dt.datetime(2026, 10, 1, 9, tzinfo=TZ)]
    tc = TimeClock(tmp_path, clock=lambda: now[0])
    tc.stamp("stamp")
    tc.close()
    now[0] += dt.timedelta(days=40)

    async def main():
        d = MiniDaemon()
        d.loop = aio.get_running_loop()
        a = TimeClockAdapter(tmp_path, clock=lambda: now[0], purge_every_s=0.05)
        d.add_adapter(a)
        assert a.tc.days() == []                       # purged at start
        a._pool.submit(lambda: a.tc.stamp("stamp")).result()
        now[0] += dt.timedelta(days=40)
        for _ in range(100):
            await aio.sleep(0.02)
            if not a.tc.days():
                break
        days = a.tc.days()
        a.stop()
        return days

    assert aio.run(main()) == []                       # and again by the timer


def test_fail__unreadable_printer_mark_faults_the_printer_not_the_clock(tmp_path):
    (tmp_path / "printed.json").write_text("half a fi")
    d = MiniDaemon()
    a = TimeClockAdapter(tmp_path, printer={"port": str(tmp_path / "nope"), "speed": 9600,
                                             "columns": 32, "print": ["message"],
                                             "timeout_s": 0.1, "retry_s": 0.1})
    d.add_adapter(a)
    try:
        assert d.pump(lambda: d.lamp("fault") == "steady")
        assert "printed-up-to mark" in d.state.faults["printer"]
        assert d.call("take-message", line="201", text="still stamped")["stamp"]["slip"] == 1
    finally:
        a.stop()
