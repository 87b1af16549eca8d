"""The DLE-shielded stream of a voice modem in V.253 voice mode.

Between ``AT+VTR`` (or ``+VRX``/``+VTX``) and its end, every byte is audio except the
data-link escape, ``DLE`` (0x10), which introduces a two-byte code:

- host to modem (``escape``): a 0x10 sample byte is sent doubled, ``DLE DLE``; the host's
  own codes are ``DLE ^`` (leave full duplex) and ``DLE !`` / ``DLE ETX`` (end transmit);
- modem to host (``Decoder``): ``DLE DLE`` is one 0x10 sample, ``DLE SUB`` two of them,
  ``DLE ETX`` the end of the stream, and any other ``DLE x`` an event: ``b`` busy, ``d``
  dial tone, ``s`` silence, ``q`` quiet, ``l`` loop-current break, ``R`` ring (Conexant in
  ``+FCLASS=8``), ``H`` (USRobotics, after ``+VLS=1``), and DTMF as ``/ digit ~``.

A DLE can end one read and its code begin the next: the decoder carries it over.
"""

from __future__ import annotations

DLE = 0x10
ETX = 0x03
SUB = 0x1A
END = "end"                       # the event a DLE ETX decodes to
DTMF_DIGITS = frozenset("0123456789*#ABCD")

#: Leave full-duplex voice (the modem answers DLE ETX, then OK).
ABORT_DUPLEX = bytes((DLE, ord("^")))
#: End a transmit-only stream.
END_STREAM = bytes((DLE, ETX))


def escape(samples: bytes) -> bytes:
    """Audio bytes as sent to the modem: every 0x10 doubled."""
    return samples.replace(b"\x10", b"\x10\x10")


class Decoder:
    """Splits what the modem sends into audio bytes and events, across any read boundary.

    ``feed(data)`` returns ``(audio, events)``: the sample bytes in order and the events
    in order (``"b"``, ``"d"``, ..., ``END`` for DLE ETX; a DTMF digit as ``"dtmf:5"``).
    After ``END`` nothing more is decoded: the rest is text (``OK``), kept in ``rest``.
    """

    def __init__(self):
        self._dle = False             # the last byte fed was an unpaired DLE
        self._in_dtmf = False         # between DLE / and DLE ~ (V.253's shielded DTMF)
        self.ended = False            # DLE ETX seen: what follows is text again
        self.rest = b""               # the bytes after DLE ETX in the read that held it

    def reset(self):
        self._dle = False
        self._in_dtmf = False
        self.ended = False
        self.rest = b""

    def feed(self, data: bytes) -> tuple[bytes, list[str]]:
        if self.ended:
            self.rest += data
            return b"", []
        if not self._dle and DLE not in data:
            return data, []
        audio = bytearray()
        events: list[str] = []
        i = 0
        n = len(data)
        if self._dle and n:
            self._dle = False
            self._code(data[0], audio, events)
            i = 1
        while i < n and not self.ended:
            j = data.find(DLE, i)
            if j < 0:
                audio += data[i:]
                break
            audio += data[i:j]
            if j + 1 >= n:
                self._dle = True
                break
            self._code(data[j + 1], audio, events)
            i = j + 2
        if self.ended:
            self.rest += data[i:]
        return bytes(audio), events

    def _code(self, c: int, audio: bytearray, events: list[str]):
        if c == DLE:
            audio.append(DLE)
        elif c == SUB:
            audio += b"\x10\x10"
        elif c == ETX:
            events.append(END)
            self.ended = True
        else:
            ch = chr(c)
            if ch == "/":
                self._in_dtmf = True
            elif ch == "~":
                self._in_dtmf = False
            elif ch in DTMF_DIGITS:
                events.append("dtmf:" + ch)
            else:
                events.append(ch)
