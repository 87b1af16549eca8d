"""A small ESC/POS encoder for the slip printer (Epson TM-T20/TM-T88 class).

Only the commands a statement needs: initialise, code page PC858 (which has
the euro sign), bold, centre, double size, feed and a partial cut. Text that
the code page cannot show prints as "?" rather than stopping the printer.
"""

from __future__ import annotations

import textwrap

ESC, GS = b"\x1b", b"\x1d"
INIT = ESC + b"@"
CODEPAGE_PC858 = ESC + b"t\x13"      # ESC t 19: PC858 (multilingual + euro)
ENCODING = "cp858"
ALIGN = {"left": 0, "center": 1, "right": 2}


class Document:
    """Builds the bytes of one print job, line by line."""

    def __init__(self, width: int = 42):
        self.width = width
        self._out = bytearray(INIT + CODEPAGE_PC858)

    def _text(self, text: str) -> bytes:
        return text.encode(ENCODING, errors="replace")

    def line(self, text: str = "", *, bold=False, align="left", double=False):
        o = self._out
        if align != "left":
            o += ESC + b"a" + bytes([ALIGN[align]])
        if bold:
            o += ESC + b"E\x01"
        if double:
            o += GS + b"!\x11"
        o += self._text(text) + b"\n"
        if double:
            o += GS + b"!\x00"
        if bold:
            o += ESC + b"E\x00"
        if align != "left":
            o += ESC + b"a\x00"
        return self

    def wrapped(self, text: str, **kw):
        for part in textwrap.wrap(text, self.width) or [""]:
            self.line(part, **kw)
        return self

    def feed(self, n: int = 1):
        self._out += ESC + b"d" + bytes([max(0, min(255, n))])
        return self

    def cut(self):
        self._out += GS + b"V\x01"     # partial cut
        return self

    def bytes(self) -> bytes:
        return bytes(self._out)
