"""Wake-up and reminder calls: due times, retries, restarts, durability, the board's part."""

import asyncio
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from board_support import request, running, wait_until
from conftest import ROOT, project_env
from switchboard_tools.office import billing
from firmware.schedule import scheduler as schedule
from firmware.config.board import load_board
from firmware.errors import ConfigError
from firmware.records.recordset import call_from, check_customer
from firmware.runtime.adapter import Context
from firmware.runtime.commands import Commands
from firmware.core.state import (BoardState, Cadence, LampCadence, PlaceCall, PlacedCallEnded, PlacedCallOutcome,
                            ScheduledCallCleared, ScheduledCallDue)

UTC = timezone.utc
DAY = datetime(2026, 11, 23, tzinfo=UTC)          # a Monday


def at(h, m=0, s=0, day=0):
    return DAY + timedelta(days=day, hours=h, minutes=m, seconds=s)


def wake(**kw):
    rec = {"id": "w1", "customer": "C1", "kind": "wakeup", "number": "5551234",
           "message": "Good morning, it is half past six.", "time": "06:30", "date": "2026-11-23",
           "repeat": "daily", "retries": 2, "retry_after_s": 300}
    rec.update(kw)
    return rec


def fresh(tmp_path, now=None, tz=UTC, **kw):
    s = schedule.Scheduler(tmp_path / "schedule.json", tz, now or at(0))
    s.add(wake(**kw), now or at(0))
    return s


# -- the schedule's own checks ------------------------------------------------
@pytest.mark.parametrize("change,needle", [
    ({"time": "6:30"}, "time = '6:30': expected a time of day \"HH:MM\""),
    ({"time": "24:00"}, "time = '24:00'"),
    ({"repeat": "monthly"}, "repeat = 'monthly': expected one of once, daily, weekdays"),
    ({"number": "call mum"}, "number = 'call mum': expected a number to dial (digits) or a SIP URI"),
    ({"kind": "alarm"}, "kind = 'alarm'"),
    ({"retries": -1}, "retries = -1: expected a number from 0 to 86400"),
    ({"mode": "robot"}, "mode = 'robot'"),
    ({"date": "tomorrow"}, "date = 'tomorrow'"),
    ({"colour": "red"}, "colour = 'red': expected one of"),
    ({"message": " "}, "message = ' ': expected what to say"),
])
def test_fail__bad_schedule(change, needle):
    with pytest.raises(ConfigError) as e:
        schedule.check_schedule(wake(**change), ("schedule.json", "schedules[3]"))
    assert needle in str(e.value) and "schedules[3]" in str(e.value)


def test_fail__missing_key():
    rec = wake()
    del rec["number"]
    with pytest.raises(ConfigError,
                       match=r"schedule: number: missing; expected a number to dial \(digits\) or a SIP URI"):
        schedule.check_schedule(rec)


@pytest.mark.parametrize("repeat,days,expected", [
    ("daily", 7, ["23", "24", "25", "26", "27", "28", "29"]),
    ("weekdays", 7, ["23", "24", "25", "26", "27"]),           # Nov 28/29 2026 are Sat/Sun
    ("once", 7, ["23"]),
])
def test_ok__due_times(repeat, days, expected):
    s = schedule.check_schedule(wake(repeat=repeat))
    got = schedule.occurrences(s, DAY, DAY + timedelta(days=days), UTC)
    assert [f"{d:%d}" for d in got] == expected and all(d.hour == 6 and d.minute == 30 for d in got)


def test_ok__due_times_window_until_and_dst():
    s = schedule.check_schedule(wake(until="2026-11-24"))
    assert schedule.occurrences(s, at(6, 30), at(6, 30, day=5), UTC) == [at(6, 30, day=1)]  # (after, upto]
    london = ZoneInfo("Europe/London")
    s = schedule.check_schedule(wake(date="2026-10-24"))
    got = schedule.occurrences(s, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC), london)
    # 06:30 local on both sides of the clocks going back on Oct 25: 05:30 then 06:30 UTC
    assert [d.astimezone(UTC).hour for d in got] == [5, 6, 6]


# -- calls placed by the board ----------------------------------------------------
def test_ok__due_call_retried_then_answered_and_logged(tmp_path):
    s = fresh(tmp_path)
    assert s.tick(at(6, 29, 59)) == []
    ev = s.tick(at(6, 30))
    assert len(ev) == 1 and isinstance(ev[0], ScheduledCallDue)
    occ = ev[0].occurrence
    assert (ev[0].mode, ev[0].attempt, ev[0].number, ev[0].customer) == ("auto", 1, "5551234", "C1")
    assert s.tick(at(6, 30, 1)) == []                      # not twice
    assert s.placed(occ, "out-1", "no-answer", at(6, 31)) == []
    assert s.tick(at(6, 35, 59)) == []                     # retry 300 s after the failed attempt
    ev = s.tick(at(6, 36))
    assert [e.attempt for e in ev] == [2]
    s.placed(occ, "out-2", "answered", at(6, 36, 20))
    assert s.open == {}
    assert s.log[-1] | {"finished": None} == {
        "occurrence": occ, "schedule": "w1", "customer": "C1", "kind": "wakeup", "number": "5551234",
        "tried": ["5551234", "5551234"], "due": at(6, 30).isoformat(), "outcome": "answered",
        "attempts": 2, "calls": ["out-1", "out-2"],
        "finished": None, "note": ""}
    ev = s.tick(at(6, 30, day=1))                          # and again the next day
    assert [e.due for e in ev] == [at(6, 30, day=1).isoformat()]


def test_ok__retries_run_out(tmp_path):
    s = fresh(tmp_path, retries=1, retry_after_s=60)
    occ = s.tick(at(6, 30))[0].occurrence
    s.placed(occ, "a", "no-answer", at(6, 31))
    assert [e.attempt for e in s.tick(at(6, 32))] == [2]
    s.placed(occ, "b", "failed", at(6, 33))
    assert s.tick(at(6, 40)) == [] and s.open == {}
    assert (s.log[-1]["outcome"], s.log[-1]["attempts"], s.log[-1]["calls"]) == ("failed", 2, ["a", "b"])


def test_ok__telephony_that_never_reports_is_given_up_on_and_retried(tmp_path):
    s = fresh(tmp_path, ring_s=30)
    occ = s.tick(at(6, 30))[0].occurrence
    limit = at(6, 30) + timedelta(seconds=30 + schedule.CALL_TIMEOUT_MARGIN_S)
    assert s.tick(limit - timedelta(seconds=1)) == []
    assert s.tick(limit) == []                              # attempt 1 failed: retry in 300 s
    assert s.open[occ].state == "retry" and "no report" in s.open[occ].note
    assert [e.attempt for e in s.tick(limit + timedelta(seconds=300))] == [2]
    # a late "answered" for an attempt given up on still counts (no second call)
    s2 = fresh(tmp_path / "b")
    o2 = s2.tick(at(6, 30))[0].occurrence
    s2.tick(limit)
    s2.placed(o2, "slow", "answered", limit + timedelta(seconds=5))
    assert s2.open == {} and s2.log[-1]["outcome"] == "answered"


def test_ok__next_numbers_called_in_turn_each_round_from_the_first(tmp_path):
    """An urgent call-out's on-call list: each number at once after the last did not
    answer, the round again after ``retry_after_s``, across a restart in the middle."""
    s = fresh(tmp_path, repeat="once", next_numbers=["5552222", "sip:ann@example.net"],
              retries=1, retry_after_s=600)
    [ev] = s.tick(at(6, 30))
    assert (ev.number, ev.attempt) == ("5551234", 1)
    [ev] = s.placed(ev.occurrence, "a", "no-answer", at(6, 31))        # the next one, at once
    assert (ev.number, ev.attempt) == ("5552222", 1)
    s = schedule.Scheduler(tmp_path / "schedule.json", UTC, at(6, 31))  # restarted meanwhile
    [ev] = s.placed(ev.occurrence, None, "failed", at(6, 32), reason="503 from the trunk")
    assert (ev.number, ev.attempt) == ("sip:ann@example.net", 1)
    assert s.placed(ev.occurrence, "c", "no-answer", at(6, 33)) == []   # all tried: wait
    assert s.tick(at(6, 42, 59)) == []
    [ev] = s.tick(at(6, 43))
    assert (ev.number, ev.attempt) == ("5551234", 2)
    [ev] = s.placed(ev.occurrence, "d", "no-answer", at(6, 44))
    [ev] = s.placed(ev.occurrence, "e", "no-answer", at(6, 45))
    assert s.placed(ev.occurrence, "f", "no-answer", at(6, 46)) == [] and s.open == {}
    e = s.log[-1]
    assert (e["outcome"], e["attempts"], e["calls"], e["number"]) == \
        ("no-answer", 2, ["a", "c", "d", "e", "f"], "sip:ann@example.net")
    assert e["tried"] == ["5551234", "5552222", "sip:ann@example.net"] * 2


def test_ok__next_numbers_without_telephony_are_cards_in_turn(tmp_path):
    s = fresh(tmp_path, repeat="once", next_numbers=["5552222"], retries=0)
    s.can_place = False
    [ev] = s.tick(at(6, 30))
    assert (ev.mode, ev.number) == ("operator", "5551234")
    cleared, ev = s.operator_done(ev.occurrence, "no-answer", at(6, 32))
    assert isinstance(cleared, ScheduledCallCleared) and (ev.mode, ev.number) == ("operator", "5552222")
    [cleared] = s.operator_done(ev.occurrence, "answered", at(6, 34))
    assert s.log[-1]["outcome"] == "answered" and s.log[-1]["number"] == "5552222"


@pytest.mark.parametrize("numbers", ["5552222", ["call ann"], ["1"] * 21])
def test_fail__bad_next_numbers(numbers):
    with pytest.raises(ConfigError, match="next_numbers = .*: expected a list of up to 20 numbers"):
        schedule.check_schedule(wake(next_numbers=numbers))


# -- restarts ---------------------------------------------------------------------
def test_ok__restart_in_the_middle_of_a_schedule(tmp_path):
    s = fresh(tmp_path)
    occ = s.tick(at(6, 30))[0].occurrence
    s.placed(occ, "out-1", "no-answer", at(6, 31))
    del s                                                   # the daemon stops here
    s = schedule.Scheduler(tmp_path / "schedule.json", UTC, at(6, 33))
    assert s.tick(at(6, 33)) == []
    ev = s.tick(at(6, 36))                                  # the retry is still on time
    assert [(e.occurrence, e.attempt) for e in ev] == [(occ, 2)]


def test_ok__down_at_the_due_time_but_back_within_the_limit_calls_late(tmp_path):
    s = fresh(tmp_path, late_limit_s=900)
    s.tick(at(6, 0))
    del s
    s = schedule.Scheduler(tmp_path / "schedule.json", UTC, at(6, 40))
    ev = s.tick(at(6, 40))
    assert len(ev) == 1 and ev[0].mode == "auto" and "10 min late" in ev[0].note


def test_ok__down_too_long_the_call_is_reported_missed_and_the_card_survives_a_restart(tmp_path):
    s = fresh(tmp_path, late_limit_s=900, repeat="weekdays")
    s.tick(at(6, 0))
    del s
    # back on Wednesday at 09:00: Monday's, Tuesday's and Wednesday's calls were missed
    s = schedule.Scheduler(tmp_path / "schedule.json", UTC, at(9, day=2))
    ev = s.tick(at(9, day=2))
    assert [e.mode for e in ev] == ["operator"] * 3
    assert all(e.note.startswith("missed: due 2026-11-2") for e in ev)
    assert [e["outcome"] for e in s.log] == ["missed"] * 3
    del s
    s = schedule.Scheduler(tmp_path / "schedule.json", UTC, at(9, 5, day=2))
    cards = s.cards()
    assert sorted(c.occurrence for c in cards) == sorted(e.occurrence for e in ev)
    out = s.operator_done(cards[0].occurrence, "answered", at(9, 10, day=2), call="op-1")
    assert out == [ScheduledCallCleared(cards[0].occurrence)]
    assert s.log[-1]["outcome"] == "missed, then answered by the operator" and s.log[-1]["calls"] == ["op-1"]
    assert len(s.cards()) == 2


def _writer_script(path):
    return (
        "import sys; from datetime import datetime, timedelta, timezone\n"
        "from firmware.schedule import scheduler as schedule\n"
        f"s = schedule.Scheduler({str(path)!r}, timezone.utc, datetime(2026, 11, 23, tzinfo=timezone.utc))\n"
        "print('ready', flush=True)\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    s.add({'id': f'w{i % 50}', 'customer': 'C1', 'kind': 'wakeup', 'number': '5551234',\n"
        "           'message': 'x' * (i % 500 + 1), 'time': '06:30', 'date': '2026-11-23'},\n"
        "          datetime(2026, 11, 23, tzinfo=timezone.utc))\n")


def test_ok__state_file_survives_being_killed_mid_write(tmp_path):
    """SIGKILL a process that rewrites the schedule as fast as it can: whatever
    moment it dies, the file loads (the old or the new state, whole)."""
    path = tmp_path / "schedule.json"
    for n in range(6):
        p = subprocess.Popen([sys.executable, "-c", _writer_script(path)], env=project_env(),
                             stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "ready"
            time.sleep(0.05 + 0.07 * n)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
            p.stdout.close()
        s = schedule.Scheduler(path, UTC)
        assert 1 <= len(s.schedules) <= 50
        assert all(v["message"].strip("x") == "" for v in s.schedules.values())


def test_fail__damaged_state_file_is_named(tmp_path):
    path = tmp_path / "schedule.json"
    path.write_text('{"checked_until": "2026-11-23T00:00:00+00:00", "schedules": [')
    with pytest.raises(ConfigError, match="schedule.json: not valid JSON .* restore it from a backup"):
        schedule.Scheduler(path, UTC)


# -- the board's part ----------------------------------------------------------------
def test_ok__operator_mode_winks_the_office_line_and_shows_the_card(tmp_path):
    board = load_board(ROOT / "boards" / "desk.toml")
    state = BoardState(board, 0.0)
    state.start(0.0)
    s = fresh(tmp_path, mode="operator", line="902")
    ev = s.tick(at(6, 30))
    out = state.handle(ev[0], 1.0)
    assert LampCadence("line-902", Cadence.WINK) in out
    assert any("wake-up call for C1: call 5551234 on line 902" in getattr(c, "text", "") for c in out)
    card = state.snapshot(1.0)["due_calls"]
    assert [(c["line"], c["number"], c["message"]) for c in card] == [("902", "5551234", ev[0].message)]
    back = s.operator_done(ev[0].occurrence, "no-answer", at(6, 32))    # try again later
    out = state.handle(back[0], 2.0)
    assert LampCadence("line-902", Cadence.DARK) in out and state.snapshot(2.0)["due_calls"] == []
    ev = s.tick(at(6, 37))
    assert ev[0].attempt == 2 and LampCadence("line-902", Cadence.WINK) in state.handle(ev[0], 3.0)
    for e in s.operator_done(ev[0].occurrence, "answered", at(6, 38), call="op-7"):
        state.handle(e, 4.0)
    assert state.snapshot(4.0)["due_calls"] == [] and s.log[-1]["outcome"] == "answered"


class MiniDaemon:
    """The daemon's adapter contract, in-process: events go through a real
    BoardState and every command it emits goes to every adapter."""

    def __init__(self, board):
        self.board, self.state, self.loop = board, BoardState(board, 0.0), None
        self.adapters, self.commands, self.control = [], [], Commands(board)
        self.now = 0.0

    def add_adapter(self, a):
        self.adapters.append(a)
        for cmd in a.commands():
            self.control.add(cmd)

    def context(self):
        return Context(self.board, None, self.post, loop=self.loop, state=self.state)

    def post(self, event):
        self.now += 0.01
        for cmd in self.state.handle(event, self.now):
            self.commands.append(cmd)
            for a in self.adapters:
                a.handle(cmd)


class StandInTelephony:
    """The test plays the telephony's part (the SIP tests use the real one)."""
    name = "telephony"

    def __init__(self):
        self.placed = []

    def commands(self):
        return []

    def handle(self, cmd):
        if isinstance(cmd, PlaceCall):
            self.placed.append(cmd)


def test_ok__adapter_places_the_call_and_records_the_outcome_for_billing(tmp_path):
    clock = [at(6, 29)]
    d = MiniDaemon(load_board(ROOT / "boards" / "desk.toml"))
    a = schedule.ScheduleAdapter(tmp_path / "schedule.json", UTC, clock=lambda: clock[0])
    a.scheduler.add(wake(retries=0), clock[0])
    tel = StandInTelephony()
    d.add_adapter(tel)
    d.add_adapter(a)
    a.start(d.context())
    assert set(d.control.names()) == {"schedule-add", "schedule-remove", "schedule-list", "schedule-done"}
    clock[0] = at(6, 30)
    a.poll()
    place = [c for c in d.commands if isinstance(c, PlaceCall)]
    assert [(p.number, p.kind, p.customer, p.attempt) for p in place] == [("5551234", "wakeup", "C1", 1)]
    assert tel.placed == place
    # the telephony reports the end of the call as an event
    d.post(PlacedCallEnded(place[0].occurrence, "out-9", "answered"))
    assert PlacedCallOutcome(place[0].occurrence, "out-9", "answered") in d.commands
    assert a.scheduler.log[-1]["outcome"] == "answered"
    # the telephony's record of that call has no customer; the log supplies it, and it is billed
    rec = {"id": "out-9", "line": "901", "direction": "out", "kind": "call", "caller": "901",
           "callee": "5551234", "offered": at(6, 30).isoformat(), "answered": at(6, 30, 12).isoformat(),
           "ended": at(6, 31).isoformat(), "rings": 2, "position": None, "hold_s": 0, "outcome": "answered"}
    recs = schedule.billing_records(a.scheduler.log, [rec])
    cfg = billing.load_plans(ROOT / "plans" / "plans.toml")
    cust = check_customer({"id": "C1", "line": "205", "name": "Dr. A", "plan": "standard",
                           "contract_start": "2026-01-01"})
    st = billing.bill_month([cust], cfg, "2026-11", [call_from(r) for r in recs], (), (), UTC)[0][0]
    wakeups = [(i.code, i.calls, str(i.amount)) for i in st.items if i.code == "wakeup"]
    assert wakeups == [("wakeup", ("out-9",), "0.50")]
    a.stop()


def test_ok__control_commands(tmp_path):
    clock = [at(5)]
    d = MiniDaemon(load_board(ROOT / "boards" / "desk.toml"))
    a = schedule.ScheduleAdapter(tmp_path / "schedule.json", UTC, clock=lambda: clock[0])
    d.add_adapter(a)
    a.start(d.context())
    run = lambda name, args: asyncio.run(d.control.run(name, args))       # noqa: E731
    assert run("schedule-add", {"schedule": wake(mode="operator")})["ok"]
    clock[0] = at(6, 30)
    a.poll()
    listing = run("schedule-list", {})
    occ = listing["open"][0]["id"]
    assert [s["id"] for s in listing["schedules"]] == ["w1"] and listing["open"][0]["state"] == "alerted"
    assert d.state.snapshot(1.0)["due_calls"][0]["occurrence"] == occ
    run("schedule-done", {"occurrence": occ, "outcome": "answered"})
    assert d.state.snapshot(1.0)["due_calls"] == [] and run("schedule-list", {})["log"][-1]["outcome"] == "answered"
    run("schedule-remove", {"id": "w1"})
    with pytest.raises(schedule.ScheduleError, match="no schedule 'w1'; known: none"):
        run("schedule-remove", {"id": "w1"})


# -- in the real daemon, on the simulated board -------------------------------------


def daemon_with_schedule(path, clock):
    adapter = schedule.ScheduleAdapter(path, UTC, clock=lambda: clock[0], period_s=0.02,
                                       can_place=False)       # this daemon has no telephony
    return running("desk", adapters=(adapter,))


def test_ok__daemon_restart_in_the_middle_of_a_schedule(tmp_path):
    """Operator-mode wake-up calls on the desk board: the office line's lamp
    winks when one falls due (clock moved forward); the daemon is stopped
    while one is waiting and a second one falls due; after the restart both
    cards are on the board again, the missed one marked as missed."""
    path = tmp_path / "schedule.json"
    clock = [at(6, 0)]
    with daemon_with_schedule(path, clock) as (daemon, sim):
        request(daemon, "schedule-add", schedule=wake(mode="operator", line="902"))
        request(daemon, "schedule-add", schedule=wake(id="r1", kind="reminder", time="07:00", repeat="once",
                                                      mode="operator", line="901", number="5559876",
                                                      message="Dentist at 9 tomorrow"))
        assert not sim.lamp_lit("line-902")
        clock[0] = at(6, 30, 1)
        assert wait_until(lambda: len(daemon.snapshot()["due_calls"]) == 1)
        assert daemon.snapshot()["lamps"]["line-902"]["cadence"] == "wink"
        assert wait_until(lambda: sim.lamp_lit("line-902"))
        status = daemon.snapshot()["schedule"]
        assert [o["state"] for o in status["open"]] == ["alerted"]
    assert not path.with_name("schedule.json.tmp").exists()
    clock[0] = at(8, 0)                    # down from 06:30 to 08:00: the 07:00 reminder fell due
    with daemon_with_schedule(path, clock) as (daemon, sim):
        assert wait_until(lambda: len(daemon.snapshot()["due_calls"]) == 2)
        cards = {c["schedule"]: c for c in daemon.snapshot()["due_calls"]}
        assert cards["w1"]["note"] == "" and cards["r1"]["note"].startswith("missed: due 2026-11-23 07:00")
        lamps = daemon.snapshot()["lamps"]
        assert lamps["line-901"]["cadence"] == lamps["line-902"]["cadence"] == "wink"
        request(daemon, "schedule-done", occurrence=cards["w1"]["occurrence"], outcome="answered")
        assert wait_until(lambda: daemon.snapshot()["lamps"]["line-902"]["cadence"] == "dark")
        log = request(daemon, "schedule-list")["log"]
        assert [(e["schedule"], e["outcome"]) for e in log] == [("r1", "missed"), ("w1", "answered")]


def test_ok__idle_ticks_write_seldom_and_a_crash_repeats_nothing(tmp_path):
    s = fresh(tmp_path, repeat="daily")
    path = tmp_path / "schedule.json"
    s.tick(at(5))                                   # five hours on: written
    mtime = path.stat().st_mtime_ns
    for sec in range(1, 120):                       # two idle minutes, one tick a second
        assert s.tick(at(5, 0, sec)) == []
    assert path.stat().st_mtime_ns == mtime         # not written once
    occ = s.tick(at(6, 30))[0].occurrence           # due: written at once
    s.placed(occ, "c1", "answered", at(6, 30, 40))
    for sec in range(1, 60):
        s.tick(at(6, 31, sec))
    del s                                           # "crash": checked_until on disk is 06:30
    s = schedule.Scheduler(path, UTC, at(6, 35))
    assert s.checked_until == at(6, 30)
    assert s.tick(at(6, 35)) == [] and [e["outcome"] for e in s.log] == ["answered"]


def test_ok__without_telephony_an_automatic_call_becomes_a_card(tmp_path):
    clock = [at(6, 29)]
    d = MiniDaemon(load_board(ROOT / "boards" / "desk.toml"))
    a = schedule.ScheduleAdapter(tmp_path / "schedule.json", UTC, clock=lambda: clock[0],
                                 can_place=False)
    a.scheduler.add(wake(mode="auto"), clock[0])
    d.add_adapter(a)
    a.start(d.context())
    clock[0] = at(6, 30)
    a.poll()
    assert not any(isinstance(c, PlaceCall) for c in d.commands)
    card = d.state.snapshot(1.0)["due_calls"]
    assert len(card) == 1 and "no telephony" in card[0]["note"]
    assert d.state.snapshot(1.0)["lamps"]["line-901"]["cadence"] == "wink"
    clock[0] = at(6, 45)                 # no time-out while the card waits for the operator
    a.poll()
    assert len(d.state.snapshot(1.0)["due_calls"]) == 1 and a.scheduler.log == []
    for e in a.scheduler.operator_done(card[0]["occurrence"], "answered", clock[0]):
        d.post(e)
    assert d.state.snapshot(1.0)["due_calls"] == [] and a.scheduler.log[-1]["outcome"] == "answered"


@pytest.mark.parametrize("change", [{"repeat": "once", "time": "06:00"}, {"until": "2026-11-22"}])
def test_fail__a_schedule_that_would_never_call(tmp_path, change):
    s = schedule.Scheduler(tmp_path / "schedule.json", UTC, at(6, 10))
    with pytest.raises(schedule.ScheduleError, match="'w1': it would never call again after 2026-11-23 06:10"):
        s.add(wake(**change), at(6, 10))
    assert s.schedules == {}
    s.add(wake(active=False, **change), at(6, 10))       # a paused one may be kept


def test_fail__a_damaged_schedule_puts_only_scheduled_calls_out_of_service(tmp_path):
    import asyncio
    (tmp_path / "schedule.json").write_text('{"checked_until": "2026-11-23T00:00:00+00:00", "schedules": [')
    d = MiniDaemon(load_board(ROOT / "boards" / "desk.toml"))
    a = schedule.ScheduleAdapter(tmp_path / "schedule.json", UTC, clock=lambda: at(6))
    d.add_adapter(a)
    a.start(d.context())
    snap = d.state.snapshot(1.0)
    assert snap["lamps"]["fault"]["cadence"] == "steady"
    fault = snap["faults"]["schedule"]
    assert "scheduled calls out of service" in fault and "schedule.json" in fault
    assert a.status()["state"] == "out of service"
    with pytest.raises(schedule.ScheduleError, match="scheduled calls are out of service: .*not valid JSON"):
        asyncio.run(d.control.run("schedule-list", {}))
    assert (tmp_path / "schedule.json").read_text().endswith('"schedules": [')     # left as it was


def test_ok__a_disk_that_fails_lights_the_fault_lamp_and_the_call_still_goes_out(tmp_path):
    clock = [at(6, 29)]
    d = MiniDaemon(load_board(ROOT / "boards" / "desk.toml"))
    d.add_adapter(StandInTelephony())
    a = schedule.ScheduleAdapter(tmp_path / "schedule.json", UTC, clock=lambda: clock[0])
    a.scheduler.add(wake(), clock[0])
    d.add_adapter(a)
    a.start(d.context())
    (tmp_path / "schedule.json.tmp").mkdir()          # the next write cannot make its temporary file
    clock[0] = at(6, 30)
    a.poll()
    assert [c.number for c in d.commands if isinstance(c, PlaceCall)] == ["5551234"]
    assert "cannot save" in d.state.snapshot(1.0)["faults"]["schedule"]
    with pytest.raises(schedule.ScheduleError, match="cannot save .*nothing was changed on disk"):
        a.scheduler.add(wake(id="w2"), clock[0])
    assert "w2" not in a.scheduler.schedules
    (tmp_path / "schedule.json.tmp").rmdir()           # the disk is back
    clock[0] = at(6, 31)
    d.post(PlacedCallEnded(next(iter(a.scheduler.open)), "c1", "answered"))
    assert "schedule" not in d.state.snapshot(1.0)["faults"]
    assert schedule.Scheduler(tmp_path / "schedule.json", UTC).log[-1]["outcome"] == "answered"
