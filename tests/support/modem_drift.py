"""Both drift buffers of a real ``ModemLine`` on a ``SimModem`` whose clock is off, in real time.

The line's serial thread runs as in the gateway (``_stream``: ``rx`` filled from the
modem, ``tx`` drained on the modem's byte count); PJSUA2's media clock is stood in for by
a thread that takes a frame from ``rx`` and puts one into ``tx`` every 20 ms of the host's
clock, as ``LinePort``'s callbacks do. The simulated modem paces its stream at 8000 bytes
a second times ``clock``, so the two clocks disagree by exactly that. Used by the modem
tests and by ``benchmarks/modem.py``.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time

from firmware.telephony.modem.drift import DriftBuffer
from firmware.telephony.modem.line import FRAME, ModemLine
from firmware.telephony.modem.sim import SimModem, line_noise

SETTLE_TAKES = 250          # the first 5 s of frames: priming, not the standing level


class MeteredBuffer(DriftBuffer):
    """A ``DriftBuffer`` that keeps its level after every take (and where each underrun
    fell), and counts what a plain FIFO between the same writer and reader would hold: one
    that starts at the same target (the start-up backlog trimmed once) and is never
    corrected, so that only the clocks' drift moves it. With a ``clock``, it also counts the
    writer's stalls: gaps of more than two frames between puts, where the machine, not the
    buffer, is to blame for what follows, and when each stall and underrun happened. It
    counts reversals too: a drop after an insert or an insert after a drop (the two
    corrections fighting)."""

    STALL_S = 0.04

    def __init__(self, clock=None, **kw):
        super().__init__(**kw)
        self.clock = clock
        self._meter()

    def _meter(self):
        self.levels: list[float] = []
        self.underrun_at: list[int] = []     # take numbers
        self.fifo = 0
        self.fifo_primed = False
        self.fifo_short = 0
        self.stalls = 0
        self.worst_gap_s = 0.0
        self.stall_spans: list[tuple[float, float]] = []    # (start, end) on the clock
        self.underrun_t: list[float] = []
        self.reversals = 0
        self._last_fix = None          # "dropped" or "inserted"
        self._put_at = None

    def clear(self):
        super().clear()
        self._meter()

    def put(self, samples):
        if self.clock is not None:
            now = self.clock()
            if self._put_at is not None:
                gap = now - self._put_at
                if gap > self.STALL_S:
                    self.stalls += 1
                    self.stall_spans.append((self._put_at, now))
                self.worst_gap_s = max(self.worst_gap_s, gap)
            self._put_at = now
        super().put(samples)
        self.fifo += len(samples) // 2 if isinstance(samples, (bytes, bytearray)) else len(samples)

    def take(self):
        under, dropped, inserted = self.underruns, self.dropped, self.inserted
        out = super().take()
        if self.underruns > under:
            self.underrun_at.append(len(self.levels))
            if self.clock is not None:
                self.underrun_t.append(self.clock())
        fix = ("dropped" if self.dropped > dropped else
               "inserted" if self.inserted > inserted else None)
        if fix:
            self.reversals += self._last_fix not in (None, fix)
            self._last_fix = fix
        self.levels.append(self.level_ms)
        if not self.fifo_primed and self.fifo >= self.target:
            self.fifo, self.fifo_primed = self.target, True
        if self.fifo_primed:
            self.fifo_short += self.fifo < self.frame
            self.fifo = max(0, self.fifo - self.frame)
        return out


def figures(b: MeteredBuffer, settle=SETTLE_TAKES) -> dict:
    """Level (standing delay) over the settled part of the call, corrections, underruns."""
    lv = sorted(b.levels[settle:] or b.levels or [0.0])
    return {"level_ms": {"min": lv[0], "median": statistics.median(lv),
                         "p99": lv[int(0.99 * (len(lv) - 1))], "max": lv[-1]},
            "takes": len(b.levels), "dropped": b.dropped, "inserted": b.inserted,
            "underruns": b.underruns, "underrun_at": list(b.underrun_at), "overflows": b.overflows,
            "reversals": b.reversals,
            "plain_fifo_end_ms": round(b.fifo * 1000 / b.rate, 1),
            "plain_fifo_short_frames": b.fifo_short,
            "writer_stalls": b.stalls, "writer_worst_gap_ms": round(b.worst_gap_s * 1000, 1),
            # copies: the line goes on streaming (and tx underrunning) after the last tick
            "stall_spans": list(b.stall_spans), "underrun_t": list(b.underrun_t)}


def unexplained_underruns(r: dict, side: str, near_s=1.0) -> list[float]:
    """The underruns of buffer ``side`` of a ``run_calls`` result that no stall of either
    thread (the serial thread writes rx and reads tx, the bridge the other way round)
    explains: none within ``near_s`` of a stall's gap. What is left is the buffer's."""
    spans = r["rx"]["stall_spans"] + r["tx"]["stall_spans"]
    return [u for u in r[side]["underrun_t"]
            if not any(a - near_s <= u <= b + near_s for a, b in spans)]


class Bridge(threading.Thread):
    """PJSUA2's media clock, stood in for: a frame each way every 20 ms on the host's clock
    (an absolute schedule, so a late tick is caught up as the real clock thread does). The
    figures are taken at its last tick: the line goes on streaming after it."""

    def __init__(self, line: ModemLine, seconds: float):
        super().__init__(name="bridge-clock", daemon=True)
        self.line, self.seconds = line, seconds
        self.late_ms = 0.0            # the worst tick's lateness: how loaded the machine was
        self.late_ticks = 0           # ticks more than a frame (20 ms) late
        self.figures: dict = {}

    def run(self):
        self._ticks()
        self.figures = {"still_in_call": self.line.state == "voice",
                        "rx": figures(self.line.rx), "tx": figures(self.line.tx)}

    def _ticks(self):
        silence = bytes(2 * FRAME)
        t0 = time.monotonic()
        for k in range(1, int(self.seconds / 0.02) + 1):
            delay = t0 + k * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self.late_ms = max(self.late_ms, -delay * 1000)
                self.late_ticks += delay < -0.02
            if self.line.state != "voice":
                return
            self.line.rx.take_bytes()
            self.line.tx.put(silence)


def _wait(events: queue.Queue, name: str, timeout: float):
    end = time.monotonic() + timeout
    while True:
        try:
            ev = events.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no {name} from the modem line") from None
        if ev == name:
            return
        if ev in ("modem_fault", "far_end_hangup") or time.monotonic() > end:
            raise RuntimeError(f"waiting for {name}, the line said {ev}")


class DriftCall:
    """One answered call on a simulated modem with ``clock`` (1.001: 0.1 % fast)."""

    def __init__(self, clock: float, profile="conexant"):
        self.clock = clock
        self.sim = SimModem(profile, clock=clock)
        self.events: queue.Queue = queue.Queue()
        # silence_s=0, tone_s=0: the far end's line noise must not end the call
        self.line = ModemLine(self.sim.path, lambda ev, **kw: self.events.put(ev),
                              silence_s=0, tone_s=0)
        self.line.rx = MeteredBuffer(time.monotonic)     # written by the serial thread
        self.line.tx = MeteredBuffer(time.monotonic)     # by the bridge
        self.bridge: Bridge | None = None

    def answer(self, seconds: float):
        """Ring, answer, and start the bridge's clock for ``seconds``."""
        self.line.start()
        _wait(self.events, "modem_ready", 20)
        self.sim.ring("5551234", cid=False, rings=5, period=2.0, source=line_noise())
        _wait(self.events, "offer", 10)
        self.line.commands.put(("answer",))
        _wait(self.events, "voice", 10)
        self.bridge = Bridge(self.line, seconds)
        self.bridge.start()

    def join(self) -> dict:
        """Wait for the bridge's run to end; the figures of both buffers."""
        while self.bridge.is_alive():
            self.bridge.join(0.5)
            with self.sim.lock:               # what the host sent: not needed, and it grows
                del self.sim.heard[:]
        return {"drift_pct": round((self.clock - 1) * 100, 3), "seconds": self.bridge.seconds,
                "bridge_late_ms": round(self.bridge.late_ms, 1),
                "bridge_late_ticks": self.bridge.late_ticks, **self.bridge.figures}

    def close(self):
        self.line.stop()
        self.sim.stop()


def run_calls(clocks, seconds: float) -> list[dict]:
    """Calls on simulated modems with these clocks, side by side, each ``seconds`` long."""
    calls = [DriftCall(c) for c in clocks]
    try:
        for c in calls:
            c.answer(seconds)
        return [c.join() for c in calls]
    finally:
        for c in calls:
            c.close()
