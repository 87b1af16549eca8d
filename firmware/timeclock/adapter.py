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
``purge`` {}.
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from firmware.timeclock.customers import Customers, card as make_card
from firmware.errors import ControlError, SwitchboardError
from firmware.timeclock.printer import SlipPrinter
from firmware.timeclock.rack import Rack
from firmware.core.state import (Answer, CardChanged, LineChanged, LineState, MessageWaiting,
                    StampRequest)
from firmware.timeclock.clock import TimeClock, parse_day, system_clock
from firmware.runtime.adapter import Context
from firmware.runtime.commands import Arg, Command

log = logging.getLogger("switchboard.timeclock")


def _digits(number: str | None) -> str:
    d = re.sub(r"[^0-9]", "", number or "")
    return d[-10:]          # compare national numbers: +1 555 010 1234 == 5550101234


class TimeClockAdapter:
    name = "timeclock"

    def __init__(self, data_dir, printer: dict | None = None, clock=system_clock,
                 retention_days: int = 30, operators: dict | None = None,
                 site_holidays=(), purge_every_s: float = 6 * 3600, clock_verified=None):
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
        self.drafts: dict[int, str] = {}          # position -> message typed, not yet stamped
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
        self.customers = Customers(self.data_dir, readonly=True)
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

    def stop(self) -> None:
        if self._pool is None:
            return
        if self._purge_timer is not None:
            self._purge_timer.cancel()
        if self.printer:
            self.printer.stop()
        self._pool.submit(self._close).result()
        self._pool.shutdown(wait=True)
        self._pool = None
        self._reader.shutdown(wait=True)

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
            "drafts": {str(p): t for p, t in self.drafts.items()},
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
        """After a stamp is durable: print it; clear any store fault."""
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
                  recording=None):
        try:
            self.customers.reload_if_changed()
            if customer is None and line is not None:
                cust = self.customers.by_line(line)
                customer = cust["id"] if cust else None
            if what == "message":
                stamp = self.rack.take(line, customer, text, position=position, call=call,
                                       recording=recording)
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
            self._lines_at = lines_at
        if ringing is not None:
            self._ringing = ringing
        cards = {}
        for p, line in self._lines_at.items():
            if line is not None:
                c = self._card(line, p)
                if c is not None:
                    cards[p] = c
        offered = {}
        for line, caller in self._ringing.items():
            c = self._card(line)
            if c is None and caller:
                who = self._by_caller(caller)
                if who is not None:           # a customer calling in on an office line
                    c = self._card(None, customer=who["id"])
                    c["check_in"] = True
            if c is not None:
                offered[line] = c
        # Tell the board's followers (the view) about each card that changed.
        for p in sorted(set(cards) | set(self.cards)):
            if cards.get(p) != self.cards.get(p):
                self._post(CardChanged(p, (cards.get(p) or {}).get("line")
                                       or self._lines_at.get(p), cards.get(p)))
        for ln in sorted(set(offered) | set(self.offered)):
            if offered.get(ln) != self.offered.get(ln):
                self._post(CardChanged(None, ln, offered.get(ln)))
        self.cards, self.offered = cards, offered

    # -- commands from the board ----------------------------------------
    def handle(self, command) -> None:
        if self.out_of_service or self._pool is None:
            return
        if isinstance(command, StampRequest):
            text = self.drafts.pop(command.position, None)
            what = "message" if text else "stamp"
            if what == "message" and command.line is None:
                self.drafts[command.position] = text
                what, text = "stamp", None
            fut = self._pool.submit(self._do_stamp, what, command.line, command.position,
                                    self._call_of(command.line), None, text)
            fut.add_done_callback(self._log_failure)
            if text:
                fut.add_done_callback(lambda f, p=command.position, t=text:
                                      f.exception() and self._keep_draft(p, t))
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
            self._pool.submit(self._refresh_cards, lines_at, ringing)

    def _keep_draft(self, position, text):
        """A message whose stamp failed stays typed at its position (nothing is lost)."""
        loop = self.ctx.loop if self.ctx is not None else None
        if loop is not None:
            loop.call_soon_threadsafe(self.drafts.setdefault, position, text)
        else:
            self.drafts.setdefault(position, text)

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
        self.drafts[pos] = text
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

    async def cmd_operator(self, args):
        self.operators[args["position"]] = args["name"]
        await self._run(self._refresh_cards)
        return {"operators": {str(p): n for p, n in self.operators.items()}}

    async def cmd_purge(self, args):
        return await self._run(self._purge)
