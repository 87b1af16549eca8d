"""The call records, indexed for the dead box and the card's history.

``calls.jsonl`` (the telephony's: one record appended as each call ends; whole
days taken out by the retention purge, which rewrites the file) stays the
truth; ``<data>/callindex.sqlite`` is derived from it and can be thrown away at
any time. Reading 30 days of a busy board's records (300 000 calls, 83 MB)
takes about 1.5 s, and every dead-box search (each slip's call record) and
every card's history (the caller's and the customer's last calls) did that;
the index answers them in milliseconds.

- **Caught up before each lookup** (``refresh``): only the bytes appended since
  the last look are read, up to the last whole record (a line still being
  written, or a torn one, is looked at again next time).
- **A rewritten file** (the purge renames a new one over it, or it is
  shorter): the rows of the days before its first record are dropped and the
  records it kept are skipped by count, checked at both ends; a file that does
  not match that way is indexed again from its start.
- Each change is one SQLite transaction; a file SQLite cannot read is removed
  and built again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import threading
from pathlib import Path

from firmware.records.journal import decode_line
from firmware.timeclock.slipindex import open_index

log = logging.getLogger("switchboard.timeclock")

FILE = "callindex.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    n INTEGER PRIMARY KEY, id TEXT, line TEXT, caller TEXT, offered TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS calls_id ON calls (id);
CREATE INDEX IF NOT EXISTS calls_line ON calls (line, offered);
CREATE INDEX IF NOT EXISTS calls_caller ON calls (caller, offered);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v);
"""
HEAD = 64     # the file's first bytes, kept to tell a file rewritten in place of it


def national(number: str | None) -> str:
    """Numbers compared as national digits: +1 555 010 1234 == 5550101234."""
    return re.sub(r"[^0-9]", "", number or "")[-10:]


def parse_line(line: bytes) -> tuple[dict, str] | None:
    """One record line (checksummed, or plain JSON from older files) -> (record, its
    JSON text); None for a damaged line."""
    rec = decode_line(line)
    if rec is not None:
        body = line[9:]
    else:
        body = line
        try:
            rec = json.loads(line)
        except ValueError:
            return None
    return (rec, body.decode()) if isinstance(rec, dict) else None


def records(data: bytes, start: int = 0):
    """(record, JSON text, end of its line) for each whole record line from ``start``."""
    pos = start
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return
        got = parse_line(data[pos:nl])
        if got is not None:
            yield got[0], got[1], nl + 1
        pos = nl + 1


class CallIndex:
    """One connection, used under a lock (the dead box's reading thread, mostly)."""

    def __init__(self, data_dir, calls_file):
        self.path = Path(data_dir) / FILE
        self.calls_file = Path(calls_file)
        self._lock = threading.Lock()
        self._db = self._connect(rebuild_if_bad=True)

    def _connect(self, rebuild_if_bad=False) -> sqlite3.Connection:
        return open_index(self.path, SCHEMA, "call index", rebuild_if_bad)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- keeping up with calls.jsonl -----------------------------------------
    def _meta(self) -> dict:
        return dict(self._db.execute("SELECT k, v FROM meta"))

    def refresh(self) -> int:
        """Index what was appended to the records since the last look; returns how many."""
        with self._lock:
            m = self._meta()
            try:
                f = open(self.calls_file, "rb")
            except FileNotFoundError:
                f = None
            with f or contextlib.nullcontext():
                # The open file's own inode, size and first bytes: the purge may rename
                # another over it (whose inode may be one an older file had).
                st = os.fstat(f.fileno()) if f else None
                ino, size = (st.st_ino, st.st_size) if st else (None, 0)
                head = f.read(HEAD) if f else b""
                offset = m.get("offset") or 0
                same = (m.get("file") == str(self.calls_file) and m.get("ino") == ino
                        and size >= offset and head.startswith(m.get("head") or b""))
                if same and size == offset:
                    return 0                  # nothing new: the usual case
                base = offset if same else 0
                data = b""
                if f is not None:
                    f.seek(base)
                    data = f.read()
            return self._index(data, base, same, (ino, head))

    def _index(self, data: bytes, base: int, same: bool, ident) -> int:
        """The whole records in ``data`` (the file's bytes from ``base``), in one transaction."""
        self._db.execute("BEGIN")
        try:
            start = 0 if same else self._rewritten(data)
            rows, end = [], start
            for rec, doc, stop in records(data, start):
                rows.append((rec.get("id"), rec.get("line"), national(rec.get("caller")),
                             str(rec.get("offered") or ""), doc))
                end = stop                # after the last whole record: the next look starts there
            self._db.executemany("INSERT INTO calls (id, line, caller, offered, doc) "
                                 "VALUES (?, ?, ?, ?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                ("file", str(self.calls_file)), ("ino", ident[0]), ("head", ident[1]),
                ("offset", base + end)])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return len(rows)

    def _rewritten(self, data: bytes) -> int:
        """The file was replaced (the purge keeps the later records, in order, and drops
        whole days before a cutoff): drop those days' rows, and return where the records
        already indexed end in ``data``; 0 (every row dropped) if it does not match."""
        first = next(records(data), None)
        if first is not None:
            day = str(first[0].get("offered") or "")[:10]
            self._db.execute("DELETE FROM calls WHERE substr(offered, 1, 10) < ?", (day,))
            kept = self._db.execute("SELECT count(*) FROM calls").fetchone()[0]
            end = _after_lines(data, kept)
            if kept and end is not None:
                lo, hi = (self._db.execute(f"SELECT id, offered FROM calls ORDER BY n {o} LIMIT 1")
                          .fetchone() for o in ("ASC", "DESC"))
                last = parse_line(data[data.rfind(b"\n", 0, end - 1) + 1:end - 1])
                if _key(first[0]) == lo and last is not None and _key(last[0]) == hi:
                    return end
        self._db.execute("DELETE FROM calls")
        return 0

    # -- looking up (any thread) ------------------------------------------------
    def by_id(self, ids) -> dict[str, dict]:
        """The record of each call id found (the last one written, if an id recurs)."""
        ids = [i for i in set(ids) if i]
        self.refresh()
        out = {}
        with self._lock:
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                q = f"SELECT doc FROM calls WHERE id IN ({','.join('?' * len(part))}) ORDER BY n"
                for (doc,) in self._db.execute(q, part):
                    r = json.loads(doc)
                    out[r["id"]] = r
        return out

    def last(self, n: int, caller: str | None = None, line: str | None = None) -> list[dict]:
        """The ``n`` latest calls (by when offered, newest first) from ``caller`` (national
        digits) or on ``line``."""
        col, value = ("caller", caller) if caller else ("line", line)
        if not value:
            return []
        self.refresh()
        with self._lock:
            rows = self._db.execute(f"SELECT doc FROM calls WHERE {col} = ? "
                                    "ORDER BY offered DESC, n DESC LIMIT ?", (value, n))
            return [json.loads(doc) for (doc,) in rows]


def _key(rec: dict) -> tuple:
    return rec.get("id"), str(rec.get("offered") or "")


def _after_lines(data: bytes, count: int) -> int | None:
    """Where the ``count``-th line of ``data`` ends (None: it has fewer lines)."""
    pos = 0
    for _ in range(count):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return None
        pos = nl + 1
    return pos
