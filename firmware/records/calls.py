"""Call records: one plain dict per call, appended to a JSON-lines file.

A record::

    {"id": "w0-3", "line": "201", "direction": "in", "kind": "call",
     "caller": "4155550100", "callee": "201",
     "offered": "2026-11-22T06:01:02.345Z", "answered": "...", "ended": "...",
     "rings": 2, "position": 1, "hold_s": 12.5, "outcome": "answered"}

``outcome`` is one of ``OUTCOMES``: answered, abandoned (the caller hung up
before anyone answered), overflowed, transferred; and for calls the board
places itself (wake-up and reminder calls) no-answer and failed. The writer is a small class with one
method so the durable store (the time clock's) can replace it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from pathlib import Path

from firmware.records.files import atomic_write
from firmware.records.journal import encode_line, scan
from firmware.runtime.adapter import Adapter

log = logging.getLogger("switchboard.records")

#: Every outcome a call record may have: the board's calls, and calls it places itself.
OUTCOMES = ("answered", "abandoned", "overflowed", "transferred", "no-answer", "failed")


class JsonLinesRecords(Adapter):
    """The call records' file: one checksummed line a call, with the journal's guarantees.

    Each record is one line as the time clock's journal writes them
    (``<crc32> <json>``, ``firmware.records.journal.encode_line``), appended and
    fsynced. On open a torn last line (a power cut mid-write: never
    acknowledged) is cut off; a damaged line among good ones is skipped and
    reported, never a reason not to start. A write that fails (the disk is
    full, the card is gone) is taken back to the last whole line, the record is
    kept in memory, the fault lamp lights, and the records are written again
    every ``RETRY_S`` (and at the next call's end) until they are on disk; then
    the fault clears. Lines written by older versions (plain JSON) still read.

    It is also an adapter (``firmware.runtime.adapter``) so that it gets the
    fault lamp and shows in status; without a daemon, ``on_fault`` is called.
    """

    name = "call-records"
    RETRY_S = 5.0

    def __init__(self, path, on_fault=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.on_fault = on_fault
        self.pending: list[bytes] = []      # records not yet on disk, oldest first
        self.last_error: str | None = None
        self.written = 0
        self.torn_bytes = 0                 # cut off the end at open
        self.bad_lines: list[int] = []      # byte offsets of damaged lines, skipped
        self._retry: threading.Timer | None = None
        self._stopped = False
        self._size: int | None = None       # where whole lines end; None: not yet opened
        # Opened (a torn tail cut) by the first write or the daemon's start, not here:
        # an instance made only to read must never cut a line another is writing.

    # -- adapter -----------------------------------------------------------
    def commands(self):
        return []

    def start(self, ctx) -> None:
        self.on_fault = lambda msg: ctx.fault("call records", msg)
        with self._lock:
            if self._size is None:
                self._open()
        if self.bad_lines:
            ctx.log.warning("%s: %d damaged record line(s) skipped (at bytes %s); the rest "
                            "are read", self.path, len(self.bad_lines),
                            ", ".join(map(str, self.bad_lines[:5])))
        if self.pending or self.last_error:
            self._fault(self.last_error)

    def handle(self, command) -> None:
        pass

    def status(self) -> dict:
        return {"path": str(self.path), "written": self.written, "pending": len(self.pending),
                "error": self.last_error, "damaged_lines_skipped": len(self.bad_lines),
                "torn_bytes_cut": self.torn_bytes}

    def stop(self) -> None:
        self._stopped = True
        if self._retry is not None:
            self._retry.cancel()
        with self._lock:
            self._flush()
        if self.pending:
            log.error("%s: %d call record(s) could not be written before stopping: %s",
                      self.path, len(self.pending), self.last_error)

    # -- writing -------------------------------------------------------------
    def _open(self):
        """Cut a torn tail off, count damaged lines, and note where whole lines end."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self._size = 0
            return
        good = 0          # where the last whole record ends: what follows is a torn tail
        bad = []
        for offset, rec, end in _lines(data):
            if rec is None:
                bad.append(offset)
            else:
                good = end
        self.bad_lines = [b for b in bad if b < good]    # damage among good lines: skipped
        if good < len(data):
            self.torn_bytes = len(data) - good
            try:
                with open(self.path, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
            except OSError as e:
                log.error("%s: cannot cut a torn last line: %s", self.path, e.strerror)
        self._size = good

    def write(self, record: dict):
        """Keep ``record``: on disk when this returns, or in memory (fault lit) until it can be."""
        line = encode_line(record)
        with self._lock:
            self.pending.append(line)
            self._flush()

    def _flush(self):
        if self._size is None:
            self._open()
        was_failing = self.last_error is not None
        while self.pending:
            line = self.pending[0]
            try:
                self._append(line)
            except OSError as e:
                self.last_error = (f"cannot write call records to {self.path}: "
                                   f"{e.strerror or e}; {len(self.pending)} kept in memory, "
                                   f"retried every {self.RETRY_S:g} s")
                log.error("%s", self.last_error)
                self._fault(self.last_error)
                self._schedule_retry()
                return
            self.pending.pop(0)
            self.written += 1
        if was_failing:
            self.last_error = None
            log.warning("%s: call records written again", self.path)
            self._fault(None)

    def _append(self, line: bytes):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            try:
                n = os.write(fd, line)
                if n != len(line):
                    raise OSError(errno.ENOSPC, "short write (disk full?)")
                os.fsync(fd)
            except OSError:
                # Take back the partial line, so the next record does not follow garbage.
                try:
                    os.ftruncate(fd, self._size)
                except OSError:
                    pass
                raise
            self._size += len(line)
        finally:
            os.close(fd)

    def _fault(self, message):
        if self.on_fault is not None:
            try:
                self.on_fault(message)
            except Exception:   # noqa: BLE001 - the records matter more than the lamp
                log.exception("call records: fault lamp")

    def _schedule_retry(self):
        if self._stopped or (self._retry is not None and self._retry.is_alive()):
            return
        self._retry = threading.Timer(self.RETRY_S, self._retry_now)
        self._retry.daemon = True
        self._retry.start()

    def _retry_now(self):
        with self._lock:
            self._retry = None
            self._flush()

    # -- reading ---------------------------------------------------------------
    def read(self) -> list[dict]:
        """Every whole record on disk (a torn last line and damaged lines are skipped)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return [rec for _, rec, _ in _lines(data) if isinstance(rec, dict)]

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
            data = b"".join(encode_line(r) for r in keep)
            atomic_write(self.path, data, 0o600)
            self._size = len(data)
            self.bad_lines = []
            return old


def _lines(data: bytes):
    """(offset, record or None, end) for each line: checksummed, or plain JSON (older files)."""
    for offset, rec, end in scan(data):
        if rec is None:
            line = data[offset:end].rstrip(b"\n")
            if line[:1] == b"{" and data[end - 1:end] == b"\n":
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = None
        yield offset, rec, end
