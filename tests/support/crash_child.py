"""Stamps as fast as it can until it is killed; prints each stamp once it is acknowledged.

Run by test_crash.py: ``python crash_child.py DATA_DIR SEED``. The clock moves
7 minutes a slip, so a new day's journal is started every couple of hundred
stamps; the rack compacts often (a low threshold), so kills land in every
kind of write: appends, new files, compactions.
"""

import datetime as dt
import json
import random
import sys

from firmware.timeclock.rack import Rack
from firmware.records.journal import JournalStorage
from firmware.timeclock.clock import TimeClock

JournalStorage.COMPACT_MIN_OPS = 40
BASE = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone.utc)


def main():
    data, seed = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(seed)
    holder = {}
    tc = TimeClock(data, clock=lambda: BASE + dt.timedelta(minutes=7 * (holder["tc"].last_slip + 1)))
    holder["tc"] = tc
    rack = Rack(tc)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    while True:
        r = rnd.random()
        waiting = rack.waiting()
        if r < 0.45:
            s = rack.take(rnd.choice(["201", "202"]), rnd.choice(["a", "b"]),
                          f"message {rnd.randrange(10**6)}", position=1)
        elif r < 0.75 and waiting:
            s = rack.read_back(rnd.choice(waiting)["slip"], position=2)
        else:
            s = tc.stamp(rnd.choice(["answer", "stamp"]), line="201", customer="a", position=1)
        out.write(json.dumps(s) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
