"""A sound card for tests: ALSA `file`-plugin headsets whose clock is this module.

`FakeCard(home, ["hs1", "hs2"], rate=16000)` writes `home/.asoundrc` defining
one ALSA device per name (listed by PortAudio through its `hint`), each a
microphone and an earpiece. Point `HOME` at `home` for the process under test
(`card.env()`), start the card (a context manager), and it behaves like a
sound card running at `rate`:

- earpiece: playback goes through a `file` plugin (slave `null`) into a FIFO
  that the card drains at the sample rate, keeping what was played:
  `card.ear(name, since=t)` (16-bit mono), `card.ear_timed(name)` with each
  chunk stamped with the time ALSA wrote it;
- microphone: capture reads its samples from the FIFO `infile`, which the
  card keeps LEAD_S ahead with what `card.say(name, pcm)` queued (16-bit mono
  at `rate`; silence otherwise); `card.mic_log(name)` says when it was heard.

Why FIFOs and a clock thread: ALSA's `null` device keeps no time, so a
stream on a bare file-plugin device runs thousands of times faster than real
time. Here the playback side is paced by the earpiece FIFO and the capture
side by its own `file` output (a second FIFO, drained at the sample rate). A
`plug` layer in front fixes the raw format whatever the client asks for.
Open the streams at the card's own rate and as 16-bit mono: with any ALSA
conversion in the capture path the file plugin reads `infile` unevenly and
the microphone comes out chopped (alsa-lib 1.2.8); playback converts cleanly.
The capture clock moves in steps of one pipe page (4 KiB: 128 ms at 16 kHz,
43 ms at 48 kHz), so capture arrives in bursts of periods: a real card's
is smoother, and delays measured here are on the high side.

Measuring: `tone_level` / `best_tone` (Goertzel energy at 1 kHz over 50 ms
blocks), `purity`, `rms`, `window`.
"""

from __future__ import annotations

import array
import bisect
import fcntl
import math
import os
import select
import termios
import threading
import time
from pathlib import Path

F_SETPIPE_SZ = 1031
LEAD_S = 0.3  # how far the microphone FIFO is kept ahead of the card: more than a burst of reads
DEBT_S = 0.1  # how far a writer may fall behind the card's clock and catch up


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> bytes:
    """16-bit mono PCM of a sine tone."""
    n = int(seconds * rate)
    peak = amplitude * 32767
    return array.array("h", (int(peak * math.sin(2 * math.pi * freq * i / rate))
                             for i in range(n))).tobytes()


def samples(pcm: bytes) -> array.array:
    a = array.array("h")
    a.frombytes(pcm[: len(pcm) // 2 * 2])
    return a


def goertzel_power(x, rate: int, freq: float) -> float:
    """Mean power of `x` at `freq` (a full-scale sine gives about 0.25 * 32767**2 * amplitude**2)."""
    n = len(x)
    if n == 0:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return 2 * power / (n * n)  # = amplitude**2 / 2 for a pure sine of that amplitude


def rms(x) -> float:
    return math.sqrt(sum(v * v for v in x) / len(x)) if len(x) else 0.0


def _blocks(pcm: bytes, rate: int, block_s: float):
    x = samples(pcm)
    n = max(1, int(rate * block_s))
    return [x[i:i + n] for i in range(0, len(x) - n + 1, n)] or [x]


def tone_power(pcm: bytes, rate: int, freq: float = 1000.0, block_s: float = 0.05) -> float:
    """Mean power at `freq`, averaged over short blocks.

    Short blocks, because over a long one a single phase step (a frame dropped
    or repeated where two clocks meet) makes the halves cancel; energy per
    block is what an ear, or a level meter, sees.
    """
    blocks = _blocks(pcm, rate, block_s)
    return sum(goertzel_power(b, rate, freq) for b in blocks) / len(blocks)


def tone_level(pcm: bytes, rate: int, freq: float = 1000.0) -> float:
    """Amplitude (in sample units) of the `freq` component: 0.5 full scale -> about 16384."""
    return math.sqrt(tone_power(pcm, rate, freq) * 2)


def _fifo_bytes(fd: int) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


# What travels through the earpiece FIFO: wide frames (the same 16-bit sample on 8
# channels), so that a pipe's smallest size (one 4 KiB page) is only 256 frames
# (16 ms at 16 kHz). With 2-byte frames the page holds 128 ms and the file plugin
# writes in bursts of six 20 ms periods: no model of a sound card.
# The microphone side stays 16-bit mono: ALSA's plug converting anything in front of
# a capturing file plugin makes it read `infile` unevenly (the signal comes out
# chopped and fast, alsa-lib 1.2.8), so capture is opened at the card's own format
# and rate, and is paced in coarser steps (bursts of periods, as the rings allow).
EAR_FORMAT, EAR_CHANNELS = "S16_LE", 8
EAR_FRAME = 2 * EAR_CHANNELS
MIC_FRAME = 2


def _to_wide(pcm: bytes) -> bytes:
    mono = samples(pcm)
    out = array.array("h", bytes(len(mono) * EAR_FRAME))
    for c in range(EAR_CHANNELS):
        out[c::EAR_CHANNELS] = mono
    return out.tobytes()


def _from_wide(raw: bytes) -> bytes:
    return samples(raw)[0::EAR_CHANNELS].tobytes()


class _Headset:
    def __init__(self, folder: Path, name: str, rate: int):
        self.name = name
        self.rate = rate
        self.ear_path = folder / f"{name}.ear"
        self.clk_path = folder / f"{name}.clk"
        self.mic_path = folder / f"{name}.mic"
        for p in (self.ear_path, self.clk_path, self.mic_path):
            os.mkfifo(p)
        # earpiece, as 16-bit mono: (time the card played it, byte offset, pcm)
        self.ear_chunks: list[tuple[float, int, bytes]] = []
        self.ear_queued: list[int] = []  # frames in the earpiece FIFO ahead of each chunk
        self.ear_bytes = 0
        self.ear_carry = b""  # a read may end inside a frame
        self.mic_queue = bytearray()  # 16-bit mono still to say
        self.mic_log: list[tuple[float, int]] = []  # (when the card reads it, offset into said)
        self.said = 0  # bytes of queued speech written so far
        self.mic_written = 0  # bytes (speech and silence) written into the microphone FIFO
        self.mic_at: list[int] = []  # offset into that stream of each mic_log chunk
        self.mic_taken: list[tuple[float, int]] = []  # (time, bytes ALSA had read by then)
        self.lock = threading.Lock()
        self.fds = {}

    def asoundrc(self) -> str:
        ear = f"format {EAR_FORMAT} channels {EAR_CHANNELS} rate {self.rate}"
        mic = f"format S16_LE channels 1 rate {self.rate}"
        return f"""
pcm.{self.name} {{
    type asym
    playback.pcm {{
        type plug
        slave {{ pcm {{ type file slave.pcm "null" file "{self.ear_path}" format "raw" }} {ear} }}
    }}
    capture.pcm {{
        type plug
        slave {{ pcm {{ type file slave.pcm "null" file "{self.clk_path}"
                      infile "{self.mic_path}" format "raw" }} {mic} }}
    }}
    hint {{ show on description "test headset {self.name}" }}
}}
"""

    def open(self):
        # O_RDWR: never blocks and never sees end-of-file, whoever opens the other end
        for key, path, size in (("ear", self.ear_path, 4096), ("clk", self.clk_path, 4096),
                                ("mic", self.mic_path, 65536)):
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
            fcntl.fcntl(fd, F_SETPIPE_SZ, size)
            self.fds[key] = fd

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def drain(self, key: str, want: int, now: float) -> int:
        """Read up to `want` bytes from a FIFO, as a card plays them."""
        fd = self.fds[key]
        got = 0
        queued = _fifo_bytes(fd)
        while got < want:
            try:
                b = os.read(fd, min(want - got, 65536))
            except BlockingIOError:
                break
            if not b:
                break
            got += len(b)
            if key == "ear":
                raw = self.ear_carry + b
                whole = len(raw) // EAR_FRAME * EAR_FRAME
                self.ear_carry = raw[whole:]
                pcm = _from_wide(raw[:whole])
                with self.lock:
                    self.ear_chunks.append((now, self.ear_bytes, pcm))
                    self.ear_queued.append((queued - got) // EAR_FRAME)
                    self.ear_bytes += len(pcm)
        return got

    def feed(self, now: float) -> None:
        """Keep the microphone FIFO LEAD_S ahead with queued speech, else silence.

        Writes of at most PIPE_BUF bytes are atomic (all or nothing), so the
        stream never gets part of a frame.
        """
        fd = self.fds["mic"]
        taken = self.mic_written - _fifo_bytes(fd)
        if not self.mic_taken or self.mic_taken[-1][1] != taken:
            with self.lock:
                self.mic_taken.append((now, taken))
        want = int(LEAD_S * self.rate) * MIC_FRAME - _fifo_bytes(fd)
        while want >= MIC_FRAME:
            n = min(want, select.PIPE_BUF) // MIC_FRAME * MIC_FRAME
            with self.lock:
                speech = bytes(self.mic_queue[:n])
            ahead = _fifo_bytes(fd) // MIC_FRAME  # frames the card reads before this chunk
            try:
                os.write(fd, speech + bytes(n - len(speech)))
            except BlockingIOError:
                return
            want -= n
            self.mic_written += n
            if speech:
                with self.lock:
                    self.mic_log.append((now + ahead / self.rate, self.said))
                    self.mic_at.append(self.mic_written - n)
                    del self.mic_queue[:len(speech)]
                    self.said += len(speech)


class FakeCard:
    """ALSA headsets for a process under test; run it as a context manager."""

    def __init__(self, home: Path, names, rate: int = 16000):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.rate = rate
        self.headsets = {n: _Headset(self.home, n, rate) for n in names}
        (self.home / ".asoundrc").write_text(
            "# written by tests/alsa_fixture.py: file-plugin headsets paced by FIFOs\n"
            + "".join(h.asoundrc() for h in self.headsets.values()))
        self._stop = threading.Event()
        self._thread = None

    def env(self) -> dict:
        return {"HOME": str(self.home)}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        for h in self.headsets.values():
            h.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fake-card", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        for h in self.headsets.values():
            h.close()

    def _run(self):
        t0 = time.monotonic()
        frame = {"ear": EAR_FRAME, "clk": MIC_FRAME}
        done = {n: {"ear": 0, "clk": 0} for n in self.headsets}
        debt = int(DEBT_S * self.rate)
        while not self._stop.is_set():
            time.sleep(0.002)
            now = time.monotonic()
            due = int((now - t0) * self.rate)  # frames the card has played / recorded
            for name, h in self.headsets.items():
                for key in ("ear", "clk"):
                    want = due * frame[key] - done[name][key]
                    got = h.drain(key, want, now)
                    # owe a late writer at most DEBT_S: a stream that stopped builds no debt
                    done[name][key] = max(done[name][key] + got, (due - debt) * frame[key])
                h.feed(now)

    # -- what the tests use -------------------------------------------------

    def say(self, name: str, pcm: bytes) -> float:
        """Queue `pcm` (16-bit mono at the card's rate) for the microphone; returns now."""
        h = self.headsets[name]
        with h.lock:
            h.mic_queue.extend(pcm)
        return time.monotonic()

    def mic_pending(self, name: str) -> int:
        h = self.headsets[name]
        with h.lock:
            return len(h.mic_queue)

    def ear(self, name: str, since: float = 0.0) -> bytes:
        """Everything the earpiece played (at or after monotonic time `since`)."""
        h = self.headsets[name]
        with h.lock:
            chunks = [(o, b) for t, o, b in h.ear_chunks if t >= since]
        if not chunks:
            return b""
        pcm = b"".join(b for o, b in chunks)
        return pcm[chunks[0][0] % 2:]  # a read may split a sample: stay on sample boundaries

    def ear_chunks(self, name: str):
        h = self.headsets[name]
        with h.lock:
            return list(h.ear_chunks)

    def ear_timed(self, name: str):
        """[(time the card took each chunk from ALSA, pcm)]: the FIFO's fill is subtracted,
        so a sample is stamped when the ALSA file plugin wrote it (where a real card's
        buffer would be), not when this card got round to reading it."""
        h = self.headsets[name]
        with h.lock:
            return [(t - q / self.rate, b) for (t, o, b), q in zip(h.ear_chunks, h.ear_queued)]

    def mic_log(self, name: str):
        h = self.headsets[name]
        with h.lock:
            return list(h.mic_log)

    def mic_taken_at(self, name: str, said: int) -> float | None:
        """When ALSA had read byte `said` of what was said (to a poll, 2 ms), or None.

        The card's own capture steps: `mic_log` stamps speech as if read at the
        sample rate, while the file plugin reads it a pipe page at a time."""
        h = self.headsets[name]
        with h.lock:
            k = bisect.bisect_right([o for _, o in h.mic_log], said) - 1
            if k < 0:
                return None
            at = h.mic_at[k] + (said - h.mic_log[k][1])
            return next((t for t, taken in h.mic_taken if taken > at), None)


def purity(pcm: bytes, rate: int, freq: float = 1000.0) -> float:
    """Share of the signal's power at `freq` (1.0: a clean tone; glitches and noise lower it)."""
    x = samples(pcm)
    ms = sum(v * v for v in x) / len(x) if len(x) else 0.0
    return tone_power(pcm, rate, freq) / ms if ms else 0.0


def window(pcm: bytes, rate: int, start_s: float, seconds: float) -> bytes:
    """`seconds` of 16-bit mono PCM starting `start_s` in (whole 10 ms blocks)."""
    block = rate // 100 * 2
    a = int(start_s * 100) * block
    return pcm[a: a + int(seconds * 100) * block]


def best_tone(pcm: bytes, rate: int, seconds: float = 1.0, freq: float = 1000.0,
              block_s: float = 0.05) -> tuple[float, float, float]:
    """The loudest `seconds` of tone in `pcm`: (level, purity, start in seconds).

    For checking that a tone arrived whole without pinning down exactly when:
    the delay through the path varies with load, the level and cleanliness
    must not.
    """
    blocks = _blocks(pcm, rate, block_s)
    tone_p = [goertzel_power(b, rate, freq) for b in blocks]
    total_p = [sum(v * v for v in b) / len(b) if len(b) else 0.0 for b in blocks]
    n = max(1, int(round(seconds / block_s)))
    if len(blocks) < n:
        return 0.0, 0.0, 0.0
    best = max(range(len(blocks) - n + 1), key=lambda i: sum(tone_p[i:i + n]))
    tp, ap = sum(tone_p[best:best + n]) / n, sum(total_p[best:best + n]) / n
    return math.sqrt(2 * tp), (tp / ap if ap else 0.0), best * block_s
