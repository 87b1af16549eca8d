"""Storage for TinyDB that a power cut cannot tear, and small writes as data piles up.

TinyDB's own ``JSONStorage`` rewrites the whole file in place on every write:
one write costs the whole store, and a kill in the middle leaves nothing
readable. ``JournalStorage`` keeps the database as an append-only journal
instead. Each ``write()`` appends one line holding only the documents that
changed, checksummed and fsynced before ``write()`` returns::

    <crc32 of json, 8 hex digits> <json: {"n": batch, "ops": [[table, id, doc], ...]}>\\n

``doc`` null deletes the document; ``[table, null, null]`` drops the table.
A crash can only tear the last line: on open a torn or zero-filled tail is cut
off (it was never acknowledged). A bad line *followed by good ones* is real
damage and raises ``StoreCorrupt`` naming the file and byte offset.

When the journal holds many more operations than live documents (on open,
or after a write) it is compacted: a snapshot written to a new file, fsynced, renamed over the old one,
and the directory fsynced, so there is always one whole journal on disk.

One writer per journal (an exclusive ``flock``); any number of read-only
readers, which never truncate or compact (a half-written last line is simply
not yet there for them).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import zlib
from pathlib import Path

from tinydb.storages import Storage

from firmware.records.files import atomic_write, fsync_dir
from firmware.errors import SwitchboardError


class StoreError(SwitchboardError, OSError):
    """A store could not be opened or written."""


class StoreCorrupt(StoreError):
    """A journal is damaged somewhere other than its last, unacknowledged line."""

    def __init__(self, path, offset, why):
        self.path, self.offset, self.why = str(path), offset, why
        super().__init__(f"{path}: byte {offset}: {why}; the lines after it are intact, "
                         "so this is damage, not a torn write: keep a copy of the file and "
                         "run 'switchboard-messages verify' to see every bad line")


def encode_line(obj) -> bytes:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def decode_line(line: bytes):
    """The object on one journal line (without its newline), or None if it is bad."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    body = line[9:]
    if zlib.crc32(body) != crc:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def scan(data: bytes):
    """Walk a journal's bytes: yields (offset, record or None, end offset)."""
    pos, n = 0, len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        if nl < 0:
            yield pos, None, n        # no newline: a torn last line
            return
        yield pos, decode_line(data[pos:nl]), nl + 1
        pos = nl + 1


def _clone(v):
    """A deep copy of JSON-shaped data (much faster than copy.deepcopy)."""
    if isinstance(v, dict):
        return {k: _clone(x) if isinstance(x, (dict, list)) else x for k, x in v.items()}
    if isinstance(v, list):
        return [_clone(x) if isinstance(x, (dict, list)) else x for x in v]
    return v


class JournalStorage(Storage):
    """A TinyDB storage: an append-only, checksummed, fsynced journal.

    ``TinyDB(path, storage=JournalStorage)``; ``readonly=True`` for tools
    that only look; ``fsync=False`` for stores that are rebuilt from another
    journal after a crash (still checksummed, still never torn).
    """

    #: Compact when the journal holds this many times more ops than live docs.
    COMPACT_RATIO = 4
    COMPACT_MIN_OPS = 2000

    def __init__(self, path, readonly: bool = False, fsync: bool = True,
                 create: bool = True, lock_wait_s: float = 0.0):
        self.path = Path(path)
        self.readonly = readonly
        self.do_fsync = fsync
        self.torn_bytes = 0          # bytes of torn tail cut off (or ignored) on open
        self._tables: dict[str, dict[str, dict]] = {}
        self._nested: dict[str, set] = {}   # ids of docs holding lists or dicts, per table
        self._batch = 0
        self._ops = 0
        self._fd = None
        self._size = 0
        if readonly:
            if self.path.exists():
                self._replay(self.path.read_bytes())
            elif not create:
                raise StoreError(f"{self.path}: no such store")
            return
        if not self.path.parent.is_dir():
            raise StoreError(f"{self.path.parent}: the data folder does not exist; "
                             "create it or point the daemon's data option elsewhere")
        tmp = self.path.with_name(self.path.name + ".tmp")
        if tmp.exists():              # a compaction that never reached its rename
            tmp.unlink()
        new = not self.path.exists()
        if new and not create:
            raise StoreError(f"{self.path}: no such store")
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise StoreError(f"{self.path}: cannot open for writing: {e.strerror}") from e
        # A daemon restarting may overlap the old one's exit by a moment: wait a little.
        deadline = time.monotonic() + lock_wait_s
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
            os.close(self._fd)
            self._fd = None
            raise StoreError(f"{self.path}: in use by another program (is the switchboard "
                             "daemon running? stop it, or use a read-only command)") from None
        if new:
            os.fsync(self._fd)
            fsync_dir(self.path.parent)
        with open(self.path, "rb") as f:
            data = f.read()
        good = self._replay(data)
        if good < len(data):
            # The tail was never acknowledged (a crash mid-append): cut it off.
            os.ftruncate(self._fd, good)
            os.fsync(self._fd)
        self._size = good
        if self._ops > self.COMPACT_MIN_OPS and \
                self._ops > self.COMPACT_RATIO * max(1, self.live_docs()):
            self.compact()

    # -- reading the journal ---------------------------------------------
    def _replay(self, data: bytes) -> int:
        """Apply every whole record; return the offset where the good part ends."""
        good = 0
        bad_at = None
        for pos, rec, end in scan(data):
            if rec is None or not isinstance(rec, dict) or not isinstance(rec.get("ops"), list):
                if bad_at is None:
                    bad_at = pos
                continue
            if bad_at is not None:
                raise StoreCorrupt(self.path, bad_at, "a line fails its checksum")
            self._apply(rec["ops"])
            self._batch = rec.get("n", self._batch + 1)
            good = end
        if bad_at is not None:
            self.torn_bytes = len(data) - bad_at
        return good

    def _apply(self, ops):
        for t, i, doc in ops:
            if i is None:
                if doc is None:
                    self._tables.pop(t, None)
                    self._nested.pop(t, None)
                else:
                    self._tables.setdefault(t, {})
                continue
            table = self._tables.setdefault(t, {})
            nested = self._nested.setdefault(t, set())
            if doc is None:
                table.pop(i, None)
                nested.discard(i)
            else:
                table[i] = doc
                if any(isinstance(v, (dict, list)) for v in doc.values()):
                    nested.add(i)
                else:
                    nested.discard(i)
            self._ops += 1

    def live_docs(self) -> int:
        return sum(len(t) for t in self._tables.values())

    # -- the Storage interface -----------------------------------------
    def read(self):
        # Copies, so TinyDB's in-place updates show up as changes in write();
        # flat documents (most: stamps) are copied at C speed.
        if not self._tables:
            return None
        out = {}
        for t, docs in self._tables.items():
            nested = self._nested.get(t)
            if nested:
                out[t] = {i: _clone(d) if i in nested else d.copy() for i, d in docs.items()}
            else:
                out[t] = {i: d.copy() for i, d in docs.items()}
        return out

    def write(self, data) -> None:
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        ops = []
        for t, docs in data.items():
            old = self._tables.get(t)
            if old is None:
                ops.append([t, None, {}])
                old = {}
            get = old.get
            for i, doc in docs.items():     # TinyDB hands ids over as str already
                if get(i) != doc:
                    ops.append([t, str(i), doc])
            for i in old.keys() - docs.keys():
                ops.append([t, i, None])
        for t in self._tables.keys() - data.keys():
            ops.append([t, None, None])
        if not ops:
            return
        self._append(ops)
        # TinyDB hands over fresh dicts built from read()'s copies: keep them.
        self._apply([[t, i, d] for t, i, d in ops])
        if self._ops > self.COMPACT_MIN_OPS and \
                self._ops > self.COMPACT_RATIO * max(1, self.live_docs()):
            self.compact()      # a store that is mostly changes (the rack) stays small

    def insert(self, table: str, doc_id, doc: dict) -> None:
        """Add one new document by appending it alone: O(1), whatever the table's size.

        TinyDB's own insert hands the whole database to ``write()`` (O(n) to
        copy and compare); the time clock's hot path uses this instead. Call
        ``db.table(name).clear_cache()`` after it, as TinyDB does after a write.
        """
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        i = str(doc_id)
        if i in self._tables.get(table, ()):
            raise StoreError(f"{self.path}: {table} document {i} already exists")
        ops = [] if table in self._tables else [[table, None, {}]]
        ops.append([table, i, _clone(doc)])
        self._append(ops)
        self._apply(ops)

    def _append(self, ops) -> None:
        line = encode_line({"n": self._batch + 1, "ops": ops})
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(28, "short write (disk full?)")
            if self.do_fsync:
                os.fsync(self._fd)
        except OSError as e:
            # Take back a partial line so the next append does not follow garbage.
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise StoreError(f"{self.path}: write failed: {e.strerror or e}; "
                             "nothing was stored") from e
        self._batch += 1
        self._size += len(line)

    def compact(self) -> None:
        """Rewrite the journal as one snapshot record (write new, fsync, rename)."""
        ops = [[t, None, {}] for t in self._tables]
        ops += [[t, i, d] for t, docs in self._tables.items() for i, d in docs.items()]
        self._batch += 1
        line = encode_line({"n": self._batch, "ops": ops, "snap": True})
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        os.close(self._fd)
        self._fd = fd
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        self._size = len(line)
        self._ops = self.live_docs()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def verify_journal(path) -> dict:
    """Check every line of one journal without changing it.

    Returns {"path", "records", "bad": [offset, ...], "torn_tail": bytes}.
    """
    data = Path(path).read_bytes()
    records, bad, last_good_end = 0, [], 0
    for pos, rec, end in scan(data):
        if rec is None:
            bad.append(pos)
        else:
            records += 1
            last_good_end = end
    tail = [b for b in bad if b >= last_good_end]
    return {"path": str(path), "records": records,
            "bad": [b for b in bad if b < last_good_end],
            "torn_tail": len(data) - tail[0] if tail else 0}


def write_snapshot(path, tables: dict, durable: bool = True) -> None:
    """Write a whole store at once (bulk loads, benchmarks): one snapshot record."""
    ops = [[t, None, {}] for t in tables]
    ops += [[t, str(i), d] for t, docs in tables.items() for i, d in docs.items()]
    line = encode_line({"n": 1, "ops": ops, "snap": True})
    if durable:
        atomic_write(path, line)
    else:
        Path(path).write_bytes(line)
