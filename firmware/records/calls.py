"""Call records: one plain dict per call, appended to a JSON-lines file.

A record::

    {"id": "w0-3", "line": "201", "direction": "in", "kind": "call",
     "caller": "4155550100", "callee": "201",
     "offered": "2026-11-22T06:01:02.345Z", "answered": "...", "ended": "...",
     "rings": 2, "position": 1, "hold_s": 12.5, "outcome": "answered"}

``outcome`` is one of answered, abandoned (the caller hung up before anyone
answered), overflowed, transferred. The writer is a small class with one
method so the durable store (the time clock's) can replace it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

OUTCOMES = ("answered", "abandoned", "overflowed", "transferred")


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class JsonLinesRecords:
    """Appends each record as one line and fsyncs, so a power cut loses at most that line."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: dict):
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self) -> list[dict]:
        """Every whole record (a torn last line is skipped)."""
        out = []
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
        return out

    def remove_before(self, day: str) -> list[dict]:
        """Take out the records offered before ``day`` ("YYYY-MM-DD", UTC) and
        return them; the rest are rewritten to a new file (fsynced, renamed
        over the old one) under the writers' lock, so no record written
        meanwhile is lost and a crash leaves the old file or the new one."""
        with self._lock:
            recs = self.read()
            old = [r for r in recs if str(r.get("offered") or "")[:10] < day]
            if not old:
                return []
            keep = [r for r in recs if str(r.get("offered") or "")[:10] >= day]
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in keep).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            return old
