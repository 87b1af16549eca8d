"""Office lines: a seized line, the digits dialled on the position's pad, the call placed.

The number is complete at ``#`` or ``DIAL_TIMEOUT_S`` after the last digit;
once connected, the pad's keys send DTMF on the call.
"""

from __future__ import annotations

from firmware.core.state import Dial, LineCleared, Seize
from firmware.telephony import protocol as msg
from firmware.telephony import routing
from firmware.telephony.calls import Call

DIAL_TIMEOUT_S = 4.0      # an office line's number is complete this long after the last digit


class OfficeDialling:
    """Mixin of ``TelephonyAdapter``: ``Seize`` and ``Dial`` (state: ``self.seized``,
    ``self.dial_timers``, both by position)."""

    def _do_Seize(self, cmd: Seize):
        """An idle line taken to call out: the number follows on the dial pad."""
        self._seq += 1
        self.seized[cmd.position] = {"line": cmd.line, "digits": "", "at": self.clock()}

    def _do_Dial(self, cmd: Dial):
        c = self._call_on(cmd.line) if cmd.line else None
        if c is not None:
            c.worker.send(msg.SendDtmf(call=c.id, digits=cmd.digit))
            return
        seized = self.seized.get(cmd.position)
        if seized is None or seized["line"] != cmd.line:
            return
        if cmd.digit == "#":
            self._place(cmd.position)
            return
        seized["digits"] += cmd.digit
        loop = self.ctx.loop
        if loop is not None:
            old = self.dial_timers.pop(cmd.position, None)
            if old is not None:
                old.cancel()
            self.dial_timers[cmd.position] = loop.call_later(
                DIAL_TIMEOUT_S, self._dial_timeout, cmd.position)

    def _dial_timeout(self, position):
        with self._lock:
            self.dial_timers.pop(position, None)
            self._place(position)

    def _forget_dialling(self, position):
        timer = self.dial_timers.pop(position, None)
        if timer is not None:
            timer.cancel()
        self.seized.pop(position, None)

    def _place(self, position):
        seized = self.seized.pop(position, None)
        if seized is None or not seized["digits"]:
            return
        number = seized["digits"]
        try:
            route = routing.outbound(self.site, number, seized["line"])
        except routing.NoRoute:
            route = None
        if route is None or not self.workers:
            self._post(LineCleared(seized["line"], "no outbound trunk"))
            return
        worker = self._worker_for(route)
        self._seq += 1
        c = Call(id=f"out-{position}-{self._seq}", worker=worker, line=seized["line"],
                 direction="out", caller=seized["line"], callee=number, offered=self.clock(),
                 position=position)
        self.book.open(c)
        worker.send(msg.PlaceOutgoing(call=c.id, uri=route.uri, trunk=route.trunk,
                                      position_uri=self._position_uri(position)))
