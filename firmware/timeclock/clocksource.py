"""Whether the system clock can be trusted for the time clock's stamps.

A Pi before the Pi 5 has no real-time clock: after a power cut with no
network it starts from the time saved at the last shutdown, and every stamp
(what the bills rest on) would carry a wrong time without saying so. The
clock counts as **set** when either

- the kernel says it is **NTP synchronised**: ``adjtimex(2)`` with no modes
  only reads, and its return value is the clock state, ``TIME_ERROR`` (5)
  while unsynchronised (what ``timedatectl``'s ``NTPSynchronized`` reports);
  or
- a **real-time clock** is present (``/sys/class/rtc/rtc0``, the DS3231 of
  hardware/BLOCKS.md) with a sane time: not before ``SANE_AFTER`` and within
  ``RTC_AGREE_S`` of the system clock, which the kernel set from it at boot.

``ClockWatch`` is the daemon's adapter: it checks at start and every
``every_s`` (60 s); while the clock is not set it holds the fault
``Fault("clock", "clock not set: ...")`` (the fault lamp) and ``verified`` is
False, so the time clock marks each stamp ``"unverified": true`` (shown on the
printed slip and by switchboard-messages). The source is a plain callable
returning a ``ClockStatus``, so tests simulate it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from firmware.core.state import Fault
from firmware.runtime.adapter import Adapter

#: adjtimex(2)'s return value while the clock is not synchronised.
TIME_ERROR = 5
#: An RTC reading before this is a flat cell or a chip never set.
SANE_AFTER = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
#: How far an RTC may be from the system clock and still be the clock it was set from.
RTC_AGREE_S = 600.0


@dataclass(frozen=True)
class ClockStatus:
    set: bool
    how: str          # what made it set, or why it is not


def adjtimex_state() -> int | None:
    """The kernel's clock state from adjtimex(2) (read only), or None where there is none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        fn = libc.adjtimex
    except (OSError, AttributeError):
        return None
    # struct timex is 208 bytes on 64-bit Linux; modes (the first field) = 0 only reads.
    buf = ctypes.create_string_buffer(512)
    fn.argtypes = [ctypes.c_void_p]
    fn.restype = ctypes.c_int
    state = fn(buf)
    return None if state < 0 else state


def ntp_status(state=adjtimex_state) -> ClockStatus:
    s = state()
    if s is None:
        return ClockStatus(False, "adjtimex(2) is not available here")
    if s == TIME_ERROR:
        return ClockStatus(False, "not NTP-synchronised")
    return ClockStatus(True, "NTP-synchronised")


def rtc_status(rtc: Path | str = "/sys/class/rtc/rtc0", now=time.time) -> ClockStatus:
    rtc = Path(rtc)
    if not rtc.is_dir():
        return ClockStatus(False, f"no real-time clock ({rtc} missing)")
    try:
        secs = int((rtc / "since_epoch").read_text().strip())
    except (OSError, ValueError) as e:
        return ClockStatus(False, f"real-time clock {rtc.name} unreadable ({e})")
    when = dt.datetime.fromtimestamp(secs, dt.timezone.utc)
    if when < SANE_AFTER:
        return ClockStatus(False, f"real-time clock {rtc.name} reads {when:%Y-%m-%d %H:%M} UTC, "
                           "not set (or its cell is flat)")
    off = secs - now()
    if abs(off) > RTC_AGREE_S:
        return ClockStatus(False, f"real-time clock {rtc.name} is {off:+.0f} s from the system clock")
    return ClockStatus(True, f"real-time clock {rtc.name}")


def system_status(ntp=ntp_status, rtc=rtc_status) -> ClockStatus:
    """NTP first, then the RTC; not set says why neither will do."""
    a = ntp()
    if a.set:
        return a
    b = rtc()
    if b.set:
        return b
    return ClockStatus(False, f"{a.how}, and {b.how}")


def fixed_status(is_set: bool, how: str = "simulated") -> callable:
    """A source that always says the same (``--clock-source``, tests)."""
    status = ClockStatus(is_set, how)
    return lambda: status


class ClockWatch(Adapter):
    """The daemon's adapter that keeps checking the clock is set (see the module's docstring)."""

    name = "clock"

    def __init__(self, source=system_status, every_s: float = 60.0):
        self.source = source
        self.every_s = every_s
        self.verified = False          # until the first check says otherwise
        self.last: ClockStatus | None = None
        self.checked_at: float | None = None
        self.checks = 0
        self._post = None
        self._timer = None
        self._loop = None

    # -- the adapter's life -------------------------------------------------
    def start(self, daemon) -> None:
        self._post = daemon.post
        self._loop = daemon.loop
        self._tick()

    def _tick(self):
        self.check()
        if self._loop is not None:
            self._timer = self._loop.call_later(self.every_s, self._tick)

    def check(self) -> ClockStatus:
        """Ask the source now; light or clear the fault when the answer changes."""
        try:
            status = self.source()
        except Exception as e:           # a broken source must not look like a set clock
            status = ClockStatus(False, f"the clock check failed: {type(e).__name__}: {e}")
        changed = self.last is None or status.set != self.last.set or \
            (not status.set and status.how != self.last.how)
        self.last, self.verified = status, status.set
        self.checked_at = time.time()
        self.checks += 1
        if changed and self._post is not None:
            self._post(Fault("clock", None if status.set else f"clock not set: {status.how}"))
        return status

    def is_verified(self) -> bool:
        return self.verified

    def commands(self):
        return ()                      # its state is in status (``clock``); no commands

    def handle(self, cmd) -> None:
        pass

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop = None

    def status(self) -> dict:
        return {"set": self.verified, "how": self.last.how if self.last else None,
                "checked_at": self.checked_at, "every_s": self.every_s}
