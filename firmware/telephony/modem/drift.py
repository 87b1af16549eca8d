"""A sample buffer between two clocks that never quite agree.

The modem's 8 kHz clock and the conference bridge's (the host's) drift apart by up to a
few tenths of a percent: a plain queue between them grows without bound (0.1 % over a
10-minute call is 0.6 s of delay) or runs dry and clicks. ``DriftBuffer`` holds 16-bit
samples; the writer ``put``s whatever arrives, the reader ``take``s fixed frames, and:

- the level that counts is the lowest at a take over the last ``window`` takes (a second);
- while it stays above ``target + slack``, each frame taken drops one sample (0.6 % at
  20 ms frames: six times the drift it corrects, inaudible);
- while it is below ``target``, each frame taken gets one sample repeated (``target``
  must be at least two frames: see ``take``);
- a frame the buffer cannot fill is padded with its last sample faded to silence (an
  underrun), and the buffer refills to ``target`` before it plays again;
- beyond ``limit`` (a stall on one side) the oldest samples are thrown away down to
  ``target``.

Thread-safe: the serial thread writes, PJSUA2's media callbacks read, under one lock held
only for list operations (the callbacks never wait on it for long).
"""

from __future__ import annotations

import array
import threading


class DriftBuffer:
    def __init__(self, *, rate=8000, frame=160, target_ms=40, slack_ms=10, limit_ms=200,
                 window=50):
        self.rate = rate
        self.frame = frame
        self.target = rate * target_ms // 1000
        self.slack = rate * slack_ms // 1000
        self.limit = rate * limit_ms // 1000
        self.window = window
        self._buf = array.array("h")
        self._lock = threading.Lock()
        self._priming = True
        self._lows: list[int] = []
        self._last = 0
        # figures, for status and the benchmark
        self.dropped = 0
        self.inserted = 0
        self.underruns = 0
        self.overflows = 0
        self.peak = 0

    def __len__(self):
        return len(self._buf)

    @property
    def level_ms(self) -> float:
        return len(self._buf) * 1000.0 / self.rate

    def clear(self):
        with self._lock:
            del self._buf[:]
            self._priming = True
            self._lows.clear()

    def put(self, samples: array.array | bytes):
        if isinstance(samples, (bytes, bytearray)):
            a = array.array("h")
            a.frombytes(samples)
            samples = a
        with self._lock:
            self._buf.extend(samples)
            n = len(self._buf)
            if n > self.limit:
                del self._buf[:n - self.target]
                self.overflows += 1
                self._lows.clear()
            if len(self._buf) > self.peak:
                self.peak = len(self._buf)

    def take(self) -> array.array:
        """One frame of ``frame`` samples, always."""
        f = self.frame
        with self._lock:
            buf = self._buf
            if self._priming:
                if len(buf) < self.target:
                    return array.array("h", bytes(2 * f))
                self._priming = False
            self._lows.append(len(buf))
            if len(self._lows) > self.window:
                del self._lows[0]
            low = min(self._lows)
            n = len(buf)
            if n < f:
                out = buf[:n]
                last = out[-1] if n else self._last
                pad = f - n
                out.extend(int(last * (pad - i) / pad) for i in range(pad))
                del buf[:]
                self.underruns += 1
                self._priming = True
                self._lows.clear()
                self._last = 0
                return out
            if len(self._lows) >= self.window // 2 and low > self.target + self.slack \
                    and n > f + 1:
                # too much standing delay: this frame skips one sample (in its middle)
                out = buf[:f + 1]
                del out[f // 2]
                del buf[:f + 1]
                self.dropped += 1
                self._lows = [x - 1 for x in self._lows]
            elif low < self.target:
                # too little margin: this frame repeats one sample. Decided on the window's
                # lowest level, as drops are, not on this take's: writers deliver whole
                # frames (the bridge into tx, the serial thread's ~20 ms reads into rx), so
                # the level at a take swings by up to a frame with the writer's phase, and
                # jumps down a whole frame each time the clocks slip a frame apart (every
                # 20 s at 0.1 %). The minimum is the margin left before an underrun; kept
                # at two frames (target), a slip still leaves a whole frame to take while
                # the inserts win it back. (Held at 30 ms by this take's level, as before,
                # the draining side underran at every slip.)
                out = buf[:f - 1]
                out.insert(f // 2, out[f // 2 - 1])
                del buf[:f - 1]
                self.inserted += 1
                self._lows = [x + 1 for x in self._lows]
            else:
                out = buf[:f]
                del buf[:f]
            self._last = out[-1]
            return out

    def take_bytes(self) -> bytes:
        return self.take().tobytes()

    def stats(self) -> dict:
        return {"level_ms": round(self.level_ms, 1), "peak_ms": round(self.peak * 1000 / self.rate, 1),
                "dropped": self.dropped, "inserted": self.inserted, "underruns": self.underruns,
                "overflows": self.overflows}
