"""Bench self-test of a freshly wired board: every lamp, every key, every chain bit.

Run it on the Pi with the daemon stopped (the test owns the pins)::

    sudo systemctl stop switchboard
    switchboard-hardware self-test tas100

It lights each lamp alone and asks which lamp is lit, then asks for each key in
turn and watches every input of the board, raw, while it is pressed: the
header pins and every bit of every 74HC165 chain, whether the board file names
a key there or not. What it expected and what it saw go into one table, and
the faults it can name (a key on the wrong bit, two keys swapped, two keys
shorted together, a dead key or lamp, a chain shorter than the board file
says) are listed with where to look.

``--sim`` runs the same test on the simulated board, with ``--fault`` to wire
it wrongly on purpose: ``swap:line-201,line-206``, ``short:p1-hold,p1-release``,
``rewire:p1-hold,keys:15`` (a key on the wrong input),
``short-chain:keys:17`` (only 17 chips answer), ``short-chain:keys:17:low``
(the last chip's SER tied low).
"""

from __future__ import annotations

import json
import select
import sys
import time
from dataclasses import dataclass, field

from firmware.config.board import Board, find_board, load_board
from firmware.errors import ConfigError, SwitchboardError

from switchboard_tools.hardware.tables import HC165_PINS, chip_ref, pin_table

LETTERS = "ABCDEFGH"


# -- the bench: raw inputs and outputs of the board -------------------------
class Bench:
    """The board's pins, raw: every key input and every lamp output, no debounce.

    It reuses the daemon's chain drivers (``firmware/panel/gpio.py``), so the test
    exercises the same shift sequence the daemon will.
    """

    #: Free pins the bench leaves alone: the HAT EEPROM's, I2C1's (the DS3231 real-time
    #: clock: claiming them as inputs would take them from the I2C driver) and the UART's.
    UNWATCHED = ("GPIO0", "GPIO1", "GPIO2", "GPIO3", "GPIO14", "GPIO15")

    def __init__(self, board: Board, pin_factory=None, watch_free=True):
        from gpiozero import DigitalInputDevice, DigitalOutputDevice
        from firmware.panel.gpio import ShiftInChain, ShiftOutChain
        self.board = board
        self.in_chains, self.out_chains, self.registers = {}, {}, {}
        self.pins_in, self.lamps_out = {}, {}
        self.free_pins = []         # watched with a pull-up: a key wired to one is found there
        self.oe = None              # the 74HC595s' OE (active low): dark until the first write
        try:
            if board.oe:
                self.oe = DigitalOutputDevice(board.oe, active_high=False, initial_value=False,
                                              pin_factory=pin_factory)
            for chain in board.chains.values():
                if chain.type == "74HC165":
                    self.in_chains[chain.name] = ShiftInChain(chain, pin_factory)
                else:
                    self.out_chains[chain.name] = ShiftOutChain(chain, pin_factory)
                    self.registers[chain.name] = [False] * chain.bits
            for key in board.keys.values():
                w = key.wire
                if w.pin:
                    pull = True if w.pull == "up" else False if w.pull == "down" else None
                    kw = {} if pull is not None else {"active_state": not w.active_low}
                    self.pins_in[w.pin] = DigitalInputDevice(w.pin, pull_up=pull,
                                                             pin_factory=pin_factory, **kw)
            for lamp in board.lamps.values():
                w = lamp.wire
                if w.pin:
                    self.lamps_out[lamp.name] = DigitalOutputDevice(
                        w.pin, active_high=not w.active_low, initial_value=False,
                        pin_factory=pin_factory)
                else:
                    self.registers[w.chain][w.bit] = w.active_low      # dark
            if watch_free:
                for row in pin_table(board):
                    if row["kind"] == "free" and row["name"] not in self.UNWATCHED:
                        self.pins_in[row["name"]] = DigitalInputDevice(
                            row["name"], pull_up=True, pin_factory=pin_factory)
                        self.free_pins.append(row["name"])
        except Exception:
            self.close()
            raise
        self._write_chains()
        if self.oe is not None:
            self.oe.on()            # outputs on only after a full, known pattern is latched

    def inputs(self) -> dict[str, bool]:
        """Every input's electrical level: ``"GPIO4"`` or ``"keys:17"`` -> high."""
        levels = {pin: bool(dev.pin.state) for pin, dev in self.pins_in.items()}
        for name, chain in self.in_chains.items():
            for bit, level in enumerate(chain.read()):
                levels[f"{name}:{bit}"] = level
        return levels

    def light_only(self, lamp_name: str | None):
        """Light one lamp (or none), every other lamp dark."""
        for name, dev in self.lamps_out.items():
            dev.value = name == lamp_name
        for lamp in self.board.lamps.values():
            w = lamp.wire
            if w.chain:
                self.registers[w.chain][w.bit] = (lamp.name == lamp_name) != w.active_low
        self._write_chains()

    def _write_chains(self):
        for name, chain in self.out_chains.items():
            chain.write(list(self.registers[name]))

    def close(self):
        if self.oe is not None:
            self.oe.close()         # the pin floats: OE's 10k pull-up blanks the lamps
        for group in (self.in_chains, self.out_chains, self.pins_in, self.lamps_out):
            for dev in group.values():
                dev.close()


# -- the technician ---------------------------------------------------------
class ConsoleTechnician:
    """A person at the board, answering on the terminal."""

    def __init__(self, out=sys.stdout, inp=sys.stdin):
        self.out, self.inp = out, inp

    def prepare(self, board):
        switches = [k.name for k in board.keys.values() if k.latching]
        self.out.write("Let go of every key" + (f" and turn {', '.join(switches)} off" if switches
                                                 else "") + "; then press Enter: ")
        self.out.flush()
        self.inp.readline()

    def ask_lamp(self, lamp, index, total) -> list[str] | None:
        self.out.write(f"[{index}/{total}] lamp {lamp.name} ({lamp.wire.text}) should be the only "
                       "one lit. Enter = yes; or type the lamp(s) you see lit, 'none', "
                       "or 's' to skip: ")
        self.out.flush()
        answer = self.inp.readline().strip()
        if answer == "":
            return [lamp.name]
        if answer == "s":
            return None
        if answer == "none":
            return []
        return [a for a in answer.replace(",", " ").split() if a]

    def ask_key(self, key, index, total, what):
        then = "" if key.latching else ", then let it go"
        self.out.write(f"[{index}/{total}] {what} {key.name} ({key.wire.text}){then} "
                       "(Enter to skip) ... ")
        self.out.flush()

    def poll(self, wait_s: float) -> str | None:
        """Wait up to ``wait_s`` for the person; 'skip' if they pressed Enter."""
        ready, _, _ = select.select([self.inp], [], [], wait_s)
        if ready:
            self.inp.readline()
            return "skip"
        return None

    def said(self, text):
        self.out.write(text + "\n")
        self.out.flush()


class SimTechnician:
    """The simulated board's technician: presses the key asked for, reads the chips' lamps."""

    def __init__(self, sim, hold_polls=2):
        self.sim = sim
        self.hold_polls = hold_polls
        self._holding = None
        self._polls = 0

    def prepare(self, board):
        pass

    def ask_lamp(self, lamp, index, total):
        return [name for name in self.sim.board.lamps if self.sim.lamp_lit(name)]

    def ask_key(self, key, index, total, what):
        self.sim.press(key.name)
        self._holding, self._polls = key.name, 0

    def poll(self, wait_s):
        if self._holding is not None:
            self._polls += 1
            if self._polls >= self.hold_polls:
                self.sim.release(self._holding)
                self._holding = None
        return None

    def said(self, text):
        pass


# -- the test ----------------------------------------------------------------
@dataclass
class Fault:
    kind: str            # swapped, shorted, wrong-input, dead-key, stuck, chain-short, lamp-*
    items: list
    text: str
    action: str

    def as_dict(self):
        return {"kind": self.kind, "items": self.items, "text": self.text, "action": self.action}


@dataclass
class Report:
    board: str
    keys: list = field(default_factory=list)     # one row per key
    lamps: list = field(default_factory=list)    # one row per lamp
    stuck: list = field(default_factory=list)    # inputs active with nothing pressed
    faults: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults

    def as_dict(self):
        return {"board": self.board, "ok": self.ok, "keys": self.keys, "lamps": self.lamps,
                "stuck": self.stuck, "faults": [f.as_dict() for f in self.faults]}


class SelfTest:
    def __init__(self, board: Board, bench: Bench, tech, *, key_timeout_s=20.0, sleep=time.sleep,
                 poll_s=None, only=None):
        self.board, self.bench, self.tech = board, bench, tech
        self.only = only              # "lamps", "keys" or None for both
        self.poll_s = poll_s if poll_s is not None else board.scan_ms / 1000.0
        self.max_polls = max(3, int(key_timeout_s / max(self.poll_s, 1e-3)))
        self.sleep = sleep
        self.owner = {}               # input id -> key name, from the board file
        for key in board.keys.values():
            self.owner[_input_id(key.wire)] = key.name

    # -- describing inputs -------------------------------------------------
    def where(self, input_id: str) -> str:
        """An input as a technician finds it: chain bit with chip and DIP pin, or header pin."""
        if ":" in input_id:
            chain_name, bit = input_id.split(":")
            chain, bit = self.board.chains[chain_name], int(bit)
            letter = LETTERS[bit % 8]
            return (f"{input_id} ({chip_ref(self.board, chain, bit // 8)} input {letter}, "
                    f"DIP pin {HC165_PINS[letter]})")
        from firmware.config.board import _board_info
        for _, info in _board_info().find_pin(input_id):
            return f"{input_id} (header pin {info.number})"
        return input_id

    def named(self, input_id):
        owner = self.owner.get(input_id)
        return f"{input_id} [{owner}]" if owner else f"{input_id} [no key in the board file]"

    # -- steps ---------------------------------------------------------------
    def run(self) -> Report:
        report = Report(board=self.board.name)
        self.bench.light_only(None)
        self.tech.prepare(self.board)
        idle = self.bench.inputs()
        self._stuck(idle, report)
        if self.only != "keys":
            self._lamps(report)
        if self.only != "lamps":
            self._keys(idle, report)
        self.bench.light_only(None)
        self._diagnose(report)
        return report

    def _stuck(self, idle, report):
        for input_id, level in idle.items():
            if input_id in self.bench.free_pins:
                continue        # something else may hold a free pin low: not this board's fault
            w = self._wire_of(input_id)
            active_low = w.active_low if w is not None else True    # chain inputs: keys to GND
            if level == active_low:       # idle: an active-low input rests high
                continue
            report.stuck.append(input_id)

    def _wire_of(self, input_id):
        name = self.owner.get(input_id)
        return self.board.keys[name].wire if name else None

    def _lamps(self, report):
        lamps = list(self.board.lamps.values())
        for i, lamp in enumerate(lamps, start=1):
            self.bench.light_only(lamp.name)
            seen = self.tech.ask_lamp(lamp, i, len(lamps))
            if seen is None:
                verdict = "skipped"
            elif seen == [lamp.name]:
                verdict = "ok"
            elif not seen:
                verdict = "dark"
            elif lamp.name in seen:
                verdict = "others lit too"
            else:
                verdict = "wrong lamp lit"
            report.lamps.append({"lamp": lamp.name, "wired": lamp.wire.text,
                                 "seen": seen, "verdict": verdict})
        self.bench.light_only(None)

    def _keys(self, idle, report):
        keys = list(self.board.keys.values())
        stuck = set(report.stuck)
        for i, key in enumerate(keys, start=1):
            what = "turn on, then off again:" if key.latching else "press"
            self.tech.ask_key(key, i, len(keys), what)
            seen, skipped = self._watch(idle, stuck)
            expected = _input_id(key.wire)
            if skipped:
                verdict = "skipped"
            elif seen == [expected]:
                verdict = "ok"
            elif not seen:
                verdict = "stuck" if expected in stuck else "no response"
            elif expected in seen:
                verdict = "also pulls " + ", ".join(s for s in seen if s != expected)
            else:
                verdict = "seen at " + ", ".join(seen)
            report.keys.append({"key": key.name, "wired": key.wire.text, "expected": expected,
                                "seen": seen, "verdict": verdict})
            self.tech.said(verdict)

    def _watch(self, idle, stuck) -> tuple[list[str], bool]:
        """Every input that left its idle level while the key was down, in order seen."""
        seen: list[str] = []
        quiet = 0
        for _ in range(self.max_polls):
            if self.tech.poll(self.poll_s) == "skip":
                return seen, True
            now = self.bench.inputs()
            moved = [i for i, level in now.items() if level != idle[i] and i not in stuck]
            for i in moved:
                if i not in seen:
                    seen.append(i)
            if seen and not moved:
                quiet += 1
                # Back to idle for longer than the debounce: the key was let go.
                if quiet * self.poll_s * 1000 >= self.board.debounce_ms and quiet >= 2:
                    return seen, False
            else:
                quiet = 0
            self.sleep(0)
        return seen, False

    # -- naming the faults ---------------------------------------------------
    def _diagnose(self, report):
        faults = report.faults
        rows = {r["key"]: r for r in report.keys}
        done = set()
        # Chains too short: a run of missing or stuck bits up to the chain's end.
        short_from = {}
        for chain in self.board.chains.values():
            if chain.type != "74HC165":
                continue
            first = self._dead_tail(chain, report)
            if first is not None:
                short_from[chain.name] = first
                answer = first // 8
                stuck_tail = f"{chain.name}:{chain.bits - 1}" in report.stuck
                faults.append(Fault(
                    "chain-short", [chain.name],
                    f"key chain '{chain.name}' answers for {answer} of its {chain.chips} chips: "
                    f"bits {first}-{chain.bits - 1} "
                    + ("read 'pressed' with no key touched" if stuck_tail else "never answer")
                    + f" (board file: chains.{chain.name}.chips = {chain.chips})",
                    f"check chip {self.chip_ref(chain, answer)} and the cascade into it: QH (pin 9) "
                    f"of {self.chip_ref(chain, answer)} to SER (pin 10) of {self.chip_ref(chain, answer - 1)}"
                    f", its SH/LD, CLK, 3V3 and GND; or set chips = {answer} if that is all "
                    "that is fitted"))

        def in_short_tail(input_id):
            if ":" not in input_id:
                return False
            name, bit = input_id.split(":")
            return name in short_from and int(bit) >= short_from[name]

        for row in report.keys:
            name, expected, seen = row["key"], row["expected"], row["seen"]
            if name in done or row["verdict"] in ("ok", "skipped"):
                continue
            if in_short_tail(expected) and not seen:
                row["verdict"] = f"in the missing part of chain {expected.split(':')[0]}"
                continue
            if expected in seen and len(seen) > 1:
                others = [s for s in seen if s != expected]
                partners = [self.owner.get(s) for s in others]
                partner = partners[0] if len(others) == 1 else None
                if partner and partner in rows and set(rows[partner]["seen"]) == set(seen):
                    done.update({name, partner})
                    rows[partner]["verdict"] = f"shorted to {name}"
                    row["verdict"] = f"shorted to {partner}"
                    faults.append(Fault(
                        "shorted", [name, partner],
                        f"{name} and {partner} are shorted together: pressing either pulls "
                        f"{self.where(expected)} and {self.where(others[0])}",
                        "look for a solder bridge, a stray strand or a pinched wire between "
                        "those two inputs (or a key wired to both)"))
                else:
                    faults.append(Fault(
                        "shorted", [name] + [p for p in partners if p],
                        f"pressing {name} also pulls "
                        + ", ".join(self.named(s) for s in others),
                        f"look for a bridge between {self.where(expected)} and "
                        + ", ".join(self.where(s) for s in others)))
                continue
            if len(seen) == 1 and seen[0] != expected:
                other = self.owner.get(seen[0])
                if other and other in rows and rows[other]["seen"] == [expected]:
                    done.update({name, other})
                    row["verdict"] = f"swapped with {other}"
                    rows[other]["verdict"] = f"swapped with {name}"
                    faults.append(Fault(
                        "swapped", [name, other],
                        f"{name} and {other} are swapped: {name}'s key is wired to "
                        f"{self.where(seen[0])} and {other}'s to {self.where(expected)}",
                        f"swap the two wires (the board file wants {name} on "
                        f"{self.where(expected)})"))
                else:
                    faults.append(Fault(
                        "wrong-input", [name],
                        f"{name} is wired to {self.named(seen[0])}, "
                        f"the board file says {self.where(expected)}",
                        f"move the wire from {self.where(seen[0])} to {self.where(expected)}, "
                        "or change the board file"))
                continue
            if not seen:
                kind = "stuck" if expected in report.stuck else "dead-key"
                faults.append(Fault(
                    kind, [name],
                    f"{name} " + ("reads pressed all the time" if kind == "stuck"
                                  else "gave no response") + f" at {self.where(expected)}",
                    "check the key's contacts and its wire to ground" if kind == "dead-key" else
                    "check for a key held down, a short to ground or a missing pull-up"))
                continue
            faults.append(Fault("wrong-input", [name], f"{name}: saw {', '.join(seen)}",
                                f"check the wiring at {self.where(expected)}"))
        # Inputs stuck with nothing pressed, outside a short chain's tail.
        for input_id in report.stuck:
            if in_short_tail(input_id):
                continue
            owner = self.owner.get(input_id)
            if owner and any(f.kind == "stuck" and owner in f.items for f in faults):
                continue
            faults.append(Fault("stuck", [owner] if owner else [],
                                f"{self.named(input_id)} reads pressed with nothing touched",
                                f"check {self.where(input_id)} for a short to ground or a "
                                "missing pull-up"))
        self._diagnose_lamps(report)

    def _dead_tail(self, chain, report):
        """First bit of a run, on a chip boundary, that never answered up to the chain's end."""
        alive = set()
        for row in report.keys:
            alive.update(row["seen"])
        stuck = set(report.stuck)
        tested = {r["expected"] for r in report.keys if r["verdict"] != "skipped"}
        first = None
        for bit in range(chain.bits - 1, -1, -1):
            i = f"{chain.name}:{bit}"
            dead = i in stuck or (i not in alive)
            if not dead:
                break
            first = bit
        if first is None:
            return None
        first = -(-first // 8) * 8              # round up to a chip boundary
        if first >= chain.bits:
            return None
        # Only a fault if a key the board file puts there was asked for and not seen,
        # or the whole tail reads stuck.
        tail = {f"{chain.name}:{b}" for b in range(first, chain.bits)}
        if tail <= stuck or (tail & tested):
            return first
        return None

    def _diagnose_lamps(self, report):
        faults = report.faults
        lamps = self.board.lamps
        for chain in self.board.chains.values():
            if chain.type != "74HC595":
                continue
            rows = [r for r in report.lamps if lamps[r["lamp"]].wire.chain == chain.name]
            dark = [r for r in rows if r["verdict"] == "dark"]
            if not dark:
                continue
            # A run of dark lamps to the end of the chain, from a chip boundary.
            last_lit = max((lamps[r["lamp"]].wire.bit for r in rows
                            if r["verdict"] not in ("dark", "skipped")), default=-1)
            first = (last_lit // 8 + 1) * 8
            tail = [r for r in dark if lamps[r["lamp"]].wire.bit >= first]
            if first < chain.bits and tail:
                answer = first // 8
                for r in tail:
                    r["verdict"] = f"in the missing part of chain {chain.name}"
                faults.append(Fault(
                    "chain-short", [chain.name],
                    f"lamp chain '{chain.name}' lights {answer} of its {chain.chips} chips: "
                    f"no lamp on bits {first}-{chain.bits - 1} lit "
                    f"(board file: chains.{chain.name}.chips = {chain.chips})",
                    f"check {self.chip_ref(chain, answer)}: SER (pin 14) from QH' (pin 9) of "
                    f"{self.chip_ref(chain, answer - 1)}, its SRCLK, RCLK, 3V3 and GND"))
        rows = {r["lamp"]: r for r in report.lamps}
        done = set()
        for r in report.lamps:
            if r["verdict"] in ("ok", "skipped") or r["verdict"].startswith("in the missing"):
                continue
            if r["lamp"] in done:
                continue
            lamp = lamps[r["lamp"]]
            other = r["seen"][0] if len(r["seen"]) == 1 else None
            if other in rows and rows[other]["seen"] == [lamp.name]:
                done.update({lamp.name, other})
                r["verdict"], rows[other]["verdict"] = f"swapped with {other}", \
                    f"swapped with {lamp.name}"
                faults.append(Fault(
                    "lamps-swapped", [lamp.name, other],
                    f"lamps {lamp.name} and {other} are swapped: lighting {lamp.name} "
                    f"({lamp.wire.text}) lights the lamp labelled {other}, and back",
                    "swap the two lamps' wires (or their labels on the board)"))
                continue
            if r["verdict"] == "dark":
                faults.append(Fault("lamp-dark", [lamp.name],
                                    f"lamp {lamp.name} ({lamp.wire.text}) did not light",
                                    "check the bulb or LED, its driver and its wire"))
            else:
                faults.append(Fault("lamp-wrong", [lamp.name] + r["seen"],
                                    f"lighting {lamp.name} ({lamp.wire.text}) lit "
                                    + ", ".join(r["seen"]),
                                    "the lamp wires are crossed or bridged: compare with the "
                                    "chain map / pin table"))

    def chip_ref(self, chain, chip):
        return chip_ref(self.board, chain, max(chip, 0))


def _input_id(wire) -> str:
    return f"{wire.chain}:{wire.bit}" if wire.chain else wire.pin


# -- printing --------------------------------------------------------------
def format_report(report: Report) -> str:
    out = [f"Bench self-test of board {report.board}: "
           + ("PASS, every lamp and key as the board file says" if report.ok
              else f"{len(report.faults)} FAULT(S)")]
    if report.faults:
        out.append("")
        for n, f in enumerate(report.faults, start=1):
            out.append(f"{n}. {f.kind.upper()}: {f.text}")
            out.append(f"   what to do: {f.action}")
    bad_keys = [r for r in report.keys if r["verdict"] != "ok"]
    out.append("")
    if report.keys:
        out.append(f"Keys: {len(report.keys) - len(bad_keys)} of {len(report.keys)} as expected"
                   + (":" if bad_keys else "."))
    if bad_keys:
        out.append(_table(bad_keys, [("key", "key"), ("wired", "board file"),
                                     ("seen", "seen"), ("verdict", "verdict")]))
    bad_lamps = [r for r in report.lamps if r["verdict"] != "ok"]
    if report.lamps:
        out.append(f"Lamps: {len(report.lamps) - len(bad_lamps)} of {len(report.lamps)} as expected"
               + (":" if bad_lamps else "."))
    if bad_lamps:
        out.append(_table(bad_lamps, [("lamp", "lamp"), ("wired", "board file"),
                                      ("seen", "seen lit"), ("verdict", "verdict")]))
    return "\n".join(out)


def _table(rows, cols):
    def cell(v):
        if isinstance(v, list):
            return ", ".join(v) if v else "nothing"
        return str(v)
    widths = [max(len(t), *(len(cell(r[k])) for r in rows)) for k, t in cols]
    lines = ["  " + "  ".join(t.ljust(w) for (_, t), w in zip(cols, widths)).rstrip()]
    for r in rows:
        lines.append("  " + "  ".join(cell(r[k]).ljust(w) for (k, _), w in zip(cols, widths)).rstrip())
    return "\n".join(lines)


# -- command line ------------------------------------------------------------
def add_arguments(p):
    p.add_argument("board", help="board file path or shipped board name (desk, tas100)")
    p.add_argument("--sim", action="store_true",
                   help="run on the simulated board (with --fault to wire it wrongly)")
    p.add_argument("--fault", action="append", default=[], metavar="FAULT",
                   help="simulated board only: swap:KEY,KEY  short:KEY,KEY  rewire:KEY,INPUT "
                        "(INPUT: keys:15 or GPIO10)  swap-lamps:LAMP,LAMP  "
                        "short-chain:CHAIN:CHIPS[:low]  (repeatable)")
    p.add_argument("--key-timeout", type=float, default=None,
                   help="seconds to wait for each key (default 20; 0.2 with --sim)")
    p.add_argument("--only", choices=("lamps", "keys"), default=None,
                   help="walk only the lamps, or only the keys")
    p.add_argument("--pin-factory", default=None,
                   help="gpiozero pin factory on a real Pi (lgpio, rpigpio, ...)")


def apply_fault(sim, text: str):
    kind, _, rest = text.partition(":")
    try:
        if kind in ("swap", "short"):
            a, b = rest.split(",")
            (sim.swap_keys if kind == "swap" else sim.short_keys)(a.strip(), b.strip())
            return
        if kind == "swap-lamps":
            a, b = rest.split(",")
            sim.swap_lamps(a.strip(), b.strip())
            return
        if kind == "rewire":
            key, where = rest.split(",")
            sim.rewire_key(key.strip(), where.strip())
            return
        if kind == "short-chain":
            parts = rest.split(":")
            sim.short_chain(parts[0], int(parts[1]), tail_high=not (len(parts) > 2 and parts[2] == "low"))
            return
    except (ValueError, IndexError):
        pass
    raise ConfigError("--fault", "", text, None, message=(
        f"--fault {text!r}: expected swap:KEY,KEY, short:KEY,KEY, rewire:KEY,INPUT, "
        "swap-lamps:LAMP,LAMP or short-chain:CHAIN:CHIPS[:low], "
        "with keys named as in the board file (line-201, p1-hold)"))


def run_from_args(args) -> int:
    board = load_board(find_board(args.board))
    if args.fault and not args.sim:
        raise ConfigError("--fault", "", None, None,
                          message="--fault works with --sim only: a real board has its own faults")
    if args.sim:
        from firmware.panel.sim import SimBoard
        sim = SimBoard(board)
        for text in args.fault:
            apply_fault(sim, text)
        factory, tech, sleep = sim.factory, SimTechnician(sim), (lambda s: None)
    else:
        import os
        from gpiozero import Device
        if args.pin_factory:
            os.environ["GPIOZERO_PIN_FACTORY"] = args.pin_factory
        try:
            factory = Device._default_pin_factory()
        except Exception as e:
            raise SwitchboardError(f"no GPIO here ({type(e).__name__}: {e}); run it on the Pi "
                                   "with the daemon stopped, or pass --sim") from None
        tech, sleep = ConsoleTechnician(), time.sleep
    bench = Bench(board, pin_factory=factory)
    try:
        timeout = args.key_timeout if args.key_timeout is not None else 0.2 if args.sim else 20.0
        report = SelfTest(board, bench, tech, key_timeout_s=timeout, sleep=sleep,
                          only=args.only).run()
    finally:
        bench.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(format_report(report))
    return 0 if report.ok else 1
