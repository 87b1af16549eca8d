"""A worker's conference bridge: who hears whom, and the tones and recordings.

PJSUA2's bridge runs on the null sound device (the wheel has none). Audio
is connected only once a leg's media is active (``Leg.onCallMediaState``
calls ``connect``), and every call's wiring is worked out from its legs'
state here, in one place: a caller with its position leg, the customer's
phone, a transfer's far end, the hold tone, an overflow's announcement and
recording, a placed call's message, a trunk test's echo.
"""

from __future__ import annotations

import time
import wave

import pjsua2 as pj

from firmware.telephony import protocol as msg
from firmware.telephony.pj.support import play_tone, tone_generator

HOLD_TONE = (425, 600, 2400)   # Hz, on ms, off ms: a soft beep every 3 s
BEEP = (1400, 400, 100)        # speak now
TEST_TONE = (1000, 30000, 0)   # a test caller's tone, steady


class Bridge:
    def __init__(self, worker):
        self.worker = worker
        self.hold_tone = None
        self._beep = None
        self._test_tone = None

    def start(self):
        self.hold_tone = tone_generator(*HOLD_TONE, loop=True)

    def close(self):
        """Drop every player before ``libDestroy``."""
        self.hold_tone = self._beep = self._test_tone = None

    def beep(self):
        """The tone that says: speak now (one short beep, then silence)."""
        if self._beep is None:
            self._beep = tone_generator(*BEEP, loop=False)
        else:
            play_tone(self._beep, *BEEP, loop=False)
        return self._beep

    def test_tone(self):
        if self._test_tone is None:
            self._test_tone = tone_generator(*TEST_TONE, loop=True)
        return self._test_tone

    def hold(self, leg):
        if leg.media is not None:
            self.hold_tone.startTransmit(leg.media)

    def connect(self, leg):
        """Connect audio once both legs' media are active."""
        if leg.kind == "ring":       # a test caller: sends a tone, its received level is read
            self.test_tone().startTransmit(leg.media)
            # The bridge reads (and measures) a port only while it has a listener:
            # give it the null sound device's.
            leg.media.startTransmit(self.worker.ep.audDevManager().getPlaybackDevMedia())
            return
        if leg.kind == "refusal":    # a blocked caller: the announcement, then goodbye
            self.play_message(leg)
            return
        caller = leg if leg.kind in ("in", "out") else leg.peer
        if caller is None or caller.media is None:
            return
        if caller.play:
            self.play_message(caller)
            return
        pos = caller.peer
        cust = caller.customer
        if cust is not None and (not cust.answered or cust.media is None or cust.dead):
            cust = None
        if caller.consult:
            # Attended transfer, consulting: the caller waits on the hold tone while the
            # operator and the far end talk; nothing of either reaches the caller.
            self.hold_tone.startTransmit(caller.media)
            if pos is not None and pos.media is not None and cust is not None:
                pos.media.startTransmit(cust.media)
                cust.media.startTransmit(pos.media)
            return
        if cust is not None:                 # caller and customer talk
            cust.media.startTransmit(caller.media)
            caller.media.startTransmit(cust.media)
        if caller.message is not None:       # overflow: announce, then record
            self._record(caller)
            return
        if caller.echo:                      # trunk test: the caller hears itself
            caller.media.startTransmit(caller.media)
            return
        if caller.held:
            self.hold_tone.startTransmit(caller.media)
            return
        try:
            self.hold_tone.stopTransmit(caller.media)
        except pj.Error:
            pass
        if pos is None or pos.media is None or pos.dead:
            return
        pos.media.startTransmit(caller.media)
        if caller.listen:
            caller.media.startTransmit(pos.media)
        if caller.call_rec is not None:      # the conversation, both ways, into one file
            caller.media.startTransmit(caller.call_rec)
            pos.media.startTransmit(caller.call_rec)
        if cust is not None:                 # the operator joined (or was there first)
            pos.media.startTransmit(cust.media)
            if caller.listen:
                cust.media.startTransmit(pos.media)
        self.worker.emit(msg.Bridged(call=caller.cid, listen=caller.listen,
                                     customer=cust is not None))

    def _record(self, caller):
        if caller.recorder is not None:
            return
        caller.recorder = pj.AudioMediaRecorder()
        caller.recorder.createRecorder(caller.message[0])
        caller.media.startTransmit(caller.recorder)
        announcement = caller.message[2]
        if announcement:
            try:
                caller.player = pj.AudioMediaPlayer()
                caller.player.createPlayer(announcement, pj.PJMEDIA_FILE_NO_LOOP)
                caller.player.startTransmit(caller.media)
            except pj.Error as e:
                caller.player = None
                self.worker.emit(msg.WorkerError(call=caller.cid,
                                                 message=f"announcement: {e.info()}"))
        if caller.player is None:
            self.beep().startTransmit(caller.media)

    def finish_message(self, leg):
        path, started, _ = leg.message
        leg.message = None
        try:
            if leg.media is not None and leg.recorder is not None:
                leg.media.stopTransmit(leg.recorder)
        except pj.Error:
            pass
        leg.recorder = None           # closes the WAV
        leg.player = None
        self.worker.emit(msg.VoiceMessage(call=leg.cid, path=path,
                                          seconds=round(time.time() - started, 2)))

    def unconsult(self, leg):
        """End a consultation: the operator's and the far end's audio stop crossing."""
        leg.consult = False
        pos, cust = leg.peer, leg.customer
        for a, b in ((pos, cust), (cust, pos)):
            if a is not None and b is not None and a.media is not None and b.media is not None:
                try:
                    a.media.stopTransmit(b.media)
                except pj.Error:
                    pass

    def play_message(self, leg):
        """Play a placed call's message once, then hang up (a wake-up or reminder call)."""
        if leg.player is not None or leg.dead:
            return
        try:
            with wave.open(leg.play) as w:
                seconds = w.getnframes() / float(w.getframerate())
            player = pj.AudioMediaPlayer()
            player.createPlayer(leg.play, pj.PJMEDIA_FILE_NO_LOOP)
            player.startTransmit(leg.media)
        except (OSError, EOFError, wave.Error, pj.Error) as e:
            text = e.info() if isinstance(e, pj.Error) else str(e)
            self.worker.emit(msg.WorkerError(call=leg.cid, message=f"message {leg.play}: {text}"))
            self.worker.hangup(leg)
            return
        leg.player = player
        if leg.kind != "refusal":        # the board never heard of a refused call
            self.worker.emit(msg.Playing(call=leg.cid, seconds=round(seconds, 2)))
        self.worker.after(seconds + 0.5, lambda: self.worker.hangup(leg))

    def levels(self, leg) -> dict:
        """``heard`` from the far end, ``sent`` to it, of a call and of its position leg.
        (PJSUA2 names them from the bridge port's side: a port's "tx" level is what it
        transmits into the bridge, i.e. what the far end sent.)"""
        def both(media):
            return (media.getTxLevel(), media.getRxLevel()) if media is not None else (None, None)
        a, b = both(leg.media)
        c, d = both(leg.peer.media if leg.peer is not None else None)
        return {"heard": a, "sent": b, "position_heard": c, "position_sent": d}
