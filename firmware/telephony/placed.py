"""Calls the board places itself (wake-up and reminder calls), with a spoken message.

``PlaceCall`` from the scheduler: an office line calls the number and plays
the message once answered; ``PlacedCallEnded`` reports the outcome. Text is
spoken into a WAV by espeak-ng (cached by its hash), in a thread, because it
takes a moment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

from firmware.core.state import PlaceCall, PlacedCallEnded
from firmware.telephony import protocol as msg
from firmware.telephony import routing
from firmware.telephony.calls import Call


class PlacedCalls:
    """Mixin of ``TelephonyAdapter``: ``PlaceCall``."""

    def _do_PlaceCall(self, cmd: PlaceCall):
        """Call ``cmd.number`` from an office line and play the message once it
        is answered; a ``PlacedCallEnded`` event reports the outcome. The
        message is made ready in a thread (speaking it takes a moment)."""
        threading.Thread(target=self._place_call, args=(cmd,), name="telephony-place",
                         daemon=True).start()

    def _place_call(self, cmd: PlaceCall):
        def fail(why):
            self._post(PlacedCallEnded(cmd.occurrence, None, "failed", why))
        try:
            play = self._message_file(cmd.message)
        except (OSError, subprocess.SubprocessError) as e:
            return fail(str(e))
        with self._lock:
            self._place_now(cmd, play, fail)

    def _place_now(self, cmd, play, fail):
        if self.state != "running" or not self.workers:
            return fail(f"the telephony is {self.state}")
        office = [ln.number for ln in self.board.lines if ln.kind == "office"]
        line = cmd.line if cmd.line in office else next(
            (n for n in office if self.book.on_line(n) is None), None)
        if line is None or self.book.on_line(line) is not None:
            return fail("no free office line")
        try:
            route = routing.outbound(self.site, cmd.number, line)
        except routing.NoRoute as e:
            return fail(str(e))
        worker = self._worker_for(route)
        self._seq += 1
        c = Call(id=f"placed-{self._seq}", worker=worker, line=line, direction="out", caller=line,
                 callee=cmd.number, offered=self.clock(), kind=cmd.kind,
                 placed={"customer": cmd.customer, "schedule": cmd.schedule_id,
                         "occurrence": cmd.occurrence})
        self.book.open(c)
        worker.send(msg.PlaceOutgoing(call=c.id, uri=route.uri, trunk=route.trunk, play=str(play),
                                      ring_s=cmd.ring_s))

    def _message_file(self, message: str) -> Path:
        """``file:<path>`` as it is; text spoken into a WAV by espeak-ng (cached)."""
        if message.startswith("file:"):
            path = Path(message[5:])
            if not path.is_file():
                raise OSError(f"message file {path} does not exist")
            return path
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise OSError("no speech synthesizer (install espeak-ng) for a spoken message; "
                          "or give a recording as file:<path>")
        out = self.run_dir / "messages" / (hashlib.sha1(message.encode()).hexdigest()[:16] + ".wav")
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp.wav")
            r = subprocess.run([exe, "-w", str(tmp), message], capture_output=True, timeout=30)
            if r.returncode != 0:
                raise OSError(f"espeak-ng failed: {r.stderr.decode(errors='replace')[:200]}")
            os.replace(tmp, out)
        return out
