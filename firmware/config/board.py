"""Board files: how one physical switchboard is laid out and wired.

A board file is TOML (see ``boards/*.toml``). It names the customer and
office lines, the positions' keys, the switches and lamps, and where each is
wired: a GPIO pin on the Pi's 40-pin header, or a bit of a 74HC165 (keys) or
74HC595 (lamps) shift-register chain.

A wire is written as a pin with Klipper-style modifiers::

    "^!GPIO17"   internal pull-up, active low (key to ground)
    "~GPIO17"    internal pull-down, active high (key to 3V3)
    "!GPIO17"    external resistor, active low
    "GPIO22"     active high (lamp driver input)
    "!keys:12"   bit 12 of the chain named "keys", active low

A chain may carry ``clock_hz`` (the bit-bang clock rate, or the SPI speed);
a 74HC165 chain ``marker_bits = 8`` and ``marker = 0xA5`` (a marker chip at
its far end, strapped to that pattern); a 74HC595 chain ``loopback`` (the GPIO
the last chip's QH' comes back on); any chain ``chips_per_board`` (how many
chips each perfboard carries: the hardware check and the BOM count buffers,
fuses and cables per board from it). ``[board] driver`` is ``"bitbang"`` or
``"spi"`` (SPI0: the chains' data and clock on SPI0's pins, CE0 the latch);
``[lamps] oe`` is the 74HC595s' output enable on a PWM-capable pin (the
daemon drives it with gpiozero's PWM, which is lgpio's software-timed PWM on
a Pi: no kernel PWM overlay), with ``brightness`` (its duty) and
``soft_start_ms``. See hardware/BLOCKS.md.

Pins may be named as gpiozero names them (``GPIO17``, ``BCM17``, ``BOARD11``,
``J8:11``). Everything is checked before the daemon starts: an unknown key, a
pin the header does not have, a power pin, or one pin used twice is refused
with the file, the key path, the value and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from firmware.config.toml import TableChecker, read_toml
from firmware.config.shipped import shipped_dir
from firmware.errors import ConfigError

#: The dial pad's keys, in the order of a telephone keypad.
DIAL_DIGITS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
#: Digits as they appear in key names (``p1-dial-star``).
DIGIT_NAMES = {"*": "star", "#": "hash"}

CHAIN_TYPES = {
    "74HC165": ("keys", ("load", "clock", "data")),
    "74HC595": ("lamps", ("data", "clock", "latch")),
}
#: Optional pins of a chain, by type: the last 74HC595's QH' wired back to a GPIO.
CHAIN_OPTIONAL_PINS = {"74HC165": (), "74HC595": ("loopback",)}
#: The chain drivers: bit-banged GPIO, or SPI0 (one full-duplex transfer per scan).
DRIVERS = ("bitbang", "spi")
#: With driver = "spi" these roles sit on SPI0's pins (CE0 latches the 74HC595s).
SPI0_PINS = {("74HC165", "data"): "GPIO9", ("74HC165", "clock"): "GPIO11",
             ("74HC595", "data"): "GPIO10", ("74HC595", "clock"): "GPIO11",
             ("74HC595", "latch"): "GPIO8"}
#: Header pins with a hardware PWM channel. The 74HC595s' OE must be on one: the daemon
#: drives it with lgpio's software-timed PWM (gpiozero's PWMOutputDevice), which needs no
#: overlay and any pin would do, but a PWM-capable pin lets a kernel-PWM driver take it over
#: without rewiring the board.
PWM_PINS = {"GPIO12": "PWM0", "GPIO18": "PWM0", "GPIO13": "PWM1", "GPIO19": "PWM1"}

_WIRE_RE = re.compile(r"^(?P<mods>[\^~!]*)(?P<target>[A-Za-z0-9_:]+)$")
_CHAIN_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_NUMBER_RE = re.compile(r"^[0-9]{1,15}$")


@dataclass(frozen=True)
class Wire:
    """Where one key or lamp is wired."""

    text: str                 # as written in the board file
    pin: str | None = None    # canonical GPIO name, e.g. "GPIO17"
    board_pin: int | None = None  # physical pin number on the J8 header
    chain: str | None = None
    bit: int | None = None
    pull: str | None = None   # "up", "down" or None (external resistor)
    active_low: bool = False

    @property
    def where(self) -> str:
        if self.chain is not None:
            return f"{self.chain}:{self.bit}"
        return f"{self.pin} (header pin {self.board_pin})"


@dataclass(frozen=True)
class Key:
    name: str
    wire: Wire
    role: str                 # line, hold, release, stamp, dial, secrecy, split
    keypath: str
    position: int | None = None
    line: str | None = None
    digit: str | None = None

    @property
    def latching(self) -> bool:
        """Switches stay where they are put; momentary keys spring back."""
        return self.role in ("secrecy", "split")


@dataclass(frozen=True)
class Lamp:
    name: str
    wire: Wire
    role: str                 # line, message, fault
    keypath: str
    line: str | None = None


@dataclass(frozen=True)
class Line:
    number: str
    label: str
    kind: str                 # "customer" or "office"
    half: int
    key: str                  # key name
    lamp: str                 # lamp name
    message_lamp: str | None  # lamp name, customer lines only


@dataclass(frozen=True)
class Chain:
    name: str
    type: str                 # "74HC165" or "74HC595"
    pins: dict                # role -> canonical GPIO name
    chips: int
    settle_us: int
    clock_hz: int | None = None   # bit-bang clock rate (or SPI speed); None: as fast as it goes
    marker_bits: int = 0          # 74HC165: a far marker chip strapped to ``marker``
    marker: int = 0xA5            # its inputs A..H, bit 0 = A (1 = tied to 3V3)
    chips_per_board: int | None = None  # how the chips are split over boards (None: one board)

    @property
    def boards(self) -> int:
        """Perfboards the chain is built on (the marker chip included)."""
        chips = self.chips + (1 if self.marker_bits else 0)
        per = self.chips_per_board or chips
        return -(-chips // per)

    @property
    def bits(self) -> int:
        """The chain's key or lamp bits (the marker chip's are not counted)."""
        return self.chips * 8

    @property
    def carries(self) -> str:
        return CHAIN_TYPES[self.type][0]


@dataclass(frozen=True)
class Board:
    path: Path
    name: str
    title: str
    positions: int
    lines: tuple[Line, ...]
    keys: dict[str, Key]
    lamps: dict[str, Lamp]
    chains: dict[str, Chain]
    debounce_ms: float = 20.0
    scan_ms: float = 10.0
    ring_seconds: float = 6.0
    hold_recall_s: float = 60.0
    description: str = ""
    driver: str = "bitbang"       # "bitbang" or "spi" (SPI0)
    oe: str | None = None         # the 74HC595s' OE, on a PWM-capable pin (active low)
    brightness: float = 1.0       # lamp duty on OE, 0.05-1.0
    soft_start_ms: int = 0        # OE duty ramps up over this when the lamps are enabled
    line_by_number: dict[str, Line] = field(default_factory=dict)

    def line(self, number: str) -> Line:
        return self.line_by_number[number]


def key_name_for_digit(position: int, digit: str) -> str:
    return f"p{position}-dial-{DIGIT_NAMES.get(digit, digit)}"


def boards_dir() -> Path:
    """Where shipped board files live: the source tree, or the installed share dir."""
    return shipped_dir("boards")


def shipped_boards() -> list[Path]:
    # Site files (*.site.toml) sit beside the board files but are not boards.
    return sorted(b for b in boards_dir().glob("*.toml") if not b.name.endswith(".site.toml"))


def find_board(name_or_path: str) -> Path:
    """A path to a board file, or the name of a shipped one ("desk", "tas100")."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists() or "/" in name_or_path:
        return p
    candidate = boards_dir() / f"{name_or_path}.toml"
    if candidate.exists():
        return candidate
    names = ", ".join(b.stem for b in shipped_boards()) or "none found"
    raise ConfigError(name_or_path, "", None, None,
                      message=f"no board named {name_or_path!r}: "
                      f"expected a path to a .toml board file or one of: {names}")


def load_board(path) -> Board:
    """Read and check a board file; raise ConfigError naming what is wrong."""
    path = Path(path)
    text, data = read_toml(path, "board file")
    return _Loader(path, data, _header(text)).load()


def _header(text: str) -> str:
    """The prose comment block at the top of the file."""
    lines = []
    for raw in text.splitlines():
        if not raw.startswith("#"):
            break
        lines.append(raw[1:].strip())
    return "\n".join(lines).strip()


def _board_info():
    # gpiozero's own header data: the same table the real pin factory uses.
    from gpiozero.pins.mock import MockFactory
    return MockFactory(revision="c03114").board_info  # a Pi 4 B's 40-pin J8


class _Loader(TableChecker):
    def __init__(self, path: Path, data: dict, description: str):
        super().__init__(path)
        self.data = data
        self.description = description
        self.users: dict[object, str] = {}   # pin or (chain, bit) -> key path
        self.keys: dict[str, Key] = {}
        self.lamps: dict[str, Lamp] = {}
        self.chains: dict[str, Chain] = {}
        self.header = _board_info()

    # -- helpers -------------------------------------------------------
    def number(self, data, key, keypath, default, lo, hi, kind=float):
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (kind is int and not isinstance(value, int)) or not lo <= value <= hi:
            what = "a whole number" if kind is int else "a number"
            self.fail(f"{keypath}.{key}", value, f"{what} from {lo} to {hi}")
        return kind(value)

    def string(self, data, key, keypath, default=None):
        value = data.get(key, default)
        if not isinstance(value, str) or not value or len(value) > 200 or \
                any(ord(c) < 32 or ord(c) == 127 for c in value):
            self.fail(f"{keypath}.{key}", value,
                      "a non-empty string of up to 200 characters, without control characters")
        return value

    def gpio(self, text, keypath):
        """Resolve a header pin name to (canonical GPIO name, physical pin)."""
        found = list(self.header.find_pin(text))
        if not found:
            self.fail(keypath, text, "a pin of the Pi's 40-pin header, such as GPIO17, "
                      "BCM17, BOARD11 or J8:11" + self._pin_hint(text))
        _, info = found[0]
        if "gpio" not in info.interfaces:
            self.fail(keypath, text, f"a GPIO pin; header pin {info.number} is {info.name}, "
                      "a power or ground pin")
        if info.name in ("GPIO0", "GPIO1"):
            self.fail(keypath, text, "a free GPIO pin; GPIO0 and GPIO1 (header pins 27, 28) "
                      "are kept for the HAT ID EEPROM")
        return info.name, info.number, info.pull

    def _pin_hint(self, text):
        """Why a pin name is not on the header, when that can be told."""
        if text != text.upper() and list(self.header.find_pin(text.upper())):
            return f"; pin names are upper case: did you mean {text.upper()!r}?"
        m = re.fullmatch(r"(GPIO|BCM)(\d+)", text)
        if m and int(m.group(2)) > 27:
            return (f"; {text} is on the Pi's chip but not on the header, "
                    "which carries GPIO0 to GPIO27")
        m = re.fullmatch(r"(BOARD|J8:)(\d+)", text)
        if m and not 1 <= int(m.group(2)) <= 40:
            return "; the header's pins are numbered 1 to 40"
        return ""

    def claim(self, resource, keypath, shown, written=None):
        if resource in self.users:
            other, other_written = self.users[resource]
            named = ""
            if written and other_written and written != other_written:
                # The same pin under two names is easy to miss: say both.
                named = f", named {written!r} and {other_written!r}"
            raise ConfigError(self.path, keypath, None, None, message=(
                f"{self.path}: {keypath} and {other} both use {shown}{named}: "
                "expected each pin or chain bit to be used once"))
        self.users[resource] = (keypath, written)

    def wire(self, text, keypath, carries):
        """Parse one wire: carries is "keys" or "lamps"."""
        if not isinstance(text, str):
            self.fail(keypath, text, 'a pin such as "^!GPIO17" or a chain bit such as "!keys:12"')
        m = _WIRE_RE.fullmatch(text.strip())
        if not m:
            self.fail(keypath, text, 'a pin such as "^!GPIO17" or a chain bit such as "!keys:12"')
        mods, target = m.group("mods"), m.group("target")
        if len(set(mods)) != len(mods) or ("^" in mods and "~" in mods):
            self.fail(keypath, text, "at most one of ^ (pull-up) or ~ (pull-down), and ! once")
        active_low = "!" in mods
        pull = "up" if "^" in mods else "down" if "~" in mods else None
        chain_name, _, bit_text = target.partition(":")
        if _CHAIN_NAME_RE.fullmatch(chain_name) and bit_text:
            return self._chain_wire(text, keypath, carries, chain_name, bit_text, pull, active_low)
        if pull and carries == "lamps":
            self.fail(keypath, text, "a lamp output without ^ or ~ (pulls are for inputs)")
        if pull == "up" and not active_low:
            self.fail(keypath, text, f"\"^!{target}\": a key with a pull-up reads high when "
                      "open, so it is active low (add !)")
        if pull == "down" and active_low:
            self.fail(keypath, text, f"\"~{target}\": a key with a pull-down is active high (drop !)")
        name, number, fixed_pull = self.gpio(target, keypath)
        if pull == "down" and fixed_pull == "up":
            self.fail(keypath, text, f"no pull-down on {name}: it has a fixed 1.8k pull-up "
                      "on the board; wire the key to ground and write ^!")
        self.claim(name, keypath, f"{name} (header pin {number})", target)
        return Wire(text=text, pin=name, board_pin=number, pull=pull, active_low=active_low)

    def _chain_wire(self, text, keypath, carries, chain_name, bit_text, pull, active_low):
        chain = self.chains.get(chain_name)
        if chain is None:
            self.fail(keypath, text, "a chain defined under [chains]: "
                      + (", ".join(self.chains) or "this board defines none"))
        if chain.carries != carries:
            self.fail(keypath, text, f"a chain of {carries}; {chain_name} is a "
                      f"{chain.type} chain of {chain.carries}")
        if pull:
            self.fail(keypath, text, f"a chain bit without ^ or ~: a {chain.type} input has "
                      "no internal pull, fit resistors on the board")
        if not bit_text.isdigit() or not 0 <= int(bit_text) < chain.bits:
            self.fail(keypath, text, f"a bit from 0 to {chain.bits - 1} "
                      f"({chain.chips} chips of 8 bits in {chain_name})")
        bit = int(bit_text)
        self.claim((chain_name, bit), keypath,
                   f"{chain_name}:{bit} (chip {bit // 8}, input {'ABCDEFGH'[bit % 8]})")
        return Wire(text=text, chain=chain_name, bit=bit, active_low=active_low)

    def add_key(self, name, text, keypath, role, **kw):
        self.keys[name] = Key(name=name, wire=self.wire(text, keypath, "keys"),
                              role=role, keypath=keypath, **kw)

    def add_lamp(self, name, text, keypath, role, **kw):
        self.lamps[name] = Lamp(name=name, wire=self.wire(text, keypath, "lamps"),
                                role=role, keypath=keypath, **kw)

    # -- sections ------------------------------------------------------
    def load(self) -> Board:
        d = self.table(self.data, "", ("board", "chains", "switches", "lamps", "positions", "lines"),
                       required=("board", "positions", "lines"))
        b = self.table(d["board"], "board", ("name", "title", "positions", "debounce_ms",
                                              "scan_ms", "ring_seconds", "hold_recall_s", "driver"),
                       required=("name", "positions"))
        name = self.string(b, "name", "board")
        title = b.get("title", name)
        if not isinstance(title, str):
            self.fail("board.title", title, "a string")
        positions = self.number(b, "positions", "board", 1, 1, 2, int)
        timing = dict(
            debounce_ms=self.number(b, "debounce_ms", "board", 20, 0, 500),
            scan_ms=self.number(b, "scan_ms", "board", 10, 1, 1000),
            ring_seconds=self.number(b, "ring_seconds", "board", 6, 1, 60),
            hold_recall_s=self.number(b, "hold_recall_s", "board", 60, 5, 3600),
        )
        self.driver = b.get("driver", "bitbang")
        if self.driver not in DRIVERS:
            self.fail("board.driver", self.driver, '"bitbang" or "spi"')
        self.load_chains(d.get("chains", {}))
        self.load_positions(d["positions"], positions)
        self.load_switches(d.get("switches", {}), positions)
        lamps = self.table(d.get("lamps", {}), "lamps",
                           ("fault", "oe", "brightness", "soft_start_ms"), required=("fault",))
        self.add_lamp("fault", lamps["fault"], "lamps.fault", "fault")
        output = self.load_output_enable(lamps)
        lines = self.load_lines(d["lines"], positions)
        if self.driver == "spi" and "GPIO8" in self.users and \
                not self.users["GPIO8"][0].endswith(".latch"):
            keypath, written = self.users["GPIO8"]
            self.fail(keypath, written, 'a pin other than GPIO8: with board.driver = "spi" '
                      "GPIO8 is SPI0's CE0, which the kernel's SPI driver holds (the 74HC595 "
                      "latch, or nothing)")
        return Board(path=self.path, name=name, title=title, positions=positions,
                     lines=tuple(lines), keys=self.keys, lamps=self.lamps,
                     chains=self.chains, description=self.description,
                     line_by_number={ln.number: ln for ln in lines}, driver=self.driver,
                     **output, **timing)

    def load_output_enable(self, lamps):
        """[lamps] oe, brightness, soft_start_ms: the 74HC595s' output enable."""
        if "oe" not in lamps:
            for k in ("brightness", "soft_start_ms"):
                if k in lamps:
                    self.fail(f"lamps.{k}", lamps[k], 'no value without lamps.oe (the 74HC595s\' '
                              'OE pin, whose PWM duty sets the brightness)')
            return {}
        text = lamps["oe"]
        if not any(c.type == "74HC595" for c in self.chains.values()):
            self.fail("lamps.oe", text, "no oe on a board without a 74HC595 lamp chain")
        if not isinstance(text, str) or any(ch in text for ch in "^~!"):
            self.fail("lamps.oe", text, 'a plain PWM-capable GPIO pin, such as "GPIO12"')
        pname, number, _ = self.gpio(text, "lamps.oe")
        if pname not in PWM_PINS:
            self.fail("lamps.oe", text, "a PWM-capable pin: " + ", ".join(
                f"{p} ({c})" for p, c in PWM_PINS.items()))
        self.claim(pname, "lamps.oe", f"{pname} (header pin {number})", text)
        return dict(oe=pname,
                    brightness=self.number(lamps, "brightness", "lamps", 1.0, 0.05, 1.0),
                    soft_start_ms=self.number(lamps, "soft_start_ms", "lamps", 0, 0, 5000, int))

    def load_chains(self, chains):
        self.table(chains, "chains", tuple(chains))
        for cname, c in chains.items():
            kp = f"chains.{cname}"
            if not _CHAIN_NAME_RE.fullmatch(cname):
                self.fail(kp, cname, "a chain name in lower case letters, digits and _")
            if not isinstance(c, dict) or c.get("type") not in CHAIN_TYPES:
                self.fail(f"{kp}.type", c.get("type") if isinstance(c, dict) else c,
                          "74HC165 (keys) or 74HC595 (lamps)")
            carries, roles = CHAIN_TYPES[c["type"]]
            optional = CHAIN_OPTIONAL_PINS[c["type"]]
            extra = ("marker_bits", "marker") if c["type"] == "74HC165" else ()
            self.table(c, kp, ("type", "chips", "settle_us", "clock_hz", "chips_per_board")
                       + roles + optional + extra,
                       required=("type", "chips") + roles)
            pins = {}
            for role in roles + tuple(r for r in optional if r in c):
                text = c[role]
                if not isinstance(text, str) or any(ch in text for ch in "^~!"):
                    self.fail(f"{kp}.{role}", text, "a plain GPIO pin such as GPIO11")
                pname, number, _ = self.gpio(text, f"{kp}.{role}")
                spi = SPI0_PINS.get((c["type"], role))
                if self.driver == "spi" and spi and pname != spi:
                    self.fail(f"{kp}.{role}", text, f"{spi}: with board.driver = \"spi\" the "
                              f"{c['type']} chain's {role} is on SPI0's pin")
                if not (self.driver == "spi" and pname == "GPIO11" and role == "clock"
                        and self.users.get(pname, ("",))[0].endswith(".clock")):
                    # SPI0's SCLK clocks both chains at once; any other pin is used once.
                    self.claim(pname, f"{kp}.{role}", f"{pname} (header pin {number})", text)
                pins[role] = pname
            marker_bits = self.number(c, "marker_bits", kp, 0, 0, 8, int)
            if marker_bits not in (0, 8):
                self.fail(f"{kp}.marker_bits", marker_bits, "0 or 8 (one marker chip)")
            marker = c.get("marker", 0xA5)
            if "marker" in c and not marker_bits:
                self.fail(f"{kp}.marker", marker, "no marker without marker_bits = 8")
            if isinstance(marker, bool) or not isinstance(marker, int) or not 0 < marker < 255:
                self.fail(f"{kp}.marker", marker, "a pattern from 1 to 254 (such as 0xA5): "
                          "all-0 and all-1 are what a dead or unplugged chain reads")
            clock_hz = c.get("clock_hz")
            if clock_hz is not None:
                clock_hz = self.number(c, "clock_hz", kp, None, 1000, 10_000_000, int)
            self.chains[cname] = Chain(
                name=cname, type=c["type"], pins=pins,
                chips=self.number(c, "chips", kp, 1, 1, 64, int),
                settle_us=self.number(c, "settle_us", kp, 5, 0, 10000, int),
                clock_hz=clock_hz, marker_bits=marker_bits, marker=marker,
                chips_per_board=(self.number(c, "chips_per_board", kp, None, 1, 64, int)
                                 if "chips_per_board" in c else None))

    def load_positions(self, positions, count):
        if not isinstance(positions, list) or len(positions) != count:
            self.fail("positions", positions if not isinstance(positions, list) else
                      f"{len(positions)} entries", f"{count} [[positions]] entries, "
                      "one per position (board.positions)")
        for i, p in enumerate(positions, start=1):
            kp = f"positions[{i - 1}]"
            self.table(p, kp, ("hold", "release", "stamp", "dial"),
                       required=("hold", "release", "stamp", "dial"))
            for role in ("hold", "release", "stamp"):
                self.add_key(f"p{i}-{role}", p[role], f"{kp}.{role}", role, position=i)
            dial = self.table(p["dial"], f"{kp}.dial", DIAL_DIGITS, required=DIAL_DIGITS)
            for digit in DIAL_DIGITS:
                self.add_key(key_name_for_digit(i, digit), dial[digit],
                             f'{kp}.dial."{digit}"', "dial", position=i, digit=digit)

    def load_switches(self, switches, positions):
        required = ("secrecy", "split") if positions == 2 else ("secrecy",)
        self.table(switches, "switches", ("secrecy", "split"), required=required)
        for role in ("secrecy", "split"):
            if role in switches:
                self.add_key(role, switches[role], f"switches.{role}", role)

    def load_lines(self, lines, positions):
        if not isinstance(lines, list) or not lines:
            self.fail("lines", lines, "one or more [[lines]] entries")
        result, seen = [], {}
        for i, ln in enumerate(lines):
            kp = f"lines[{i}]"
            self.table(ln, kp, ("number", "label", "kind", "half", "key", "lamp", "message_lamp"),
                       required=("number", "kind", "key", "lamp"))
            number = ln["number"]
            if not isinstance(number, str) or not _NUMBER_RE.fullmatch(number):
                self.fail(f"{kp}.number", number, 'the line\'s number as a string of digits, e.g. "201"')
            if number in seen:
                raise ConfigError(self.path, f"{kp}.number", number, None, message=(
                    f"{self.path}: {kp}.number and {seen[number]}.number are both {number!r}: "
                    "expected each line number once"))
            seen[number] = kp
            kind = ln["kind"]
            if kind not in ("customer", "office"):
                self.fail(f"{kp}.kind", kind, '"customer" or "office"')
            label = ln.get("label", f"Line {number}")
            if not isinstance(label, str) or len(label) > 200 or \
                    any(ord(c) < 32 or ord(c) == 127 for c in label):
                self.fail(f"{kp}.label", label,
                          "a string of up to 200 characters, without control characters")
            if positions == 2:
                if "half" not in ln:
                    raise ConfigError(self.path, f"{kp}.half", None, None, message=(
                        f"{self.path}: {kp}.half: missing; a two-position board needs the half "
                        "(1 or 2) that serves each line when the board is split"))
                half = ln["half"]
                if half not in (1, 2) or isinstance(half, bool):
                    self.fail(f"{kp}.half", half, "1 or 2")
            else:
                half = ln.get("half", 1)
                if half != 1:
                    self.fail(f"{kp}.half", half, "1 (this board has one position)")
            key, lamp, msg = f"line-{number}", f"line-{number}", None
            self.add_key(key, ln["key"], f"{kp}.key", "line", line=number)
            self.add_lamp(lamp, ln["lamp"], f"{kp}.lamp", "line", line=number)
            if kind == "customer":
                if "message_lamp" not in ln:
                    raise ConfigError(self.path, f"{kp}.message_lamp", None, None, message=(
                        f"{self.path}: {kp}.message_lamp: missing; every customer line has a "
                        "message-waiting lamp"))
                msg = f"msg-{number}"
                self.add_lamp(msg, ln["message_lamp"], f"{kp}.message_lamp", "message", line=number)
            elif "message_lamp" in ln:
                self.fail(f"{kp}.message_lamp", ln["message_lamp"],
                          "no message lamp on an office line")
            result.append(Line(number=number, label=label, kind=kind, half=half,
                               key=key, lamp=lamp, message_lamp=msg))
        return result
