"""The dead box's search index: every kept slip in SQLite, its text in an FTS5 trigram index.

The day journals (``clock.py``) stay the truth; ``<data>/slipindex.sqlite`` is
derived from them and can be thrown away at any time. Reading 30 days of a
busy board's journals for each dead-box search takes seconds; the index
answers the same questions (words on a slip, customer, dates, slip number) in
milliseconds, fast enough to search as the supervisor types.

- **Kept current by the writer**: the time clock adapter adds each stamp once
  it is on disk (``add``). ``through`` is the highest slip up to which the index
  is known to hold every stamp without a gap.
- **Caught up from the journals** (``catch_up``) at start, in the background:
  slips a crash kept out of it, or every slip the first time. Searches use
  the journals until it has caught up once in this run.
- **Crash-safe**: each change is one SQLite transaction (WAL), so a kill
  mid-write leaves the index as it was before or after it. Slips above the
  journals' last slip (a stamp torn by a crash, whose number is given again)
  are deleted; a file SQLite cannot read is removed and rebuilt.
- **Same answers as the journals**: a text search matches a substring of the
  slip's text, case-insensitively. FTS5's trigram tokenizer narrows it down
  (three characters or more), then the substring test is applied as before.
- Days the time clock purged are dropped from it (``drop_before``).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("switchboard.timeclock")

FILE = "slipindex.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS slips (
    slip INTEGER PRIMARY KEY, day TEXT NOT NULL, customer TEXT, what TEXT,
    of INTEGER, text TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS slips_customer ON slips (customer, slip);
CREATE INDEX IF NOT EXISTS slips_day ON slips (day, slip);
CREATE INDEX IF NOT EXISTS slips_of ON slips (of);
CREATE VIRTUAL TABLE IF NOT EXISTS slip_text USING fts5 (
    text, content='slips', content_rowid='slip', tokenize='trigram');
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER);
"""
BATCH = 5000
COUNT_UP_TO = 5000    # "5000 or more": counting every slip a short word matches costs seconds
REBUILD_OVER = 2000   # more missing than this: the text index is rebuilt at once (10x quicker)



def open_index(path, schema: str, what: str, rebuild_if_bad=False) -> sqlite3.Connection:
    """The SQLite file of an index (this one, the call index) with ``schema``. An index is
    derived data: WAL with NORMAL sync (a power cut loses at most the last rows, which
    catching up finds again), and one that cannot be read is removed and made afresh when
    ``rebuild_if_bad``."""
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
        db.execute("SELECT count(*) FROM meta").fetchone()
        return db
    except sqlite3.DatabaseError as e:
        if not rebuild_if_bad:
            raise
        log.warning("%s %s unreadable (%s): building it again", what, path, e)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{path}{suffix}")
            except FileNotFoundError:
                pass
        return open_index(path, schema, what)

class SlipIndex:
    """One writer connection (``add``, ``catch_up``, ``drop_before``) and one per reading
    thread (``search``); WAL lets them run side by side."""

    def __init__(self, data_dir):
        self.path = Path(data_dir) / FILE
        self.ready = False           # caught up with the journals in this run
        self._lock = threading.Lock()
        self._local = threading.local()
        self._db = self._connect(rebuild_if_bad=True)

    def _connect(self, rebuild_if_bad=False) -> sqlite3.Connection:
        return open_index(self.path, SCHEMA, "dead-box index", rebuild_if_bad)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- keeping it current (any thread; writes are serialised) ------------
    def through(self) -> int:
        row = self._db.execute("SELECT v FROM meta WHERE k = 'through'").fetchone()
        return row[0] if row else 0

    def _delete(self, where: str, args) -> int:
        """Rows out of both tables (the text index is told each row's old text)."""
        self._db.execute("INSERT INTO slip_text (slip_text, rowid, text) SELECT 'delete', "
                         f"slip, text FROM slips WHERE {where}", args)
        return self._db.execute(f"DELETE FROM slips WHERE {where}", args).rowcount

    def _insert(self, stamps, text_too=True) -> None:
        """``stamps``: (journal day, stamp) pairs in slip order. The day is the journal's,
        as the journals' searches and the purge go by it (a clock set back keeps
        stamping into the newest day)."""
        rows = [(s["slip"], day, s.get("customer"), s.get("what"), s.get("of"),
                 (s.get("text") or "").lower(), json.dumps(s, separators=(",", ":")))
                for day, s in stamps]
        # A slip number given again after a torn stamp: the new stamp replaces it.
        self._delete("slip BETWEEN ? AND ?", (rows[0][0], rows[-1][0]))
        self._db.executemany("INSERT INTO slips VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        if text_too:
            self._db.executemany("INSERT INTO slip_text (rowid, text) VALUES (?, ?)",
                                 [(r[0], r[5]) for r in rows])

    def add(self, stamp: dict, day: str) -> None:
        """A new stamp, already on disk in ``day``'s journal."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._insert([(day, stamp)])
                if self.ready and stamp["slip"] == self.through() + 1:
                    self._set_through(stamp["slip"])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _set_through(self, slip: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('through', ?)", (slip,))

    def catch_up(self, timeclock) -> int:
        """Index every kept stamp the index lacks (``timeclock`` read-only is fine);
        returns how many were added. Afterwards ``ready`` is true."""
        last = timeclock.last_slip
        days = timeclock.days()
        with self._lock:
            # Torn stamps (numbers given again) and purged days go first.
            self._db.execute("BEGIN")
            self._delete("slip > ?", (last,))
            if days:
                self._delete("day < ?", (days[0],))
            if self.through() > last:
                self._set_through(last)
            self._db.execute("COMMIT")
            start = self.through()
        missed = []
        for day in reversed(days if last > start else []):
            stamps = timeclock.read_day(day)
            missed[:0] = [(day, s) for s in stamps if s["slip"] > start]
            if stamps and stamps[0]["slip"] <= start + 1:
                break
        bulk = len(missed) > REBUILD_OVER
        with self._lock:
            # One transaction: a kill in the middle leaves the index as it was.
            self._db.execute("BEGIN")
            for i in range(0, len(missed), BATCH):
                self._insert(missed[i:i + BATCH], text_too=not bulk)
            if bulk:
                self._db.execute("INSERT INTO slip_text (slip_text) VALUES ('rebuild')")
            if missed:
                self._set_through(missed[-1][1]["slip"])
            self._db.execute("COMMIT")
        with self._lock:
            self._db.execute("BEGIN")
            # Stamps the writer added while this ran are already in: go past them.
            top = self.through()
            while self._db.execute("SELECT 1 FROM slips WHERE slip = ?", (top + 1,)).fetchone():
                top += 1
            self._set_through(top)
            self._db.execute("COMMIT")
            self.ready = True
        return len(missed)

    def drop_before(self, day: str) -> int:
        """Days purged from the journals leave the index too."""
        with self._lock:
            self._db.execute("BEGIN")
            n = self._delete("day < ?", (day,))
            self._db.execute("COMMIT")
            return n

    # -- searching (a reading thread) ------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.db = db
        return db

    def search(self, *, what=None, since=None, until=None, customer=None, search=None,
               slip=None, limit=None) -> tuple[list[dict], int]:
        """Stamps matching every condition given, newest first, at most ``limit``;
        returns them and how many match in all, counted up to ``COUNT_UP_TO`` (more
        than that: ``COUNT_UP_TO + 1``). Dates are ``dt.date`` or None."""
        where, args = [], []
        for cond, value in (("s.what = ?", what), ("s.customer = ?", customer),
                            ("s.day >= ?", since and since.isoformat()),
                            ("s.day <= ?", until and until.isoformat())):
            if value is not None:
                where.append(cond)
                args.append(value)
        if slip is not None:
            # A message asked for by its own number or by its read-back's.
            where.append("(s.slip = ? OR s.slip IN (SELECT of FROM slips WHERE slip = ? "
                         "AND what = 'read-back'))")
            args += [slip, slip]
        needle = search.lower() if search else None
        order = "s.slip"
        source = "slips s"
        if needle is not None:
            if len(needle) >= 3:
                # Driven by the text index, newest first: FTS5 walks its rowids in
                # order and stops at the LIMIT, so a word on every slip costs no more
                # than a rare one.
                source = "slip_text f JOIN slips s ON s.slip = f.rowid"
                order = "f.rowid"
                where.insert(0, "f.slip_text MATCH ?")
                args.insert(0, '"' + needle.replace('"', '""') + '"')
            # The exact test (trigrams only narrow it down; short needles scan).
            where.append("instr(s.text, ?) > 0")
            args.append(needle)
        sql = f"FROM {source}" + (" WHERE " + " AND ".join(where) if where else "")
        db = self._reader()
        total = db.execute(f"SELECT count(*) FROM (SELECT 1 {sql} LIMIT {COUNT_UP_TO + 1})",
                           args).fetchone()[0]
        rows = db.execute(f"SELECT s.doc {sql} ORDER BY {order} DESC"
                          + (" LIMIT ?" if limit is not None else ""),
                          args + ([limit] if limit is not None else [])).fetchall()
        return [json.loads(r[0]) for r in rows], total

    def read_backs(self, slips) -> dict[int, dict]:
        """The read-back of each of ``slips`` that has one: {message slip: read-back}."""
        slips = list(slips)
        if not slips:
            return {}
        db = self._reader()
        out = {}
        for i in range(0, len(slips), 500):
            part = slips[i:i + 500]
            q = ("SELECT doc FROM slips WHERE what = 'read-back' AND of IN ("
                 + ",".join("?" * len(part)) + ")")
            for (doc,) in db.execute(q, part):
                s = json.loads(doc)
                out[s["of"]] = s
        return out

    def close_reader(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
