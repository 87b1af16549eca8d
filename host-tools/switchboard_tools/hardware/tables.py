"""What is wired where: header pin tables and chain maps, drawn from a board file.

Chip numbering: chip 0 is the chip wired to the Pi (for a 74HC165 chain the
one whose QH drives the data pin; for a 74HC595 chain the one whose SER the
Pi drives); chip 1 is cascaded behind it, and so on. Bit ``n`` of a chain is
chip ``n // 8``, input/output ``"ABCDEFGH"[n % 8]``.
"""

from __future__ import annotations

import csv
import io

from firmware.config.board import Board
from firmware.errors import SwitchboardError

LETTERS = "ABCDEFGH"
# DIP package pin numbers of each parallel input / output.
HC165_PINS = {"A": 11, "B": 12, "C": 13, "D": 14, "E": 3, "F": 4, "G": 5, "H": 6}
HC595_PINS = {"A": 15, "B": 1, "C": 2, "D": 3, "E": 4, "F": 5, "G": 6, "H": 7}
ULN2803_IN = {c: i + 1 for i, c in enumerate(LETTERS)}        # 1B..8B: pins 1-8
ULN2803_OUT = {c: 18 - i for i, c in enumerate(LETTERS)}      # 1C..8C: pins 18-11
CHAIN_ROLE_TEXT = {
    "load": "SH/LD (pin 1) of every 74HC165",
    "clock": "CLK (pin 2) of every chip",
    "data": "QH (pin 9) of chip 0",
    "latch": "RCLK (pin 12) of every 74HC595",
    "loopback": "QH' (pin 9) of the last 74HC595, read back to check the chain",
}
CHAIN_ROLE_TEXT_595 = {"data": "SER (pin 14) of chip 0", "clock": "SRCLK (pin 11) of every chip"}


class HardwareError(SwitchboardError, RuntimeError):
    """A drawing tool is missing or a BOM does not match its board."""


# -- what is wired where ---------------------------------------------------
def _header():
    from firmware.config.board import _board_info
    return _board_info().headers["J8"]


def _users(board: Board) -> dict[str, dict]:
    """GPIO name -> what uses it, from keys, lamps and chain control pins."""
    users = {}
    for key in board.keys.values():
        w = key.wire
        if w.pin:
            kind = "switch" if key.latching else "key"
            how = ("to GND, Pi pull-up" if w.pull == "up" else
                   "to 3V3, Pi pull-down" if w.pull == "down" else
                   "external pull resistor") + (", active low" if w.active_low else ", active high")
            users[w.pin] = dict(kind=kind, what=key.name, label=_key_label(board, key), wiring=how,
                                keypath=key.keypath)
    for lamp in board.lamps.values():
        w = lamp.wire
        if w.pin:
            # A lamp on a header pin is an LED with its own resistor (the BOM's lamp-led and
            # lamp-resistor; the 24 V bulbs are all on the 74HC595 chain).
            users[w.pin] = dict(kind="lamp", what=lamp.name, label=_lamp_label(board, lamp),
                                wiring=("LED from 3V3 through 680 Ω to the pin, active low"
                                        if w.active_low else
                                        "LED through 680 Ω to GND, active high"),
                                keypath=lamp.keypath)
    for chain in board.chains.values():
        texts = dict(CHAIN_ROLE_TEXT)
        if chain.type == "74HC595":
            texts.update(CHAIN_ROLE_TEXT_595)
        for role, pin in chain.pins.items():
            users[pin] = dict(kind="chain", what=f"{chain.name}.{role}",
                              label=f"{chain.type} chain '{chain.name}' ({chain.chips} chips)",
                              wiring=texts[role], keypath=f"chains.{chain.name}.{role}")
    if board.oe:
        users[board.oe] = dict(kind="chain", what="lamps.oe",
                               label="74HC595 output enable (PWM from the daemon, lgpio: "
                               "brightness, soft start)",
                               wiring="OE (pin 13) of every 74HC595, active low; 10k pull-up "
                               "keeps the lamps dark", keypath="lamps.oe")
    return users


def _key_label(board: Board, key) -> str:
    if key.line:
        return board.line(key.line).label
    if key.role == "dial":
        return f"position {key.position} dial {key.digit}"
    if key.position:
        return f"position {key.position} {key.role}"
    return {"secrecy": "secrecy switch (latching)",
            "split": "position-split key (latching)"}.get(key.role, key.role)


def _lamp_label(board: Board, lamp) -> str:
    if lamp.line:
        ln = board.line(lamp.line)
        return f"{ln.label} (message waiting)" if lamp.role == "message" else ln.label
    return "fault lamp" if lamp.role == "fault" else lamp.role


def pin_table(board: Board) -> list[dict]:
    """One row per pin of the Pi's 40-pin header, in header order."""
    users = _users(board)
    has_chains = bool(board.chains)
    # A board with a lamp chain's OE has an interface board with its own logic supply.
    from switchboard_tools.hardware.erc import layout
    logic_supply = layout(board)["interface"]
    # 24 V bulbs on a 74HC595 chain: their 0 V joins logic ground at one star point only.
    star_ground = any(c.type == "74HC595" for c in board.chains.values())
    rows = []
    for number, info in sorted(_header().pins.items()):
        row = dict(pin=number, name=info.name, gpio=None, kind="", what="", label="", wiring="")
        if "gpio" in info.interfaces:
            row["gpio"] = int(info.name[4:])
            if info.name in users:
                row.update(users[info.name])
                row.pop("keypath", None)
            elif info.name in ("GPIO0", "GPIO1"):
                row.update(kind="reserved", wiring="HAT ID EEPROM: leave unconnected")
            elif info.name in ("GPIO2", "GPIO3"):
                row.update(kind="free", wiring=f"free; I2C1 {'SDA' if info.name == 'GPIO2' else 'SCL'} "
                           "for the DS3231 real-time clock (hardware/BLOCKS.md)")
            elif info.name in ("GPIO14", "GPIO15"):
                row.update(kind="free", wiring=f"free; UART {'TXD' if info.name == 'GPIO14' else 'RXD'} "
                           "for a TTL slip printer (hardware/BLOCKS.md)")
            else:
                row.update(kind="free", wiring="free")
        elif info.name == "GND" and star_ground:
            joins = (["interface board"] * logic_supply + ["ribbon grounds", "key commons"]
                     + ["LED returns"] * any(lamp.wire.pin for lamp in board.lamps.values()))
            row.update(kind="ground", wiring=f"logic ground: {', '.join(joins)}; meets the 24 V "
                       "0 V only at the star point")
        elif info.name == "GND":
            row.update(kind="ground", wiring="ground: key commons, LED returns, chain GND")
        elif info.name == "3V3" and logic_supply:
            row.update(kind="power", wiring="3.3 V: the 74LVC244, the RTC and their pulls (the chains "
                       "have their own LM1117-3.3)")
        elif info.name == "5V" and logic_supply and number == 2:
            row.update(kind="power", wiring="5 V out to the chains' LM1117-3.3 (a load on the Pi's 5 V, "
                       "never a feed into it)")
        elif info.name == "3V3":
            row.update(kind="power", wiring="3.3 V: chain chips' VCC and pull-ups" if has_chains
                       else "3.3 V (not needed by this board)")
        elif info.name == "5V":
            row.update(kind="power", wiring="5 V: leave unconnected (the Pi is fed by USB-C)")
        rows.append(row)
    return rows


def chain_map(board: Board) -> list[dict]:
    """One row per bit of every chain: chip, chip pin, and the key or lamp there."""
    by_bit = {}
    for item in list(board.keys.values()) + list(board.lamps.values()):
        w = item.wire
        if w.chain:
            by_bit[(w.chain, w.bit)] = item
    rows = []
    for chain in board.chains.values():
        is_in = chain.type == "74HC165"
        for bit in range(chain.bits):
            chip, letter = divmod(bit, 8)
            letter = LETTERS[letter]
            item = by_bit.get((chain.name, bit))
            row = dict(chain=chain.name, type=chain.type, bit=bit, chip=chip, ref=chip_ref(board, chain, chip),
                       chip_pin=letter if is_in else f"Q{letter}",
                       chip_pin_number=(HC165_PINS if is_in else HC595_PINS)[letter],
                       what="", label="", active="")
            if not is_in:
                row["driver_out_pin"] = ULN2803_OUT[letter]
            if item is not None:
                row.update(what=item.name,
                           label=_key_label(board, item) if is_in else _lamp_label(board, item),
                           active="low" if item.wire.active_low else "high")
            else:
                row["label"] = ("unused: keep its 10k pull-up" if is_in else "unused: no connection")
            rows.append(row)
    return rows


def chip_ref(board: Board, chain, chip: int) -> str:
    """Reference designator: U1.. numbered along the chains in board-file order."""
    base = 1
    for c in board.chains.values():
        if c.name == chain.name:
            return f"U{base + chip}"
        base += c.chips
    raise KeyError(chain.name)


# -- pictures ---------------------------------------------------------------

# -- writing everything ----------------------------------------------------
def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "") if r.get(k) is not None else "")
                                       .replace("|", "\\|") for k, _ in columns) + " |")
    return "\n".join(lines) + "\n"


PIN_COLUMNS = [("pin", "Header pin"), ("name", "Name"), ("gpio", "GPIO"), ("kind", "Kind"),
               ("what", "Wired to"), ("label", "Label"), ("wiring", "How")]
CHAIN_COLUMNS = [("bit", "Bit"), ("ref", "Chip"), ("chip_pin", "Chip pin"),
                 ("chip_pin_number", "DIP pin"), ("what", "Key / lamp"), ("label", "Label"),
                 ("active", "Active")]


def _csv(rows, fields) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return buf.getvalue()


