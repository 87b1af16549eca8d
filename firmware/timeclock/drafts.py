"""The message pad's drafts: what each position has typed and not yet stamped.

A draft is kept with its position and the call it was typed on, on disk, so a
page reload, a daemon restart, the line being released first or the operator
picking up another line loses nothing::

    {"1": [{"line": "201", "customer": "marys-gloves", "name": "Mary's Gloves",
            "call": "c-17", "fields": {"name": "Mrs Lee", "number": "5550123",
            "message": "ring back"}, "urgent": false,
            "updated": "2026-11-30T16:50:02+00:00"}, ...]}

A position holds one draft per call (line and call id; ``draft_id`` names it
"201/c-17"), the last saved first: the one for the call on the pad and any
left unfinished when the operator went to another line, each still filed
under its own line and customer. ``fields`` follow the card's ``collect``
list (plus "message"). The file (``<data>/drafts.json``) is replaced
atomically and fsynced before a save is acknowledged; it is small.
"""

from __future__ import annotations

import json
from pathlib import Path

from firmware.errors import SwitchboardError
from firmware.records.journal import StoreError, atomic_write

MAX_FIELD = 4000          # characters in one field: a slip, not a letter
MAX_FIELDS = 20
MAX_DRAFTS = 20           # unfinished messages one position may hold
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


def draft_id(line, call) -> str:
    """A draft's name: its line and call, "201/c-17" ("201/" for a call without an id)."""
    return f"{line or ''}/{call or ''}"


def parse_id(text: str) -> tuple:
    """(line, call) from a ``draft_id``; DraftError when it is not one."""
    line, sep, call = text.partition("/")
    if not sep:
        raise DraftError(f"id = {text!r}: expected a draft's id, its line and call "
                         "(\"201/c-17\")")
    return line or None, call or None


def draft_key(draft: dict) -> tuple:
    return draft.get("line"), draft.get("call")


class Drafts:
    """Each position's drafts, one per call, durable. One writer (the time clock's
    worker thread)."""

    def __init__(self, data_dir):
        self.path = Path(data_dir) / "drafts.json"
        self._drafts: dict[int, list[dict]] = {}
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text())
                # One draft per position, as kept before one per call: a list of one.
                self._drafts = {int(p): [d] if isinstance(d, dict) else list(d)
                                for p, d in raw.items()}
            except (OSError, ValueError, TypeError) as e:
                raise StoreError(f"{self.path}: cannot read the message pads' drafts ({e}); "
                                 "move the file aside to start with empty pads") from None

    def get(self, position: int, key: tuple) -> dict | None:
        """The draft ``position`` keeps for ``key`` (line, call)."""
        d = next((d for d in self._drafts.get(position, ()) if draft_key(d) == key), None)
        return dict(d) if d else None

    def of(self, position: int) -> list[dict]:
        """``position``'s drafts, the last saved first."""
        return [dict(d) for d in self._drafts.get(position, ())]

    def all(self) -> dict[int, list[dict]]:
        return {p: self.of(p) for p in self._drafts}

    def put(self, position: int, draft: dict) -> dict:
        """Keep ``draft`` for ``position`` and its call; on disk when this returns."""
        key = draft_key(draft)
        rest = [d for d in self._drafts.get(position, ()) if draft_key(d) != key]
        if len(rest) >= MAX_DRAFTS:
            raise DraftError(f"position {position} already holds {len(rest)} unfinished "
                             "messages: stamp or clear some first")
        self._write({**self._drafts, position: [draft] + rest})
        return dict(draft)

    def drop(self, position: int, key: tuple) -> None:
        have = self._drafts.get(position, [])
        rest = [d for d in have if draft_key(d) != key]
        if len(rest) != len(have):
            new = {**self._drafts, position: rest}
            if not rest:
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
