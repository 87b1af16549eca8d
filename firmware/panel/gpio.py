"""The board's keys and lamps on gpiozero devices.

Direct keys are ``DigitalInputDevice``s whose edge callbacks report at once;
direct lamps are ``DigitalOutputDevice``s. Keys on a 74HC165 chain are read by
a scanner thread every ``scan_ms``; lamps on a 74HC595 chain are shifted out
by the same thread whenever one changes. That thread is the only one that
touches the chains' pins, so a scan never interleaves with a lamp update.

The pin factory is gpiozero's: ``GPIOZERO_PIN_FACTORY`` or the default on a
Pi, ``MockFactory`` on the simulated board (see ``firmware/panel/sim.py``).
"""

from __future__ import annotations

import threading
import time

from gpiozero import DigitalInputDevice, DigitalOutputDevice, InputDevice

from firmware.config.board import Board, Chain


def _settle(us: int):
    # time.sleep() cannot do microseconds; a short busy wait can.
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


class ShiftInChain:
    """A chain of 74HC165 parallel-in shift registers (keys).

    Wiring: SH/LD of every chip on ``load``, CLK of every chip on ``clock``,
    QH of chip 0 on ``data``, QH of chip n+1 into SER of chip n, SER of the
    last chip tied high. Bit ``chip * 8 + k`` is input A..H (k = 0..7).
    """

    def __init__(self, chain: Chain, pin_factory=None):
        self.chain = chain
        self.load = DigitalOutputDevice(chain.pins["load"], initial_value=True,
                                        pin_factory=pin_factory)
        self.clock = DigitalOutputDevice(chain.pins["clock"], initial_value=False,
                                         pin_factory=pin_factory)
        self.data = InputDevice(chain.pins["data"], pull_up=None, active_state=True,
                                pin_factory=pin_factory)
        # The scan is the hot loop: talk to the pins, not through the devices.
        self._load, self._clock, self._data = self.load.pin, self.clock.pin, self.data.pin

    def read(self) -> list[bool]:
        """The level of every input, as bit index -> high."""
        bits = [True] * self.chain.bits
        load, clock, data = self._load, self._clock, self._data
        load.state = False                   # latch the inputs
        _settle(self.chain.settle_us)
        load.state = True                    # back to shifting
        for chip in range(self.chain.chips):
            base = chip * 8
            for k in range(7, -1, -1):       # H comes out first
                bits[base + k] = bool(data.state)
                clock.state = True
                clock.state = False
        return bits

    def close(self):
        for d in (self.load, self.clock, self.data):
            d.close()


class ShiftOutChain:
    """A chain of 74HC595 serial-in shift registers (lamps).

    Wiring: SER of chip 0 on ``data``, SRCLK of every chip on ``clock``, RCLK
    of every chip on ``latch``, QH' of chip n into SER of chip n+1, /OE low,
    /SRCLR high. Bit ``chip * 8 + k`` is output QA..QH (k = 0..7).
    """

    def __init__(self, chain: Chain, pin_factory=None):
        self.chain = chain
        self.data = DigitalOutputDevice(chain.pins["data"], pin_factory=pin_factory)
        self.clock = DigitalOutputDevice(chain.pins["clock"], pin_factory=pin_factory)
        self.latch = DigitalOutputDevice(chain.pins["latch"], pin_factory=pin_factory)
        self._data, self._clock, self._latch = self.data.pin, self.clock.pin, self.latch.pin

    def write(self, bits: list[bool]):
        data, clock, latch = self._data, self._clock, self._latch
        # The first bit in travels furthest: send the last chip's QH first.
        for b in reversed(bits):
            data.state = b
            clock.state = True
            clock.state = False
        latch.state = True                   # all outputs change together
        latch.state = False

    def close(self):
        for d in (self.data, self.clock, self.latch):
            d.close()


class Panel:
    """Every key and lamp of one board, on one pin factory.

    ``on_key(name, down)`` is called with each raw level change, from
    gpiozero's callback thread (direct keys) or the scanner thread (chains).
    """

    def __init__(self, board: Board, *, pin_factory=None):
        self.board = board
        self.on_key = None
        self._direct_keys: dict[str, DigitalInputDevice] = {}
        self._direct_lamps: dict[str, tuple[DigitalOutputDevice, bool]] = {}
        self._in_chains: dict[str, ShiftInChain] = {}
        self._out_chains: dict[str, ShiftOutChain] = {}
        self._chain_keys: dict[str, list[tuple[int, str, bool]]] = {}
        self._chain_lamps: dict[str, tuple[str, int, bool]] = {}
        self._registers: dict[str, list[bool]] = {}
        self._levels: dict[str, list[bool]] = {}
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        self.scans = 0
        try:
            self._build(pin_factory)
        except Exception:
            self.close()
            raise

    def _build(self, factory):
        for chain in self.board.chains.values():
            if chain.type == "74HC165":
                self._in_chains[chain.name] = ShiftInChain(chain, factory)
                self._chain_keys[chain.name] = []
            else:
                self._out_chains[chain.name] = ShiftOutChain(chain, factory)
                # Lamps start dark: an active-low bit is dark when high.
                self._registers[chain.name] = [False] * chain.bits
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
        for name, chain in self._out_chains.items():
            chain.write(self._registers[name])

    def _report(self, name, down):
        if self.on_key is not None:
            self.on_key(name, down)

    # -- keys ------------------------------------------------------------
    def keys_down(self) -> set[str]:
        """The keys that are down now (read once, at start-up)."""
        down = {n for n, d in self._direct_keys.items() if d.is_active}
        with self._lock:
            for cname, chain in self._in_chains.items():
                bits = chain.read()
                self._levels[cname] = bits
                for bit, name, active_low in self._chain_keys[cname]:
                    if bits[bit] != active_low:
                        down.add(name)
        return down

    def scan(self):
        """Read every key chain once and report the keys that changed."""
        changes = []
        with self._lock:
            for cname, chain in self._in_chains.items():
                bits = chain.read()
                old = self._levels.get(cname)
                self._levels[cname] = bits
                if old is None or old == bits:
                    continue
                for bit, name, active_low in self._chain_keys[cname]:
                    if bits[bit] != old[bit]:
                        changes.append((name, bits[bit] != active_low))
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

    def flush(self):
        """Shift out lamp chains whose bits changed (scanner thread, or tests)."""
        if not self._dirty.is_set():
            return
        with self._lock:
            self._dirty.clear()
            for name, chain in self._out_chains.items():
                chain.write(list(self._registers[name]))

    # -- the scanner thread ----------------------------------------------
    @property
    def has_chains(self) -> bool:
        return bool(self._in_chains or self._out_chains)

    def start(self, on_key):
        self.on_key = on_key
        if self.has_chains:
            self._thread = threading.Thread(target=self._run, name="chains", daemon=True)
            self._thread.start()

    def _run(self):
        period = self.board.scan_ms / 1000.0
        next_scan = time.monotonic()
        while not self._stop.is_set():
            self.flush()
            now = time.monotonic()
            if now >= next_scan:
                self.scan()
                next_scan = max(next_scan + period, now)
            # Wake early when a lamp changes, so a key press lights its lamp at once.
            self._dirty.wait(max(0.0, next_scan - time.monotonic()))

    def close(self):
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for d in self._direct_keys.values():
            d.close()
        for d, _ in self._direct_lamps.values():
            d.close()
        for c in list(self._in_chains.values()) + list(self._out_chains.values()):
            c.close()
