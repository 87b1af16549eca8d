"""The board's keys and lamps on gpiozero devices.

Direct keys are ``DigitalInputDevice``s whose edge callbacks report at once;
direct lamps are ``DigitalOutputDevice``s. Keys on a 74HC165 chain are read by
a scanner thread every ``scan_ms``; lamps on a 74HC595 chain are shifted out
by the same thread whenever one changes. That thread is the only one that
touches the chains' pins, so a scan never interleaves with a lamp update.

The chains are driven one of two ways (``[board] driver``):

- ``"bitbang"``: ``ShiftInChain`` and ``ShiftOutChain`` toggle the pins through
  gpiozero, holding each half clock period to ``1 / (2 * clock_hz)``;
- ``"spi"``: ``SpiChains`` makes one full-duplex SPI0 transfer per scan that
  shifts every lamp bit out on MOSI and every key bit in on MISO; CE0 rising
  at its end latches the 74HC595s (``spidev``, or ``SimSpiDev`` on the
  simulated board).

What the chains are checked by (hardware/BLOCKS.md explains the wiring):

- **marker bits**: a 74HC165 chain with ``marker_bits = 8`` ends in a chip
  strapped to ``marker``; a scan whose last 8 bits are not that pattern is
  thrown away and the fault lamp names the chain (an unplugged ribbon, a stuck
  data line, a lost chip or one extra clock edge all shift or flatten it);
- **two-scan agreement**: a chained key changes only when two consecutive good
  scans agree, so one noisy scan never answers or releases a call;
- **the loop-back**: QH' of the last 74HC595 comes back on ``loopback``. A
  74HC595's QH' is its last shift stage, which the latch does not touch: while
  the bit-bang driver shifts a pattern in, the previous one falls out of QH'
  bit for bit, and it is compared with what was written (every write, and a
  rewrite of the same pattern at least every ``VERIFY_S``: the latched lamps
  do not change). SPI has one MISO, taken by the keys, so the SPI driver
  instead clocks two test patterns through with CE0 held (no latch: the
  lamps are not disturbed) every ``VERIFY_S`` and reads QH' after each; the
  next scan's transfer puts the lamp pattern back before it latches;
- **OE**: the 74HC595s' output enable (active low, 10k pull-up: dark) is a
  gpiozero ``PWMOutputDevice``; the lamps are enabled only after the first
  full write, ramped up over ``soft_start_ms`` to ``brightness``, and blanked
  on close. On a Pi that is lgpio's software-timed PWM (``lgpio.tx_pwm`` at
  ``OE_HZ``, duty in 1 % steps), on the simulated board MockFactory's: no
  kernel PWM (``/sys/class/pwm``) and no ``dtoverlay=pwm``. The pin is one
  with a hardware PWM channel all the same (``PWM_PINS`` in the board file's
  checks), so a kernel-PWM driver could take it over without rewiring. When the
  process ends the PWM stops with it: ``close()`` (the daemon's exit on
  SIGTERM or SIGINT) drives OE high first; a killed process leaves the pin at
  whatever level it had, which ``switchboard-blank`` (ExecStopPost=) puts right.

The pin factory is gpiozero's: ``GPIOZERO_PIN_FACTORY`` or the default on a
Pi, ``MockFactory`` on the simulated board (see ``firmware/panel/sim.py``).
"""

from __future__ import annotations

import threading
import time

from gpiozero import DigitalInputDevice, DigitalOutputDevice, InputDevice, PWMOutputDevice

from firmware.config.board import Board, Chain
from firmware.errors import SwitchboardError

#: Seconds between loop-back checks of a lamp chain whose lamps have not changed.
VERIFY_S = 1.0
#: OE's PWM frequency (lgpio's software-timed PWM on a Pi): well above flicker for LEDs,
#: and bulbs do not care.
OE_HZ = 800
#: The SPI clock when neither chain sets clock_hz.
SPI_DEFAULT_HZ = 500_000


class PanelError(SwitchboardError, RuntimeError):
    """The panel's hardware cannot be used as the board file says."""


def _settle(us: float):
    # time.sleep() cannot do microseconds; a short busy wait can.
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


def _wait_until(t: float):
    while time.perf_counter() < t:
        pass


def _half_period(chain: Chain) -> float:
    """Seconds per half clock period (0: as fast as the pins go)."""
    return 0.5 / chain.clock_hz if chain.clock_hz else 0.0


def decode_keys(chain: Chain, stream: list[bool]) -> tuple[list[bool], int | None]:
    """Key bits (bit index -> level) and the marker byte from a 74HC165 bit stream.

    The stream is in the order the bits leave QH of chip 0: chip 0's H..A,
    chip 1's H..A, ..., then the marker chip's H..A.
    """
    bits = [True] * chain.bits
    for i in range(chain.bits):
        bits[(i // 8) * 8 + 7 - i % 8] = stream[i]
    marker = None
    if chain.marker_bits:
        marker = 0
        for j in range(chain.marker_bits):
            if stream[chain.bits + j]:
                marker |= 1 << (7 - j)
    return bits, marker


def marker_fault(chain: Chain, marker: int | None) -> str | None:
    """The fault lamp's words for a wrong marker byte, or None when it is right."""
    if marker is None or marker == chain.marker:
        return None
    if marker == 0xFF:
        why = "cable unplugged or data line stuck high"
    elif marker == 0:
        why = "data line stuck low or the chain unpowered"
    elif marker in (((chain.marker << 1) & 0xFF) | 1, (chain.marker << 1) & 0xFF,
                    chain.marker >> 1, (chain.marker >> 1) | 0x80):
        why = "the chain is shifted by one bit: a doubled or lost clock edge"
    else:
        why = "a chip missing, or noise on the clock or load line"
    return (f"key chain {chain.name!r}: marker read 0x{marker:02X}, expected "
            f"0x{chain.marker:02X}: {why}")


def loopback_fault(chain: Chain, seen: list[bool], expected: list[bool]) -> str | None:
    """The fault lamp's words when QH' gave back ``seen`` for ``expected`` (both in shift order)."""
    if seen == expected:
        return None
    where = f"lamp chain {chain.name!r}: loop-back"
    if all(seen):
        return f"{where} reads high throughout: cable unplugged, chain unpowered or data line stuck high"
    if not any(seen):
        return f"{where} reads low throughout: data line stuck low"
    if seen[1:] == expected[:-1] or seen[:-1] == expected[1:]:
        return f"{where} pattern came back shifted by one bit: a doubled or lost clock edge"
    wrong = [i for i, (a, b) in enumerate(zip(seen, expected)) if a != b]
    return (f"{where} pattern came back with {len(wrong)} of {len(expected)} bits wrong: "
            "check the chain's clock, latch and data lines")


class ShiftInChain:
    """A chain of 74HC165 parallel-in shift registers (keys), bit-banged.

    Wiring: SH/LD of every chip on ``load``, CLK of every chip on ``clock``,
    QH of chip 0 on ``data`` (10k pull-up at the Pi), QH of chip n+1 into SER
    of chip n, then the marker chip (``marker_bits = 8``) strapped to
    ``marker``, its SER to ground. Bit ``chip * 8 + k`` is input A..H (k = 0..7).
    With ``spi=True`` only SH/LD is a GPIO (SPI0 owns the clock and data).
    """

    def __init__(self, chain: Chain, pin_factory=None, *, spi: bool = False):
        self.chain = chain
        self.marker: int | None = None      # the marker byte of the last read
        self.half = _half_period(chain)
        self.load = DigitalOutputDevice(chain.pins["load"], initial_value=True,
                                        pin_factory=pin_factory)
        self.clock = self.data = None
        self._clock = self._data = None
        if not spi:
            try:
                self.clock = DigitalOutputDevice(chain.pins["clock"], initial_value=False,
                                                 pin_factory=pin_factory)
                self.data = InputDevice(chain.pins["data"], pull_up=None, active_state=True,
                                        pin_factory=pin_factory)
            except Exception:
                self.close()
                raise
            self._clock, self._data = self.clock.pin, self.data.pin
        # The scan is the hot loop: talk to the pins, not through the devices.
        self._load = self.load.pin

    @property
    def stream_bits(self) -> int:
        return self.chain.bits + self.chain.marker_bits

    def pulse_load(self):
        """Copy every chip's inputs into its register at once (SH/LD low for settle_us)."""
        self._load.state = False
        _settle(self.chain.settle_us)
        self._load.state = True

    def read_stream(self) -> list[bool]:
        """Load, then clock every bit (keys and marker) out of QH, in order."""
        n = self.stream_bits
        out = [True] * n
        clock, data = self._clock, self._data
        self.pulse_load()
        half = self.half
        if not half:
            for i in range(n):
                out[i] = bool(data.state)
                clock.state = True
                clock.state = False
            return out
        # Each half period is at least ``half`` from the edge before it (a late
        # edge never makes the next one early): the chips see clean pulses.
        for i in range(n):
            out[i] = bool(data.state)
            clock.state = True
            _wait_until(time.perf_counter() + half)
            clock.state = False
            _wait_until(time.perf_counter() + half)
        return out

    def read(self) -> list[bool]:
        """The level of every key input, as bit index -> high (``marker`` is set too)."""
        bits, self.marker = decode_keys(self.chain, self.read_stream())
        return bits

    def close(self):
        for d in (self.load, self.clock, self.data):
            if d is not None:
                d.close()


class ShiftOutChain:
    """A chain of 74HC595 serial-in shift registers (lamps), bit-banged.

    Wiring: SER of chip 0 on ``data``, SRCLK of every chip on ``clock``, RCLK
    of every chip on ``latch``, QH' of chip n into SER of chip n+1, /OE on the
    board's ``[lamps] oe`` (or to ground), /SRCLR high; QH' of the last chip on
    ``loopback`` when the board file names one. Bit ``chip * 8 + k`` is output
    QA..QH (k = 0..7). With ``spi=True`` only the loop-back is a GPIO.
    """

    def __init__(self, chain: Chain, pin_factory=None, *, spi: bool = False):
        self.chain = chain
        self.half = _half_period(chain)
        self.last: list[bool] | None = None   # the pattern in the registers, once known
        self.data = self.clock = self.latch = self.loopback = None
        try:
            if not spi:
                self.data = DigitalOutputDevice(chain.pins["data"], pin_factory=pin_factory)
                self.clock = DigitalOutputDevice(chain.pins["clock"], pin_factory=pin_factory)
                self.latch = DigitalOutputDevice(chain.pins["latch"], pin_factory=pin_factory)
            if "loopback" in chain.pins:
                # A 10k pull-up at the Pi's end: an unplugged loop-back reads high.
                self.loopback = InputDevice(chain.pins["loopback"], pull_up=None,
                                            active_state=True, pin_factory=pin_factory)
        except Exception:
            self.close()
            raise
        if not spi:
            self._data, self._clock, self._latch = self.data.pin, self.clock.pin, self.latch.pin
        self._loop = self.loopback.pin if self.loopback is not None else None

    def write(self, bits: list[bool]) -> tuple[bool, str | None]:
        """Shift ``bits`` in and latch them; return (checked, fault).

        With a loop-back, the bits falling out of QH' before each clock are the
        previous pattern, last bit first: ``checked`` is True when there was a
        known previous pattern to compare, and ``fault`` says what was wrong.
        """
        data, clock, latch, loop = self._data, self._clock, self._latch, self._loop
        order = bits[::-1]                 # the first bit in travels furthest
        seen = [False] * len(order) if loop is not None else None
        half = self.half
        for i, b in enumerate(order):
            data.state = b
            if seen is not None:
                seen[i] = bool(loop.state)  # QH' before this clock: the old pattern
            if half:
                _wait_until(time.perf_counter() + half)
            clock.state = True
            if half:
                _wait_until(time.perf_counter() + half)
            clock.state = False
        latch.state = True                 # all outputs change together
        latch.state = False
        previous, self.last = self.last, list(bits)
        if seen is None or previous is None:
            return False, None
        return True, loopback_fault(self.chain, seen, previous[::-1])

    def close(self):
        for d in (self.data, self.clock, self.latch, self.loopback):
            if d is not None:
                d.close()


def open_spidev():
    """A ``spidev.SpiDev`` on SPI0 CE0, with an error that says what to do when there is none."""
    try:
        import spidev
    except ImportError:
        raise PanelError('board.driver = "spi" needs the spidev package: pip install spidev '
                         '(installed with the project on a Pi), or set driver = "bitbang" '
                         'in the board file') from None
    dev = spidev.SpiDev()
    try:
        dev.open(0, 0)
    except OSError as e:
        raise PanelError(f'board.driver = "spi": cannot open /dev/spidev0.0 ({e}): put '
                         '"dtparam=spi=on" and "dtoverlay=spi0-1cs" in /boot/firmware/config.txt '
                         'and reboot (hardware/BLOCKS.md, Hardware SPI)') from None
    return dev


class SpiChains:
    """Both chains on SPI0: one full-duplex transfer reads every key and writes every lamp.

    Wiring (hardware/BLOCKS.md, *Hardware SPI*): SCLK (GPIO11) clocks both
    chains, MISO (GPIO9) is QH of key chip 0, MOSI (GPIO10) SER of lamp chip 0,
    CE0 (GPIO8) the 74HC595s' RCLK (its rise at the end of the transfer
    latches them); SH/LD stays a GPIO, pulsed before each transfer. SPI mode 0:
    the master samples MISO and the chips shift on each rising edge.

    ``spi`` is a ``spidev.SpiDev`` (opened here when None) or anything with
    its ``xfer2``, ``max_speed_hz``, ``mode`` and ``no_cs``.
    """

    def __init__(self, keys: Chain | None, lamps: Chain | None, pin_factory=None, spi=None):
        self.keys_chain, self.lamps_chain = keys, lamps
        self.keys = self.lamps = None
        self.spi = None
        try:
            if keys is not None:
                self.keys = ShiftInChain(keys, pin_factory, spi=True)
            if lamps is not None:
                self.lamps = ShiftOutChain(lamps, pin_factory, spi=True)
            self.spi = spi if spi is not None else open_spidev()
            if spi is not None and hasattr(spi, "open"):
                spi.open(0, 0)
        except Exception:
            self.close()
            raise
        rates = [c.clock_hz for c in (keys, lamps) if c is not None and c.clock_hz]
        self.spi.mode = 0
        self.spi.max_speed_hz = min(rates) if rates else SPI_DEFAULT_HZ
        self.spi.no_cs = False
        self.key_bits = self.keys.stream_bits if self.keys else 0
        self.lamp_bits = lamps.bits if lamps else 0
        self.nbytes = -(-max(self.key_bits, self.lamp_bits) // 8)
        self.transfers = 0

    @staticmethod
    def _pack(stream: list[bool], nbytes: int) -> list[int]:
        out = [0] * nbytes
        for i, b in enumerate(stream):
            if b:
                out[i >> 3] |= 0x80 >> (i & 7)
        return out

    def transfer(self, lamp_bits: list[bool] | None, load: bool = True) -> list[bool]:
        """One transfer: the key stream in (keys then marker), ``lamp_bits`` latched."""
        nbits = self.nbytes * 8
        if load and self.keys is not None:
            self.keys.pulse_load()
        out = [False] * nbits
        if self.lamps is not None and lamp_bits is not None:
            # The 74HC595s keep the last bits shifted: the lamps go at the end.
            out[nbits - self.lamp_bits:] = lamp_bits[::-1]
            self.lamps.last = list(lamp_bits)
        got = self.spi.xfer2(self._pack(out, self.nbytes))
        self.transfers += 1
        stream = [bool(got[i >> 3] & (0x80 >> (i & 7))) for i in range(self.key_bits)]
        return stream

    def verify_lamps(self) -> str | None:
        """Clock two test patterns through the lamp chain with the latch held; read QH'.

        Each pattern puts one known bit in the last chip's last stage with its
        opposite on both sides, so a chain shifted by one bit either way, a
        stuck line and an unplugged ribbon all read wrong. Nothing is latched:
        the lamps keep what they show until the next transfer rewrites the
        registers and latches them.
        """
        if self.lamps is None or self.lamps.loopback is None:
            return None
        n = self.lamp_bits
        nbytes = -(-(n + 8) // 8)
        nbits = nbytes * 8
        first = nbits - n                  # this stream bit ends in the last stage
        results = []
        self.spi.no_cs = True
        try:
            for want in (True, False):
                stream = [not want] * nbits
                stream[first] = want
                self.spi.xfer2(self._pack(stream, nbytes))
                results.append((want, bool(self.lamps.loopback.pin.state)))
        finally:
            self.spi.no_cs = False
        if all(w == got for w, got in results):
            return None
        reads = [got for _, got in results]
        where = f"lamp chain {self.lamps_chain.name!r}: loop-back"
        if all(reads):
            return (f"{where} reads high for both test patterns: cable unplugged, chain "
                    "unpowered, data line stuck high, or the chain shifted by a clock edge")
        if not any(reads):
            return (f"{where} reads low for both test patterns: data line stuck low, or the "
                    "chain shifted by a doubled or lost clock edge")
        return f"{where} test patterns came back inverted: a doubled or lost clock edge"

    def close(self):
        for part in (self.keys, self.lamps):
            if part is not None:
                part.close()
        if self.spi is not None and hasattr(self.spi, "close"):
            self.spi.close()


class Panel:
    """Every key and lamp of one board, on one pin factory.

    ``on_key(name, down)`` is called with each accepted level change, from
    gpiozero's callback thread (direct keys) or the scanner thread (chains);
    ``on_fault(source, message)`` when a chain's fault appears, changes or
    clears (message None). ``spi`` stands in for ``spidev.SpiDev`` with
    ``driver = "spi"`` (the simulated board passes its ``SimSpiDev``).
    """

    FAULT_SOURCE = "panel"

    def __init__(self, board: Board, *, pin_factory=None, spi=None):
        self.board = board
        self.on_key = None
        self.on_fault = None
        self._direct_keys: dict[str, DigitalInputDevice] = {}
        self._direct_lamps: dict[str, tuple[DigitalOutputDevice, bool]] = {}
        self._in_chains: dict[str, ShiftInChain] = {}
        self._out_chains: dict[str, ShiftOutChain] = {}
        self._spi: SpiChains | None = None
        self._chain_keys: dict[str, list[tuple[int, str, bool]]] = {}
        self._chain_lamps: dict[str, tuple[str, int, bool]] = {}
        self._registers: dict[str, list[bool]] = {}
        self._levels: dict[str, list[bool]] = {}     # accepted key levels, per chain
        self._pending: dict[str, list[bool]] = {}    # the last good scan, per chain
        self._faults: dict[str, str] = {}            # chain -> what is wrong with it
        self._reported: str | None = None            # the fault message last reported
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread = None
        self.oe: PWMOutputDevice | None = None
        self.lamps_enabled = False
        self._ramp_t0: float | None = None
        self._last_verify = 0.0
        self.scans = 0
        self.bad_scans = 0
        try:
            self._build(pin_factory, spi)
        except Exception:
            self.close()
            raise

    def _build(self, factory, spi):
        if self.board.oe:
            # Active low: value 0 keeps OE high (dark), as its pull-up did before.
            self.oe = PWMOutputDevice(self.board.oe, active_high=False, initial_value=0,
                                      frequency=OE_HZ, pin_factory=factory)
        for chain in self.board.chains.values():
            if chain.type == "74HC165":
                self._chain_keys[chain.name] = []
            else:
                # Lamps start dark: an active-low bit is dark when high.
                self._registers[chain.name] = [False] * chain.bits
        if self.board.driver == "spi":
            first = {t: next((c for c in self.board.chains.values() if c.type == t), None)
                     for t in ("74HC165", "74HC595")}
            self._spi = SpiChains(first["74HC165"], first["74HC595"], factory, spi)
            if self._spi.keys is not None:
                self._in_chains[first["74HC165"].name] = self._spi.keys
            if self._spi.lamps is not None:
                self._out_chains[first["74HC595"].name] = self._spi.lamps
        else:
            for chain in self.board.chains.values():
                if chain.type == "74HC165":
                    self._in_chains[chain.name] = ShiftInChain(chain, factory)
                else:
                    self._out_chains[chain.name] = ShiftOutChain(chain, factory)
        for key in self.board.keys.values():
            w = key.wire
            if w.chain:
                self._chain_keys[w.chain].append((w.bit, key.name, w.active_low))
                continue
            if w.pull == "up":
                dev = DigitalInputDevice(w.pin, pull_up=True, pin_factory=factory)
            elif w.pull == "down":
                dev = DigitalInputDevice(w.pin, pull_up=False, pin_factory=factory)
            else:
                dev = DigitalInputDevice(w.pin, pull_up=None, active_state=not w.active_low,
                                         pin_factory=factory)
            name = key.name
            dev.when_activated = lambda name=name: self._report(name, True)
            dev.when_deactivated = lambda name=name: self._report(name, False)
            self._direct_keys[name] = dev
        for lamp in self.board.lamps.values():
            w = lamp.wire
            if w.chain:
                self._chain_lamps[lamp.name] = (w.chain, w.bit, w.active_low)
                self._registers[w.chain][w.bit] = w.active_low
            else:
                dev = DigitalOutputDevice(w.pin, active_high=not w.active_low,
                                          initial_value=False, pin_factory=factory)
                self._direct_lamps[lamp.name] = (dev, w.active_low)
        # A known, dark pattern in the registers (the outputs are still off):
        # written twice, so the second write's loop-back already checks the chain.
        for _ in range(2 if self._out_chains else 0):
            self._write_lamps()

    def _report(self, name, down):
        if self.on_key is not None:
            self.on_key(name, down)

    # -- faults ------------------------------------------------------------
    def _set_fault(self, chain: str, message: str | None):
        if message is None:
            self._faults.pop(chain, None)
        else:
            self._faults[chain] = message
        self._publish_faults()

    def _publish_faults(self):
        text = "; ".join(self._faults[c] for c in sorted(self._faults)) or None
        if text != self._reported and self.on_fault is not None:
            self._reported = text
            self.on_fault(self.FAULT_SOURCE, text)

    @property
    def faults(self) -> dict[str, str]:
        """What is wrong with each chain now (chain name -> message)."""
        return dict(self._faults)

    # -- keys ------------------------------------------------------------
    def _read_streams(self) -> dict[str, list[bool]]:
        """One read of every key chain (with SPI, the whole lamp pattern rides along)."""
        if self._spi is not None:
            lamp_bits = self._lamp_pattern()
            stream = self._spi.transfer(lamp_bits)
            if lamp_bits is not None:
                self._dirty.clear()
            return {self._spi.keys_chain.name: stream} if self._spi.keys is not None else {}
        return {name: chain.read_stream() for name, chain in self._in_chains.items()}

    def _take(self, cname: str, stream: list[bool]) -> list[tuple[str, bool]]:
        """Check one scan of a key chain and return the key changes it confirms."""
        chain = self.board.chains[cname]
        bits, marker = decode_keys(chain, stream)
        self._in_chains[cname].marker = marker
        fault = marker_fault(chain, marker)
        self._set_fault(cname, fault)
        if fault is not None:
            # Nothing from this scan is believed, and the next must agree with a later one.
            self.bad_scans += 1
            self._pending.pop(cname, None)
            return []
        previous, self._pending[cname] = self._pending.get(cname), bits
        levels = self._levels.get(cname)
        if previous is None:
            return []
        if levels is None:
            if previous == bits:
                self._levels[cname] = list(bits)
            return []
        changes = []
        for bit, name, active_low in self._chain_keys[cname]:
            level = bits[bit]
            if level == previous[bit] and level != levels[bit]:
                levels[bit] = level
                changes.append((name, level != active_low))
        return changes

    def keys_down(self) -> set[str]:
        """The keys that are down now (read at start-up: two scans that agree)."""
        down = {n for n, d in self._direct_keys.items() if d.is_active}
        with self._lock:
            for _ in range(6):
                if all(c in self._levels for c in self._in_chains):
                    break
                for cname, stream in self._read_streams().items():
                    self._take(cname, stream)
            for cname in self._in_chains:
                levels = self._levels.get(cname)
                for bit, name, active_low in self._chain_keys[cname]:
                    if levels is not None and levels[bit] != active_low:
                        down.add(name)
        return down

    def scan(self):
        """Read every key chain once and report the keys two scans agree have changed."""
        changes = []
        with self._lock:
            for cname, stream in self._read_streams().items():
                changes += self._take(cname, stream)
            self.scans += 1
        for name, down in changes:
            self._report(name, down)

    # -- lamps -----------------------------------------------------------
    def set_lamp(self, name: str, on: bool):
        direct = self._direct_lamps.get(name)
        if direct is not None:
            direct[0].value = on
            return
        chain, bit, active_low = self._chain_lamps[name]
        self._registers[chain][bit] = on != active_low
        self._dirty.set()

    def _lamp_pattern(self) -> list[bool] | None:
        if self._spi is None or self._spi.lamps is None:
            return None
        return list(self._registers[self._spi.lamps_chain.name])

    def _write_lamps(self):
        """Shift every lamp chain out (under the lock) and check what came back."""
        self._dirty.clear()
        if self._spi is not None:
            if self._spi.lamps is not None:
                self._spi.transfer(self._lamp_pattern(), load=False)
            return
        for name, chain in self._out_chains.items():
            checked, fault = chain.write(list(self._registers[name]))
            if checked:
                self._set_fault(name, fault)
        self._last_verify = time.monotonic()

    def _verify_lamps(self):
        """Check the lamp chains without changing a lamp (scanner thread)."""
        with self._lock:
            if self._spi is not None:
                if self._spi.lamps is not None and self._spi.lamps.loopback is not None:
                    self._set_fault(self._spi.lamps_chain.name, self._spi.verify_lamps())
                    # Put the pattern back in the registers (and latch it) at once.
                    self._spi.transfer(self._lamp_pattern(), load=False)
            else:
                self._write_lamps()     # the same pattern: the latched lamps do not change
            self._last_verify = time.monotonic()

    def flush(self):
        """Shift out lamp chains whose bits changed (scanner thread, or tests)."""
        if not self._dirty.is_set():
            return
        with self._lock:
            self._write_lamps()

    def enable_lamps(self):
        """Write the whole lamp pattern, then let OE ramp the outputs on (start())."""
        with self._lock:
            if self._out_chains:
                self._write_lamps()
            if self.oe is not None:
                self._ramp_t0 = time.monotonic()
                self._ramp()
            self.lamps_enabled = True

    def _ramp(self):
        """Step OE's duty up to ``brightness`` over ``soft_start_ms`` (scanner thread)."""
        if self._ramp_t0 is None:
            return
        span = self.board.soft_start_ms / 1000.0
        done = span <= 0 or time.monotonic() - self._ramp_t0 >= span
        level = self.board.brightness if done else \
            self.board.brightness * (time.monotonic() - self._ramp_t0) / span
        self.oe.value = max(0.0, min(self.board.brightness, level))
        if done:
            self._ramp_t0 = None

    # -- the scanner thread ----------------------------------------------
    @property
    def has_chains(self) -> bool:
        return bool(self._in_chains or self._out_chains)

    def start(self, on_key, on_fault=None):
        """Report keys to ``on_key`` and faults to ``on_fault``; enable the lamps; scan."""
        self.on_key = on_key
        self.on_fault = on_fault
        self._reported = None
        self._publish_faults()
        self.enable_lamps()
        if self.has_chains:
            self._thread = threading.Thread(target=self._run, name="chains", daemon=True)
            self._thread.start()

    def _run(self):
        period = self.board.scan_ms / 1000.0
        next_scan = time.monotonic()
        loopback = any(c.loopback is not None for c in self._out_chains.values())
        while not self._stop.is_set():
            self.flush()
            self._ramp()
            now = time.monotonic()
            if now >= next_scan:
                if self._in_chains:
                    self.scan()
                elif self._spi is not None:
                    with self._lock:
                        self._write_lamps()
                next_scan = max(next_scan + period, now)
            if loopback and time.monotonic() - self._last_verify >= VERIFY_S:
                self._verify_lamps()
            wait = next_scan - time.monotonic()
            if self._ramp_t0 is not None:
                wait = min(wait, 0.01)
            # Wake early when a lamp changes, so a key press lights its lamp at once.
            self._dirty.wait(max(0.0, wait))

    def close(self):
        """Stop scanning, blank the lamps (OE high, then an input its pull-up holds high)."""
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.oe is not None:
            try:
                self.oe.value = 0
            finally:
                self.oe.close()
            self.lamps_enabled = False
        for d in self._direct_keys.values():
            d.close()
        for d, _ in self._direct_lamps.values():
            d.close()
        if self._spi is not None:
            self._spi.close()
        else:
            for c in list(self._in_chains.values()) + list(self._out_chains.values()):
                c.close()
