"""One analog line on one modem, run by the gateway's serial thread (no PJSUA2 here).

``ModemLine`` opens the modem (reopening it with back-off while it is unplugged or not
answering), idles it, counts rings, gathers caller ID, and carries calls: the gateway puts
commands on its queue (``answer``, ``dial``, ``release``, ``test``, ``dtmf``, ``quit``) and
hears events through ``emit`` (``modem_ready``, ``modem_fault``, ``ring``, ``offer``,
``caller_id``, ``ring_stopped``, ``voice``, ``answer_failed``, ``dialled``, ``dial_failed``, ``far_end_hangup``,
``released``, ``dtmf``, ``test_result``).

A call is offered (``offer``) at the first ``RING``, so the line's lamp flashes at once;
the caller ID block, which comes between the first and second ring, follows it as
``caller_id`` (while it still rings). A call whose caller ID never comes is offered all
the same.

Audio crosses to the bridge through two ``DriftBuffer``s, ``rx`` (line to bridge) and ``tx``
(bridge to line). The modem's own byte rate is the line's clock: for every sample read
from the modem one sample is written to it, so ``tx`` absorbs the bridge's drift and
``rx`` the modem's.

Far-end hang-up: an analog line gives no clean signal. The modem's ``DLE b`` / ``d`` /
``l`` (and ``s``) where it sends them, and ``HangupDetector`` on what the line carries:
only silence for ``silence_s``, or only call-progress tones (busy, reorder, dial tone;
silence between their bursts) for ``tone_s``.
"""

from __future__ import annotations

import array
import math
import queue
import threading
import time

from firmware.telephony.modem import codec
from firmware.telephony.modem.driver import (HANGUP_EVENTS, Driver, ModemError, ModemGone)
from firmware.telephony.modem.dle import END
from firmware.telephony.modem.drift import DriftBuffer

FRAME = 160                     # 20 ms at 8 kHz
#: Call-progress tones (Hz): North American dial 350+440, busy/reorder 480+620, ringback
#: 440+480; European dial/busy 425, UK 400/450.
PROGRESS_HZ = (350, 400, 425, 440, 450, 480, 620)


def goertzel(x, freq: float, rate: int = 8000) -> float:
    """Power of ``freq`` in the block ``x`` (normalised to the block's length)."""
    w = 2 * math.pi * freq / rate
    c = 2 * math.cos(w)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + c * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - c * s1 * s2) / (len(x) * len(x) / 4 or 1)


class HangupDetector:
    """Decides from the line's audio alone that the far end has gone."""

    def __init__(self, *, silence_s=30.0, tone_s=4.0, quiet_rms=150.0, rate=8000):
        self.silence = int(silence_s * rate) if silence_s else 0
        self.tone = int(tone_s * rate) if tone_s else 0
        self.quiet_rms = quiet_rms
        self.rate = rate
        self.reset()

    #: Blocks of "voice" in a row that say a person is there. A tone's on/off edge falls
    #: anywhere in a block, and a block half tone and half quiet looks like voice: a
    #: single one must not restart the count (a busy tone would never be heard).
    VOICE_BLOCKS = 3

    def reset(self):
        self._pending = array.array("h")
        self.since_voice = 0          # samples since the last block that sounded like a person
        self.tone_samples = 0         # of which blocks of call-progress tone
        self._voice_run = 0           # "voice" blocks in a row

    def feed(self, pcm: bytes) -> str | None:
        self._pending.extend(codec.samples(pcm))
        verdict = None
        while len(self._pending) >= FRAME:
            block = self._pending[:FRAME]
            del self._pending[:FRAME]
            kind = self.classify(block)
            if kind == "voice":
                self._voice_run += 1
                if self._voice_run >= self.VOICE_BLOCKS:
                    self.since_voice = self.tone_samples = 0
                    continue
            else:
                self._voice_run = 0
            self.since_voice += FRAME
            if kind == "tone":
                self.tone_samples += FRAME
            if self.tone and self.since_voice >= self.tone and self.tone_samples * 4 >= self.since_voice:
                verdict = "call-progress tone"
            elif self.silence and self.since_voice >= self.silence and self.tone_samples == 0:
                verdict = "silence"
        return verdict

    def classify(self, block) -> str:
        energy = sum(v * v for v in block) / len(block)
        if energy < self.quiet_rms ** 2:
            return "quiet"
        tonal = sum(goertzel(block, f, self.rate) for f in PROGRESS_HZ) / 2
        return "tone" if tonal >= 0.6 * energy else "voice"


class ModemLine:
    def __init__(self, device: str, emit, *, profile=None, country=None, silence_s=30.0,
                 tone_s=4.0, ring_gone_s=8.0, retry_min_s=1.0,
                 retry_max_s=60.0, open_port=None, log=None):
        self.device = device
        self.emit = emit
        self.profile = profile
        self.country = country
        self.ring_gone_s = ring_gone_s
        self.retry = (retry_min_s, retry_max_s)
        self.open_port = open_port or _open_serial
        self.log = log or (lambda msg: None)
        self.commands: queue.Queue = queue.Queue()
        self.rx = DriftBuffer()
        self.tx = DriftBuffer()
        self.detector = HangupDetector(silence_s=silence_s, tone_s=tone_s)
        self.state = "closed"        # closed, idle, ringing, voice
        self.identity: dict = {}
        self.in_call = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- thread ------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self.run, name="modem-line", daemon=True)
        self._thread.start()

    def stop(self, timeout=5.0):
        self._stop.set()
        self.commands.put(("quit",))
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self):
        delay = self.retry[0]
        while not self._stop.is_set():
            port = None
            try:
                port = self.open_port(self.device)
                drv = Driver(port, profile=self.profile, country=self.country, log=self.log)
                self.identity = drv.start()
                self.state = "idle"
                self.emit("modem_ready", **self.identity)
                delay = self.retry[0]
                self._session(drv)
            except (ModemError, OSError) as e:
                in_call, self.in_call = self.in_call, False
                self.state = "closed"
                if self._stop.is_set():
                    break
                gone = isinstance(e, ModemGone) or not _exists(self.device)
                what = (f"modem {self.device} is unplugged or gone" if gone else
                        f"modem {self.device} is not answering") + f": {e}"
                self.emit("modem_fault", message=what, retry_in_s=delay, in_call=in_call)
                self._stop.wait(delay)
                delay = min(self.retry[1], delay * 2)
            finally:
                if port is not None:
                    try:
                        port.close()
                    except Exception:
                        pass
        self.state = "closed"

    def _get(self, timeout=0.0):
        try:
            return self.commands.get(timeout=timeout) if timeout else self.commands.get_nowait()
        except queue.Empty:
            return None

    # -- idle and ringing -----------------------------------------------------
    def _session(self, drv: Driver):
        ring = None                   # {"first", "last", "n", "cid", "offered", "ignored"}
        while not self._stop.is_set():
            cmd = self._get()
            if cmd is not None:
                op = cmd[0]
                if op == "quit":
                    return
                if op == "answer":
                    if ring is None:        # the caller gave up as the board answered
                        self.emit("answer_failed", reason="the line stopped ringing")
                        continue
                    self._voice(drv, "in", drv.answer)
                    ring = None
                    continue
                if op == "release" and ring is not None:
                    ring["ignored"] = True          # the board turned it away: let it ring out
                elif op == "dial":
                    number = cmd[1]
                    if ring is not None:
                        self.emit("dial_failed", number=number, reason="the line is ringing",
                                  code=486)
                        continue
                    try:
                        drv.dial(number)
                    except ModemError as e:
                        if isinstance(e, ModemGone):
                            raise
                        self.emit("dial_failed", number=number, reason=str(e),
                                  code=_dial_code(str(e)))
                        drv.release()
                        continue
                    self.emit("dialled", number=number)
                    self._voice(drv, "out", None)
                    continue
                elif op == "test":
                    self._test(drv, float(cmd[1]))
                    continue
            now = time.monotonic()
            for ev in drv.poll_idle(0.05):
                if ev[0] == "ring":
                    if ring is None:
                        ring = {"first": now, "n": 0, "cid": None, "offered": False,
                                "ignored": False}
                        self.state = "ringing"
                    ring["last"], ring["n"] = now, ring["n"] + 1
                    self.emit("ring", rings=ring["n"])
                elif ev[0] == "cid":
                    if ring is None:          # caller ID before the first ring (some countries)
                        ring = {"first": now, "last": now, "n": 0, "cid": None,
                                "offered": False, "ignored": False}
                    ring["cid"] = ev[1]
                    if ring["offered"] and not ring["ignored"]:
                        # the lamp has flashed since the first ring: the number follows it
                        self.emit("caller_id", **ev[1].public())
            if ring is None:
                continue
            if not ring["offered"] and not ring["ignored"] and ring["n"] >= 1:
                # offered at the first RING (the lamp flashes at once), with the caller ID
                # only when it came before the ring (some countries send it first)
                ring["offered"] = True
                cid = ring["cid"].public() if ring["cid"] is not None else {}
                self.emit("offer", rings=ring["n"], **cid)
            if now - ring["last"] > self.ring_gone_s:
                if ring["offered"]:          # also when the board turned it away: it rang out
                    self.emit("ring_stopped", rings=ring["n"])
                ring = None
                drv.reset_rings()
                self.state = "idle"

    # -- a call --------------------------------------------------------------
    def _voice(self, drv: Driver, direction: str, go):
        """Full-duplex voice until the board releases or the far end hangs up."""
        # in_call stays set if the modem goes away meanwhile: run() reports the call lost
        self.in_call = True
        if go is not None:
            go()
        self.rx.clear()
        self.tx.clear()
        self.detector.reset()
        self.state = "voice"
        self.emit("voice", direction=direction, format=drv.fmt)
        why = self._stream(drv)
        drv.release()
        self.state = "idle"
        self.in_call = False
        if why is None:
            self.emit("released")
        else:
            self.emit("far_end_hangup", reason=why)

    def _stream(self, drv: Driver):
        credit = 0
        while not self._stop.is_set():
            cmd = self._get()
            if cmd is not None:
                if cmd[0] in ("release", "quit"):
                    return None
                if cmd[0] == "dtmf":
                    digits = cmd[1]
                    try:
                        drv.send_dtmf(digits)
                    except ModemError as e:
                        if isinstance(e, ModemGone):
                            raise
                        self.log(f"DTMF {digits}: {e}")
                        return "the modem did not go back into voice"
            pcm, events = drv.read_stream(512, 0.02)
            if pcm:
                self.rx.put(pcm)
                credit += len(pcm) // 2
                out = []
                while credit >= FRAME:
                    out.append(self.tx.take_bytes())
                    credit -= FRAME
                if out:
                    drv.write_stream(b"".join(out))
            for ev in events:
                if ev.startswith("dtmf:"):
                    self.emit("dtmf", digit=ev[5:])
                elif ev in HANGUP_EVENTS:
                    return HANGUP_EVENTS[ev]
                elif ev == END:
                    return "the modem ended the stream"
            if pcm:
                why = self.detector.feed(pcm)
                if why:
                    return why
        return None

    def _test(self, drv: Driver, seconds: float):
        """Off-hook with no call: is there dial tone (``DLE d``, or the tone itself)?"""
        events: list[str] = []
        drv.off_hook()
        self.rx.clear()
        self.tx.clear()
        self.state = "voice"
        heard = array.array("h")
        start = time.monotonic()
        tone_blocks = 0
        blocks = 0
        det = HangupDetector()
        got_d = None
        while time.monotonic() - start < seconds:
            pcm, evs = drv.read_stream(512, 0.02)
            events += evs
            if "d" in evs and got_d is None:
                got_d = time.monotonic() - start
            heard.extend(codec.samples(pcm))
            while len(heard) >= FRAME:
                blocks += 1
                tone_blocks += det.classify(heard[:FRAME]) == "tone"
                del heard[:FRAME]
            if got_d is not None and time.monotonic() - start > got_d + 0.3:
                break
        fmt = drv.fmt
        drv.release()
        self.state = "idle"
        self.emit("test_result", off_hook=True, dial_tone_event="d" in events,
                  dial_tone_heard=blocks > 0 and tone_blocks * 2 >= blocks,
                  dial_tone_ms=None if got_d is None else round(got_d * 1000),
                  events=events, format=fmt)


def _dial_code(reason: str) -> int:
    r = reason.upper()
    if "BUSY" in r:
        return 486
    if "NO ANSWER" in r:
        return 480
    if "DIALTONE" in r or "DIAL TONE" in r:
        return 503
    return 500


def _exists(path) -> bool:
    import os
    return os.path.exists(path)


def _open_serial(device):
    import serial
    try:
        return serial.Serial(device, 115200, timeout=0.05, rtscts=False, exclusive=True)
    except (serial.SerialException, ValueError) as e:
        raise ModemGone(str(e)) from e
