"""switchboard-hardware check BOARD: an electrical rules check drawn from the files.

Everything it computes comes from the board file (which pins, which chains,
how many chips per perfboard, the OE soft start) and from the board's bill of
materials (``hardware/bom-<board>.csv``: each row's ``value`` column carries
the part's electrical values, such as ``ohms=1000 tol=5``, ``amps=2``,
``volts=28 amps=0.040 cold_x=10 warm_x=3`` or ``awg=20``), so the check cannot
drift from what is built. The Pi's own limits are constants below, each with
where it comes from; for a part, the BOM's value is the datasheet's.

It checks:

- every key on a header pin: the pin's level with the key closed (series
  resistor against the pull-up) and open, against the Pi's V_IL and V_IH;
- every output pin's current against the Pi 4's default drive strength, and
  their total;
- the 3V3 budget of each rail: chips, pull-ups with every key pressed,
  pull-downs, the ULN2803 input current of every lit lamp, the RTC;
- the 24 V budget hot (every lamp lit) and cold (a cold switch-on, the
  flash surge when every ringing lamp turns on in one latch), keep-alive
  resistors, and the supply;
- fuses against the load they carry and the supply, and every conductor of the
  24 V path (wire, terminal, bridge) against the nearest fuse upstream of it: a
  fuse protects only what is downstream of it, so where a fuse sits matters as
  much as its rating (``path_24v``).

A failing row names the board, the part, the value and the limit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from firmware.config.board import Board
from firmware.errors import SwitchboardError

# -- the Pi's limits -----------------------------------------------------------
# Raspberry Pi documentation, "GPIO: voltage specifications" (computers/raspberry-pi,
# gpio-on-raspberry-pi): the BCM2711 (Pi 4, Pi 400) table, the strictest of the Pis
# the boards name (BCM2835/2837: V_IL 0.9 V, V_IH 1.6 V, 50-65 kOhm, 8 mA default).
PI_VIL = 0.8            # V, input low voltage, max (BCM2711)
PI_VIH = 2.0            # V, input high voltage, min (BCM2711)
PI_RPU = (33e3, 73e3)   # Ohm, internal pull-up/pull-down, min and max (BCM2711)
PI_ILEAK = 10e-6        # A, input leakage at 85 degC, max (BCM2711)
PI_DRIVE_MA = 4.0       # mA, default drive strength (BCM2711): V_OH >= 2.6 V, V_OL <= 0.4 V at 4 mA
PI_FIXED_PULLUP = 1.8e3  # Ohm, the fixed pull-ups on GPIO2/GPIO3 (I2C1), Pi schematics
PI_FIXED_PULLUP_PINS = ("GPIO2", "GPIO3")
PI_GPIO_TOTAL_MA = 50.0  # mA, all GPIO outputs together: the Pi's long-standing guidance
PI_3V3_MA = 200.0       # mA, our budget for the header's 3V3 pins: the Pi documentation gives
#                        no figure for current models; the kit keeps well under what the
#                        Pi's 3V3 regulator is commonly quoted for (about 500 mA since the B+)
VCC = 3.3

# -- the parts' limits that are not in a BOM value -----------------------------
HC_VIL = 0.3 * VCC      # 74HC at 3.3 V: V_IL = 0.3 VCC (TI SN74HC165 / SN74HC595 datasheets)
HC_VIH = 0.7 * VCC      # 74HC at 3.3 V: V_IH = 0.7 VCC
HC595_ICC_MAX_MA = 70.0  # 74HC595: continuous current through VCC or GND, abs. max
SERIES_OHMS = (33.0, 47.0)  # source termination of a ribbon signal (issue 13)
T_FUSE_SURGE_X = 4.0    # a time-lag (T) fuse carries 4x its rating for 100 ms (IEC 60127-2 sheet III
#                        pre-arcing time at 4 In is 150 ms or more for the ratings used)
FUSE_CONTINUOUS = 0.8   # a fuse carries at most 80 % of its rating continuously
SUPPLY_CONTINUOUS = 0.8  # a supply is loaded to at most 80 % of its rating continuously
KEEPALIVE_GLOW = 0.15   # a keep-alive current above 15 % of a bulb's rating can glow visibly
RESISTOR_DERATE = 0.5   # a resistor dissipates at most half its rating
SOFT_START_MIN_MS = 100  # a filament heats in tens of ms: a ramp this long spreads the surge
MAINS_V_LOW = 100.0     # the lowest mains the check assumes (V)
# Copper wire: the current we let a PVC-insulated wire carry in a closed cabinet,
# bundled (A). At or below the NEC table 400.5(A)(1) column B ratings for 18-12 AWG
# cords, and about half the usual chassis-wiring figures for 26-20 AWG.
AWG_AMPS = {26: 1.0, 24: 2.0, 22: 3.0, 20: 5.0, 18: 7.0, 16: 10.0, 14: 15.0, 12: 20.0, 10: 30.0}


class CheckError(SwitchboardError, RuntimeError):
    """The board's BOM lacks a part or a value the check needs."""


@dataclass
class Result:
    group: str      # "keys", "pins", "3V3", "24 V", "fuses", "signals"
    part: str       # what is checked, with its reference
    value: str
    limit: str
    ok: bool
    reason: str = ""


# -- the build: how the chains are split over perfboards ------------------------
def layout(board: Board) -> dict:
    """Boards and lines of the build, from the board file's chains."""
    key_boards = sum(c.boards for c in board.chains.values() if c.type == "74HC165")
    lamp_boards = sum(c.boards for c in board.chains.values() if c.type == "74HC595")
    interface = bool(board.oe)      # the TAS-100 style: a 74LVC244 at the Pi, a logic supply
    key_chains = [c for c in board.chains.values() if c.type == "74HC165"]
    lamp_chains = [c for c in board.chains.values() if c.type == "74HC595"]
    # Signals the Pi drives onto a ribbon: each chain's outputs (and OE).
    pi_outputs = sum(2 for _ in key_chains) + sum(3 for _ in lamp_chains) + (1 if board.oe else 0)
    # Data lines that cross from one board to another: into the Pi, between boards,
    # the lamp chain's first SER and its loop-back.
    key_links = key_boards
    lamp_links = lamp_boards + sum(1 for c in lamp_chains if "loopback" in c.pins)
    # Clock and strobe lines received on each chain board: pulled down there.
    per_board_pulldowns = 2 * (key_boards + lamp_boards)
    return dict(key_boards=key_boards, lamp_boards=lamp_boards, interface=interface,
                pi_outputs=pi_outputs,
                # The first lamp SER is a Pi output, already counted.
                series=pi_outputs + key_links + lamp_links - len(lamp_chains),
                pullup_ser=key_links + lamp_links,
                pulldowns=per_board_pulldowns + (4 if interface else 0),
                pullup_oe=(lamp_boards + 1) if board.oe else 0,
                chain_boards=key_boards + lamp_boards,
                ribbons=sum(c.boards for c in board.chains.values()))


def layout_needs(board: Board) -> dict[str, int]:
    """The parts the build adds to what the board file names (``bom_needs`` adds these)."""
    lay = layout(board)
    lamps24 = sum(1 for lamp in board.lamps.values() if lamp.wire.chain)
    needs = {
        "rtc": 1,
        "series-33r": lay["series"],
        "pullup-ser": lay["pullup_ser"],
        "pulldown-10k": lay["pulldowns"],
        "pullup-oe": lay["pullup_oe"],
        "buffer:74HC14": lay["chain_boards"],
        "socket-dip14": lay["chain_boards"],
        "buffer:74LVC244": 1 if lay["interface"] else 0,
        "socket-dip20": 1 if lay["interface"] else 0,
        "bulk-3v3": lay["chain_boards"] + (1 if lay["interface"] else 0),
        "header-box-10": 2 * lay["ribbons"],
        "link-cable": lay["ribbons"] - len(board.chains),
        "logic-3v3": 1 if lay["interface"] else 0,
    }
    if lamps24:
        needs.update({
            "lamp-keepalive": lamps24,
            "bulk-24v": lay["lamp_boards"],
            "conn-24v": lay["lamp_boards"],
            # A T2A fuse per lamp board's branch, in a fuse terminal at the distribution
            # point (so the branch's wires are downstream of it), the terminals' feeds
            # bridged; the 0 V block beside them.
            "fuse-branch": lay["lamp_boards"],
            "fuseholder-dist": lay["lamp_boards"],
            "dist-bridge": 1,
            "fuse-main": 1,
            "fuseholder-main": 1,
            "wire-24v-main": 1,
            "wire-24v-branch": 1,
            "mains-inlet": 1,
            "mains-fuse": 1,
            "wire-mains": 1,
            # The distribution point's 0 V block; one wire from it to logic ground, the
            # star point.
            "dist-24v": 1,
            "wire-star-ground": 1,
        })
    if lay["interface"]:
        needs.update(field_needs(board))
    return {k: v for k, v in needs.items() if v}


#: Pins of a field connector: a chip's 8 keys or lamps, and 2 for their commons
#: (GND for keys, the lamp board's +24 V, fused at the distribution point, for lamps).
FIELD_PINS = 10
#: Conductors of one field cable (25-pair telephone cable).
FIELD_CABLE_CONDUCTORS = 50


def field_chips(chain) -> list[int]:
    """Chips with field wiring (the marker chip has none) on each board of a chain."""
    per = chain.chips_per_board or (chain.chips + (1 if chain.marker_bits else 0))
    out, left = [], chain.chips
    for _ in range(chain.boards):
        out.append(min(per, left))
        left -= out[-1]
    return out


def field_needs(board: Board) -> dict[str, int]:
    """The wiring out to a real cabinet's keys and lamps (the TAS-100 style build).

    A 10-way connector per chip (8 keys or lamps and their commons), a 25-pair cable per
    50 of those conductors on each board, a 2-pole terminal per key or lamp on a header pin
    (each with its GND), and the lamp chain's loop-back pair with a terminal at each end.
    """
    needs = {}
    for kind, tag in (("74HC165", "key"), ("74HC595", "lamp")):
        chains = [c for c in board.chains.values() if c.type == kind]
        per_board = [n for c in chains for n in field_chips(c)]
        needs[f"conn-{tag}-field"] = sum(per_board)
        needs[f"cable-{tag}-field"] = sum(-(-FIELD_PINS * n // FIELD_CABLE_CONDUCTORS)
                                          for n in per_board)
    connectors = needs["conn-key-field"] + needs["conn-lamp-field"]
    needs["conn-field-housing"] = connectors
    needs["conn-field-crimp"] = FIELD_PINS * connectors
    needs["conn-interface-field"] = (sum(1 for k in board.keys.values() if k.wire.pin)
                                     + sum(1 for lamp in board.lamps.values() if lamp.wire.pin))
    loops = sum(1 for c in board.chains.values() if "loopback" in c.pins)
    needs["loopback-pair"] = loops
    needs["conn-loopback"] = 2 * loops
    return needs


# -- the BOM's values -------------------------------------------------------------
def parse_value(text: str) -> dict[str, float]:
    """``"ohms=1000 tol=5"`` -> {"ohms": 1000.0, "tol": 5.0}."""
    out = {}
    for item in (text or "").split():
        key, sep, number = item.partition("=")
        if not sep:
            raise ValueError(item)
        out[key] = float(number)
    return out


class Parts:
    """The BOM's rows by ``covers`` tag, with their parsed values."""

    def __init__(self, board: Board, rows: list[dict], bom_name: str):
        self.board, self.bom = board, bom_name
        self.rows = {}
        for i, row in enumerate(rows, start=2):
            if not row.get("covers"):
                continue
            try:
                values = parse_value(row.get("value", ""))
            except ValueError:
                raise CheckError(f"{bom_name}: line {i} ({row['ref']}): value "
                                 f"{row.get('value')!r}: expected name=number pairs such as "
                                 "'ohms=1000 tol=5'") from None
            self.rows.setdefault(row["covers"], dict(row, values=values))

    def has(self, tag):
        return tag in self.rows

    def ref(self, tag):
        return self.rows[tag]["ref"] if tag in self.rows else tag

    def get(self, tag, key, default=None, why=""):
        row = self.rows.get(tag)
        if row is None:
            if default is not None:
                return default
            raise CheckError(f"{self.bom}: no part covers {tag!r}; the check needs its {key}"
                             + (f" ({why})" if why else ""))
        if key not in row["values"]:
            if default is not None:
                return default
            raise CheckError(f"{self.bom}: {row['ref']} ({tag}) has no {key}= in its value "
                             f"column (value = {row.get('value', '')!r})")
        return row["values"][key]


# -- the 24 V path: where each fuse sits ---------------------------------------------
@dataclass(frozen=True)
class Fuse:
    tag: str            # the fuse's BOM tag
    what: str
    holder: str = ""    # the BOM tag of its holder, which says where it sits


@dataclass(frozen=True)
class Conductor:
    tag: str            # the BOM tag of the wire, terminal or bridge
    key: str            # "awg" for a wire; else the value key of its current rating
    what: str


#: Where a branch fuse sits, by the BOM tag of its holder: a fuse terminal per branch at the
#: distribution point (upstream of the branch's wires), or a holder on each lamp board (the
#: 20 AWG feed and the terminal's outputs then have only the main fuse upstream).
BRANCH_FUSE_AT = {"fuseholder-dist": "at the distribution point",
                  "fuseholder-board": "on the lamp board"}


def path_24v(parts: Parts) -> list:
    """The 24 V path from the supply to a lamp, upstream first, as the BOM builds it.

    Each return (0 V) conductor carries what its + partner carries, so it sits at the same
    point. The star ground is where a lamp board's +24 V shorted to the board's logic ground
    returns: at the lamp board's 24 V entry.
    """
    where = [tag for tag in BRANCH_FUSE_AT if parts.has(tag)]
    if len(where) != 1:
        raise CheckError(f"{parts.bom}: the branch fuses need one holder row, 'fuseholder-dist' "
                         "(a fuse terminal per branch at the distribution point) or "
                         "'fuseholder-board' (on each lamp board); found "
                         + (", ".join(where) or "neither"))
    holder = where[0]
    branch = Fuse("fuse-branch", "branch fuse", holder)
    path = [Fuse("fuse-main", "main fuse"),
            Conductor("wire-24v-main", "awg", "+24 V and 0 V from the main fuse to the "
                      "distribution point"),
            Conductor("dist-24v", "amps", "distribution block's feed")]
    if parts.has("dist-bridge"):
        path.append(Conductor("dist-bridge", "amps", "bridge across the fuse terminals' feeds"))
    if holder == "fuseholder-dist":
        path.append(branch)
    path += [Conductor("dist-24v", "branch_amps", "distribution block's branch outputs"),
             Conductor("wire-24v-branch", "awg", "pair from the distribution point to a "
                       "lamp board"),
             Conductor("conn-24v", "amps", "lamp board's 24 V terminal"),
             Conductor("wire-star-ground", "awg", "star ground (a lamp board's +24 V shorted "
                       "to its logic ground returns through it)")]
    if holder == "fuseholder-board":
        path.append(branch)
    if parts.has("cable-lamp-field"):
        path.append(Conductor("cable-lamp-field", "awg", "lamp field cable"))
    return path


def protection(path: list) -> list[tuple[Conductor, Fuse | None]]:
    """Each conductor of a path with the nearest fuse upstream of it (None: no fuse)."""
    out, fuse = [], None
    for item in path:
        if isinstance(item, Fuse):
            fuse = item
        else:
            out.append((item, fuse))
    return out


def _ohms(x: float) -> str:
    return f"{x / 1000:g} kΩ" if x >= 1000 else f"{x:g} Ω"


# -- the check ------------------------------------------------------------------------
def check(board: Board, rows: list[dict], bom_name: str = "BOM") -> list[Result]:
    parts = Parts(board, rows, bom_name)
    out: list[Result] = []

    def add(group, part, value, limit, ok, what, shown_value, shown_limit):
        reason = "" if ok else (f"{board.name}: {part}: {what} {shown_value}, "
                                f"outside the limit {shown_limit}")
        out.append(Result(group, part, value, limit, bool(ok), reason))

    lay = layout(board)
    _check_keys(board, parts, add)
    gpio_total = _check_pins(board, parts, lay, add)
    _check_3v3(board, parts, lay, add, gpio_total)
    if any(lamp.wire.chain for lamp in board.lamps.values()):
        _check_24v(board, parts, lay, add)
    ohms = parts.get("series-33r", "ohms", why="source termination of the ribbon signals")
    add("signals", f"series resistors {parts.ref('series-33r')}", _ohms(ohms),
        f"{SERIES_OHMS[0]:g}-{SERIES_OHMS[1]:g} Ω", SERIES_OHMS[0] <= ohms <= SERIES_OHMS[1],
        "series termination", _ohms(ohms), f"{SERIES_OHMS[0]:g}-{SERIES_OHMS[1]:g} Ω")
    return out


def _check_keys(board, parts, add):
    tol = parts.get("key-series-1k", "tol", 5.0) / 100 if parts.has("key-series-1k") else 0.05
    for key in board.keys.values():
        w = key.wire
        if not w.pin:
            continue
        rs = parts.get("key-series-1k", "ohms", why="the series resistor of every key on a header pin")
        rs_hi = rs * (1 + tol)
        ref = parts.ref("key-series-1k")
        where = f"{key.name} on {w.pin} (header pin {w.board_pin})"
        if w.pull == "down":
            v_closed = VCC * PI_RPU[0] / (PI_RPU[0] + rs_hi)
            v_open = PI_ILEAK * PI_RPU[1]
            ok = v_closed >= PI_VIH and v_open <= PI_VIL
            add("keys", f"{where}, {ref} {_ohms(rs)}, Pi pull-down",
                f"closed {v_closed:.2f} V, open {v_open:.2f} V",
                f"closed ≥ {PI_VIH} V, open ≤ {PI_VIL} V", ok, "the key pin reads",
                f"{v_closed:.2f} V closed / {v_open:.2f} V open",
                f"≥ {PI_VIH} V / ≤ {PI_VIL} V (BCM2711 V_IH / V_IL)")
            continue
        if w.pin in PI_FIXED_PULLUP_PINS:
            rpu_lo = rpu_hi = PI_FIXED_PULLUP
            pull = f"the Pi's fixed {_ohms(PI_FIXED_PULLUP)} pull-up"
        elif w.pull == "up":
            rpu_lo, rpu_hi = PI_RPU
            pull = f"the Pi's internal pull-up ({_ohms(PI_RPU[0])}-{_ohms(PI_RPU[1])})"
        else:
            r = parts.get("pullup-10k", "ohms", why="the external pull-up of a key without ^")
            rpu_lo, rpu_hi = r * (1 - tol), r * (1 + tol)
            pull = f"a {_ohms(r)} pull-up ({parts.ref('pullup-10k')})"
        v_closed = VCC * rs_hi / (rs_hi + rpu_lo)
        v_open = VCC - PI_ILEAK * rpu_hi
        ok_closed, ok_open = v_closed <= PI_VIL, v_open >= PI_VIH
        part = f"{where}, {ref} {_ohms(rs)} in series, {pull}"
        if ok_closed:
            what, shown, limit = "an open key reads", f"{v_open:.2f} V", f"{PI_VIH} V (BCM2711 V_IH min)"
        else:
            what, shown = f"a closed key reads (series resistor at +{tol:.0%})", f"{v_closed:.2f} V"
            limit = f"{PI_VIL} V (BCM2711 V_IL max)"
        add("keys", part, f"closed {v_closed:.2f} V, open {v_open:.2f} V",
            f"closed ≤ {PI_VIL} V, open ≥ {PI_VIH} V", ok_closed and ok_open, what, shown, limit)
    for chain in board.chains.values():
        if chain.type != "74HC165":
            continue
        r = parts.get("pullup-10k", "ohms", why="the 74HC165 inputs' pull-ups")
        v_open = VCC - 1e-6 * r        # 74HC input leakage 1 uA
        add("keys", f"chain {chain.name}: 74HC165 inputs, {parts.ref('pullup-10k')} {_ohms(r)} "
            "pull-ups, keys to GND", f"closed 0.00 V, open {v_open:.2f} V",
            f"closed ≤ {HC_VIL:.2f} V, open ≥ {HC_VIH:.2f} V", v_open >= HC_VIH,
            "an open key reads", f"{v_open:.2f} V", f"{HC_VIH:.2f} V (74HC V_IH at 3.3 V)")


def _pin_loads(board, parts, lay):
    """Output pin -> (what it drives, mA when driven to the worse level)."""
    loads = {}
    for lamp in board.lamps.values():
        w = lamp.wire
        if not w.pin:
            continue
        r = parts.get("lamp-resistor", "ohms", why="the LED lamps' series resistors")
        tol = parts.get("lamp-resistor", "tol", 5.0) / 100
        vf = parts.get("lamp-led", "vf_min", why="the LEDs' lowest forward voltage")
        ma = (VCC - vf) / (r * (1 - tol)) * 1000
        loads[w.pin] = (f"{lamp.name}: LED ({parts.ref('lamp-led')}, V_F ≥ {vf:g} V) through "
                        f"{_ohms(r)} ({parts.ref('lamp-resistor')})", ma)
    rpd = parts.get("pulldown-10k", "ohms", why="the pull-downs on the chains' clock lines")
    for chain in board.chains.values():
        for role, pin in chain.pins.items():
            if (chain.type, role) in (("74HC165", "data"), ("74HC595", "loopback")):
                continue                # inputs
            if role in ("load", "clock", "latch"):
                ma = VCC / rpd * 1000
                what = f"{chain.name}.{role}: a buffer input with a {_ohms(rpd)} pull-down"
            else:
                ma = 0.001
                what = f"{chain.name}.{role}: a buffer input"
            loads[pin] = (what, ma)
    if board.oe:
        r = parts.get("pullup-oe", "ohms", why="OE's pull-up")
        loads[board.oe] = (f"lamps.oe: a buffer input with a {_ohms(r)} pull-up (sinking)",
                           VCC / r * 1000)
    return loads


def _check_pins(board, parts, lay, add):
    loads = _pin_loads(board, parts, lay)
    for pin, (what, ma) in sorted(loads.items(), key=lambda kv: int(kv[0][4:])):
        add("pins", f"{pin} → {what}", f"{ma:.2f} mA", f"≤ {PI_DRIVE_MA:g} mA",
            ma <= PI_DRIVE_MA, f"{pin} drives", f"{ma:.2f} mA",
            f"{PI_DRIVE_MA:g} mA (the Pi 4's default drive strength)")
    total = sum(ma for _, ma in loads.values())
    add("pins", "all GPIO outputs together", f"{total:.1f} mA", f"≤ {PI_GPIO_TOTAL_MA:g} mA",
        total <= PI_GPIO_TOTAL_MA, "the outputs together draw", f"{total:.1f} mA",
        f"{PI_GPIO_TOTAL_MA:g} mA (the Pi's guidance for all GPIOs)")
    return total


def _check_3v3(board, parts, lay, add, gpio_total):
    chips = {"74HC165": 0, "74HC595": 0}
    for c in board.chains.values():
        chips[c.type] += c.chips + (1 if c.marker_bits else 0)
    key_inputs = sum(c.chips * 8 for c in board.chains.values() if c.type == "74HC165")
    lamps_on_chain = sum(1 for lamp in board.lamps.values() if lamp.wire.chain)
    logic = []          # (what, mA) on the chain logic's rail
    pi = [("GPIO outputs (above)", gpio_total)]
    for kind, tag in (("74HC165", "chip:74HC165"), ("74HC595", "chip:74HC595")):
        if chips[kind]:
            icc = parts.get(tag, "icc_ma", why=f"the {kind}'s supply current")
            logic.append((f"{chips[kind]} x {kind}", chips[kind] * icc))
    if lay["chain_boards"]:
        icc = parts.get("buffer:74HC14", "icc_ma", why="the 74HC14's supply current")
        logic.append((f"{lay['chain_boards']} x 74HC14", lay["chain_boards"] * icc))
    if key_inputs:
        r = parts.get("pullup-10k", "ohms")
        logic.append((f"{key_inputs} key pull-ups, every key pressed", key_inputs * VCC / r * 1000))
    if lay["pulldowns"]:
        logic.append((f"{lay['pulldowns']} clock/strobe pull-downs, driven high",
                      lay["pulldowns"] * VCC / parts.get("pulldown-10k", "ohms") * 1000))
    if lay["pullup_ser"]:
        logic.append((f"{lay['pullup_ser']} data-line pull-ups, pulled low",
                      lay["pullup_ser"] * VCC / parts.get("pullup-ser", "ohms") * 1000))
    if lamps_on_chain:
        i_in = parts.get("uln2803", "in_ma", why="the ULN2803's input current")
        logic.append((f"ULN2803 inputs, {lamps_on_chain} lamps lit", lamps_on_chain * i_in))
        per_chip = 8 * i_in + parts.get("chip:74HC595", "icc_ma")
        add("3V3", f"one 74HC595 ({parts.ref('chip:74HC595')}) sourcing 8 ULN2803 inputs",
            f"{per_chip:.1f} mA", f"≤ {HC595_ICC_MAX_MA:g} mA", per_chip <= HC595_ICC_MAX_MA,
            "a 74HC595 with every output high draws", f"{per_chip:.1f} mA",
            f"{HC595_ICC_MAX_MA:g} mA (74HC595 VCC current, abs. max)")
    pi.append(("DS3231 real-time clock", parts.get("rtc", "ma", why="the RTC's supply current")))
    if lay["interface"]:
        pi.append(("74LVC244 at the Pi", parts.get("buffer:74LVC244", "icc_ma")))
        pi.append(("OE pull-up at the Pi, pulled low",
                   VCC / parts.get("pullup-oe", "ohms") * 1000))
        amps = parts.get("logic-3v3", "amps", why="the chain logic's 3.3 V regulator")
        pmax = parts.get("logic-3v3", "pmax_w")
        vin = parts.get("logic-3v3", "vin")
        total = sum(ma for _, ma in logic)
        detail = ", ".join(f"{w} {ma:.1f} mA" for w, ma in logic)
        add("3V3", f"logic 3V3 ({parts.ref('logic-3v3')}): {detail}", f"{total:.0f} mA",
            f"≤ {amps * 1000 * SUPPLY_CONTINUOUS:.0f} mA", total <= amps * 1000 * SUPPLY_CONTINUOUS,
            "the chain logic draws", f"{total:.0f} mA",
            f"{amps * 1000 * SUPPLY_CONTINUOUS:.0f} mA (80 % of the regulator's {amps:g} A)")
        watts = (vin - VCC) * total / 1000
        add("3V3", f"logic 3V3 regulator {parts.ref('logic-3v3')} dissipation, {vin:g} V in",
            f"{watts:.2f} W", f"≤ {pmax:g} W", watts <= pmax, "the regulator dissipates",
            f"{watts:.2f} W", f"{pmax:g} W (TO-220 in free air)")
    else:
        pi += logic
    total = sum(ma for _, ma in pi)
    detail = ", ".join(f"{w} {ma:.1f} mA" for w, ma in pi)
    add("3V3", f"Pi 3V3 pins 1/17: {detail}", f"{total:.0f} mA", f"≤ {PI_3V3_MA:g} mA",
        total <= PI_3V3_MA, "the Pi's 3V3 pins supply", f"{total:.0f} mA",
        f"{PI_3V3_MA:g} mA (the kit's budget for the header's 3V3)")


def _check_24v(board, parts, lay, add):
    lamps = [lamp for lamp in board.lamps.values() if lamp.wire.chain]
    n = len(lamps)
    v = parts.get("lamp-psu-24v", "volts", why="the lamp supply")
    psu_a = parts.get("lamp-psu-24v", "amps")
    eff = parts.get("lamp-psu-24v", "eff")
    i_lamp = parts.get("lamp-24v", "amps", why="the lamps' rated current")
    cold_x = parts.get("lamp-24v", "cold_x", why="a cold filament's surge (x the hot current)")
    warm_x = parts.get("lamp-24v", "warm_x", why="a pre-heated filament's surge")
    keepalive = parts.has("lamp-keepalive")
    surge_x = warm_x if keepalive else cold_x
    psu = parts.ref("lamp-psu-24v")
    hot = n * i_lamp
    add("24 V", f"{n} lamps lit ({parts.ref('lamp-24v')}, {i_lamp * 1000:g} mA each) on {psu}",
        f"{hot:.2f} A", f"≤ {psu_a * SUPPLY_CONTINUOUS:.1f} A", hot <= psu_a * SUPPLY_CONTINUOUS,
        "every lamp lit draws", f"{hot:.2f} A",
        f"{psu_a * SUPPLY_CONTINUOUS:.1f} A (80 % of {psu}'s {psu_a:g} A)")
    cold = hot * cold_x
    soft = board.soft_start_ms if board.oe else 0
    add("24 V", f"cold switch-on of every lamp at once ({cold_x:g} x hot): soft start "
        f"{soft} ms on OE", f"{cold:.0f} A without soft start",
        f"soft start ≥ {SOFT_START_MIN_MS} ms", soft >= SOFT_START_MIN_MS or cold <= psu_a,
        f"{n} cold filaments switched on together draw {cold:.0f} A and the soft start is",
        f"{soft} ms", f"{SOFT_START_MIN_MS} ms ([lamps] oe and soft_start_ms in the board file)")
    lines = sum(1 for lamp in lamps if lamp.role == "line")
    steady = n - lines
    surge = lines * i_lamp * surge_x + steady * i_lamp
    how = "pre-heated by keep-alive resistors" if keepalive else "cold: no keep-alive resistors"
    add("24 V", f"flash surge: {lines} ringing lamps on in one latch ({surge_x:g} x, {how}) "
        f"+ {steady} steady", f"{surge:.1f} A", f"≤ {psu_a:g} A", surge <= psu_a,
        "the flash surge is", f"{surge:.1f} A", f"{psu_a:g} A ({psu}'s rating)")
    if keepalive:
        r = parts.get("lamp-keepalive", "ohms", why="the keep-alive resistors")
        watts = parts.get("lamp-keepalive", "watts")
        ka = v / r
        p = v * v / r
        ref = parts.ref("lamp-keepalive")
        add("24 V", f"keep-alive {ref} {_ohms(r)} across each driver output: current",
            f"{ka * 1000:.1f} mA", f"≤ {KEEPALIVE_GLOW * i_lamp * 1000:.1f} mA",
            ka <= KEEPALIVE_GLOW * i_lamp, "the keep-alive current is", f"{ka * 1000:.1f} mA",
            f"{KEEPALIVE_GLOW * i_lamp * 1000:.1f} mA (15 % of the bulb's current: no glow)")
        add("24 V", f"keep-alive {ref} dissipation ({watts:g} W parts)", f"{p:.3f} W",
            f"≤ {watts * RESISTOR_DERATE:g} W", p <= watts * RESISTOR_DERATE,
            "each keep-alive resistor dissipates", f"{p:.3f} W",
            f"{watts * RESISTOR_DERATE:g} W (half its rating)")
        add("24 V", f"keep-alive standby: {n} lamps dark, {n} x {ka * 1000:.1f} mA",
            f"{n * ka:.2f} A", f"≤ {psu_a * SUPPLY_CONTINUOUS:.1f} A",
            n * ka <= psu_a * SUPPLY_CONTINUOUS, "the keep-alive current is", f"{n * ka:.2f} A",
            f"{psu_a * SUPPLY_CONTINUOUS:.1f} A")
    # Fuses: the main fuse after the supply, one per lamp board's branch.
    # The fullest lamp board: chips_per_board stages of 8 lamps (all of them on one board).
    per_board = min(n, 8 * max((c.chips_per_board or c.chips) for c in board.chains.values()
                               if c.type == "74HC595"))
    board_hot = per_board * i_lamp
    board_surge = per_board * i_lamp * surge_x
    for tag, load, peak, what in (
            ("fuse-main", hot, surge, "main 24 V fuse"),
            ("fuse-branch", board_hot, board_surge, f"branch fuse ({per_board} lamps per board)")):
        amps = parts.get(tag, "amps", why=f"the {what}")
        ref = parts.ref(tag)
        add("fuses", f"{what} {ref} {amps:g} A: continuous load", f"{load:.2f} A",
            f"≤ {amps * FUSE_CONTINUOUS:.2f} A", load <= amps * FUSE_CONTINUOUS,
            f"the {what} carries", f"{load:.2f} A",
            f"{amps * FUSE_CONTINUOUS:.2f} A (80 % of {ref}'s {amps:g} A)")
        add("fuses", f"{what} {ref} {amps:g} A (time-lag): flash surge", f"{peak:.2f} A",
            f"≤ {amps * T_FUSE_SURGE_X:g} A", peak <= amps * T_FUSE_SURGE_X,
            f"the {what} sees a surge of", f"{peak:.2f} A",
            f"{amps * T_FUSE_SURGE_X:g} A ({T_FUSE_SURGE_X:g} x a time-lag fuse's rating)")
    path = path_24v(parts)
    holder = next(item.holder for item in path if isinstance(item, Fuse) and item.holder)
    amps = parts.get("fuse-branch", "amps")
    rated = parts.get(holder, "amps", why="the branch fuse holder's rating")
    add("fuses", f"branch fuse {parts.ref('fuse-branch')} {amps:g} A in its holder "
        f"{parts.ref(holder)} ({BRANCH_FUSE_AT[holder]})", f"{amps:g} A", f"≤ {rated:g} A",
        amps <= rated, "the branch fuse is", f"{amps:g} A", f"{rated:g} A (the holder's rating)")
    # Every conductor of the 24 V path against the nearest fuse upstream of it: a fuse
    # protects only what is downstream of it.
    for conductor, fuse in protection(path):
        if fuse is None:
            raise CheckError(f"{parts.bom}: {conductor.what} ({parts.ref(conductor.tag)}) has "
                             "no fuse upstream of it")
        fuse_a = parts.get(fuse.tag, "amps", why=f"the {fuse.what}")
        fuse_ref = parts.ref(fuse.tag)
        ref = parts.ref(conductor.tag)
        if conductor.key == "awg":
            awg = int(parts.get(conductor.tag, "awg", why=f"the gauge of the {conductor.what}"))
            rating = AWG_AMPS.get(awg)
            if rating is None:
                raise CheckError(f"{parts.bom}: {ref}: awg={awg}: expected one of "
                                 + ", ".join(map(str, AWG_AMPS)))
            size, why = f"{awg} AWG", f"what {awg} AWG may carry in the cabinet"
        else:
            rating = parts.get(conductor.tag, conductor.key, why=f"the {conductor.what}'s rating")
            size, why = f"rated {rating:g} A", f"the rating of the {conductor.what}"
        add("fuses", f"{conductor.what} {ref}, {size}: nearest fuse upstream {fuse_ref} "
            f"{fuse_a:g} A ({fuse.what})", f"{fuse_a:g} A", f"≤ {rating:g} A",
            fuse_a <= rating, f"the nearest fuse upstream ({fuse_ref}, {fuse.what}) is",
            f"{fuse_a:g} A", f"{rating:g} A ({why})")
    main = parts.get("fuse-main", "amps")
    add("fuses", f"main fuse {parts.ref('fuse-main')} against the supply {psu}",
        f"{main:g} A", f"≤ {psu_a * 1.5:g} A", main <= psu_a * 1.5, "the main fuse is",
        f"{main:g} A", f"{psu_a * 1.5:g} A (so that a fault the supply can feed blows it)")
    mains = parts.get("mains-fuse", "amps", why="the mains inlet's fuse")
    mains_wire = AWG_AMPS.get(int(parts.get("wire-mains", "awg")), 0)
    mains_load = hot * v / eff / MAINS_V_LOW
    add("fuses", f"mains fuse {parts.ref('mains-fuse')} {mains:g} A: {hot:.1f} A at {v:g} V, "
        f"{eff:.0%} efficient, {MAINS_V_LOW:g} V mains", f"{mains_load:.2f} A",
        f"≤ {mains * FUSE_CONTINUOUS:.2f} A", mains_load <= mains * FUSE_CONTINUOUS,
        "the mains fuse carries", f"{mains_load:.2f} A", f"{mains * FUSE_CONTINUOUS:.2f} A")
    add("fuses", f"mains fuse {parts.ref('mains-fuse')} protects "
        f"{int(parts.get('wire-mains', 'awg'))} AWG ({parts.ref('wire-mains')})",
        f"{mains:g} A", f"≤ {mains_wire:g} A", mains <= mains_wire, "the mains fuse is",
        f"{mains:g} A", f"{mains_wire:g} A")


# -- command line ---------------------------------------------------------------------
def run(board: Board, bom_path, as_json: bool) -> int:
    from switchboard_tools.hardware.bom import read_bom
    rows = read_bom(bom_path)
    results = check(board, rows, bom_path.name)
    failed = [r for r in results if not r.ok]
    if as_json:
        import json
        print(json.dumps({"board": board.name, "bom": str(bom_path), "ok": not failed,
                          "checks": [asdict(r) for r in results],
                          "failures": [r.reason for r in failed]}, indent=1))
        return 1 if failed else 0
    cols = [("group", "Check"), ("part", "Part"), ("value", "Value"), ("limit", "Limit"),
            ("verdict", "")]
    table = [dict(asdict(r), verdict="ok" if r.ok else "FAIL") for r in results]
    widths = {k: min(90, max(len(t), *(len(str(r[k])) for r in table))) for k, t in cols}
    print("  ".join(t.ljust(widths[k]) for k, t in cols).rstrip())
    for r in table:
        print("  ".join(str(r[k]).ljust(widths[k]) for k, _ in cols).rstrip())
    for r in failed:
        print(f"FAIL {r.reason}")
    print(f"{board.name}: {len(results) - len(failed)} of {len(results)} checks within limits"
          + ("" if failed else ": PASS"))
    return 1 if failed else 0
