"""One voice modem on a serial port, spoken to in ITU-T V.253 (AT commands, DLE stream).

The driver is synchronous and owned by one thread (the gateway's serial thread): every
method reads and writes the port itself. It knows the vendors' dialects as ``Profile``s:

- ``conexant``: CX93001/CX93010 USB modems (0572:1340, 0572:1329, Dell RD02-D400...):
  mu-law 8 kHz (``+VSM=131``), ``+VTR=?`` answers ERROR although ``+VTR`` works, ring
  reported as ``DLE R`` in ``+FCLASS=8`` (so the line idles in ``+FCLASS=0``), caller ID
  switched on with ``-SCID=1`` too, ``+VSD`` accepted but ignored;
- ``dell``: Dell RD02-D400, a Conexant (the same dialect) whose caller ID stays off until
  ``AT!4886=00``; told apart from other Conexants by ``AT+GMM``;
- ``usr``: USRobotics 5637: 8-bit linear (``+VSM=128``), a spurious ``DLE H`` right after
  ``+VLS=1``;
- ``multitech``: MultiTech MT9234MU: sends no hang-up codes at all (software detection
  is the only way to know the far end hung up);
- ``generic``: plain V.253.

What it does: ``start`` (leave any voice state, reset, set up, identify), ``poll_idle``
(rings and caller ID), ``answer`` / ``dial`` / ``off_hook`` (into full-duplex voice),
``read_stream`` / ``write_stream`` (audio and events), ``release`` (back to idle).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from firmware.errors import SwitchboardError
from firmware.telephony.modem import codec
from firmware.telephony.modem.dle import ABORT_DUPLEX, END_STREAM, Decoder, escape

CR = b"\r"
#: Country codes for ``AT+GCI`` (T.35, hex). A site file may also give the hex code itself.
COUNTRIES = {"US": "B5", "CA": "20", "GB": "B4", "UK": "B4", "DE": "42", "FR": "3D",
             "IT": "59", "ES": "A0", "NL": "7B", "BE": "0F", "CH": "A6", "AT": "0A",
             "SE": "A5", "NO": "82", "DK": "31", "FI": "3C", "IE": "57", "AU": "09",
             "NZ": "7E", "JP": "00", "ZA": "9F", "PT": "8B", "PL": "8A", "MX": "73"}
FINAL_OK = ("OK", "VCON", "CONNECT")
FINAL_FAIL = ("ERROR", "BUSY", "NO DIALTONE", "NO DIAL TONE", "NO ANSWER", "NO CARRIER")
HANGUP_EVENTS = {"b": "busy tone", "d": "dial tone", "l": "loop current lost",
                 "s": "silence"}


class ModemError(SwitchboardError, OSError):
    """The modem did not answer, answered ERROR, or went away."""


class ModemGone(ModemError):
    """The serial device went away (unplugged)."""


@dataclass(frozen=True)
class Profile:
    name: str
    caller_id: str = "+VCID=1"            # the command(s) that switch caller ID on
    caller_id_first: tuple = ()           # sent alone before them (a vendor's own switch)
    # dialling out: "voice" = ATD in voice mode, the call up at VCON; "semicolon" =
    # ATD<number>; in data mode (OK once dialled, still off-hook), then the voice set-up
    dial: str = "voice"
    hangup_codes: bool = True              # sends DLE b / d / l on the far end's hang-up
    ignore_events: frozenset = frozenset()
    formats: tuple = (("ulaw", 131), ("alaw", 130), ("u8", 128), ("u8", 1), ("s8", 0),
                      ("s16", 129))       # fallback codes when +VSM=? names nothing


PROFILES = {
    "conexant": Profile("conexant", caller_id="-SCID=1;+VCID=1;-STE=3", dial="semicolon"),
    # Dell RD02-D400: a Conexant whose caller ID stays off until AT!4886=00 (each start-up)
    "dell": Profile("dell", caller_id="-SCID=1;+VCID=1;-STE=3", caller_id_first=("!4886=00",),
                    dial="semicolon"),
    "usr": Profile("usr", ignore_events=frozenset("H"),
                   formats=(("u8", 128), ("s16", 129))),
    "multitech": Profile("multitech", hangup_codes=False),
    "generic": Profile("generic"),
}


def identify(i0: str, gmi: str, gmm: str = "") -> str:
    """The profile name for what ``ATI0``, ``AT+GMI`` and ``AT+GMM`` said."""
    text = f"{i0} {gmi} {gmm}".lower()
    if "rd02" in text or "dell" in text.split():   # a Conexant inside; +GMM names it
        return "dell"
    if "conexant" in text or "cx930" in text:
        return "conexant"
    if "robotics" in text or "usr" in text.split():
        return "usr"
    if "multi-tech" in text or "multitech" in text or "mt9234" in text:
        return "multitech"
    return "generic"


_VSM_LINE = re.compile(r'^\s*(\d+)\s*,\s*"([^"]*)"\s*,?(.*)$')
_PREFERENCE = ("ulaw", "alaw", "u8", "s8", "s16")   # 16-bit last: the CX93001 underruns


def parse_vsm(lines: list[str]) -> list[tuple[str, int, tuple]]:
    """``AT+VSM=?`` lines -> [(format, code, rates)] for the formats we can decode."""
    out = []
    for ln in lines:
        m = _VSM_LINE.match(ln)
        if not m:
            continue
        code, name, rest = int(m.group(1)), m.group(2).upper().replace("-", " "), m.group(3)
        rates = tuple(int(r) for r in re.findall(r"\d{4,5}", rest))
        if "ULAW" in name or "U LAW" in name or "G.711U" in name or "G711U" in name:
            fmt = "ulaw"
        elif "ALAW" in name or "A LAW" in name or "G.711A" in name or "G711A" in name:
            fmt = "alaw"
        elif "16" in name and ("LINEAR" in name or "PCM" in name):
            fmt = "s16"
        elif "UNSIGNED" in name or ("8 BIT" in name and "LINEAR" in name):
            fmt = "u8"
        elif "SIGNED" in name and "PCM" in name:
            fmt = "s8"
        else:
            continue
        out.append((fmt, code, rates))
    return out


def choose_format(offered, profile: Profile) -> tuple[str, int]:
    """Prefer mu-law at 8000 Hz, then A-law, 8-bit linear, and 16-bit only as a last resort."""
    ok = [(f, c) for f, c, rates in offered if not rates or 8000 in rates]
    for want in _PREFERENCE:
        for f, c in ok:
            if f == want:
                return f, c
    # +VSM=? said nothing we understood: the profile's known codes, in its order
    return profile.formats[0]


_CID_KEYS = {"DATE": "date", "TIME": "time", "NMBR": "number", "NAME": "name",
             "DDN_NMBR": "number", "MESG": "message"}
_CID_LINE = re.compile(r"^\s*(DATE|TIME|NMBR|NAME|DDN_NMBR|MESG)\s*=\s*(.*?)\s*$")
#: Caller ID numbers that say the number was withheld or is unknown.
_CID_ABSENT = {"P": "private", "O": "unavailable", "": "unavailable"}


def parse_cid_line(line: str):
    """``NMBR = 5551234`` -> ("number", "5551234"); None for anything else."""
    m = _CID_LINE.match(line)
    if not m:
        return None
    return _CID_KEYS[m.group(1)], m.group(2)


@dataclass
class CallerId:
    number: str | None = None
    name: str | None = None
    date: str | None = None
    time: str | None = None
    absent: str | None = None          # "private" / "unavailable" when the number is withheld
    fields: dict = field(default_factory=dict)

    def set(self, key, value):
        self.fields[key] = value
        if key == "number":
            if value.upper() in _CID_ABSENT:
                self.absent = _CID_ABSENT[value.upper()]
            else:
                self.number = value
        elif key == "name":
            if value.upper() not in ("P", "O"):
                self.name = value
        elif key in ("date", "time"):
            setattr(self, key, value)

    def public(self) -> dict:
        return {"number": self.number, "name": self.name, "date": self.date,
                "time": self.time, "absent": self.absent}


class Driver:
    """V.253 on one serial port (a pyserial ``Serial``, or anything with read/write)."""

    CID_QUIET_S = 0.4            # a caller ID block is over this long after its last line

    def __init__(self, port, *, profile: str | None = None, country: str | None = None,
                 log=None, clock=time.monotonic):
        self.port = port
        self.want_profile = profile
        self.profile = PROFILES.get(profile or "generic", PROFILES["generic"])
        self.country = country
        self.log = log or (lambda msg: None)
        self.clock = clock
        self._buf = b""                   # text not yet split into lines
        self.decoder = Decoder()
        self.fmt: str | None = None       # the stream's sample format while in voice
        self.identity: dict = {}
        self.in_voice = False
        self.cid: CallerId | None = None
        self._cid_at = 0.0
        self.rings = 0
        self.pending: list[tuple] = []    # events seen while waiting for a command's answer
        self._stream_head = b""           # stream bytes read together with CONNECT
        self._odd = b""                   # half a 16-bit sample carried to the next read
        self.last_final = ""

    # -- bytes and lines ----------------------------------------------
    def _read(self, n: int, timeout: float) -> bytes:
        try:
            self.port.timeout = max(0.0, timeout)   # pyserial reconfigures the tty: EIO if gone
            data = self.port.read(n)
        except Exception as e:               # serial.SerialException, OSError
            raise ModemGone(f"the modem went away: {e}") from e
        return data

    def _write(self, data: bytes):
        try:
            self.port.write(data)
        except Exception as e:
            raise ModemGone(f"the modem went away: {e}") from e

    def readline(self, timeout: float) -> str | None:
        """One text line (result code, caller ID, RING), DLE codes in text taken out."""
        deadline = self.clock() + timeout
        while True:
            for sep in (b"\r\n", b"\n", b"\r"):
                i = self._buf.find(sep)
                if i >= 0:
                    break
            else:
                i = -1
            if i >= 0:
                raw, self._buf = self._buf[:i], self._buf[i:].lstrip(b"\r\n")
                line = self._text_events(raw)
                if line:
                    return line
                continue
            if self._buf.startswith(b"\x10") and len(self._buf) >= 2:
                # DLE codes between lines (Conexant's DLE R, USR's DLE H) without a newline
                line = self._text_events(self._buf[:2])
                self._buf = self._buf[2:]
                if line:
                    return line
                continue
            left = deadline - self.clock()
            if left <= 0:
                return None
            data = self._read(256, min(left, 0.05))
            if data:
                self._buf += data

    def _text_events(self, raw: bytes) -> str:
        """Text with DLE pairs removed: ``DLE R`` becomes a RING line, others are noted."""
        out = bytearray()
        i = 0
        ring = False
        while i < len(raw):
            b = raw[i]
            if b == 0x10 and i + 1 < len(raw):
                ch = chr(raw[i + 1])
                if ch == "R":
                    ring = True
                elif ch not in self.profile.ignore_events:
                    self.log(f"event in text: DLE {ch!r}")
                i += 2
                continue
            if 32 <= b < 127:
                out.append(b)
            i += 1
        text = out.decode("ascii").strip()
        return "RING" if ring and not text else text

    def command(self, cmd: str, timeout: float = 3.0, finals=FINAL_OK) -> list[str]:
        """Send ``AT<cmd>``; return the information lines before the final result code.

        RING and caller ID lines that arrive meanwhile are kept for ``poll_idle``."""
        self._write(("AT" + cmd).encode("ascii") + CR)
        info = []
        deadline = self.clock() + timeout
        while True:
            left = deadline - self.clock()
            line = self.readline(left) if left > 0 else None
            if line is None:
                raise ModemError(f"AT{cmd}: no answer from the modem within {timeout:g} s")
            if line == "AT" + cmd or line.upper() == ("AT" + cmd).upper():
                continue                                  # echo (before ATE0 took effect)
            if line in finals:
                self.last_final = line
                return info
            if line in FINAL_FAIL or line.startswith("+CME ERROR"):
                raise ModemError(f"AT{cmd}: the modem answered {line}")
            if line == "RING" or parse_cid_line(line):
                self.pending.append(("line", line))
                continue
            info.append(line)

    # -- start-up -----------------------------------------------------
    def leave_voice(self):
        """A modem left in a voice state answers with stale stream data: end it."""
        self._write(END_STREAM + ABORT_DUPLEX + CR)
        self._drain(0.3)

    def _drain(self, quiet_s: float, most_s: float = 3.0):
        """Throw away what the modem sends until it is quiet for ``quiet_s``."""
        end = self.clock() + most_s
        while self.clock() < end:
            if not self._read(4096, quiet_s):
                break
        self._buf = b""
        self.decoder.reset()

    def start(self) -> dict:
        """Reset and set the modem up for idle; returns its identity and profile."""
        self.leave_voice()
        try:
            self.command("Z", timeout=3)
        except ModemError as e:
            if isinstance(e, ModemGone):
                raise
            # still streaming, or in data mode: the escape sequence with its guard times
            time.sleep(1.1)
            self._write(b"+++")
            time.sleep(1.1)
            self._drain(0.3)
            self.command("Z", timeout=3)
        time.sleep(0.1)
        self.command("E0")
        self.command("V1")
        if self.country:
            code = COUNTRIES.get(self.country.upper(), self.country)
            self.command(f"+GCI={code}")
        i0 = " ".join(self.command("I0"))
        try:
            gmi = " ".join(self.command("+GMI"))
        except ModemError as e:
            if isinstance(e, ModemGone):
                raise
            gmi = ""
        try:
            gmm = " ".join(self.command("+GMM"))
        except ModemError as e:
            if isinstance(e, ModemGone):
                raise
            gmm = ""
        found = identify(i0, gmi, gmm)
        self.profile = PROFILES[self.want_profile or found]
        self.identity = {"i0": i0, "gmi": gmi, "gmm": gmm, "identified": found,
                         "profile": self.profile.name}
        self.caller_id_on()
        self.command("M0")
        self.in_voice = False
        self.log(f"modem ready: {self.identity}")
        return self.identity

    def caller_id_on(self):
        for cmd in self.profile.caller_id_first:
            try:
                self.command(cmd)
            except ModemError as e:
                if isinstance(e, ModemGone):
                    raise
                self.log(f"caller ID: AT{cmd}: {e}")
        try:
            self.command(self.profile.caller_id)
        except ModemError as e:
            if isinstance(e, ModemGone):
                raise
            self.command("+VCID=1")      # the plain V.253 form, if the vendor's is refused

    # -- idle: rings and caller ID -------------------------------------
    def poll_idle(self, timeout: float) -> list[tuple]:
        """Events while the line idles: ("ring", n), ("cid", CallerId)."""
        out = []
        pending, self.pending = self.pending, []
        lines = [ln for _, ln in pending]
        if not lines:
            ln = self.readline(timeout)
            if ln is not None:
                lines.append(ln)
        for ln in lines:
            kv = parse_cid_line(ln)
            if kv is not None:
                if self.cid is None:
                    self.cid = CallerId()
                self.cid.set(*kv)
                self._cid_at = self.clock()
                continue
            if ln == "RING":
                if self.cid is not None:
                    out.append(self._cid_done())
                self.rings += 1
                out.append(("ring", self.rings))
        if self.cid is not None and self.clock() - self._cid_at > self.CID_QUIET_S:
            out.append(self._cid_done())
        return out

    def _cid_done(self):
        cid, self.cid = self.cid, None
        return ("cid", cid)

    def reset_rings(self):
        self.rings = 0
        self.cid = None

    # -- into voice -----------------------------------------------------
    def _voice_setup(self):
        self.pending = []
        self.command("+FCLASS=8")
        offered = parse_vsm(self.command("+VSM=?"))
        fmt, code = choose_format(offered, self.profile)
        self.command(f"+VSM={code},8000")
        self.fmt = fmt
        try:
            self.command("+VSD=128,0")     # the modem's own silence detection off: ours decides
        except ModemError as e:
            if isinstance(e, ModemGone):
                raise
        self.command("+VIT=0")

    def _duplex(self):
        self.command("+VTR", timeout=5, finals=("CONNECT", "OK"))
        self.decoder.reset()
        self._odd = b""
        self.in_voice = True
        # text already read past CONNECT is stream data
        rest, self._buf = self._buf, b""
        self._stream_head = rest

    def answer(self) -> str:
        """Take the ringing line off-hook in full-duplex voice; returns the sample format."""
        self._voice_setup()
        self.command("+VLS=1", finals=("OK", "VCON"))
        self._duplex()
        return self.fmt

    def off_hook(self) -> str:
        """Off-hook with no call (the trunk test): dial tone should follow."""
        return self.answer()

    def dial(self, number: str, timeout: float = 60.0) -> str:
        """Dial out, the profile's way, into full-duplex voice; returns the sample format.

        ``voice``: the voice set-up, then ``ATDT<number>``, the call up at ``VCON``.
        ``semicolon``: ``ATDT<number>;`` in data mode (``OK`` once dialled, the line still
        off-hook), then the voice set-up and ``+VLS=1``. ``BUSY``, ``NO DIALTONE``, ``NO
        ANSWER``, ``NO CARRIER`` raise ``ModemError`` either way."""
        if not re.fullmatch(r"[0-9*#,WwPpTt+]{1,40}", number):
            raise ModemError(f"cannot dial {number!r}: digits, * # and , only")
        if self.profile.dial == "semicolon":
            self.pending = []
            self.command(f"DT{number};", timeout=timeout, finals=("OK",))
            self._voice_setup()
            self.command("+VLS=1", finals=("OK", "VCON"))
        else:
            self._voice_setup()
            self.command(f"DT{number}", timeout=timeout, finals=("VCON", "OK", "CONNECT"))
        self._duplex()
        return self.fmt

    def send_dtmf(self, digits: str) -> None:
        """DTMF down the line with ``+VTS`` (the modem's own generator, not tones in the
        audio): out of duplex for it (``DLE ^``), then back into ``+VTR``."""
        digits = "".join(d for d in digits.upper() if d in "0123456789*#ABCD")
        if not digits or not self.in_voice:
            return
        self._leave_duplex()
        try:
            self.command("+VTS=" + ",".join(digits), timeout=2.0 + 0.3 * len(digits))
        finally:
            self._duplex()

    # -- the stream ----------------------------------------------------
    def read_stream(self, n: int, timeout: float) -> tuple[bytes, list[str]]:
        """Up to ``n`` modem bytes as 16-bit PCM, and the events among them."""
        head = self._stream_head
        if head:
            self._stream_head = b""
            data = head
        else:
            data = self._read(n, timeout)
        audio, events = self.decoder.feed(data)
        events = [e for e in events if e not in self.profile.ignore_events]
        if self.fmt == "s16":              # a read may end half-way through a sample
            audio = self._odd + audio
            cut = len(audio) // 2 * 2
            audio, self._odd = audio[:cut], audio[cut:]
        return codec.decode(self.fmt, audio), events

    def write_stream(self, pcm: bytes):
        self._write(escape(codec.encode(self.fmt, pcm)))

    def _leave_duplex(self):
        """Out of full duplex, still off-hook: ``DLE ^``, then ``DLE ETX`` and ``OK``."""
        try:
            self.port.reset_output_buffer()
        except Exception:
            pass
        self._write(ABORT_DUPLEX)
        deadline = self.clock() + 2.0
        while not self.decoder.ended and self.clock() < deadline:
            self.read_stream(4096, 0.05)
        self._buf = self.decoder.rest
        self.decoder.reset()
        self.in_voice = False
        line = ""
        while line is not None and line != "OK":
            line = self.readline(max(0.0, deadline - self.clock()))

    def release(self):
        """Back on-hook and idle: leave duplex, wait for DLE ETX and OK, hang up, re-arm."""
        if self.in_voice:
            self._leave_duplex()
        for cmd in ("+VLS=0", "H", "+FCLASS=0"):
            try:
                self.command(cmd)
            except ModemError as e:
                if isinstance(e, ModemGone):
                    raise
                self.log(f"release: {e}")
        self.caller_id_on()            # some units lose it
        self.fmt = None
        self.reset_rings()
        self.pending = []              # rings reported while answering (Conexant's DLE R) are stale
