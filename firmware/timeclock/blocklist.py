"""Blocked and nuisance callers: numbers refused at the board, or flagged on the card.

``<data>/blocked.json`` (replaced atomically, fsynced), edited with
``switchboard-customers block/unblock/blocked`` while the daemon runs (it
picks changes up)::

    [{"pattern": "5550199", "customer": null, "action": "block", "note": "abusive", "added": "..."},
     {"pattern": "415555*", "customer": "marys-gloves", "action": "nuisance", "note": "...", ...}]

A pattern is a number (compared as national digits, so ``+1 555 019 9`` is
``5550199``'s match only if the digits agree) with ``*`` for any digits and
``?`` for one; ``customer`` null means the whole site. ``block``: the call is
refused before it rings (busy) and counted; ``nuisance``: it rings, and the
card says so with the note.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import re
from pathlib import Path

from firmware.errors import SwitchboardError
from firmware.records.journal import StoreError, atomic_write

ACTIONS = ("block", "nuisance")
_PATTERN = re.compile(r"^\+?[0-9*?][0-9*?\- ()]{0,30}$")


class BlockError(SwitchboardError, ValueError):
    """A block-list entry with something wrong in it."""


def digits(number: str | None) -> str:
    d = re.sub(r"[^0-9]", "", number or "")
    return d[-10:] if len(d) > 10 else d


def pattern_digits(pattern: str) -> str:
    p = re.sub(r"[^0-9*?]", "", pattern)
    if "*" not in p and "?" not in p and len(p) > 10:
        p = p[-10:]
    return p


class BlockList:
    def __init__(self, data_dir):
        self.path = Path(data_dir) / "blocked.json"
        self._stat = None
        self.entries: list[dict] = []
        self.reload_if_changed()

    def _stat_now(self):
        try:
            st = os.stat(self.path)
            return (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            return None

    def reload_if_changed(self) -> bool:
        now = self._stat_now()
        if now == self._stat:
            return False
        self._stat = now
        if now is None:
            self.entries = []
            return True
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(entries, list):
                raise ValueError("expected a list")
        except (OSError, ValueError) as e:
            raise StoreError(f"{self.path}: cannot read the block list ({e}); fix it with "
                             "switchboard-customers block/unblock, or move it aside") from None
        self.entries = entries
        return True

    def match(self, caller: str | None, customer: str | None = None) -> dict | None:
        """The entry that applies to ``caller`` calling ``customer``'s line; a block wins."""
        d = digits(caller)
        if not d:
            return None
        found = None
        for e in self.entries:
            if e.get("customer") not in (None, customer):
                continue
            if fnmatch.fnmatchcase(d, pattern_digits(e["pattern"])):
                if e["action"] == "block":
                    return e
                found = found or e
        return found

    def add(self, pattern: str, customer=None, action="block", note="", now=None) -> dict:
        if not isinstance(pattern, str) or not _PATTERN.match(pattern.strip()) \
                or not re.search(r"[0-9]", pattern):
            raise BlockError(f"pattern {pattern!r}: expected a number, with * for any digits "
                             "and ? for one (e.g. 5550199, +1 415 555*, 555-01??)")
        if action not in ACTIONS:
            raise BlockError(f"action {action!r}: expected block or nuisance")
        self.reload_if_changed()
        entry = {"pattern": pattern.strip(), "customer": customer, "action": action,
                 "note": note or "", "added": (now or dt.datetime.now().astimezone()).isoformat(
                     timespec="seconds")}
        keep = [e for e in self.entries
                if not (e["pattern"] == entry["pattern"] and e.get("customer") == customer)]
        self._write(keep + [entry])
        return entry

    def remove(self, pattern: str, customer=None) -> None:
        self.reload_if_changed()
        keep = [e for e in self.entries
                if not (e["pattern"] == pattern.strip() and e.get("customer") == customer)]
        if len(keep) == len(self.entries):
            raise BlockError(f"pattern {pattern!r}"
                             + (f" for customer {customer}" if customer else " (site-wide)")
                             + " is not in the block list (switchboard-customers blocked)")
        self._write(keep)

    def _write(self, entries):
        try:
            atomic_write(self.path, json.dumps(entries, indent=1, ensure_ascii=False).encode())
        except OSError as e:
            raise StoreError(f"{self.path}: cannot write the block list ({e})") from None
        self.entries = entries
        self._stat = self._stat_now()
