"""The board's side of each call: what the daemon knows of a call a worker holds.

A ``Call`` lives from the moment a worker reports it (or the board places it)
until it ends, and then becomes one call record (``firmware.records.calls``).
``CallBook`` is the one place calls are opened and closed: a call's end is
written exactly once, whichever of the worker's ``ended``, a worker's death,
the board's reconciliation or the adapter's stop gets there first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from firmware.records.times import iso

#: SIP final codes that mean nobody took a placed call (busy, no answer, we gave up).
NO_ANSWER_CODES = (408, 480, 486, 487, 600, 603)


@dataclass
class Call:
    id: str
    worker: object                # the WorkerProc holding it
    line: str
    direction: str
    caller: str | None
    callee: str | None
    offered: float
    answered: float | None = None
    ended: float | None = None
    rings: int = 1
    position: int | None = None
    hold_s: float = 0.0
    held_since: float | None = None
    outcome: str | None = None
    board_done: bool = False      # the board already cleared the line (Release)
    sip_call_id: str | None = None
    customer_on: bool = False
    overflowed: bool = False
    patching: str | None = None   # a transfer / live patch to this number is under way
    dialled: str = ""
    kind: str = "call"            # "wakeup" / "reminder" for a call the board placed itself
    placed: dict | None = None    # a PlaceCall's customer, schedule and occurrence
    recording: str | None = None  # the operator's conversation, recorded (record_calls)
    recording_error: str | None = None
    opened: float = field(default_factory=time.monotonic)   # when the board heard of it
    dialog: tuple | None = None   # a caller's (INVITE headers, the worker's tag): see orphans.py
    connected: bool = False       # the worker answered it (200 OK, ACKed)

    def default_outcome(self) -> str:
        return self.outcome or ("answered" if self.answered else "abandoned")

    def record(self) -> dict:
        extra = {} if self.placed is None else {
            "customer": self.placed["customer"], "schedule": self.placed["schedule"]}
        return {**extra, "id": self.id, "line": self.line, "direction": self.direction, "kind": self.kind,
                "caller": self.caller, "callee": self.callee, "offered": iso(self.offered),
                "answered": iso(self.answered), "ended": iso(self.ended), "rings": self.rings,
                "position": self.position, "hold_s": round(self.hold_s, 3),
                "outcome": self.outcome,
                **({"recording": self.recording} if self.recording else {}),
                **({"recording_error": self.recording_error} if self.recording_error else {})}


class CallBook:
    """Open calls by id and by line, and the ids of calls already ended (so that a late
    report of a call that has ended, e.g. "incoming" after "ended", opens nothing)."""

    ENDED_KEPT = 4096

    def __init__(self, clock):
        self.clock = clock
        self.records = None
        self.by_id: dict[str, Call] = {}
        self.by_line: dict[str, str] = {}
        self.ended_ids: dict[str, None] = {}     # insertion-ordered, bounded

    def open(self, c: Call) -> None:
        self.by_id[c.id] = c
        self.by_line[c.line] = c.id
        c.worker.calls.add(c.id)

    def get(self, cid) -> Call | None:
        return self.by_id.get(cid)

    def on_line(self, line) -> Call | None:
        cid = self.by_line.get(line)
        return self.by_id.get(cid) if cid else None

    def has_ended(self, cid) -> bool:
        return cid in self.ended_ids

    def finish(self, c: Call, outcome: str, record: bool = True) -> bool:
        """End ``c`` with ``outcome`` and write its record (unless ``record`` is False: a
        blocked caller, refused as one would be before it rang); False if it had ended."""
        if c.ended is not None:
            return False
        c.ended = self.clock()
        if c.held_since is not None:
            c.hold_s += c.ended - c.held_since
            c.held_since = None
        c.outcome = outcome
        self.by_id.pop(c.id, None)
        if self.by_line.get(c.line) == c.id:
            del self.by_line[c.line]
        c.worker.calls.discard(c.id)
        self.ended_ids[c.id] = None
        while len(self.ended_ids) > self.ENDED_KEPT:
            del self.ended_ids[next(iter(self.ended_ids))]
        if self.records is not None and record:
            self.records.write(c.record())
        return True
