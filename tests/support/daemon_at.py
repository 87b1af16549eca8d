"""The real daemon, its wall clock started at a time a test chooses.

``python -m daemon_at 2026-11-23T06:29:57+00:00 --sim --board desk ...``: the
time (ISO 8601) is what the clock reads first (when the scheduled calls are
set up, as the daemon starts), and it runs on from there at the real pace; the rest are the
``switchboard`` command's own arguments. Scheduled calls run on this clock,
so a test sees a wake-up call fall due a few seconds after start-up. The
daemon itself has no such hook: ``firmware.app.main`` takes its wall clock.
"""

import sys
import time
from datetime import datetime, timedelta

from firmware.app import main


def clock_from(start: str):
    base, t0 = datetime.fromisoformat(start), []

    def now():
        if not t0:
            t0.append(time.monotonic())
        return base + timedelta(seconds=time.monotonic() - t0[0])
    return now


if __name__ == "__main__":
    sys.exit(main(sys.argv[2:], wall_clock=clock_from(sys.argv[1])))
