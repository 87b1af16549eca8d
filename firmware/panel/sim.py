"""The simulated board: the real Panel on gpiozero's MockFactory.

Nothing here replaces the daemon's code: the same ``Panel`` drives the same
gpiozero devices. What is simulated is the world on the other side of the
pins: push buttons (``press``/``release`` drive the key's pin or chain input),
and the 74HC165 and 74HC595 chips, which watch their clock and latch pins and
behave as the chips do, so the shift/latch sequence is exercised for real and
the lamps' levels can be read back from the chips' outputs.

The 74HC595s wake with random bits and show them only while OE (a PWM pin,
pulled high by 10k) is driven low; QH' of the last chip drives the loop-back
pin; a 74HC165 chain ends in its marker chip. ``SimSpiDev`` stands in for
``spidev.SpiDev`` with ``driver = "spi"``, driving the same pins bit by bit.
Faults are caused on purpose: ``unplug_chain``, ``stick_data``,
``double_clock``, ``short_chain`` (and the key and lamp wiring faults the
bench self-test looks for), undone by ``repair_chain``.
"""

from __future__ import annotations

import random

from gpiozero.pins.mock import MockFactory, MockPWMPin

from firmware.config.board import Board, Chain
from firmware.errors import ControlError


class WatchedPin(MockPWMPin):
    """A mock pin that tells the simulated chips on it when it changes.

    A chain's pins change tens of thousands of times a second, and MockPin
    keeps every change in ``states``: so this pin keeps only the last
    ``HISTORY`` changes at least (up to twice that), enough to check a whole
    shift/latch sequence after ``clear_states()``, without growing forever.
    Several chips may watch one pin (SPI0's SCLK clocks both chains). It is
    a ``MockPWMPin`` because every pin of the simulated board's factory is
    one (OE is driven by a ``PWMOutputDevice``); as a plain output its state
    is 0.0 or 1.0.
    """

    HISTORY = 4096

    def __init__(self, factory, info, on_change=None):
        super().__init__(factory, info)
        self.listeners = [on_change] if on_change is not None else []

    def _change_state(self, value):
        changed = super()._change_state(value)
        if changed:
            if len(self.states) > 2 * self.HISTORY:
                del self.states[:-self.HISTORY]
            for listener in self.listeners:
                listener(value)
        return changed


def _watch(factory: MockFactory, name: str, listener=None) -> WatchedPin:
    pin = factory.pin(name, pin_class=WatchedPin)
    if listener is not None:
        pin.listeners.append(listener)
    return pin


def _drive(pin, level: bool):
    """The outside world sets an input's level (an output drives itself)."""
    if pin.function == "input":
        if level:
            pin.drive_high()
        else:
            pin.drive_low()


class Sim74HC595:
    """A chain of 74HC595s: shifts on SRCLK rising, copies to outputs on RCLK rising.

    At power-up the registers hold whatever they woke with (random here); the
    outputs show only while /OE is low (``SimBoard.lamps_enabled``). QH' of the
    last chip drives the loop-back pin when the chain has one (10k pull-up:
    high when nothing drives it).
    """

    def __init__(self, factory: MockFactory, chain: Chain):
        self.chain = chain
        rng = random.Random(chain.name)
        self.shift = [rng.random() < 0.5 for _ in range(chain.bits)]   # index = chip * 8 + k
        self.outputs = [rng.random() < 0.5 for _ in range(chain.bits)]
        self.latches = 0
        self.fitted = chain.chips             # fewer when a fault is injected
        self.unplugged = False                # the ribbon out: no clock, latch or data
        self.stuck: bool | None = None        # SER stuck at this level
        self.extra_edges = 0                  # clock edges still to count twice ...
        self.DOUBLE_EVERY = 97                # ... one in this many, wherever it falls
        self._edges = 0
        self.data = _watch(factory, chain.pins["data"])
        _watch(factory, chain.pins["clock"], self._clock)
        _watch(factory, chain.pins["latch"], self._latch)
        self.loopback = factory.pin(chain.pins["loopback"]) if "loopback" in chain.pins else None
        self._drive_loopback()

    def _drive_loopback(self):
        if self.loopback is None:
            return
        if self.unplugged or self.fitted < self.chain.chips:
            _drive(self.loopback, True)       # the pull-up: nothing drives the line
        else:
            _drive(self.loopback, self.shift[-1])

    def _clock(self, high):
        if not high or self.unplugged:
            return
        level = bool(self.data.state) if self.stuck is None else self.stuck
        self._edges += 1
        times = 2 if self.extra_edges and self._edges % self.DOUBLE_EVERY == 0 else 1
        if times == 2:
            self.extra_edges -= 1
        for _ in range(times):
            self.shift = [level] + self.shift[:-1]
        self._drive_loopback()

    def _latch(self, high):
        if high and not self.unplugged:
            n = self.fitted * 8               # chips that are not there light nothing
            self.outputs = self.shift[:n] + [False] * (self.chain.bits - n)
            self.latches += 1


class Sim74HC165:
    """A chain of 74HC165s: loads the inputs while SH/LD is low, shifts on CLK rising.

    With ``marker_bits`` a marker chip follows the last key chip, its inputs
    strapped to ``marker`` and its SER to ground.
    """

    def __init__(self, factory: MockFactory, chain: Chain):
        self.chain = chain
        # Inputs are pulled up on the board: a key not pressed reads high.
        self.inputs = [True] * chain.bits
        self.loads = 0
        self.fitted = chain.chips             # fewer when a fault is injected
        self.tail = True                      # the level SER of the last fitted chip is tied to
        self.data_level: bool | None = None   # the data line held here (unplugged, stuck)
        self.extra_edges = 0                  # scans left in which one clock edge counts twice
        self.DOUBLE_AT = 5                    # ... the edge that does
        self._edges = 0
        self._order: list[bool] = []
        self._next = 0
        self.data = _watch(factory, chain.pins["data"])
        self.load = _watch(factory, chain.pins["load"], self._load)
        _watch(factory, chain.pins["clock"], self._clock)

    def _drive(self):
        if self.data_level is not None:
            _drive(self.data, self.data_level)
            return
        # Past the last chip, SER is tied high (or low, as a fault may say).
        level = self._order[self._next] if self._next < len(self._order) else self.tail
        _drive(self.data, level)

    def _load(self, high):
        if not high:
            self.loads += 1
            self._order = [self.inputs[chip * 8 + k]
                           for chip in range(self.fitted) for k in range(7, -1, -1)]
            if self.chain.marker_bits and self.fitted == self.chain.chips:
                m = self.chain.marker
                self._order += [bool(m >> k & 1) for k in range(7, -1, -1)]
                self._order.append(False)     # the marker chip's SER is grounded
            self._next = 0
            self._edges = 0
            self._drive()

    def _clock(self, high):
        if high and self.load.state:
            self._edges += 1
            self._next += 2 if self.extra_edges and self._edges == self.DOUBLE_AT else 1
            if self.extra_edges and self._edges == self.DOUBLE_AT:
                self.extra_edges -= 1
            self._drive()


class SimSpiDev:
    """Stands in for ``spidev.SpiDev`` on SPI0 of the simulated board.

    It drives the wires as the SPI controller would, bit by bit in mode 0:
    MOSI (GPIO10) set, MISO (GPIO9) sampled, SCLK (GPIO11) up and down; CE0
    (GPIO8) low for the transfer and high at its end (which latches the
    74HC595s), unless ``no_cs``. The simulated chips watching those pins do
    the rest, exactly as on the bit-banged wires.
    """

    SCLK, MOSI, MISO, CE0 = "GPIO11", "GPIO10", "GPIO9", "GPIO8"

    def __init__(self, factory: MockFactory):
        self.factory = factory
        self.mode = 0
        self.max_speed_hz = 125_000_000 // 256
        self.bits_per_word = 8
        self.no_cs = False
        self.transfers = 0
        self.is_open = False
        self._sclk = self._mosi = self._miso = self._ce0 = None

    def open(self, bus: int, device: int):
        if (bus, device) != (0, 0):
            raise FileNotFoundError(f"/dev/spidev{bus}.{device}: the simulated board has SPI0 CE0 only")
        # The SPI controller takes its pins (ALT0): SCLK, MOSI and CE0 are outputs.
        self._sclk = _watch(self.factory, self.SCLK)
        self._mosi = _watch(self.factory, self.MOSI)
        self._miso = _watch(self.factory, self.MISO)
        self._ce0 = _watch(self.factory, self.CE0)
        for pin, level in ((self._sclk, False), (self._mosi, False), (self._ce0, True)):
            pin.function = "output"
            pin.state = level
        self.is_open = True

    def xfer2(self, data: list[int]) -> list[int]:
        if not self.is_open:
            raise OSError("SimSpiDev: transfer on a closed device")
        if self.mode != 0:
            raise OSError(f"SimSpiDev: mode {self.mode}: the chains are wired for mode 0")
        sclk, mosi, miso, ce0 = self._sclk, self._mosi, self._miso, self._ce0
        if not self.no_cs:
            ce0.state = False
        out = []
        for byte in data:
            got = 0
            for k in range(7, -1, -1):
                mosi.state = bool(byte >> k & 1)
                if miso.state:
                    got |= 1 << k
                sclk.state = True
                sclk.state = False
            out.append(got)
        if not self.no_cs:
            ce0.state = True
        self.transfers += 1
        return out

    def close(self):
        if self.is_open:
            for pin in (self._sclk, self._mosi, self._ce0):
                pin.function = "input"
        self.is_open = False


class SimBoard:
    """The switchboard's outside world on a MockFactory: buttons, chips, lamps."""

    def __init__(self, board: Board, factory: MockFactory | None = None):
        self.board = board
        # A Pi 4 B; every pin PWM-capable, as the real factory's (OE is a PWMOutputDevice).
        self.factory = factory or MockFactory(revision="c03114", pin_class=MockPWMPin)
        if self.factory.pin_class is not MockPWMPin and not self.factory.pins:
            self.factory.pin_class = MockPWMPin
        self.in_chips: dict[str, Sim74HC165] = {}
        self.out_chips: dict[str, Sim74HC595] = {}
        self._down: set[str] = set()
        # The inputs each key's contacts pull: its own, unless a fault rewired it.
        self._pulls = {name: [key.wire] for name, key in board.keys.items()}
        self._lamp_wires = {}     # lamp -> the output it is really wired to (faults only)
        # Chips first: their pins must exist before the Panel's devices claim them.
        for chain in board.chains.values():
            if chain.type == "74HC165":
                self.in_chips[chain.name] = Sim74HC165(self.factory, chain)
            else:
                self.out_chips[chain.name] = Sim74HC595(self.factory, chain)
        # The 74HC595s' OE: a PWM pin, pulled high (dark) by 10k while nothing drives it.
        self.oe_pin = self.factory.pin(board.oe, pin_class=MockPWMPin) if board.oe else None
        # SPI0, for driver = "spi": the Panel is given this instead of a spidev.SpiDev.
        self.spi = SimSpiDev(self.factory) if board.driver == "spi" else None
        # Keys with an external resistor rest at its level (pulled-up: high).
        for key in board.keys.values():
            w = key.wire
            if w.pin and w.pull is None:
                pin = self.factory.pin(w.pin)
                pin.drive_high() if w.active_low else pin.drive_low()

    def _key(self, name):
        try:
            return self.board.keys[name]
        except KeyError:
            raise ControlError(f"no key {name!r} on the {self.board.name} board; keys are "
                               "named as in the board file, e.g. line-201, p1-hold, "
                               "p1-dial-5, secrecy, split") from None

    def set_key(self, name: str, down: bool):
        """Press (down) or let go of a key, as a finger on the real board would."""
        self._key(name)
        (self._down.add if down else self._down.discard)(name)
        for w in self._pulls[name]:
            # An input is pulled while any key whose contacts reach it is down.
            pulled = any(w in self._pulls[k] for k in self._down)
            self._drive_input(w, pulled != w.active_low)

    def _drive_input(self, w, level):
        if w.chain:
            self.in_chips[w.chain].inputs[w.bit] = level
            return
        pin = self.factory.pin(w.pin)
        if level:
            pin.drive_high()
        else:
            pin.drive_low()

    # -- wiring faults, for the bench self-test's own tests --------------
    def swap_keys(self, a: str, b: str):
        """The two keys' wires are swapped: pressing ``a`` works ``b``'s input and back."""
        self._key(a), self._key(b)
        self._pulls[a], self._pulls[b] = self._pulls[b], self._pulls[a]

    def short_keys(self, a: str, b: str):
        """A bridge joins the two keys' inputs: pressing either pulls both."""
        both = list(dict.fromkeys(self._pulls[a] + self._pulls[b]))
        self._pulls[a], self._pulls[b] = both, list(both)

    def rewire_key(self, name: str, where: str):
        """The key is wired to another input: a chain bit ("keys:15") or a header pin ("GPIO10")."""
        from firmware.config.board import Wire
        own = self._key(name).wire
        chain, _, bit = where.partition(":")
        if bit:
            if chain not in self.in_chips or not bit.isdigit() or \
                    int(bit) >= self.in_chips[chain].chain.bits:
                raise ControlError(f"rewire_key: no input {where!r} on this board")
            wire = Wire(text=where, chain=chain, bit=int(bit), active_low=True)
        else:
            wire = Wire(text=where, pin=where, active_low=own.active_low)
        self._pulls[name] = [wire]

    def swap_lamps(self, a: str, b: str):
        """The two lamps' wires are swapped: lighting ``a`` lights the lamp labelled ``b``."""
        lamps = self.board.lamps
        for name in (a, b):
            if name not in lamps:
                raise ControlError(f"no lamp {name!r} on the {self.board.name} board")
        wa = self._lamp_wires.get(a, lamps[a].wire)
        self._lamp_wires[a] = self._lamp_wires.get(b, lamps[b].wire)
        self._lamp_wires[b] = wa

    def short_chain(self, chain: str, chips: int, tail_high: bool = True):
        """Only the first ``chips`` chips of a chain are there (or answer).

        A short 74HC165 chain reads the level its last chip's SER is tied to
        for every missing bit; a short 74HC595 chain lights nothing past its end.
        """
        sim = self.in_chips.get(chain) or self.out_chips.get(chain)
        if sim is None or not 0 <= chips <= sim.chain.chips:
            raise ControlError(f"short_chain: no chain {chain!r} of at least {chips} chips")
        sim.fitted = chips
        if isinstance(sim, Sim74HC165):
            sim.tail = tail_high

    # -- chain faults, for the daemon's chain checks -------------------------
    def _chain(self, chain: str):
        sim = self.in_chips.get(chain) or self.out_chips.get(chain)
        if sim is None:
            raise ControlError(f"no chain {chain!r} on the {self.board.name} board; chains: "
                               + (", ".join(self.board.chains) or "none"))
        return sim

    def unplug_chain(self, chain: str, data_level: bool = True):
        """The chain's ribbon is out.

        A key chain's data line floats to its pull-up (``data_level`` True, the
        Pi's 10k) or, with the pull-up missing, low; a lamp chain's chips get no
        clock, latch or data, and its loop-back reads its pull-up (high).
        """
        sim = self._chain(chain)
        if isinstance(sim, Sim74HC165):
            sim.data_level = data_level
            sim._drive()
        else:
            sim.unplugged = True
            sim._drive_loopback()

    def stick_data(self, chain: str, level: bool):
        """The chain's data line is stuck at ``level`` (shorted to 3V3 or ground)."""
        sim = self._chain(chain)
        if isinstance(sim, Sim74HC165):
            sim.data_level = level
            sim._drive()
        else:
            sim.stuck = level

    def double_clock(self, chain: str, times: int = 1):
        """A ringing clock: ``times`` edges count twice (a large number: it keeps ringing).

        On a key chain, the 5th edge of each of the next ``times`` scans; on a
        lamp chain, one edge in every 97, wherever it falls in a write.
        """
        self._chain(chain).extra_edges = times

    def repair_chain(self, chain: str):
        """Plug the chain back in and clear its stuck line and clock faults."""
        sim = self._chain(chain)
        sim.extra_edges = 0
        if isinstance(sim, Sim74HC165):
            sim.data_level = None
            sim._drive()
        else:
            sim.unplugged = False
            sim.stuck = None
            sim._drive_loopback()

    # -- the lamps' output enable ---------------------------------------------
    @property
    def oe_duty(self) -> float:
        """The fraction of time OE is low (outputs on): 0 dark, 1 full brightness."""
        if self.oe_pin is None:
            return 1.0                                # OE tied to ground
        if self.oe_pin.function != "output":
            return 0.0                                # an input: the 10k pull-up holds it high
        return 1.0 - float(self.oe_pin.state)

    @property
    def lamps_enabled(self) -> bool:
        return self.oe_duty > 0

    def press(self, name):
        self.set_key(name, True)

    def release(self, name):
        self.set_key(name, False)

    def lamp_lit(self, name: str) -> bool:
        """Whether a lamp is lit, read from the pin or the chip's output (and OE)."""
        w = self._lamp_wires.get(name) or self.board.lamps[name].wire
        if w.chain:
            if not self.lamps_enabled:
                return False                          # OE high: every output off
            level = self.out_chips[w.chain].outputs[w.bit]
        else:
            level = bool(self.factory.pin(w.pin).state)
        return level != w.active_low

    def lamp_pin(self, name: str):
        """The mock pin of a directly wired lamp (for assert_states_and_times)."""
        return self.factory.pin(self.board.lamps[name].wire.pin)
