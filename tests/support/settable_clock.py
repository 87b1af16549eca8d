"""A settable clock for the time clock (the system clock in production)."""

import datetime as dt

TZ = dt.timezone(dt.timedelta(hours=-5))


class Clock:
    """A settable clock for the time clock (the system clock in production)."""

    def __init__(self, when=dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)):
        self.now = when

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += dt.timedelta(**kw)
