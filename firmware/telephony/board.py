"""The board's commands on real calls: answer, hold, resume, release, join, overflow, transfer.

Runs on the daemon's loop (``TelephonyAdapter.handle``), under the adapter's
lock; each command becomes a worker command on the call of that line.
"""

from __future__ import annotations

import time
from pathlib import Path

from firmware.core.state import (Answer, CallerIdentified, Hold, Join, LineChanged, LineCleared,
                                 LineState, Release, Resume, SwitchChanged)
from firmware.errors import ControlError
from firmware.telephony import protocol as msg
from firmware.telephony import routing

LATE_CALLER_S = 30.0      # a caller ID for a call not yet reported is kept this long


class BoardCommands:
    """Mixin of ``TelephonyAdapter``: the board's commands that act on a line's call."""

    def handle(self, command):
        method = getattr(self, "_do_" + type(command).__name__, None)
        if method is not None:
            with self._lock:
                method(command)

    def _call_on(self, line):
        return self.book.on_line(line)

    def _position_uri(self, position):
        return self.position_uris.get(position)

    def _do_Answer(self, cmd: Answer):
        c = self._call_on(cmd.line)
        if c is None:
            return
        if c.answered is None and c.direction == "in":
            c.answered = self.clock()
        c.position = cmd.position
        if c.recording is None and self.recording_for is not None:
            c.recording = self.recording_for(c.line, c.id)
        c.worker.send(msg.AnswerCall(call=c.id, position_uri=self._position_uri(cmd.position),
                                     listen=True, record=c.recording))

    def _do_Join(self, cmd: Join):
        # Secrecy is off (the board only sends Join then): the operator may listen in.
        self._do_Answer(Answer(cmd.line, cmd.position))

    def _do_Resume(self, cmd: Resume):
        c = self._call_on(cmd.line)
        if c is None:
            return
        if c.held_since is not None:
            c.hold_s += self.clock() - c.held_since
            c.held_since = None
        c.position = cmd.position
        c.worker.send(msg.ResumeCall(call=c.id, position_uri=self._position_uri(cmd.position),
                                     listen=True))

    def _do_Hold(self, cmd: Hold):
        c = self._call_on(cmd.line)
        if c is None:
            return
        if c.held_since is None:
            c.held_since = self.clock()
        c.worker.send(msg.HoldCall(call=c.id))

    def _do_Release(self, cmd: Release):
        c = self._call_on(cmd.line)
        self._forget_dialling(cmd.position)
        if c is None:
            return
        keep = not cmd.ends_call or c.patching is not None
        if cmd.ends_call:
            c.board_done = True
        c.worker.send(msg.ReleaseCall(call=c.id, keep=keep))

    def _do_LineChanged(self, cmd: LineChanged):
        c = self._call_on(cmd.line)
        if c is not None and cmd.state is LineState.RINGING:
            c.rings = max(c.rings, cmd.rings)
            if self.site.overflow_rings and c.rings > self.site.overflow_rings and \
                    self.site.overflow_action == "message" and not c.overflowed:
                self._overflow(c)

    def _overflow(self, c):
        """Rung out: the board answers with the announcement and takes a voice message."""
        c.overflowed, c.outcome, c.board_done = True, "overflowed", True
        c.answered = self.clock()
        folder = self.run_dir.parent / "messages" if self.run_dir else Path("messages")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{c.line}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{c.id}.wav"
        c.worker.send(msg.OverflowCall(call=c.id, path=str(path),
                                       announcement=self.site.announcement))
        self._post(LineCleared(c.line, "overflowed"))

    def _do_SwitchChanged(self, cmd: SwitchChanged):
        if cmd.switch == "secrecy":
            self.secrecy = cmd.on

    def transfer(self, line: str, number: str, consult: bool = False) -> dict:
        """Transfer the call on ``line`` to ``number`` (a live patch: the board stays in the
        media path). Blind: release at once. Attended: with ``consult`` the caller waits on
        the hold tone while the operator talks to them, then release connects the two
        (also while it still rings); without, all three hear each other until release."""
        with self._lock:
            c = self._call_on(line)
            if c is None:
                raise ControlError(f"transfer: line {line} has no call to transfer")
            try:
                uri = routing.transfer(self.site, number)
            except routing.NoRoute as e:
                raise ControlError(f"transfer: {e}") from None
            c.patching = number
            c.worker.send(msg.PatchCall(call=c.id, uri=uri, consult=consult))
            return {"line": line, "to": number, "call": c.id, "consult": consult}

    def identify_caller(self, sip_call_id: str, caller: str) -> None:
        """The trunk learnt who is calling after it offered the call (an analog line's
        caller ID follows the first ring): the card and the call record get the number.
        Said before the worker has reported the call, it waits for it (``late_callers``)."""
        with self._lock:
            c = next((c for c in self.book.by_id.values() if c.sip_call_id == sip_call_id), None)
            if c is None:
                now = self.clock()
                self.late_callers = {k: v for k, v in self.late_callers.items()
                                     if now - v[1] < LATE_CALLER_S}
                self.late_callers[sip_call_id] = (caller, now)
                return
            self._caller_is(c, caller)

    def _caller_is(self, c, caller):
        c.caller = caller
        if c.answered is None and self.screen is not None and self.screen(c.line, caller):
            # On the block list: refused now as it would have been before it rang (busy,
            # no record); the lamp has flashed for one ring.
            c.worker.send(msg.ReleaseCall(call=c.id, code=msg.LINE_BUSY.code,
                                          reason=msg.LINE_BUSY.reason))
            if self.book.finish(c, "abandoned", record=False):
                self._post(LineCleared(c.line, "blocked caller"))
            return
        self._post(CallerIdentified(c.line, caller, c.id))

    def fail_line_call(self, line: str, end: bool = False) -> bool:
        """The trunk under the call on ``line`` broke (a modem unplugged, its gateway gone):
        its record will say ``failed``; with ``end`` the worker hangs its leg up too."""
        with self._lock:
            c = self._call_on(line)
            if c is None:
                return False
            c.outcome = "failed"
            if end:
                c.worker.send(msg.ReleaseCall(call=c.id))
            return True

    def _least_loaded(self):
        # A worker that died stays listed until its replacement is up (seconds): having
        # lost its calls it looks the least loaded, and a call given to it went nowhere.
        live = [w for w in self.workers if w.alive()] or self.workers
        return min(live, key=lambda w: len(w.calls) / max(1, w.maxload or 1))

    def _worker_for(self, route: routing.Route):
        """A registering trunk's calls go from the worker that holds its registration."""
        return self.workers[0] if route.via_registrar else self._least_loaded()
