"""The time clock: every stamp gets the next slip number and is on disk before it is used.

A stamp is plain data (others build on this shape)::

    {"slip": 1042, "time": "2026-11-22T09:15:02-05:00", "line": "201",
     "customer": "marys-gloves", "position": 1, "what": "message",
     "call": "c-17", "text": "Mrs Lee called, please ring back"}

``what`` is "message" (a message taken), "read-back" (a message read back to
its customer: ``of`` names the message's slip, ``text`` and ``recording`` are
copied from it, so this slip is the dead-box record), "answer" (a call answered) or
"stamp" (the stamp key with no message). A message may carry ``recording``,
the path of the call's recording, instead of or beside its text. A stamp made
while the system clock was not known to be set (no NTP synchronisation, no
real-time clock: ``clocksource``) carries ``"unverified": true``; readers
treat a stamp without the field as verified.

Stamps live in one journal per day, ``<data>/slips/YYYY-MM-DD.jsonl``
(``store.JournalStorage``), each document keyed by its slip number, so one
write is one short line and a day's slips are read without touching the rest.
Numbering is gapless: the next slip is one more than the last stamp that made
it to disk (a stamp torn by a crash was never acknowledged, so its number is
given again). If the clock is set back, stamps keep going into the newest
day's journal so the last slip is always found there; their times are true.

Old days are purged after ``retention_days`` (30 by default): before a day's
journal is removed its per-customer counts are added to ``clock.jsonl``, so
billing's monthly totals survive, and the highest purged slip is kept there
as the floor the numbering continues from.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter, defaultdict
from pathlib import Path

from tinydb import TinyDB
from tinydb.table import Document

from firmware.errors import SwitchboardError
from firmware.records.files import fsync_dir
from firmware.records.journal import JournalStorage, StoreError, verify_journal

WHATS = ("message", "read-back", "answer", "stamp")
FIELDS = ("slip", "time", "line", "customer", "position", "what", "call", "text")
TABLE = "stamps"


class StampError(SwitchboardError, ValueError):
    """A stamp was asked for with something wrong in it."""


def system_clock() -> dt.datetime:
    return dt.datetime.now().astimezone()


def parse_day(text: str, what: str = "date") -> dt.date:
    """A YYYY-MM-DD date from the command line, with a clear error."""
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise StampError(f"{what} {text!r}: expected a date as YYYY-MM-DD") from None


class TimeClock:
    """Stamps, kept by day. One writer (the daemon); host tools open ``readonly``."""

    def __init__(self, data_dir, clock=system_clock, readonly: bool = False,
                 retention_days: int = 30, lock_wait_s: float = 0.0, clock_verified=None):
        self.dir = Path(data_dir)
        # Whether the clock is known to be set (clocksource.ClockWatch.is_verified);
        # a stamp made while it is not carries "unverified": true.
        self.clock_verified = clock_verified
        self.slips_dir = self.dir / "slips"
        self.clock = clock
        self.readonly = readonly
        if not isinstance(retention_days, int) or retention_days < 30:
            raise StampError(f"retention_days = {retention_days!r}: expected a whole "
                             "number of days, at least 30")
        self.retention_days = retention_days
        if readonly:
            if not self.slips_dir.is_dir():
                raise StoreError(f"{self.dir}: no time clock data here (no slips/ folder); "
                                 "give the daemon's data folder with --data")
        else:
            self.slips_dir.mkdir(parents=True, exist_ok=True)
        self.lock_wait_s = lock_wait_s
        self.meta = TinyDB(self.dir / "clock.jsonl", storage=JournalStorage, readonly=readonly,
                           lock_wait_s=lock_wait_s)
        # Which customers each finished day holds, so a search for one customer
        # opens only their days. Rebuildable from the day journals: not fsynced.
        self.index = TinyDB(self.dir / "index.jsonl", storage=JournalStorage,
                            readonly=readonly, fsync=False, lock_wait_s=lock_wait_s)
        self._day: str | None = None
        self._db: TinyDB | None = None
        if not readonly and self.days():
            self._open_day(self.days()[-1])   # cuts a torn tail off now, not at the next stamp
        self.last_slip = self._find_last()

    # -- where stamps are ------------------------------------------------
    def days(self) -> list[str]:
        """The days that have a journal, oldest first."""
        if not self.slips_dir.is_dir():
            return []
        return sorted(p.name[:-6] for p in self.slips_dir.glob("????-??-??.jsonl"))

    def _path(self, day: str) -> Path:
        return self.slips_dir / f"{day}.jsonl"

    @property
    def journal_day(self) -> str | None:
        """The day whose journal the next stamp goes into (None until one is open)."""
        return self._day

    def floor(self) -> int:
        """The highest slip number purged (numbering continues above it)."""
        doc = self.meta.table("meta").get(doc_id=1)
        return doc["floor"] if doc else 0

    def read_day(self, day: str) -> list[dict]:
        """One day's stamps, in slip order."""
        if day == self._day and self._db is not None:
            docs = self._db.table(TABLE).all()
        else:
            path = self._path(day)
            if not path.exists():
                return []
            # A finished day, read straight from its journal: no TinyDB table around it
            # (three times quicker for the dead box's 30-day searches).
            docs = (JournalStorage(path, readonly=True).read() or {}).get(TABLE, {}).values()
        return sorted((dict(d) for d in docs), key=lambda d: d["slip"])

    def _find_last(self) -> int:
        for day in reversed(self.days()):
            try:
                stamps = self.read_day(day)
            except StoreError:
                if not self.readonly:
                    raise
                continue        # a reader (verify) carries on and reports it
            if stamps:
                return stamps[-1]["slip"]
        return self.floor()

    # -- stamping --------------------------------------------------------
    def stamp(self, what: str, line=None, customer=None, position=None, call=None,
              text=None, **extra) -> dict:
        """Make one stamp; it is fsynced to disk when this returns."""
        if self.readonly:
            raise StoreError(f"{self.dir}: time clock opened read-only")
        if what not in WHATS:
            raise StampError(f"what = {what!r}: expected one of {', '.join(WHATS)}")
        if position is not None and (not isinstance(position, int) or position < 1):
            raise StampError(f"position = {position!r}: expected a position number (1, 2, ...)")
        for name, v in (("line", line), ("customer", customer), ("call", call), ("text", text),
                        ("recording", extra.get("recording"))):
            if v is not None and not isinstance(v, str):
                raise StampError(f"{name} = {v!r}: expected text or nothing")
        if extra.get("recording") is not None and self.recording_path(extra["recording"]) is None:
            raise StampError(f"recording = {extra['recording']!r}: expected a file in {self.dir}")
        now = self.clock()
        day = now.date().isoformat()
        if self._day is None or day > self._day:
            existing = self.days()
            if existing and existing[-1] > day:
                day = existing[-1]    # the clock went back: stay in the newest journal
            if day != self._day:
                self._open_day(day)
        slip = self.last_slip + 1
        stamp = {"slip": slip, "time": now.isoformat(timespec="seconds"), "line": line,
                 "customer": customer, "position": position, "what": what,
                 "call": call, "text": text}
        stamp.update({k: v for k, v in extra.items() if v is not None})
        if self.clock_verified is not None and not self.clock_verified():
            stamp["unverified"] = True
        # One short fsynced line, whatever the day's size (TinyDB's insert is O(day)).
        self._db.storage.insert(TABLE, slip, stamp)
        self._db.table(TABLE).clear_cache()
        self.last_slip = slip
        return stamp

    def _open_day(self, day: str) -> None:
        if self._db is not None:
            self._db.close()
        self._db = TinyDB(self._path(day), storage=JournalStorage, lock_wait_s=self.lock_wait_s)
        self._day = day
        self._index_days()

    def _index_days(self) -> None:
        """Index every day but the one being written (earlier days never change:
        when the clock is set back, stamps still go into the newest day)."""
        table = self.index.table("days")
        done = {d["day"] for d in table.all()}
        for day in self.days():
            if day == self._day or day in done:
                continue
            customers = Counter(s.get("customer") or "" for s in self.read_day(day))
            table.insert({"day": day, "customers": dict(customers)})

    def _days_with(self, customer) -> set[str] | None:
        """The finished days that hold stamps for ``customer`` (None: no index to go by)."""
        docs = self.index.table("days").all()
        if not docs:
            return None
        return {d["day"] for d in docs if (customer or "") in d["customers"]} | \
            (set(self.days()) - {d["day"] for d in docs})

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            self._day = None
        self.meta.close()
        self.index.close()

    # -- looking -----------------------------------------------------------
    def stamps(self, since=None, until=None, customer=None, line=None, what=None,
               search=None) -> list[dict]:
        """Stamps between two dates (inclusive, dt.date or None), filtered."""
        lo = since.isoformat() if since else ""
        hi = until.isoformat() if until else "9999"
        needle = search.lower() if search else None
        wanted = self._days_with(customer) if customer is not None else None
        out = []
        for day in self.days():
            if not lo <= day <= hi or (wanted is not None and day not in wanted):
                continue
            for s in self.read_day(day):
                if customer is not None and s.get("customer") != customer:
                    continue
                if line is not None and s.get("line") != line:
                    continue
                if what is not None and s.get("what") != what:
                    continue
                if needle is not None and needle not in (s.get("text") or "").lower():
                    continue
                out.append(s)
        return out

    def day_of(self, slip: int):
        """The day whose journal holds ``slip`` (None: not kept), reading newest first."""
        for day in reversed(self.days()):
            stamps = self.read_day(day)
            if stamps and stamps[0]["slip"] <= slip:
                return dt.date.fromisoformat(day) if stamps[-1]["slip"] >= slip else None
        return None

    def stamps_after(self, slip: int) -> list[dict]:
        """Every stamp numbered above ``slip``, in order (reads only the newest days)."""
        found = []
        for day in reversed(self.days()):
            stamps = self.read_day(day)
            found[:0] = [s for s in stamps if s["slip"] > slip]
            if stamps and stamps[0]["slip"] <= slip + 1:
                break
        return found

    def verify(self) -> dict:
        """Check every journal's checksums and that slips run without gaps or repeats."""
        problems, notes, journals = [], [], []
        expect = self.floor() + 1
        seen = 0
        for day in self.days():
            rep = verify_journal(self._path(day))
            journals.append(rep)
            for off in rep["bad"]:
                problems.append(f"{rep['path']}: byte {off}: line fails its checksum")
            if rep["torn_tail"]:
                notes.append(f"{rep['path']}: {rep['torn_tail']} bytes of torn tail "
                                "(an unacknowledged write; cut off when the daemon opens it)")
            try:
                stamps = self.read_day(day)
            except StoreError as e:
                problems.append(str(e))
                continue
            for s in stamps:
                seen += 1
                if s["slip"] < expect:
                    problems.append(f"{day}: slip {s['slip']} repeats or is out of order "
                                    f"(expected {expect})")
                elif s["slip"] > expect:
                    problems.append(f"{day}: slips {expect}-{s['slip'] - 1} are missing")
                missing = [f for f in FIELDS if f not in s]
                if missing or s.get("what") not in WHATS:
                    problems.append(f"{day}: slip {s['slip']}: bad stamp "
                                    f"(missing {missing}, what={s.get('what')!r})")
                expect = max(expect, s["slip"] + 1)
        return {"ok": not problems, "stamps": seen, "first": self.floor() + 1,
                "last": expect - 1, "days": len(journals), "problems": problems, "notes": notes}

    # -- retention and billing -----------------------------------------
    def purge(self, keep_paths=()) -> dict:
        """Remove days older than the retention period, keeping their counts.

        Safe to interrupt at any point: counts are set (not added) per day and
        customer, so running it again gives the same totals.
        """
        cutoff = (self.clock().date() - dt.timedelta(days=self.retention_days)).isoformat()
        keep = {os.path.abspath(p) for p in keep_paths if isinstance(p, str) and "\0" not in p}
        purged, files, skipped = [], [], []
        for day in self.days():
            if day >= cutoff:
                continue
            stamps = self.read_day(day)
            counts = defaultdict(Counter)
            for s in stamps:
                cust = s.get("customer")
                counts[cust if isinstance(cust, str) else ""][str(s.get("what"))] += 1
            table = self.meta.table("counts")
            for cust, c in counts.items():
                doc = {"day": day, "customer": cust, **{w: c.get(w, 0) for w in WHATS}}
                table.upsert(doc, (lambda d, day=day, cust=cust:
                                   d["day"] == day and d["customer"] == cust))
            if stamps:
                top = stamps[-1]["slip"]
                if top > self.floor():
                    self.meta.table("meta").upsert(Document({"floor": top}, doc_id=1))
            for s in stamps:
                # A message's recording goes with its read-back (the dead-box slip),
                # which is purged 30 days after the read-back, not after the message.
                rec = s.get("recording") if s.get("what") == "read-back" else None
                if rec is None:
                    continue
                path = self.recording_path(rec)
                if path is None:
                    # Stored by an older version that took any value: never a
                    # file outside the data directory, never a crash.
                    skipped.append(f"slip {s.get('slip')}: recording = {rec!r}")
                    continue
                if path not in keep and os.path.isfile(path):
                    os.unlink(path)
                    files.append(path)
            self._path(day).unlink()
            fsync_dir(self.slips_dir)
            self.index.table("days").remove(lambda d, day=day: d["day"] == day)
            purged.append(day)
        out = {"purged_days": purged, "removed_files": files, "cutoff": cutoff}
        if skipped:
            out["skipped"] = skipped
        return out

    def recording_path(self, rec) -> str | None:
        """A stored recording's absolute path, or None unless it is a file name
        inside the data directory (the only files a purge may remove)."""
        if not isinstance(rec, str) or not rec or "\0" in rec:
            return None
        root = os.path.realpath(self.dir)
        path = os.path.realpath(os.path.join(root, rec))
        if os.path.commonpath([root, path]) != root or path == root:
            return None
        return path

    def monthly_counts(self, month: str) -> dict:
        """{customer: {what: n}} for one month "YYYY-MM", purged days included."""
        total = defaultdict(Counter)
        for d in self.meta.table("counts").all():
            if d["day"].startswith(month):
                for w in WHATS:
                    total[d["customer"]][w] += d.get(w, 0)
        for day in self.days():
            if day.startswith(month):
                for s in self.read_day(day):
                    total[s.get("customer") or ""][s["what"]] += 1
        return {c: {w: n.get(w, 0) for w in WHATS} for c, n in sorted(total.items())}
