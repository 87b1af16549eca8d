"""Times as the records write them, and the service's time zone, in one place.

Call records carry UTC times with milliseconds (``2026-11-22T06:01:02.345Z``);
the time clock's stamps carry local times with their offset. ``zone`` reads
a time-zone name (``SWITCHBOARD_TZ``, a tool's ``--timezone``, the plans
file) with an error that names where it came from.
"""

from __future__ import annotations

import time
from datetime import timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from firmware.errors import ConfigError


def iso(t: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC with milliseconds; None stays None."""
    if t is None:
        return None
    ms = int(t * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def zone(name: str | None, path="settings", keypath="timezone") -> tzinfo:
    if not name or name == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(path, keypath, name, "an IANA time zone such as \"Europe/London\"") from None
