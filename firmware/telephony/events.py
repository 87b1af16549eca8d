"""What the workers report, turned into the board's events and the calls' records.

Runs on the workers' reader threads, under the adapter's lock. A call the
worker reports is posted as ``LineRinging``; its end as ``LineCleared`` (or
``PlacedCallEnded`` for a call the board placed itself) and one call record;
the customer's phone answering or hanging up as ``CustomerAnswered`` /
``CustomerHungUp``; a voice message taken on overflow as ``MessageWaiting``;
a trunk's registration as a fault that lights and clears.
"""

from __future__ import annotations

import logging

from firmware.core.state import (CustomerAnswered, CustomerHungUp, Fault, LineCleared, LineRinging,
                                 MessageWaiting, PlacedCallEnded)
from firmware.records.times import iso
from firmware.telephony import protocol as msg
from firmware.telephony.calls import NO_ANSWER_CODES, Call

log = logging.getLogger("switchboard.telephony.events")


class WorkerEvents:
    """Mixin of ``TelephonyAdapter``: one handler per worker event."""

    def _on_event(self, w, m: msg.Message):
        with self._lock:
            t = self.tests.get(getattr(m, "call", None))
            if isinstance(m, msg.Levels):
                self._levels[m.seq] = msg.as_dict(m)
            elif isinstance(m, msg.CallList):
                self._call_list(w, m)
            elif t is not None:
                self._test_event(t, m)
            else:
                handler = self._event_handlers.get(type(m))
                if handler is not None:
                    handler(w, m)

    def _ev_incoming(self, w, m: msg.Incoming):
        line = self.site.line_for(m.user)
        if line is None:
            w.send(msg.ReleaseCall(call=m.call, code=msg.NO_SUCH_LINE.code,
                                   reason=msg.NO_SUCH_LINE.reason))
            return
        if self.book.has_ended(m.call):
            return                           # reported after its end: nothing to ring
        late = self.late_callers.pop(m.sip_call_id, None) if m.sip_call_id else None
        caller = late[0] if late is not None else m.caller   # the trunk's caller ID came first
        if self.screen is not None and self.screen(line, caller):
            # A blocked caller (switchboard-customers block): busy, and it never rings.
            w.send(msg.ReleaseCall(call=m.call, code=msg.LINE_BUSY.code,
                                   reason=msg.LINE_BUSY.reason))     # no failover
            return
        if self.book.on_line(line) is not None:
            # The board shows one call per line: a second caller hears busy.
            self.turned_away += 1
            w.send(msg.ReleaseCall(call=m.call, code=msg.LINE_BUSY.code,
                                   reason=msg.LINE_BUSY.reason))
            return
        c = Call(id=m.call, worker=w, line=line, direction="in", caller=caller,
                 callee=m.user, offered=m.t or self.clock(), sip_call_id=m.sip_call_id)
        for t in self.tests.values():
            if t["sip_call_id"] and t["sip_call_id"] == c.sip_call_id:
                self._test_rang(t, c)
        self.book.open(c)
        self._post(LineRinging(line, c.caller, c.id))
        if line in self.site.customers:
            w.send(msg.ForkCall(call=c.id, uri=self.site.customers[line]))

    def _ev_ended(self, w, m: msg.Ended):
        c = self.book.get(m.call)
        if c is None:
            # Ended before the board heard of it (or twice): remember, so that a late
            # "incoming" for it opens nothing.
            if m.call:
                self.book.ended_ids[m.call] = None
            return
        if c.placed is not None:
            # A call the board placed itself: no line on the board to clear;
            # the scheduler hears how it went.
            outcome = "answered" if c.answered else (
                "no-answer" if m.code in NO_ANSWER_CODES else "failed")
            if self.book.finish(c, outcome):
                self._post(PlacedCallEnded(c.placed["occurrence"], c.id, outcome))
            return
        # Always: the board may have let the line go and taken it up again (a customer
        # or a transfer on it); while this call lives no other can be on the line.
        if self.book.finish(c, c.default_outcome()):
            self._post(LineCleared(c.line, "hangup"))

    def _ev_confirmed(self, w, m: msg.Confirmed):
        c = self.book.get(m.call)
        if c is not None:
            c.connected = True
            if c.direction == "out" and c.answered is None:
                c.answered = self.clock()

    def _ev_dialog(self, w, m: msg.Dialog):
        c = self.book.get(m.call)
        if c is not None:
            c.dialog = (m.invite, m.tag)

    def _ev_customer_answered(self, w, m: msg.CustomerAnsweredEv):
        c = self.book.get(m.call)
        if c is not None:
            c.answered = c.answered or self.clock()
            c.customer_on = True
            if c.patching:
                c.outcome = "transferred"
            self._post(CustomerAnswered(c.line))

    def _ev_customer_hungup(self, w, m: msg.CustomerHungUpEv):
        c = self.book.get(m.call)
        if c is not None:
            c.customer_on = False
            self._post(CustomerHungUp(c.line))

    def _ev_patch_failed(self, w, m: msg.PatchFailed):
        c = self.book.get(m.call)
        if c is not None:
            c.patching = None
            if c.board_done:           # the operator had let go: the call comes back
                c.board_done = False
                self._post(LineRinging(c.line, c.caller, c.id))

    def _ev_message(self, w, m: msg.VoiceMessage):
        c = self.book.get(m.call)
        if c is not None:
            self.messages.setdefault(c.line, []).append(
                {"path": m.path, "seconds": m.seconds, "caller": c.caller,
                 "at": iso(self.clock())})
            self._post(MessageWaiting(c.line, len(self.messages[c.line])))

    def _ev_reg(self, w, m: msg.RegState):
        t = self.trunks.get(m.trunk)
        if t is None:
            return
        t.code, t.reason = m.code, m.reason
        if m.ok:
            t.registered, t.retry_in_s, t.since = True, None, self.clock()
            if t.faulted:
                t.faulted = False
                self._post(Fault(f"trunk {t.name}", None))
        elif m.expires == 0 and m.code == 200:
            t.registered = False      # we unregistered on purpose
        else:
            t.registered = False
            t.faulted = True
            self._post(Fault(f"trunk {t.name}",
                             f"registration failed: {t.code} {t.reason}".strip()))

    def _ev_reg_retry(self, w, m: msg.RegRetry):
        t = self.trunks.get(m.trunk)
        if t is not None:
            t.retry_in_s = m.in_s

    def _ev_error(self, w, m: msg.WorkerError):
        log.warning("worker %s: %s", w.index, m.message)
        c = self.book.get(m.call) if m.call else None
        if c is not None and m.message.startswith("recording"):
            c.recording, c.recording_error = None, m.message      # the call goes on, unrecorded
            return
        if c is not None and m.message.endswith(": no such call"):
            # The worker has no such call: it ended without the board hearing of it.
            self._lost(c, "call gone from its worker")

    def _event_table(self) -> dict:
        return {msg.Incoming: self._ev_incoming, msg.Ended: self._ev_ended,
                msg.Confirmed: self._ev_confirmed, msg.Dialog: self._ev_dialog,
                msg.CustomerAnsweredEv: self._ev_customer_answered,
                msg.CustomerHungUpEv: self._ev_customer_hungup,
                msg.PatchFailed: self._ev_patch_failed, msg.VoiceMessage: self._ev_message,
                msg.RegState: self._ev_reg, msg.RegRetry: self._ev_reg_retry,
                msg.WorkerError: self._ev_error, msg.TextStatus: self.texts.on_status}
