"""The simulated board: the real Panel on gpiozero's MockFactory.

Nothing here replaces the daemon's code: the same ``Panel`` drives the same
gpiozero devices. What is simulated is the world on the other side of the
pins: push buttons (``press``/``release`` drive the key's pin or chain input),
and the 74HC165 and 74HC595 chips, which watch their clock and latch pins and
behave as the chips do, so the shift/latch sequence is exercised for real and
the lamps' levels can be read back from the chips' outputs.
"""

from __future__ import annotations

from gpiozero.pins.mock import MockFactory, MockPin

from firmware.config.board import Board, Chain
from firmware.errors import ControlError


class WatchedPin(MockPin):
    """A mock pin that tells a simulated chip when it changes.

    A chain's pins change tens of thousands of times a second, and MockPin
    keeps every change in ``states``: so this pin keeps only the last
    ``HISTORY`` changes at least (up to twice that), enough to check a whole
    shift/latch sequence after ``clear_states()``, without growing forever.
    """

    HISTORY = 4096

    def __init__(self, factory, info, on_change=None):
        super().__init__(factory, info)
        self.on_change = on_change

    def _change_state(self, value):
        changed = super()._change_state(value)
        if changed:
            if len(self.states) > 2 * self.HISTORY:
                del self.states[:-self.HISTORY]
            if self.on_change is not None:
                self.on_change(value)
        return changed


class Sim74HC595:
    """A chain of 74HC595s: shifts on SRCLK rising, copies to outputs on RCLK rising."""

    def __init__(self, factory: MockFactory, chain: Chain):
        self.chain = chain
        self.shift = [False] * chain.bits     # index = chip * 8 + k (QA..QH)
        self.outputs = [False] * chain.bits
        self.latches = 0
        self.fitted = chain.chips             # fewer when a fault is injected
        self.data = factory.pin(chain.pins["data"], pin_class=WatchedPin)
        factory.pin(chain.pins["clock"], pin_class=WatchedPin, on_change=self._clock)
        factory.pin(chain.pins["latch"], pin_class=WatchedPin, on_change=self._latch)

    def _clock(self, high):
        if high:
            self.shift = [bool(self.data.state)] + self.shift[:-1]

    def _latch(self, high):
        if high:
            n = self.fitted * 8               # chips that are not there light nothing
            self.outputs = self.shift[:n] + [False] * (self.chain.bits - n)
            self.latches += 1


class Sim74HC165:
    """A chain of 74HC165s: loads the inputs while SH/LD is low, shifts on CLK rising."""

    def __init__(self, factory: MockFactory, chain: Chain):
        self.chain = chain
        # Inputs are pulled up on the board: a key not pressed reads high.
        self.inputs = [True] * chain.bits
        self.loads = 0
        self.fitted = chain.chips             # fewer when a fault is injected
        self.tail = True                      # the level SER of the last fitted chip is tied to
        self._order: list[bool] = []
        self._next = 0
        self.data = factory.pin(chain.pins["data"], pin_class=WatchedPin)
        self.load = factory.pin(chain.pins["load"], pin_class=WatchedPin, on_change=self._load)
        factory.pin(chain.pins["clock"], pin_class=WatchedPin, on_change=self._clock)

    def _drive(self):
        # Past the last chip, SER is tied high (or low, as a fault may say).
        level = self._order[self._next] if self._next < len(self._order) else self.tail
        if self.data.function == "input":
            if level:
                self.data.drive_high()
            else:
                self.data.drive_low()

    def _load(self, high):
        if not high:
            self.loads += 1
            self._order = [self.inputs[chip * 8 + k]
                           for chip in range(self.fitted) for k in range(7, -1, -1)]
            self._next = 0
            self._drive()

    def _clock(self, high):
        if high and self.load.state:
            self._next += 1
            self._drive()


class SimBoard:
    """The switchboard's outside world on a MockFactory: buttons, chips, lamps."""

    def __init__(self, board: Board, factory: MockFactory | None = None):
        self.board = board
        self.factory = factory or MockFactory(revision="c03114")   # a Pi 4 B
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

    def press(self, name):
        self.set_key(name, True)

    def release(self, name):
        self.set_key(name, False)

    def lamp_lit(self, name: str) -> bool:
        """Whether a lamp is lit, read from the pin or the chip's output."""
        w = self._lamp_wires.get(name) or self.board.lamps[name].wire
        if w.chain:
            level = self.out_chips[w.chain].outputs[w.bit]
        else:
            level = bool(self.factory.pin(w.pin).state)
        return level != w.active_low

    def lamp_pin(self, name: str):
        """The mock pin of a directly wired lamp (for assert_states_and_times)."""
        return self.factory.pin(self.board.lamps[name].wire.pin)
