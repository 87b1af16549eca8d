"""The burst train the audio benchmarks (audio.py, modem.py) and test_headset.py time delay with.

A train is ``LEAD_S`` of silence, then ``BURSTS`` bursts of 1 kHz, ``ON_S`` on in every
``PERIOD_S``. A burst's delay is from the moment it left one end to its onset at the
other: ``onsets`` finds the onsets in what was heard, ``match`` pairs each sent burst
with the first onset after it (within half a period).
"""

from __future__ import annotations

import bisect
import statistics

from alsa_fixture import samples, tone

LEAD_S, ON_S, PERIOD_S, BURSTS = 0.5, 0.2, 1.0, 5
AMP = 0.5


def burst_train(rate: int) -> bytes:
    pcm = bytearray(int(LEAD_S * rate) * 2)
    for _ in range(BURSTS):
        pcm += tone(1000, ON_S, rate, AMP)
        pcm += bytes(int((PERIOD_S - ON_S) * rate) * 2)
    return bytes(pcm)


def onsets(pcm: bytes, rate: int, threshold: float = 0.25 * AMP * 32767) -> list[float]:
    """Seconds into `pcm` where each burst starts (first sample over the threshold
    after at least 300 ms under it)."""
    x = samples(pcm)
    found, quiet_since = [], -rate
    gap = int(0.3 * rate)
    for i, v in enumerate(x):
        if abs(v) > threshold:
            if i - quiet_since > gap:
                found.append(i / rate)
            quiet_since = i
    return found


def timed_onsets(chunks, rate: int) -> list[float]:
    """Onset times in a stream given as [(time of the chunk's first sample, pcm)]."""
    stream = b"".join(p for _, p in chunks)
    offs, acc = [], 0
    for _, p in chunks:
        offs.append(acc)
        acc += len(p)
    out = []
    for sec in onsets(stream, rate):
        byte = int(round(sec * rate)) * 2
        k = bisect.bisect_right(offs, byte) - 1
        out.append(chunks[k][0] + (byte - offs[k]) / (2 * rate))
    return out


def stamped_onsets(pcm: bytes, rate: int, stamps) -> list[float]:
    """Onset times in a --stamped peer's recording, each timed by the frame it was heard in.
    `stamps` is [[time, first sample], ...] as tests/support/pjsua_peer.py --stamped gives."""
    ends = [s for _, s in stamps[1:]] + [len(pcm) // 2]
    return timed_onsets([(t, pcm[2 * s:2 * e]) for (t, s), e in zip(stamps, ends)], rate)


def stamped_sent(stamps, rate: int) -> list[float]:
    """When each burst of a train left a --stamped player: its frame's stamp plus its place
    in that frame."""
    firsts = [s for _, s in stamps]
    out = []
    for k in range(BURSTS):
        first = int(round((LEAD_S + k * PERIOD_S) * rate))
        i = bisect.bisect_right(firsts, first) - 1
        if i >= 0:
            t, s = stamps[i]
            out.append(t + (first - s) / rate)
    return out


def expected_times(start: float) -> list[float]:
    """When each burst of a train that started at ``start`` left."""
    return [start + LEAD_S + k * PERIOD_S for k in range(BURSTS)]


def match(sent: list[float], got: list[float]) -> list[float]:
    """Delay of each sent burst: the first onset after it, within half a period."""
    out = []
    for s in sent:
        after = [g - s for g in got if 0 <= g - s < PERIOD_S / 2]
        if after:
            out.append(after[0])
    return out


def ms(v):
    return round(v * 1000, 1) if v is not None else None


def summary(vals) -> dict:
    """Delays (s) as n, median, min and max in ms."""
    if not vals:
        return {"n": 0}
    return {"n": len(vals), "median_ms": ms(statistics.median(vals)), "min_ms": ms(min(vals)),
            "max_ms": ms(max(vals))}
