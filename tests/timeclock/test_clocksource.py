"""Time a time clock can stand behind: the clock source, simulated; the stamps it marks."""

import subprocess

import pytest

from firmware.timeclock import clocksource
from firmware.timeclock.adapter import TimeClockAdapter
from firmware.timeclock.clock import TimeClock
from firmware.timeclock.customers import Customers
from firmware.timeclock.rack import Rack
from firmware.timeclock.clocksource import ClockStatus, ClockWatch
from firmware.timeclock.printer import render_slip

from board_support import request, running, wait_until
from conftest import project_env, python_cmd
from settable_clock import Clock
from test_customers import MARY

NOW = 1_795_000_000          # 2026-11-18 UTC


class SimulatedClockSource:
    """A clock source whose answer the test sets, counting how often it is asked."""

    def __init__(self, is_set=False):
        self.is_set = is_set
        self.asked = 0

    def __call__(self):
        self.asked += 1
        if self.is_set:
            return ClockStatus(True, "NTP-synchronised (simulated)")
        return ClockStatus(False, "not NTP-synchronised, and no real-time clock (simulated)")


# -- the sources ---------------------------------------------------------------------

@pytest.mark.parametrize("state,is_set,how", [
    (0, True, "NTP-synchronised"),          # TIME_OK
    (1, True, "NTP-synchronised"),          # TIME_INS: a leap second pending, still in sync
    (5, False, "not NTP-synchronised"),     # TIME_ERROR
    (None, False, "adjtimex(2) is not available"),
])
def test_ok__ntp_status_from_adjtimex_state(state, is_set, how):
    s = clocksource.ntp_status(lambda: state)
    assert s.set is is_set and how in s.how


def test_ok__adjtimex_answers_on_linux():
    # Read only (modes = 0): the kernel's clock state, 0 (TIME_OK) to 5 (TIME_ERROR).
    assert clocksource.adjtimex_state() in range(6)


def _rtc(tmp_path, since_epoch):
    rtc = tmp_path / "rtc0"
    rtc.mkdir()
    (rtc / "since_epoch").write_text(f"{since_epoch}\n")
    return rtc


def test_ok__rtc_present_with_a_sane_time(tmp_path):
    s = clocksource.rtc_status(_rtc(tmp_path, NOW + 3), now=lambda: NOW)
    assert s == ClockStatus(True, "real-time clock rtc0")


@pytest.mark.parametrize("since_epoch,expected", [
    (0, "reads 1970-01-01 00:00 UTC, not set (or its cell is flat)"),
    (NOW - 86400, "is -86400 s from the system clock"),
    ("garbage", "unreadable"),
])
def test_fail__rtc_not_sane(tmp_path, since_epoch, expected):
    s = clocksource.rtc_status(_rtc(tmp_path, since_epoch), now=lambda: NOW)
    assert not s.set and expected in s.how


def test_fail__no_rtc(tmp_path):
    s = clocksource.rtc_status(tmp_path / "rtc0")
    assert not s.set and "no real-time clock" in s.how


def test_ok__system_status_takes_ntp_or_the_rtc():
    yes, no = ClockStatus(True, "a"), ClockStatus(False, "not b")
    assert clocksource.system_status(lambda: yes, lambda: no) == yes
    assert clocksource.system_status(lambda: no, lambda: yes) == yes
    assert clocksource.system_status(lambda: no, lambda: ClockStatus(False, "not c")) == \
        ClockStatus(False, "not b, and not c")


def test_fail__a_broken_source_counts_as_not_set():
    def broken():
        raise OSError("no such device")
    watch = ClockWatch(broken)
    assert not watch.check().set and "the clock check failed: OSError" in watch.last.how
    assert not watch.is_verified()


# -- stamps ------------------------------------------------------------------------

def test_ok__stamps_marked_unverified_while_the_clock_is_not_set(tmp_path):
    source = SimulatedClockSource(False)
    watch = ClockWatch(source)
    watch.check()
    tc = TimeClock(tmp_path, clock=Clock(), clock_verified=watch.is_verified)
    try:
        first = tc.stamp("stamp", line="201", position=1)
        source.is_set = True
        watch.check()
        second = tc.stamp("stamp", line="201", position=1)
    finally:
        tc.close()
    assert first["unverified"] is True and "unverified" not in second
    # The journal readers take both (an old stamp has no such field: verified).
    reader = TimeClock(tmp_path, readonly=True)
    try:
        assert [s.get("unverified") for s in reader.stamps()] == [True, None]
        assert reader.verify()["ok"]
    finally:
        reader.close()
    slip = render_slip(first)
    assert b"TIME UNVERIFIED: clock not set" in slip
    assert b"UNVERIFIED" not in render_slip(second)


def test_ok__switchboard_messages_shows_an_unverified_time(tmp_path):
    cs = Customers(tmp_path)
    cs.add(MARY)
    cs.close()
    tc = TimeClock(tmp_path, clock=Clock(), clock_verified=lambda: False)
    Rack(tc).take("201", "marys-gloves", "Mrs Lee: gloves ready?", position=1)
    tc.close()

    def tool(*args):
        r = subprocess.run(python_cmd("switchboard_tools.messages", "--data", tmp_path, *args),
                           env=project_env(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout
    assert "?  message" in tool("list")
    assert "(time unverified: clock not set)" in tool("print", "marys-gloves")
    csv = tool("export").splitlines()
    assert csv[0].rstrip().endswith(",unverified") and csv[1].rstrip().endswith(",True")


# -- the daemon ----------------------------------------------------------------------

def test_fail__daemon_lights_clock_not_set_and_marks_stamps_until_the_clock_is_set(tmp_path):
    source = SimulatedClockSource(False)
    watch = ClockWatch(source, every_s=0.2)   # "every minute", shortened for the test
    tca = TimeClockAdapter(tmp_path, clock_verified=watch.is_verified)
    with running("desk", adapters=(watch, tca)) as (daemon, sim):
        assert wait_until(lambda: "clock" in daemon.state.faults, 5)
        assert daemon.state.faults["clock"].startswith("clock not set: not NTP-synchronised")
        assert wait_until(lambda: sim.lamp_lit("fault"), 5)
        stamp = request(daemon, "stamp", position=1, line="201")["stamp"]
        assert stamp["unverified"] is True
        assert request(daemon, "status")["clock"]["set"] is False
        # NTP catches up: the next check clears the fault, and stamps are verified again.
        asked = source.asked
        source.is_set = True
        assert wait_until(lambda: "clock" not in daemon.state.faults, 5)
        assert source.asked > asked
        assert wait_until(lambda: not sim.lamp_lit("fault"), 5)
        stamp = request(daemon, "stamp", position=1, line="201")["stamp"]
        assert "unverified" not in stamp
        # ... and it keeps checking: losing the clock lights the fault again.
        source.is_set = False
        assert wait_until(lambda: "clock" in daemon.state.faults, 5)
