"""The time clock, the rack, the customers' cards and the slip printer, as a daemon adapter.

Commands in (from ``BoardState``): ``StampRequest`` stamps (taking the
message the operator typed at that position, if any), ``Answer`` stamps
"answer" with the call's id, ``LineChanged`` brings up the customer's card.
Events out: ``MessageWaiting(line, count)`` for the message lamps,
``Fault("printer"|"timeclock", message)`` for the fault lamp, and
``CardChanged(position, line, card)``, which the state passes on as
``ShowCard`` to the board's followers (the view): a card put up on a
position's screen, offered on a ringing line (position None), or taken down
(card None).

All storage belongs to one worker thread (TinyDB is not thread-safe and an
fsync must not stall the asyncio loop): ``handle()`` only queues work, and a
stamp is fsynced before it is printed, racked, or reported.

Control-socket commands (``args`` dicts): ``card`` {line}, ``type-message``
{position, text}, ``take-message`` {line, text, position?, customer?,
recording?}, ``check-in`` {line | customer | caller}, ``read-back`` {slip,
position?}, ``messages`` {customer?, line?, since?, until?, what?, search?,
waiting?}, ``stamp`` {position, line?}, ``operator`` {position, name},
``purge`` {}; the operator's console (the view's message pad, rack and dead
box): ``draft`` {position, fields?, urgent?, line? | id?}, ``draft-clear``
{position, id?}, ``draft-open`` {position, id?}, ``pad-stamp`` {position,
id?}, ``rack`` {}, ``customers`` {}, ``deadbox`` {customer?, since?, until?,
search?, slip?, limit?}, ``history`` {customer?, caller?}.

The message pad's drafts are kept with their position and call on disk
(``drafts.py``). The pad shows the draft of the call the position picked up
last (empty until something is typed), kept there after the line is
released; picking up another line leaves the earlier draft unfinished, to be
reopened (``draft-open``). The stamp key (or ``pad-stamp``) stamps the draft
on the pad as a message for the line and customer it was typed for, and the
draft is dropped only once the stamp is on disk. A message for a customer
whose delivery is e-mail or text is then queued in the outbox
(``delivery.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from firmware.timeclock.customers import (CALLOUT_RETRIES, CALLOUT_RETRY_AFTER, Customers,
                                          card as make_card)
from firmware.errors import ControlError, SwitchboardError
from firmware.timeclock.printer import SlipPrinter
from firmware.timeclock.rack import Rack
from firmware.core.state import (Answer, CardChanged, LineChanged, LineState, MessageWaiting,
                    StampRequest)
from firmware.timeclock.clock import TimeClock, parse_day, system_clock
from firmware.records.journal import decode_line
from firmware.timeclock.blocklist import BlockList, pattern_digits
from firmware.timeclock.callindex import CallIndex, national as _digits
from firmware.timeclock.delivery import Outbox, SendError
from firmware.timeclock.drafts import (Drafts, DraftError, check_fields, compose, draft_id,
                                       draft_key, parse_id)
from firmware.timeclock.slipindex import COUNT_UP_TO, SlipIndex
from firmware.runtime.adapter import Adapter, Context
from firmware.runtime.commands import Arg, Command

log = logging.getLogger("switchboard.timeclock")
HISTORY_SCAN = 5000       # newest kept messages the card's history looks through for a caller
NUMBER_FIELD = re.compile(r"number|phone", re.I)   # a pad field holding a phone number


def read_call_records(path) -> list[dict]:
    """Every whole call record in ``path``: plain JSON lines, or checksummed journal lines."""
    out = []
    try:
        with open(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                r = decode_line(line)
                if r is None:
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue
                if isinstance(r, dict):
                    out.append(r)
    except FileNotFoundError:
        pass
    return out


def callout_id(stamp) -> str:
    """The scheduled call that calls an urgent message out: one per slip."""
    return f"urgent-{stamp['slip']}"


def _same_number(a: str | None, b: str | None) -> bool:
    """One number written two ways, with or without the area code (7 digits at least)."""
    short, long = sorted((_digits(a), _digits(b)), key=len)
    return len(short) >= 7 and long.endswith(short)


def _from_caller(stamp, digits, calls) -> bool:
    """A slip taken on one of ``calls``, or with ``digits`` in a number field."""
    return stamp.get("call") in calls or any(
        NUMBER_FIELD.search(k) and _same_number(v, digits)
        for k, v in (stamp.get("fields") or {}).items() if isinstance(v, str))


class TimeClockAdapter(Adapter):
    name = "timeclock"

    def __init__(self, data_dir, printer: dict | None = None, clock=system_clock,
                 retention_days: int = 30, operators: dict | None = None,
                 site_holidays=(), purge_every_s: float = 6 * 3600, clock_verified=None,
                 delivery=None, calls_file=None):
        self.data_dir = Path(data_dir)
        self.clock_verified = clock_verified      # () -> bool: is the clock set (clocksource)
        self.printer_cfg = printer
        self.clock = clock
        self.retention_days = retention_days
        self.operators = {int(k): v for k, v in (operators or {}).items()}
        self.site_holidays = tuple(site_holidays)
        self.purge_every_s = purge_every_s
        self.ctx: Context | None = None
        self.tc = self.rack = self.customers = self.printer = None
        self.index: SlipIndex | None = None       # the dead box's search index
        self.callindex: CallIndex | None = None   # the call records' index (dead box, history)
        self.delivery = delivery                  # DeliveryConfig from the site file, or None
        self.calls_file = Path(calls_file) if calls_file else self.data_dir / "calls.jsonl"
        # Urgent messages called out to the on-call contacts: the scheduled calls'
        # call_out(id, customer, numbers, message, retries, retry_after_s) and call_out_state(id),
        # set by app.py.
        self.call_out = None
        self.call_out_state = None
        self.blocklist: BlockList | None = None
        self.blocked = {"count": 0, "last": None}    # callers refused by a worker
        self.refused_at_front = None     # () -> the front's refusals (telephony; app.py)
        self.send_text_sip = None        # a text by SIP MESSAGE (telephony's TextSender.send)
        self._callers: dict[str, str | None] = {}   # line -> caller ID of its call
        self.pads: Drafts | None = None           # position -> its drafts, one per call
        self._on_pad: dict[int, tuple] = {}       # position -> (line, call) of its pad's draft
        self.outbox: Outbox | None = None
        self.cards: dict[int, dict] = {}          # position -> card on its screen
        self.offered: dict[str, dict] = {}        # ringing line -> card
        self.last_error: str | None = None
        self.out_of_service: str | None = None
        self._purge_timer = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="timeclock")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="timeclock-search")
        self._last_purge = None
        self._counts: dict[str, int] = {}         # line -> messages waiting (the lamps)
        self._lines_at: dict[int, str | None] = {}
        self._ringing: dict[str, str | None] = {}

    # -- life ------------------------------------------------------------
    def commands(self) -> list[Command]:
        line, position = Arg("line", required=True), Arg("position", int, default=1)
        draft = Arg("id", expected='a draft\'s id, its line and call ("201/c-17")')
        return [
            Command("card", self.cmd_card, (line, Arg("position", int)),
                    "the customer's card for a line"),
            Command("type-message", self.cmd_type_message, (position, Arg("text", required=True)),
                    "the message typed at a position, stamped by its stamp key"),
            Command("take-message", self.cmd_take_message,
                    (line, Arg("text"), position, Arg("customer"),
                     Arg("recording", Path, under=lambda: self.data_dir,
                         expected=f"a recording's file in the data directory {self.data_dir}")),
                    "stamp a message and put it in the rack"),
            Command("check-in", self.cmd_check_in,
                    (Arg("line"), Arg("customer"), Arg("caller")),
                    "a customer checks in: the messages waiting for them"),
            Command("read-back", self.cmd_read_back, (Arg("slip", int, required=True), position),
                    "a message read back: out of the rack, into the dead box"),
            Command("messages", self.cmd_messages,
                    (Arg("customer"), Arg("line"), Arg("since"), Arg("until"), Arg("what"),
                     Arg("search"), Arg("waiting", bool)),
                    "stamps, searched; or the messages waiting"),
            Command("stamp", self.cmd_stamp, (position, Arg("line")), "a plain time stamp"),
            Command("operator", self.cmd_operator, (position, Arg("name", required=True)),
                    "the operator's name at a position, for the answer phrase"),
            Command("purge", self.cmd_purge, (), "drop dead-box slips past retention now"),
            # The operator's console (the view's message pad, rack and dead box).
            Command("draft", self.cmd_draft,
                    (position, Arg("fields", dict, expected='an object of field name to text, e.g. '
                                   '{"name": "Mrs Lee", "message": "ring back"}'),
                     Arg("urgent", bool), Arg("line"), draft),
                    "keep what a position's message pad holds (on disk)"),
            Command("draft-clear", self.cmd_draft_clear, (position, draft),
                    "throw a position's draft away"),
            Command("draft-open", self.cmd_draft_open, (position, draft),
                    "put an unfinished draft (or, no id, the line's own) on the pad"),
            Command("pad-stamp", self.cmd_pad_stamp, (position, draft),
                    "stamp the pad's draft, as the stamp key does"),
            Command("rack", self.cmd_rack, (), "every customer's waiting messages, with age"),
            Command("customers", self.cmd_customers, (), "every customer's id, name and line"),
            Command("deadbox", self.cmd_deadbox,
                    (Arg("customer"), Arg("since"), Arg("until"), Arg("search"),
                     Arg("slip", int, min=1, expected="a slip number"),
                     Arg("limit", int, default=200, min=1, max=5000)),
                    "past slips with their stamps, delivery and call record"),
            Command("history", self.cmd_history, (Arg("customer"), Arg("caller")),
                    "a caller's and a customer's last calls and messages"),
            Command("recording", self.cmd_recording, (Arg("call", required=True),),
                    "where a call's recorded conversation is (record_calls)"),
        ]

    def start(self, ctx: Context) -> None:
        self.ctx = ctx
        try:
            self._pool.submit(self._open).result()
        except (SwitchboardError, OSError) as e:
            # The board must keep answering calls: the time clock alone goes out of
            # service, with the fault lamp lit and the reason in status and replies.
            self.out_of_service = str(e)
            log.error("timeclock: out of service: %s", e)
            self._fault("timeclock", f"out of service: {e}")
        self._schedule_purge()

    def _open(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.tc = TimeClock(self.data_dir, clock=self.clock, retention_days=self.retention_days,
                            lock_wait_s=5.0, clock_verified=self.clock_verified)
        self.rack = Rack(self.tc)
        self._open_index()
        self._open_callindex()
        self.customers = Customers(self.data_dir, readonly=True)
        self.pads = Drafts(self.data_dir)
        self.blocklist = BlockList(self.data_dir)
        if self.delivery is not None:
            self.outbox = Outbox(self.data_dir, self.delivery, names=self._name_of,
                                 sip_sender=self._send_text_sip)
            self._queue_missed()
            self.outbox.start()
        for m in self.rack.waiting():       # an urgent call-out a crash kept from being set up
            if m.get("urgent") and self.call_out_state and self._callout_of(m) is None:
                self._urgent(m)
        self._purge()
        for line in self._board_lines():
            self._post_count(line)
        if self.printer_cfg:
            printer = SlipPrinter(self.printer_cfg, self.data_dir / "printed.json",
                                  on_fault=lambda m: self._fault("printer", m),
                                  names=self._name_of)
            try:
                mark = printer.load_mark(default=self.tc.last_slip)
            except (SwitchboardError, OSError) as e:   # stamps go on; printing waits for a fix
                self._fault("printer", str(e))
                return
            printer.start(self.tc.stamps_after(mark) if mark < self.tc.last_slip else [])
            self.printer = printer

    def _open_index(self):
        """The dead box's index, caught up from the journals in the background (the
        journals answer searches until then). Without it the dead box is only slower."""
        try:
            self.index = SlipIndex(self.data_dir)
        except (sqlite3.Error, OSError) as e:
            log.error("timeclock: dead-box index: %s (searches read the journals)", e)
            return
        self._reader.submit(self._catch_up_index).add_done_callback(self._log_failure)

    def _catch_up_index(self):
        tc = TimeClock(self.data_dir, readonly=True)
        try:
            added = self.index.catch_up(tc)
        except (sqlite3.Error, OSError) as e:
            log.error("timeclock: dead-box index: %s (searches read the journals)", e)
            return
        finally:
            tc.close()
        if added:
            log.info("timeclock: dead-box index caught up: %d slips", added)

    def _open_callindex(self):
        """The call records' index, caught up in the background; without it each
        lookup reads the records whole (slower, the same answers)."""
        try:
            self.callindex = CallIndex(self.data_dir, self.calls_file)
        except (sqlite3.Error, OSError) as e:
            log.error("timeclock: call index: %s (call records read whole)", e)
            return
        self._reader.submit(self._calls_lookup, "refresh").add_done_callback(self._log_failure)

    def _calls_lookup(self, how, *args):
        """``self.callindex.<how>(*args)``, or None when the index fails (then the records
        are read whole)."""
        if self.callindex is None:
            return None
        try:
            return getattr(self.callindex, how)(*args)
        except (sqlite3.Error, OSError, ValueError) as e:
            log.error("timeclock: call index: %s (call records read whole)", e)
            return None

    def _index_add(self, stamp):
        if self.index is None:
            return
        try:
            self.index.add(stamp, self.tc.journal_day or stamp["time"][:10])
        except (sqlite3.Error, OSError) as e:
            # The stamp is safe in its journal; the index is caught up at the next start.
            log.error("timeclock: dead-box index: slip %s: %s", stamp["slip"], e)
            self.index.ready = False

    def stop(self) -> None:
        if self._pool is None:
            return
        if self._purge_timer is not None:
            self._purge_timer.cancel()
        if self.printer:
            self.printer.stop()
        if self.outbox:
            self.outbox.stop()
        self._pool.submit(self._close).result()
        self._pool.shutdown(wait=True)
        self._pool = None
        if self.index is not None:
            self._reader.submit(self.index.close_reader)
        self._reader.shutdown(wait=True)
        if self.index is not None:
            self.index.close()
        if self.callindex is not None:
            self.callindex.close()

    def _close(self):
        for part in (self.rack, self.customers, self.tc):
            if part is not None:
                part.close()

    def status(self) -> dict:
        return {
            "last_slip": self.tc.last_slip if self.tc else None,
            "waiting": {ln: n for ln, n in dict(self._counts).items() if n},  # copy: GIL-atomic
            "printer": self.printer.status() if self.printer else None,
            "cards": {str(p): c for p, c in self.cards.items()},
            "offered": dict(self.offered),
            "drafts": {str(p): self._draft_text(d) for p, d in self.drafts.items()},
            **self._pads_status(),
            "delivery": self.outbox.summary() if self.outbox else None,
            "blocked": self._blocked_status(),
            "operators": {str(p): n for p, n in self.operators.items()},
            "error": self.last_error,
            "out_of_service": self.out_of_service,
        }

    # -- helpers (worker thread) ----------------------------------------
    def _post(self, event):
        if self.ctx is not None:
            self.ctx.post(event)

    def _fault(self, source, message):
        if self.ctx is not None:
            self.ctx.fault(source, message)

    def _state(self):
        """The board's state, when there is a board (None for the adapter on its own)."""
        return self.ctx.state if self.ctx is not None else None

    def _board_lines(self):
        state = self._state()
        if state is not None:
            return [n for n in state.lines if state.board.line(n).kind == "customer"]
        return [c["line"] for c in self.customers.all()]

    def _name_of(self, cid):
        if not cid:
            return None
        for c in self.customers.all():
            if c["id"] == cid:
                return c["name"]
        return None

    def _post_count(self, line):
        cust = self.customers.by_line(line)
        n = self.rack.count(line, cust["id"] if cust else None)
        self._counts[line] = n
        state = self._state()
        if state is None or line in state.lines:
            self._post(MessageWaiting(line, n))

    def _customer_line(self, cid):
        for c in self.customers.all():
            if c["id"] == cid:
                return c["line"]
        return None

    def _card(self, line, position=None, customer=None):
        self.customers.reload_if_changed()
        cust = None
        if customer:
            cust = next((c for c in self.customers.all() if c["id"] == customer), None)
        elif line is not None:
            cust = self.customers.by_line(line)
        if cust is None:
            return None
        op = self.operators.get(position or 1)
        return make_card(cust, self.clock(), op, self.rack.waiting(customer=cust["id"]),
                         self.site_holidays)

    def _by_caller(self, caller):
        want = _digits(caller)
        if len(want) < 7:
            return None
        for c in self.customers.all():
            nums = [x["number"] for f in ("emergency", "on_call", "alternate") for x in c[f]]
            nums.append(c["delivery"]["to"])
            if any(_digits(n) == want for n in nums if n):
                return c
        return None

    def _stamped(self, stamp):
        """After a stamp is durable: index and print it; clear any store fault."""
        self._index_add(stamp)
        if self.printer:
            self.printer.submit(stamp)
        if self.last_error:
            self.last_error = None
            self._fault("timeclock", None)
        return stamp

    def _failed(self, err):
        self.last_error = str(err)
        self._fault("timeclock", f"cannot store stamps: {err}")

    def _purge(self):
        """Retention: at start, then every ``purge_every_s``; a failure lights the fault lamp."""
        self._last_purge = self.clock()
        try:
            out = self.tc.purge(keep_paths=self.rack.recordings())
            for what in out.get("skipped", ()):
                log.warning("timeclock: purge: left alone a bad stored record (%s)", what)
            out["removed_recordings"] = self._purge_recordings()
            if self.index is not None and out.get("cutoff"):
                try:
                    self.index.drop_before(out["cutoff"])
                except sqlite3.Error as e:
                    log.error("timeclock: dead-box index: %s", e)
            return out
        except (SwitchboardError, OSError) as e:
            log.error("timeclock: purge: %s", e)
            self._fault("timeclock", f"purging old slips failed: {e}")
            return {"error": str(e)}

    def _schedule_purge(self):
        loop = self.ctx.loop if self.ctx is not None else None
        if loop is not None and self.out_of_service is None:
            self._purge_timer = loop.call_later(self.purge_every_s, self._purge_due)

    def _purge_due(self):
        if self._pool is not None:
            self._pool.submit(self._purge)
            self._schedule_purge()

    # -- work done on the worker thread -------------------------------
    def _do_stamp(self, what, line, position, call=None, customer=None, text=None,
                  recording=None, **extra):
        try:
            self.customers.reload_if_changed()
            if customer is None and line is not None:
                cust = self.customers.by_line(line)
                customer = cust["id"] if cust else None
            if what == "message":
                stamp = self.rack.take(line, customer, text, position=position, call=call,
                                       recording=recording, **extra)
            else:
                stamp = self.tc.stamp(what, line=line, customer=customer, position=position,
                                      call=call)
        except SwitchboardError as e:
            if isinstance(e, OSError):
                self._failed(e)
            raise
        self._stamped(stamp)
        if what == "message":
            self._post_count(self._customer_line(customer) or line)
            self._refresh_cards()
            self._deliver(stamp)
            self._urgent(stamp)
        return stamp

    def _do_read_back(self, slip, position):
        try:
            stamp = self.rack.read_back(slip, position=position)
        except SwitchboardError as e:
            if isinstance(e, OSError):
                self._failed(e)
            raise
        self._stamped(stamp)
        self._post_count(self._customer_line(stamp["customer"]) or stamp["line"])
        self._refresh_cards()
        return stamp

    def _refresh_cards(self, lines_at=None, ringing=None):
        if lines_at is not None:
            self._follow(lines_at)
            self._lines_at = lines_at
        if ringing is not None:
            self._ringing = ringing
        cards = {}
        for p, line in self._lines_at.items():
            if line is not None:
                c = self._card(line, p)
                caller = self._callers.get(line)
                if c is None and caller:
                    who = self._by_caller(caller)
                    if who is not None:       # answered a customer calling in: check-in
                        c = self._card(None, p, customer=who["id"])
                        c["check_in"] = True
                if c is not None:
                    cards[p] = self._flagged(c, caller)
        offered = {}
        for line, caller in self._ringing.items():
            c = self._card(line)
            if c is None and caller:
                who = self._by_caller(caller)
                if who is not None:           # a customer calling in on an office line
                    c = self._card(None, customer=who["id"])
                    c["check_in"] = True
            if c is not None:
                offered[line] = self._flagged(c, caller)
        # Tell the board's followers (the view) about each card that changed.
        for p in sorted(set(cards) | set(self.cards)):
            if cards.get(p) != self.cards.get(p):
                self._post(CardChanged(p, (cards.get(p) or {}).get("line")
                                       or self._lines_at.get(p), cards.get(p)))
        for ln in sorted(set(offered) | set(self.offered)):
            if offered.get(ln) != self.offered.get(ln):
                self._post(CardChanged(None, ln, offered.get(ln)))
        self.cards, self.offered = cards, offered

    # -- the message pad (worker thread) ---------------------------------
    @property
    def drafts(self) -> dict[int, dict]:
        """The draft on each position's pad (the one its stamp key takes)."""
        out = {}
        for p in self._pad_positions():
            key = self._pad_key(p)
            d = self.pads.get(p, key) if key else None
            if d:
                out[p] = d
        return out

    def _pad_positions(self):
        state = self._state()
        have = set(self.pads.all()) if self.pads is not None else set()
        return sorted(have | set(self._on_pad) | set(state.positions if state else ()))

    def _pads_status(self) -> dict:
        """For the console: each pad's draft (``pads``), which call's draft the pad shows,
        typed or not (``on_pad``), and the drafts left unfinished on other calls."""
        if self.pads is None:
            return {"pads": {}, "on_pad": {}, "unfinished": {}}
        pads, on_pad, unfinished = {}, {}, {}
        for p in self._pad_positions():
            key = self._pad_key(p)
            mine = self.pads.get(p, key) if key else None
            if key is not None:
                on_pad[str(p)] = {"id": draft_id(*key), "line": key[0], "call": key[1]}
            if mine:
                pads[str(p)] = {**mine, "id": draft_id(*key)}
            rest = [{**d, "id": draft_id(*draft_key(d)), "text": self._draft_text(d)}
                    for d in self.pads.of(p) if draft_key(d) != key]
            if rest:
                unfinished[str(p)] = rest
        return {"pads": pads, "on_pad": on_pad, "unfinished": unfinished}

    def _follow(self, lines_at):
        """A position that picks up a line shows that call's own draft, empty or not; one
        that lets go keeps the draft it had, to stamp or clear."""
        for p, line in lines_at.items():
            if line is not None and line != self._lines_at.get(p):
                self._on_pad[p] = (line, self._call_of(line))

    def _pad_key(self, position):
        """(line, call) of the draft on a position's pad: the call it picked up last or
        a draft reopened; the line it is on once that one is stamped or cleared; after a
        restart, its newest draft. None: an idle pad."""
        line = self._position_line(position)
        here = (line, self._call_of(line)) if line is not None else None
        key = self._on_pad.get(position)
        if key is None and here is None:
            newest = self.pads.of(position)[:1] if self.pads is not None else []
            return draft_key(newest[0]) if newest else None
        if key is not None and (key == here or self.pads.get(position, key) is not None):
            return key
        return here

    def _draft_text(self, draft) -> str:
        if not draft:
            return ""
        cust = self._customer(draft.get("customer"))
        return compose(draft.get("fields") or {}, cust["collect"] if cust else ())

    def _customer(self, cid):
        if not cid:
            return None
        return next((c for c in self.customers.all() if c["id"] == cid), None)

    def _save_draft(self, position, fields, urgent, key=None, show=True):
        """Keep what a pad holds for the call ``key`` names (default: the pad's own);
        the line and customer it was typed for stay with it. On disk before this
        returns. ``show``: that draft is now the one on the pad."""
        key = key or self._pad_key(position) or (None, None)
        old = self.pads.get(position, key) or {}
        if old:
            cid, name = old.get("customer"), old.get("name") or self._name_of(old.get("customer"))
        else:
            self.customers.reload_if_changed()
            cust = self.customers.by_line(key[0]) if key[0] is not None else None
            cid, name = (cust["id"], cust["name"]) if cust else (None, None)
        draft = {"line": key[0], "customer": cid, "name": name, "call": key[1],
                 "fields": old.get("fields", {}) if fields is None else fields,
                 "urgent": bool(old.get("urgent")) if urgent is None else bool(urgent),
                 "updated": self.clock().isoformat(timespec="seconds")}
        kept = self.pads.put(position, draft)
        if show:
            self._on_pad[position] = key
        return {**kept, "id": draft_id(*key)}

    def _open_draft(self, position, key):
        """Put the draft ``key`` names (None: the line the position is on) on its pad."""
        line = self._position_line(position)
        here = (line, self._call_of(line)) if line is not None else None
        key = key or here
        if key is None:
            raise ControlError(f"position {position} is not on a line; name the draft to open")
        if key != here and self.pads.get(position, key) is None:
            raise ControlError(f"position {position} has no unfinished draft {draft_id(*key)}")
        self._on_pad[position] = key
        return self.pads.get(position, key)

    def _position_line(self, position):
        state = self._state()
        if state is not None and position in state.positions:
            return state.positions[position].line
        return self._lines_at.get(position)

    def _stamp_key(self, position, line, call, key=None):
        """The stamp key: the pad's draft becomes a message slip, or a plain stamp."""
        key = key or self._pad_key(position)
        draft = self.pads.get(position, key) if key else None
        text = self._draft_text(draft)
        if not text:
            return self._do_stamp("stamp", line, position, call)
        if draft.get("line") is not None:
            # The message is for the line the draft was typed for, even once released.
            line, call, customer = draft["line"], draft.get("call"), draft.get("customer")
        elif line is None:
            return self._do_stamp("stamp", None, position, call)   # the draft stays typed
        else:
            customer = None
        fields = {k: v.strip() for k, v in (draft.get("fields") or {}).items() if v.strip()}
        stamp = self._do_stamp("message", line, position, call, customer, text,
                               fields=fields if set(fields) - {"message"} else None,
                               urgent=True if draft.get("urgent") else None)
        self.pads.drop(position, key)      # only now: the stamp is on disk
        return stamp

    # -- delivery (worker thread) -------------------------------------------
    def _deliver(self, stamp):
        cust = self._customer(stamp.get("customer"))
        if cust is None or cust["delivery"]["method"] not in ("email", "text"):
            return
        if self.outbox is None:
            return          # shown as "held: no [delivery] in the site file"
        try:
            self.outbox.enqueue(stamp, cust["delivery"]["method"], cust["delivery"]["to"])
        except (SendError, OSError) as e:
            log.error("delivery: slip %s: %s", stamp["slip"], e)
            self._fault("delivery", f"slip {stamp['slip']} not queued: {e}")

    def _send_text_sip(self, *args):
        """Texts by SIP MESSAGE go through the telephony (app.py sets ``send_text_sip``)."""
        if self.send_text_sip is None:
            raise SendError("texts go by SIP (delivery.text.via) but the telephony is not "
                            "running (start the daemon with --site)")
        return self.send_text_sip(*args)

    # -- blocked and nuisance callers -------------------------------------
    def _flagged(self, card, caller):
        """The card with a warning when the caller is on the block list."""
        if not caller or self.blocklist is None:
            return card
        try:
            self.blocklist.reload_if_changed()
        except OSError as e:
            self._fault("timeclock", str(e))
            return card
        e = self.blocklist.match(caller, card.get("customer"))
        if e is None:
            return card
        what = "Nuisance caller" if e["action"] == "nuisance" else "Blocked caller"
        return {**card, "warning": f"{what} ({e['pattern']})" + (f": {e['note']}" if e["note"] else "")}

    def block_rules(self, timeout=5.0) -> list[tuple]:
        """For the telephony's front (any thread): the ``block`` entries as (digits
        pattern, customer's line or None for the whole site, "pattern|customer"). A list
        that cannot be read raises, so the front keeps the last good one."""
        if self._pool is None or self.out_of_service:
            # Not "no blocks": the front keeps the list it has until the time clock is back.
            raise SwitchboardError(f"the time clock is out of service: {self.out_of_service}")
        return self._pool.submit(self._block_rules).result(timeout)

    def _block_rules(self):
        if self.blocklist is None:
            return []
        self.blocklist.reload_if_changed()
        self.customers.reload_if_changed()
        out = []
        for e in self.blocklist.entries:
            if e.get("action") != "block":
                continue
            line = None
            if e.get("customer"):
                cust = self._customer(e["customer"])
                if cust is None:
                    continue             # a customer no longer on the board: no line to guard
                line = cust["line"]
            out.append((pattern_digits(e["pattern"]), line,
                        f"{e['pattern']}|{e.get('customer') or '*'}"))
        return out

    def _blocked_status(self) -> dict:
        """Refused callers, at the front and (a list change not yet at the front) in a worker."""
        front = self.refused_at_front() if self.refused_at_front else None
        out = {**self.blocked, "in_worker": self.blocked["count"], "at_front": 0}
        if front:
            out.update(count=self.blocked["count"] + front["count"], at_front=front["count"],
                       front_rules=front["rules"], front_error=front["error"])
            if front["last"] and (self.blocked["last"] is None or
                                  front["last_at"] >= self.blocked["last"].get("at", 0)):
                out["last"] = front["last"]
        return out

    def screen(self, line, caller) -> dict | None:
        """For the telephony, before a call rings: the block-list entry that refuses it
        (counted), or None. Runs on the daemon's loop; a damaged list refuses nobody."""
        if self.blocklist is None or not caller:
            return None
        try:
            self.blocklist.reload_if_changed()
        except OSError as err:
            log.error("%s", err)
            return None
        cust = self.customers.by_line(line) if self.customers is not None else None
        e = self.blocklist.match(caller, cust["id"] if cust else None)
        if e is None or e["action"] != "block":
            return None
        self.blocked = {"count": self.blocked["count"] + 1,
                        "last": {"line": line, "caller": caller, "pattern": e["pattern"],
                                 "customer": e.get("customer"), "at": time.time()}}
        log.info("refused %s calling line %s (blocked: %s)", caller, line, e["pattern"])
        return e

    # -- call recording (record_calls) ---------------------------------------
    def recording_for(self, line, call) -> str | None:
        """For the telephony, as the operator answers: where to record this call's
        conversation when the line's customer has ``record_calls``, else None.
        ``<data>/recordings/YYYY-MM-DD/<line>-<HHMMSS>-<call>.wav``; kept as long as slips."""
        cust = self.customers.by_line(line) if self.customers is not None else None
        if cust is None or not cust.get("record_calls"):
            return None
        now = self.clock()
        folder = self.data_dir / "recordings" / now.date().isoformat()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            log.error("recording line %s: %s: %s", line, folder, e.strerror or e)
            return None          # the call goes on, unrecorded
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", call or "call")
        return str(folder / f"{line}-{now:%H%M%S}-{safe}.wav")

    def _recording(self, call):
        rec = self._calls_by_id({call}).get(call)
        if rec is None:
            raise ControlError(f"no call record {call!r} (the dead box lists calls' ids)")
        path = rec.get("recording")
        root = (self.data_dir / "recordings").resolve()
        if not path:
            raise ControlError(f"call {call} was not recorded"
                               + (f" ({rec['recording_error']})" if rec.get("recording_error") else ""))
        p = Path(path).resolve()
        if root not in p.parents or not p.is_file():
            raise ControlError(f"call {call}: its recording {path} is gone (kept "
                               f"{self.retention_days} days)")
        return {"call": call, "path": str(p), "bytes": p.stat().st_size}

    async def cmd_recording(self, args):
        return await self._run(self._recording, args["call"], pool=self._reader)

    def _purge_recordings(self):
        """Conversations' recordings go with the slips, after the retention period."""
        root = self.data_dir / "recordings"
        cutoff = (self.clock().date() - dt.timedelta(days=self.retention_days)).isoformat()
        gone = []
        if root.is_dir():
            for day in sorted(root.iterdir()):
                if day.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", day.name) and day.name < cutoff:
                    for f in day.iterdir():
                        f.unlink()
                        gone.append(str(f))
                    day.rmdir()
        return gone

    def _urgent(self, stamp):
        """An urgent message for a customer with on-call contacts is also called out:
        each contact in the card's order until one answers, the round made again
        ``callout_retries`` times, ``callout_retry_after`` minutes apart."""
        cust = self._customer(stamp.get("customer"))
        if not stamp.get("urgent") or cust is None or not cust["on_call"] or not self.call_out:
            return
        numbers = [re.sub(r"[^0-9+*#]", "", c["number"]) for c in cust["on_call"]]
        said = stamp.get("text") or "a message was recorded; call the service"
        self.call_out(callout_id(stamp), cust["id"], numbers,
                      f"This is the answering service with an urgent message for "
                      f"{cust['name']}, slip {stamp['slip']}. {said}. Again: {said}.",
                      retries=cust.get("callout_retries", CALLOUT_RETRIES),
                      retry_after_s=60 * cust.get("callout_retry_after", CALLOUT_RETRY_AFTER))

    def _callout_of(self, stamp):
        if not stamp.get("urgent") or not self.call_out_state:
            return None
        return self.call_out_state(callout_id(stamp))

    def _queue_missed(self):
        """A crash between a stamp and its queuing: waiting messages not yet queued go now."""
        for m in self.rack.waiting():
            if self.outbox is not None and self.outbox.get(m["slip"]) is None:
                self._deliver(m)

    def _delivery_of(self, stamp, cust):
        method = cust["delivery"]["method"] if cust else "hold"
        entry = self.outbox.get(stamp["slip"]) if self.outbox else None
        if entry is not None:
            return entry
        if method in ("email", "text"):
            return {"method": method, "to": cust["delivery"]["to"], "status": "held",
                    "last_error": f"no [delivery.{method}] in the site file"
                    if self.outbox is None or getattr(self.delivery, method) is None else None}
        return {"method": method, "status": "held" if method == "hold" else method}

    # -- commands from the board ----------------------------------------
    def handle(self, command) -> None:
        if self.out_of_service or self._pool is None:
            return
        if isinstance(command, StampRequest):
            fut = self._pool.submit(self._stamp_key, command.position, command.line,
                                    self._call_of(command.line))
            fut.add_done_callback(self._log_failure)
        elif isinstance(command, Answer):
            fut = self._pool.submit(self._do_stamp, "answer", command.line, command.position,
                                    self._call_of(command.line))
            fut.add_done_callback(self._log_failure)
        elif isinstance(command, LineChanged):
            state = self._state()
            if state is None:
                lines_at = {command.position: command.line} \
                    if command.state is LineState.OPERATOR and command.position else {}
                ringing = {command.line: None} if command.state is LineState.RINGING else {}
            else:
                lines_at = {p: pos.line for p, pos in state.positions.items()}
                ringing = {n: ln.caller for n, ln in state.lines.items()
                           if ln.state is LineState.RINGING}
                self._callers = {n: ln.caller for n, ln in state.lines.items() if ln.caller}
            self._pool.submit(self._refresh_cards, lines_at, ringing)


    def _call_of(self, line):
        state = self._state()
        if state is None or line is None or line not in state.lines:
            return None
        return state.lines[line].call

    def _log_failure(self, fut):
        # A store failure has already lit the fault lamp; say what went wrong either way.
        e = fut.exception()
        if e is not None:
            log.error("timeclock: %s", e)

    # -- control-socket commands (async, run on the daemon's loop) -------
    async def _run(self, fn, *args, pool=None):
        if self.out_of_service:
            raise ControlError(f"the time clock is out of service: {self.out_of_service}")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool or self._pool, fn, *args)
        except SwitchboardError as e:
            raise ControlError(str(e)) from None

    async def cmd_card(self, args):
        line, pos = args["line"], args.get("position")
        c = await self._run(self._card, line, pos)
        return {"line": line, "card": c}

    async def cmd_type_message(self, args):
        pos, text = args["position"], args["text"]
        await self._run(self._save_draft, pos, {"message": text}, None, None)
        return {"position": pos, "draft": text}

    async def cmd_take_message(self, args):
        line, text, pos = args["line"], args.get("text"), args["position"]
        if text is None and not args.get("recording"):
            raise ControlError("take-message: text: missing (expected str)")
        rec = args.get("recording")
        stamp = await self._run(self._do_stamp, "message", line, pos, self._call_of(line),
                                args.get("customer"), text, str(rec) if rec else None)
        return {"stamp": stamp}

    async def cmd_stamp(self, args):
        pos, line = args["position"], args.get("line")
        stamp = await self._run(self._do_stamp, "stamp", line, pos, self._call_of(line))
        return {"stamp": stamp}

    def _check_in(self, line, customer, caller):
        self.customers.reload_if_changed()
        cust = None
        if customer:
            cust = next((c for c in self.customers.all() if c["id"] == customer), None)
        elif caller:
            cust = self._by_caller(caller)
        elif line:
            cust = self.customers.by_line(line)
        if cust is None:
            who = (f"customer {customer}" if customer else f"caller {caller}" if caller
                   else f"line {line}")
            raise ControlError(f"no customer for {who}"
                               " (switchboard-customers list)")
        return {"customer": cust["id"], "name": cust["name"], "line": cust["line"],
                "waiting": self.rack.waiting(customer=cust["id"])}

    async def cmd_check_in(self, args):
        return await self._run(self._check_in, args.get("line"), args.get("customer"),
                               args.get("caller"))

    async def cmd_read_back(self, args):
        slip, pos = args["slip"], args["position"]
        stamp = await self._run(self._do_read_back, slip, pos)
        return {"stamp": stamp}

    def _search(self, args):
        """Runs on its own thread with a read-only view, so a long search never
        holds up a stamp on the worker thread."""
        since = parse_day(args["since"], "since") if args.get("since") else None
        until = parse_day(args["until"], "until") if args.get("until") else None
        tc = TimeClock(self.data_dir, readonly=True)
        try:
            return tc.stamps(since=since, until=until, customer=args.get("customer"),
                             line=args.get("line"), what=args.get("what"),
                             search=args.get("search"))
        finally:
            tc.close()

    async def cmd_messages(self, args):
        if args.get("waiting"):
            stamps = await self._run(lambda: self.rack.waiting(customer=args.get("customer"),
                                                               line=args.get("line")))
        else:
            stamps = await self._run(self._search, args, pool=self._reader)
        return {"stamps": stamps}

    def _named(self, args) -> tuple | None:
        """The draft a command names by ``id``; None: the one on the pad."""
        try:
            return parse_id(args["id"]) if args.get("id") is not None else None
        except DraftError as e:
            raise ControlError(f"{e}") from None

    async def cmd_draft(self, args):
        """A pad's fields, kept for the call it was typed on: ``id`` (the console, which
        names the draft it shows, so a save that arrives after the operator picked up
        another line still goes to its own), ``line`` (that line's call, then on the
        pad) or neither (the draft on the pad)."""
        pos = args["position"]
        unknown = sorted(set(args) - {"position", "fields", "urgent", "line", "id"})
        if unknown:
            raise ControlError(f"draft: unknown {', '.join(unknown)}; expected position, "
                               "fields, urgent, line or id")
        if args.get("line") is not None and args.get("id") is not None:
            raise ControlError("draft: give line or id, not both")
        try:
            fields = check_fields(args["fields"]) if args.get("fields") is not None else None
        except DraftError as e:
            raise ControlError(str(e)) from None
        key, line = self._named(args), args.get("line")
        if line is not None:
            key = (line, self._call_of(line))
        draft = await self._run(self._save_draft, pos, fields, args.get("urgent"), key,
                                args.get("id") is None)
        return {"position": pos, "draft": draft}

    async def cmd_draft_clear(self, args):
        pos = args["position"]
        key = self._named(args) or self._pad_key(pos)
        if key is not None:
            await self._run(self.pads.drop, pos, key)
        return {"position": pos, "draft": None}

    async def cmd_draft_open(self, args):
        pos = args["position"]
        draft = await self._run(self._open_draft, pos, self._named(args))
        return {"position": pos, "draft": draft}

    async def cmd_pad_stamp(self, args):
        pos = args["position"]
        key = self._named(args) or self._pad_key(pos)
        if not self._draft_text(self.pads.get(pos, key) if self.pads and key else None):
            raise ControlError(f"position {pos}: the message pad is empty; type the message "
                               "first (a plain stamp is the stamp key)")
        line = self._position_line(pos)
        stamp = await self._run(self._stamp_key, pos, line, self._call_of(line), key)
        return {"stamp": stamp}

    def _customer_list(self):
        self.customers.reload_if_changed()
        return {"customers": sorted(({"id": c["id"], "name": c["name"], "line": c["line"]}
                                     for c in self.customers.all()),
                                    key=lambda c: (c["name"].lower(), c["id"]))}

    async def cmd_customers(self, args):
        return await self._run(self._customer_list)

    def _rack_view(self):
        """Every customer with messages waiting, oldest first, with age and delivery."""
        self.customers.reload_if_changed()
        now = self.clock()
        by = {}
        custs = {c["id"]: c for c in self.customers.all()}
        for m in self.rack.waiting():
            cust = custs.get(m.get("customer"))
            key = m.get("customer") or f"line {m.get('line')}"
            box = by.setdefault(key, {"customer": m.get("customer"),
                                      "name": cust["name"] if cust else None,
                                      "line": cust["line"] if cust else m.get("line"),
                                      "delivery": cust["delivery"] if cust else None,
                                      "messages": []})
            age = (now - dt.datetime.fromisoformat(m["time"])).total_seconds()
            box["messages"].append({**m, "age_s": max(0, int(age)),
                                    "sent": self._delivery_of(m, cust),
                                    "callout": self._callout_of(m)})
        boxes = sorted(by.values(), key=lambda b: b["messages"][0]["slip"])
        return {"rack": boxes, "waiting": sum(len(b["messages"]) for b in boxes),
                "now": now.isoformat(timespec="seconds")}

    async def cmd_rack(self, args):
        return await self._run(self._rack_view)

    def _deadbox(self, args):
        """Past slips found by customer, date, text or slip number: each message with
        its read-back, its delivery and its call record."""
        limit = args.get("limit", 200)
        slip = args.get("slip")
        since = parse_day(args["since"], "since") if args.get("since") else None
        until = parse_day(args["until"], "until") if args.get("until") else None
        if self.index is not None and self.index.ready:
            try:
                msgs, total = self.index.search(
                    what="message", since=since, until=until, slip=slip, limit=limit,
                    customer=args.get("customer") or None, search=args.get("search") or None)
                backs = self.index.read_backs(m["slip"] for m in msgs)
                if slip is not None and not msgs:   # a read-back asked for by its own number
                    got, _ = self.index.search(what="read-back", slip=slip, limit=1)
                    msgs = [dict(b, slip=b["of"], what="message") for b in got
                            if b["slip"] == slip and b.get("of")]
                    backs = {b["of"]: b for b in got if b.get("of")}
                    total = len(msgs)
                out = self._deadbox_rows(msgs, total, backs)
                if total > COUNT_UP_TO:
                    out.update(found=COUNT_UP_TO, more=True)
                return out
            except sqlite3.Error as e:
                log.error("timeclock: dead-box index: %s (reading the journals)", e)
        tc = TimeClock(self.data_dir, readonly=True)
        try:
            day = since
            if slip is not None and not any(args.get(k) for k in ("since", "until")):
                day = tc.day_of(slip)       # a slip and its read-back: that day and after
            stamps = [] if slip is not None and day is None and not since else tc.stamps(
                since=day, until=until, customer=args.get("customer") or None,
                search=args.get("search") or None)
        finally:
            tc.close()
        msgs = [s for s in stamps if s["what"] == "message"]
        backs = {s["of"]: s for s in stamps if s["what"] == "read-back" and s.get("of")}
        if slip is not None:
            msgs = [s for s in msgs if s["slip"] == slip or backs.get(s["slip"], {}).get("slip") == slip]
            if not msgs:    # a read-back slip asked for by its own number
                msgs = [dict(b, slip=b["of"], what="message") for b in backs.values()
                        if b["slip"] == slip]
        msgs = sorted(msgs, key=lambda s: -s["slip"])
        return self._deadbox_rows(msgs[:limit], len(msgs), backs)

    def _deadbox_rows(self, msgs, total, backs):
        calls = self._calls_by_id({m.get("call") for m in msgs if m.get("call")})
        custs = {c["id"]: c for c in self.customers.all()}
        out = []
        for m in msgs:
            cust = custs.get(m.get("customer"))
            out.append({**m, "name": cust["name"] if cust else None,
                        "read_back": backs.get(m["slip"]),
                        "sent": self._delivery_of(m, cust),
                        "callout": self._callout_of(m),
                        "call_record": calls.get(m.get("call"))})
        return {"slips": out, "found": total, "shown": len(out)}

    def _read_calls(self, want):
        return [r for r in read_call_records(self.calls_file) if want(r)]

    def _calls_by_id(self, ids):
        if not ids:
            return {}
        found = self._calls_lookup("by_id", ids)
        if found is not None:
            return found
        return {r["id"]: r for r in self._read_calls(lambda r: r.get("id") in ids)}

    def _last_calls(self, want, line, n):
        """The card's history: the caller's and the line's ``n`` latest calls, newest first."""
        by_caller = self._calls_lookup("last", n, want, None) if want else []
        by_line = self._calls_lookup("last", n, None, line) if line else []
        if by_caller is not None and by_line is not None:
            return by_caller, by_line
        calls = self._read_calls(lambda r: (want and _digits(r.get("caller")) == want)
                                 or (line and r.get("line") == line))
        calls.sort(key=lambda r: r.get("offered") or "")
        return ([r for r in calls if want and _digits(r.get("caller")) == want][-n:][::-1],
                [r for r in calls if line and r.get("line") == line][-n:][::-1])

    async def cmd_deadbox(self, args):
        return await self._run(self._deadbox, args, pool=self._reader)

    def _history(self, customer, caller, n=5):
        """The card's history: this caller's and this customer's last calls and messages.
        The caller's messages are the newest kept slips (of this customer, when given)
        taken on one of the caller's calls or with the caller's number in a number field."""
        cust = self._customer(customer) if customer else None
        want = _digits(caller) if caller else ""
        line = cust["line"] if cust else None
        by_caller, by_customer = self._last_calls(want, line, n)
        kept = self._kept_messages(cust["id"] if cust else None,
                                   HISTORY_SCAN if want else n) if cust or want else []
        ids = {r["id"] for r in by_caller if r.get("id")}
        caller_msgs = [m for m in kept if want and _from_caller(m, want, ids)][:n]
        return {"customer": customer, "caller": caller, "caller_calls": by_caller,
                "customer_calls": by_customer, "messages": kept[:n] if cust else [],
                "caller_messages": caller_msgs}

    def _kept_messages(self, customer, limit):
        """The newest ``limit`` kept message slips (of ``customer``, or every customer's),
        newest first: from the dead box's index, or the journals until it is ready."""
        if self.index is not None and self.index.ready:
            try:
                return self.index.search(what="message", customer=customer, limit=limit)[0]
            except sqlite3.Error as e:
                log.error("timeclock: dead-box index: %s (reading the journals)", e)
        tc = TimeClock(self.data_dir, readonly=True)
        try:
            return tc.stamps(customer=customer, what="message")[-limit:][::-1]
        finally:
            tc.close()

    async def cmd_history(self, args):
        if not args.get("customer") and not args.get("caller"):
            raise ControlError("history: expected customer or caller")
        return await self._run(self._history, args.get("customer"), args.get("caller"),
                               pool=self._reader)

    async def cmd_operator(self, args):
        self.operators[args["position"]] = args["name"]
        await self._run(self._refresh_cards)
        return {"operators": {str(p): n for p, n in self.operators.items()}}

    async def cmd_purge(self, args):
        return await self._run(self._purge)
