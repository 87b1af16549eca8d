"""The message pad's drafts: what each position has typed and not yet stamped.

A draft is kept with its position, on disk, so a page reload, a daemon
restart or the line being released first loses nothing::

    {"line": "201", "customer": "marys-gloves", "call": "c-17",
     "fields": {"name": "Mrs Lee", "number": "5550123", "message": "ring back"},
     "urgent": false, "updated": "2026-11-30T16:50:02+00:00"}

``fields`` follow the card's ``collect`` list (plus "message"); the line and
customer are those the pad was opened for, so a draft stamped after the line
was released still goes to the right pigeonhole. The file
(``<data>/drafts.json``) is replaced atomically and fsynced before a save is
acknowledged; it is small (one draft per position).
"""

from __future__ import annotations

import json
from pathlib import Path

from firmware.errors import SwitchboardError
from firmware.records.journal import StoreError, atomic_write

MAX_FIELD = 4000          # characters in one field: a slip, not a letter
MAX_FIELDS = 20
_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789_- ")


class DraftError(SwitchboardError, ValueError):
    """A draft with something wrong in it."""


def check_fields(fields) -> dict:
    """The pad's fields as {name: text}; DraftError names what is wrong."""
    if not isinstance(fields, dict):
        raise DraftError(f"fields = {fields!r}: expected an object of field name to text, "
                         'e.g. {"name": "Mrs Lee", "message": "ring back"}')
    if len(fields) > MAX_FIELDS:
        raise DraftError(f"fields: {len(fields)} fields; expected at most {MAX_FIELDS}")
    out = {}
    for k, v in fields.items():
        if not isinstance(k, str) or not k or len(k) > 40 or not set(k.lower()) <= _NAME_OK:
            raise DraftError(f"fields: field name {k!r}: expected a short name such as "
                             "\"name\" or \"number\"")
        if not isinstance(v, str):
            raise DraftError(f"fields.{k} = {v!r}: expected text")
        if len(v) > MAX_FIELD:
            raise DraftError(f"fields.{k}: {len(v)} characters; expected at most {MAX_FIELD}")
        out[k] = v
    return out


def compose(fields: dict, collect=()) -> str:
    """The slip's text from the pad's fields, in the card's order, message last.

    Only a message (as ``type-message`` gives) is the text as typed; otherwise
    "Name: Mrs Lee; Number: 5550123; Message: ring back".
    """
    filled = {k: v.strip() for k, v in fields.items() if v and v.strip()}
    if set(filled) <= {"message"}:
        return filled.get("message", "")
    order = [c for c in collect if c in filled and c != "message"]
    order += [k for k in filled if k not in order and k != "message"]
    if "message" in filled:
        order.append("message")
    return "; ".join(f"{k[0].upper()}{k[1:]}: {filled[k]}" for k in order)


class Drafts:
    """One draft per position, durable. One writer (the time clock's worker thread)."""

    def __init__(self, data_dir):
        self.path = Path(data_dir) / "drafts.json"
        self._drafts: dict[int, dict] = {}
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text())
                self._drafts = {int(p): d for p, d in raw.items()}
            except (OSError, ValueError, TypeError) as e:
                raise StoreError(f"{self.path}: cannot read the message pads' drafts ({e}); "
                                 "move the file aside to start with empty pads") from None

    def get(self, position: int) -> dict | None:
        d = self._drafts.get(position)
        return dict(d) if d else None

    def all(self) -> dict[int, dict]:
        return {p: dict(d) for p, d in self._drafts.items()}

    def put(self, position: int, draft: dict) -> dict:
        """Keep ``draft`` for ``position``; on disk when this returns."""
        new = dict(self._drafts)
        new[position] = draft
        self._write(new)
        return dict(draft)

    def drop(self, position: int) -> None:
        if position in self._drafts:
            new = dict(self._drafts)
            del new[position]
            self._write(new)

    def _write(self, drafts):
        data = json.dumps({str(p): d for p, d in sorted(drafts.items())},
                          ensure_ascii=False, indent=1).encode()
        try:
            atomic_write(self.path, data)
        except OSError as e:
            raise StoreError(f"{self.path}: cannot keep the draft ({e.strerror or e})") from None
        self._drafts = drafts
