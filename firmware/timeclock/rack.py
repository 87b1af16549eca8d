"""The message rack: one pigeonhole per customer, and the dead box.

A taken message is stamped ("message") and put in its customer's pigeonhole;
when the customer checks in, the operator reads each one, stamps it read back
("read-back", which copies the message's text) and it leaves the rack: the
read-back slip in the day's journal is its dead-box record.

The time clock's journals are the truth; ``rack.jsonl`` is kept beside them
as a quick index of what is waiting, with ``upto``, the last slip it has
taken into account. On open, every stamp after ``upto`` is applied again
(messages added, read-backs removed), so a crash between a stamp and the
rack's own write loses nothing. That is also why the rack's journal is not
fsynced on every write: after a power cut it is rebuilt from the stamps.
"""

from __future__ import annotations

from tinydb import TinyDB
from tinydb.table import Document

from firmware.errors import SwitchboardError
from firmware.records.journal import JournalStorage
from firmware.timeclock.clock import TimeClock


class RackError(SwitchboardError, LookupError):
    """A message asked for is not in the rack."""


class Rack:
    def __init__(self, timeclock: TimeClock):
        self.tc = timeclock
        self.db = TinyDB(timeclock.dir / "rack.jsonl", storage=JournalStorage,
                         readonly=timeclock.readonly, fsync=False,
                         lock_wait_s=timeclock.lock_wait_s)
        self.table = self.db.table("waiting")
        self.meta = self.db.table("meta")
        if not timeclock.readonly:
            self.catch_up()

    def _upto(self) -> int:
        doc = self.meta.get(doc_id=1)
        return doc["upto"] if doc else 0

    def _seen(self, slip: int) -> None:
        self.meta.upsert(Document({"upto": slip}, doc_id=1))

    def _apply(self, s: dict) -> None:
        if s["what"] == "message":
            if not self.table.contains(doc_id=s["slip"]):
                self.table.insert(Document(s, doc_id=s["slip"]))
        elif s["what"] == "read-back" and s.get("of") is not None:
            if self.table.contains(doc_id=s["of"]):
                self.table.remove(doc_ids=[s["of"]])

    def catch_up(self) -> int:
        """Apply the stamps made since the rack last wrote; returns how many.

        Worked out in memory first, so a long gap costs two writes, not one a stamp.
        """
        upto = self._upto()
        missed = self.tc.stamps_after(upto) if self.tc.last_slip > upto else []
        if not missed:
            return 0
        have = {d.doc_id for d in self.table.all()}
        add, gone = {}, set()
        for s in missed:
            if s["what"] == "message" and s["slip"] not in have:
                add[s["slip"]] = s
            elif s["what"] == "read-back" and s.get("of") is not None:
                if add.pop(s["of"], None) is None and s["of"] in have:
                    gone.add(s["of"])
        if add:
            self.table.insert_multiple(Document(s, doc_id=n) for n, s in add.items())
        if gone:
            self.table.remove(doc_ids=list(gone))
        self._seen(missed[-1]["slip"])
        return len(missed)

    # -- the operator's actions ------------------------------------------
    def take(self, line, customer, text=None, position=None, call=None,
             recording=None) -> dict:
        """Stamp a message (durable), then put it in the customer's pigeonhole."""
        if not (text and text.strip()) and not recording:
            raise RackError("a message needs its text (or a recording of the call)")
        stamp = self.tc.stamp("message", line=line, customer=customer, position=position,
                              call=call, text=text.strip() if text else None,
                              recording=recording)
        self._apply(stamp)
        self._seen(stamp["slip"])
        return stamp

    def read_back(self, slip: int, position=None) -> dict:
        """Stamp a waiting message read back; it leaves the rack for the dead box."""
        msg = self.get(slip)
        stamp = self.tc.stamp("read-back", line=msg["line"], customer=msg["customer"],
                              position=position, call=msg.get("call"), text=msg.get("text"),
                              of=slip, recording=msg.get("recording"))
        self._apply(stamp)
        self._seen(stamp["slip"])
        return stamp

    # -- looking ---------------------------------------------------------
    def get(self, slip: int) -> dict:
        doc = self.table.get(doc_id=slip)
        if doc is None:
            raise RackError(f"slip {slip} is not waiting in the rack "
                            "(already read back, or not a message)")
        return dict(doc)

    def waiting(self, customer=None, line=None) -> list[dict]:
        """Messages waiting, oldest first; for one customer, or one line's messages."""
        out = [dict(d) for d in self.table.all()
               if (customer is None or d.get("customer") == customer)
               and (line is None or d.get("line") == line)]
        return sorted(out, key=lambda d: d["slip"])

    def count(self, line: str, customer=None) -> int:
        """How many wait for a line's customer (by customer when known, else by line)."""
        if customer is not None:
            return len(self.waiting(customer=customer))
        return len(self.waiting(line=line))

    def recordings(self) -> list[str]:
        return [d["recording"] for d in self.table.all() if isinstance(d.get("recording"), str)]

    def close(self) -> None:
        self.db.close()
