"""A modem's sample formats to and from 16-bit signed PCM (little-endian, as PJSUA2's L16).

Pure Python tables (``audioop`` is gone from Python 3.13, which Raspberry Pi OS trixie has):
one 256-entry table per 8-bit format for decoding, and one 65536-entry table per format for
encoding, built on first use.
"""

from __future__ import annotations

import array
import sys

FORMATS = ("ulaw", "alaw", "u8", "s8", "s16")
BYTES_PER_SAMPLE = {"ulaw": 1, "alaw": 1, "u8": 1, "s8": 1, "s16": 2}
_BIG = sys.byteorder == "big"


def _ulaw_to_lin(u: int) -> int:
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if u & 0x80 else (t - 0x84)


def _alaw_to_lin(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _lin_to_ulaw(s: int) -> int:
    BIAS, CLIP = 0x84, 32635
    sign = 0x80 if s < 0 else 0
    if s < 0:
        s = -s
    s = min(s, CLIP) + BIAS
    exp = 7
    mask = 0x4000
    while exp > 0 and not s & mask:
        exp -= 1
        mask >>= 1
    mant = (s >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def _lin_to_alaw(s: int) -> int:
    sign = 0x80 if s >= 0 else 0
    if s < 0:
        s = -s - 1
    s = min(s, 32767) >> 3
    if s < 32:
        a = s >> 1
    else:
        seg = 1
        v = s >> 5
        while v > 1 and seg < 7:
            v >>= 1
            seg += 1
        a = (seg << 4) | ((s >> seg) & 0x0F)
    return (a | sign) ^ 0x55


_DEC: dict[str, array.array] = {}
_ENC: dict[str, bytes] = {}


def _dec_table(fmt: str) -> array.array:
    t = _DEC.get(fmt)
    if t is None:
        f = {"ulaw": _ulaw_to_lin, "alaw": _alaw_to_lin,
             "u8": lambda b: (b - 128) << 8, "s8": lambda b: (b - 256 if b > 127 else b) << 8}[fmt]
        t = _DEC[fmt] = array.array("h", (f(b) for b in range(256)))
    return t


def _enc_table(fmt: str) -> bytes:
    t = _ENC.get(fmt)
    if t is None:
        f = {"ulaw": _lin_to_ulaw, "alaw": _lin_to_alaw,
             "u8": lambda s: (s >> 8) + 128, "s8": lambda s: (s >> 8) & 0xFF}[fmt]
        # index: the sample's 16 bits as unsigned (0..32767 positive, 32768.. negative)
        t = _ENC[fmt] = bytes(f(i if i < 32768 else i - 65536) for i in range(65536))
    return t


def decode(fmt: str, data: bytes) -> bytes:
    """Modem bytes -> 16-bit little-endian PCM."""
    if fmt == "s16":
        if len(data) % 2:
            raise ValueError("16-bit audio of an odd length")
        return data if not _BIG else _swap(data)
    table = _dec_table(fmt)
    out = array.array("h", (table[b] for b in data))
    if _BIG:
        out.byteswap()
    return out.tobytes()


def encode(fmt: str, pcm: bytes) -> bytes:
    """16-bit little-endian PCM -> modem bytes."""
    if fmt == "s16":
        return pcm if not _BIG else _swap(pcm)
    a = array.array("H")
    a.frombytes(pcm)
    if _BIG:
        a.byteswap()
    table = _enc_table(fmt)
    return bytes(table[s] for s in a)


def _swap(data: bytes) -> bytes:
    a = array.array("h")
    a.frombytes(data)
    a.byteswap()
    return a.tobytes()


def samples(pcm: bytes) -> array.array:
    a = array.array("h")
    a.frombytes(pcm)
    if _BIG:
        a.byteswap()
    return a


def rms(pcm: bytes) -> float:
    a = samples(pcm)
    if not a:
        return 0.0
    return (sum(x * x for x in a) / len(a)) ** 0.5
