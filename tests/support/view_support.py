"""The board's view of a daemon started as a process: the address it printed.

The daemon prints its view's address (token included) once the web server
listens; tests, benchmarks and ``scripts/screenshot_view.py`` read it from
the daemon's output, written to a file they keep open.
"""

import re
import time

URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")


def view_url(log, proc, seconds: float = 20.0) -> str | None:
    """The view's address in ``log`` (the daemon's output, a file open for reading) once
    the daemon ``proc`` has printed it; None if it exits first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        log.seek(0)
        m = URL_RE.search(log.read())
        if m:
            return m.group(1)
        if proc.poll() is not None or time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
