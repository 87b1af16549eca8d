"""switchboard-hardware: pin tables, chain maps, wiring pictures and BOM checks.

Everything here is drawn from a board file, so the drawings cannot disagree
with what the daemon drives::

    switchboard-hardware pins desk            # header pin, GPIO, what is wired there
    switchboard-hardware chains tas100        # chip and bit of every key and lamp
    switchboard-hardware wiring desk -o desk-wiring.svg
    switchboard-hardware bom desk             # check hardware/bom-desk.csv against the board
    switchboard-hardware generate             # all of it, for every shipped board, into hardware/
    switchboard-hardware schematics           # the building blocks' schematics (schemdraw)
    switchboard-hardware check tas100         # electrical rules check (see erc.py)
    switchboard-hardware self-test desk --sim # bench self-test (see selftest.py)

Chip numbering: chip 0 is the chip wired to the Pi (for a 74HC165 chain the
one whose QH drives the data pin; for a 74HC595 chain the one whose SER the
Pi drives); chip 1 is cascaded behind it, and so on. Bit ``n`` of a chain is
chip ``n // 8``, input/output ``"ABCDEFGH"[n % 8]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from firmware.boardfile import Board, boards_dir, find_board, load_board, shipped_boards
from firmware.errors import ConfigError, SwitchboardError

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
    from firmware.boardfile import _board_info
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
            users[w.pin] = dict(kind="lamp", what=lamp.name, label=_lamp_label(board, lamp),
                                wiring="lamp driver input" + (", active low" if w.active_low
                                                              else ", active high"),
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
                               label="74HC595 output enable (hardware PWM: brightness, soft start)",
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
        elif info.name == "GND":
            row.update(kind="ground", wiring="ground: key commons, lamp returns, chain GND")
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
            row = dict(chain=chain.name, type=chain.type, bit=bit, chip=chip, ref=_ref(board, chain, chip),
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


def _ref(board: Board, chain, chip: int) -> str:
    """Reference designator: U1.. numbered along the chains in board-file order."""
    base = 1
    for c in board.chains.values():
        if c.name == chain.name:
            return f"U{base + chip}"
        base += c.chips
    raise KeyError(chain.name)


# -- pictures ---------------------------------------------------------------
_KIND_COLOURS = {"key": "#dbe9f6", "switch": "#e4dcf2", "lamp": "#fff2c4", "chain": "#d9f0d9",
                 "ground": "#d0d0d0", "power": "#f6d5d5", "reserved": "#eeeeee", "free": "#ffffff"}


def _esc(text) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def wiring_dot(board: Board) -> str:
    """A Graphviz picture: the header on the left, what each pin goes to on the right."""
    rows = pin_table(board)
    out = ["digraph wiring {",
           '  graph [rankdir=LR, fontname="Helvetica", fontsize=18, nodesep=0.12, ranksep=1.1,',
           f'         label="{_esc(board.title)}\\nwiring from {_esc(board.path.name)} '
           '(generated by switchboard-hardware)", labelloc=t];',
           '  node [fontname="Helvetica", fontsize=12, shape=plain];',
           '  edge [arrowhead=none, penwidth=1.4, fontname="Helvetica", fontsize=11];']
    cells = []
    for r in rows:
        colour = _KIND_COLOURS.get(r["kind"], "#ffffff")
        cells.append(f'<tr><td align="right" bgcolor="{colour}">{_esc(r["name"])}</td>'
                     f'<td bgcolor="{colour}" port="p{r["pin"]}"><b>{r["pin"]}</b></td></tr>')
    out.append('  header [label=<<table border="1" cellborder="1" cellspacing="0" cellpadding="3">'
               '<tr><td colspan="2" bgcolor="#444444"><font color="white"><b>Pi J8 header</b>'
               '</font></td></tr>' + "".join(cells) + "</table>>];")
    by_kind = {}
    for r in rows:
        if r["kind"] in ("key", "switch", "lamp"):
            by_kind.setdefault(r["kind"], []).append(r)
    titles = {"key": "Keys: push button from pin to GND (Pi pull-up)",
              "switch": "Latching switches: pin to GND (Pi pull-up)",
              "lamp": "Lamps: pin -> 680R -> LED -> GND (about 2 mA)"}
    for kind in ("key", "switch", "lamp"):
        if kind not in by_kind:
            continue
        out.append(f'  subgraph cluster_{kind} {{ label="{_esc(titles[kind])}"; fontsize=13; '
                   'style=rounded; color="#888888";')
        for r in by_kind[kind]:
            colour = _KIND_COLOURS[kind]
            out.append(f'    n{r["pin"]} [shape=box, style="rounded,filled", fillcolor="{colour}", '
                       f'label="{_esc(r["what"])}\\n{_esc(r["label"])}"];')
        out.append("  }")
        for r in by_kind[kind]:
            out.append(f'  header:p{r["pin"]}:e -> n{r["pin"]}:w;')
    for chain in board.chains.values():
        out.append(_chain_node(board, chain))
        for role, pin in chain.pins.items():
            number = next(r["pin"] for r in rows if r["name"] == pin)
            out.append(f'  header:p{number}:e -> chain_{chain.name}:{role}:w '
                       f'[label="{role}", fontsize=11, color="#2f7d32"];')
        three = next(r["pin"] for r in rows if r["name"] == "3V3")
        out.append(f'  header:p{three}:e -> chain_{chain.name}:vcc:w '
                   '[label="3V3", fontsize=11, color="#c62828"];')
    gnd = next(r["pin"] for r in rows if r["name"] == "GND")
    out.append('  ground [shape=box, style="filled", fillcolor="#d0d0d0", '
               'label="Common ground\\nkey commons, LED returns, chain GND\\n'
               '(any GND pin: 6, 9, 14, 20, 25, 30, 34, 39)"];')
    out.append(f'  header:p{gnd}:e -> ground:w [color="#555555"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _chain_node(board: Board, chain) -> str:
    rows = [r for r in chain_map(board) if r["chain"] == chain.name]
    is_in = chain.type == "74HC165"
    head = (f'{chain.type} chain "{chain.name}": {chain.chips} chips, {chain.bits} bits'
            + (f", settle {chain.settle_us} us" if is_in else ""))
    cells = [f'<tr><td colspan="3" bgcolor="#2f7d32"><font color="white"><b>{_esc(head)}</b>'
             '</font></td></tr>']
    for role in chain.pins:
        cells.append(f'<tr><td port="{role}" colspan="3" align="left">{_esc(role)}: '
                     f'{_esc(chain.pins[role])} to '
                     f'{_esc((CHAIN_ROLE_TEXT_595 if not is_in else {}).get(role, CHAIN_ROLE_TEXT[role]))}'
                     '</td></tr>')
    cells.append('<tr><td port="vcc" colspan="3" align="left">VCC (pin 16) of every chip from 3V3, '
                 '100 nF each</td></tr>')
    if chain.chips <= 4:
        cells.append('<tr><td><b>chip</b></td><td><b>bit, input</b></td><td><b>wired to</b></td></tr>')
        for r in rows:
            cells.append(f'<tr><td>{r["ref"]}</td><td>{r["bit"]}, {r["chip_pin"]} '
                         f'(pin {r["chip_pin_number"]})</td>'
                         f'<td align="left">{_esc(r["what"] or "-")} {_esc(r["label"])}</td></tr>')
    else:
        cells.append('<tr><td><b>chip</b></td><td><b>bits</b></td><td><b>wired to</b></td></tr>')
        for chip in range(chain.chips):
            bits = [r for r in rows if r["chip"] == chip]
            used = [r["what"] for r in bits if r["what"]]
            text = (f"{used[0]} .. {used[-1]} ({len(used)})" if len(used) > 1 else
                    used[0] if used else "unused")
            cells.append(f'<tr><td>{bits[0]["ref"]}</td><td>{bits[0]["bit"]}-{bits[-1]["bit"]}</td>'
                         f'<td align="left">{_esc(text)}</td></tr>')
    if is_in:
        cascade = ("Cascade: QH (pin 9) of each chip to SER (pin 10) of the chip before it; "
                   + (f"marker chip after the last, inputs strapped to 0x{chain.marker:02X}, "
                      "its SER to GND" if chain.marker_bits else "SER of the last chip to 3V3"))
    else:
        cascade = ("Cascade: QH&#39; (pin 9) of each chip to SER (pin 14) of the chip after it; "
                   + ("OE (pin 13) to lamps.oe with 10k to 3V3" if board.oe else "OE (pin 13) to GND")
                   + ", SRCLR (pin 10) to 3V3")
    cells.append(f'<tr><td colspan="3" align="left">{cascade}</td></tr>')
    if not is_in:
        cells.append('<tr><td colspan="3" align="left">Each 74HC595 drives a ULN2803 '
                     '(QA..QH to 1B..8B); lamps from +24 V to 1C..8C; COM to +24 V</td></tr>')
    return (f'  chain_{chain.name} [label=<<table border="1" cellborder="1" cellspacing="0" '
            f'cellpadding="3" bgcolor="#f3faf3">{"".join(cells)}</table>>];')


def render_dot(source: str, target: Path) -> Path:
    """Run Graphviz's dot; the format is the target's suffix (svg, png)."""
    dot = shutil.which("dot")
    if dot is None:
        raise HardwareError("Graphviz's dot is not installed: apt-get install graphviz "
                            "(scripts/setup.sh installs it)")
    fmt = target.suffix.lstrip(".") or "svg"
    done = subprocess.run([dot, f"-T{fmt}", "-o", str(target)], input=source.encode(),
                          capture_output=True, timeout=120)
    if done.returncode != 0:
        raise HardwareError(f"dot failed on {target.name}: {done.stderr.decode(errors='replace')}")
    return target


# -- bill of materials ------------------------------------------------------
# value: the part's electrical values as name=number pairs ("ohms=1000 tol=5", "amps=2"),
# read by switchboard-hardware check (erc.py).
BOM_FIELDS = ("ref", "covers", "qty", "part", "part_number", "value", "unit_price_usd", "notes")


def bom_needs(board: Board) -> dict[str, int]:
    """What the board file needs, by BOM ``covers`` tag and quantity."""
    keys = list(board.keys.values())
    direct_keys = [k for k in keys if k.wire.pin]
    direct_lamps = [lamp for lamp in board.lamps.values() if lamp.wire.pin]
    chips = Counter()
    key_chips = 0
    for c in board.chains.values():
        chips[c.type] += c.chips + (1 if c.marker_bits else 0)   # the marker chip too
        key_chips += c.chips if c.type == "74HC165" else 0
    from .erc import layout_needs
    extra = layout_needs(board)
    needs = {
        "pi": 1,
        "pi-psu": 1,
        "header-cable": 1,
        "key-momentary": sum(not k.latching for k in keys),
        "key-latching": sum(k.latching for k in keys),
        # Lamps on header pins are LEDs (3.3 V, a few mA); lamps on a 74HC595
        # chain are 24 V bulbs (or LEDs with resistors) through a ULN2803.
        "lamp-led": len(direct_lamps),
        "lamp-24v": len(board.lamps) - len(direct_lamps),
        "usb-audio": board.positions,
        "headset": board.positions,
        # A 1k in series with every key on a header pin: the pin survives a key
        # wired to 3V3 by mistake, and static from a long run.
        "key-series-1k": len(direct_keys),
        # Keys on header pins without an internal pull need one on the board.
        "pullup-10k": sum(1 for k in direct_keys if k.wire.pull is None) + 8 * key_chips,
        "lamp-resistor": len(direct_lamps),
        "chip:74HC165": chips["74HC165"],
        "chip:74HC595": chips["74HC595"],
        "uln2803": chips["74HC595"],
        "decoupling-100n": chips["74HC165"] + chips["74HC595"] + extra.get("buffer:74HC14", 0)
        + extra.get("buffer:74LVC244", 0),
        "socket-dip16": chips["74HC165"] + chips["74HC595"],
        "socket-dip18": chips["74HC595"],
        "chain-cable": len(board.chains),
        "lamp-psu-24v": 1 if chips["74HC595"] else 0,
        **extra,        # buffers, termination, pulls, fuses, mains, RTC: erc.layout_needs
    }
    return {k: v for k, v in needs.items() if v}


def bom_path(board: Board) -> Path:
    return hardware_dir() / f"bom-{board.name}.csv"


def hardware_dir() -> Path:
    return boards_dir().parent / "hardware"


def read_bom(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != BOM_FIELDS:
                raise ConfigError(path, "header", reader.fieldnames, ",".join(BOM_FIELDS))
            rows = list(reader)
    except OSError as e:
        raise ConfigError(path, "", None, None,
                          message=f"{path}: cannot read bill of materials: {e.strerror}") from None
    for i, row in enumerate(rows, start=2):
        for field in ("qty", "unit_price_usd"):
            try:
                value = float(row[field])
                if value < 0 or (field == "qty" and value != int(value)):
                    raise ValueError
            except (TypeError, ValueError):
                raise ConfigError(path, f"line {i}.{field}", row[field],
                                  "a whole number" if field == "qty" else
                                  "a price in US dollars, 0 or more") from None
        row["qty"] = int(float(row["qty"]))
        row["unit_price_usd"] = float(row["unit_price_usd"])
        refs = _ref_count(row["ref"])
        if refs is not None and refs != row["qty"]:
            raise ConfigError(path, f"line {i}.ref", row["ref"],
                              f"{row['qty']} reference designators to match qty {row['qty']} "
                              f"(the range names {refs})")
    return rows


def _ref_count(ref: str) -> int | None:
    """How many parts a designator names: "R1" is 1, "R20-R51" is 32; None if free text."""
    import re
    m = re.fullmatch(r"([A-Z]+)(\d+)(?:-\1(\d+))?", ref.strip())
    if not m:
        return None
    first, last = int(m.group(2)), int(m.group(3) or m.group(2))
    return last - first + 1 if last >= first else 0


def check_bom(board: Board, rows: list[dict]) -> list[dict]:
    """Compare a BOM with what the board needs: one row per covers tag."""
    have = Counter()
    for row in rows:
        if row["covers"]:
            have[row["covers"]] += row["qty"]
    needs = bom_needs(board)
    result = []
    for tag in list(needs) + sorted(set(have) - set(needs)):
        need, got = needs.get(tag, 0), have.get(tag, 0)
        result.append(dict(covers=tag, needed=need, on_bom=got, ok=need == got))
    return result


def bom_total(rows: list[dict]) -> float:
    return round(sum(r["qty"] * r["unit_price_usd"] for r in rows), 2)


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


def generate(board: Board, out: Path, pictures=("svg",)) -> list[Path]:
    """Write a board's pin table, chain map and wiring picture into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    stem = board.name
    pins = pin_table(board)
    md = [f"# {board.title}: header pins\n",
          f"Generated from `boards/{board.path.name}` by `switchboard-hardware generate`; "
          "do not edit by hand.\n\n", markdown_table(pins, PIN_COLUMNS)]
    written.append(_write(out / f"{stem}-pins.md", "".join(md)))
    written.append(_write(out / f"{stem}-pins.csv", _csv(pins, [k for k, _ in PIN_COLUMNS])))
    if board.chains:
        rows = chain_map(board)
        md = [f"# {board.title}: chain map\n",
              f"Generated from `boards/{board.path.name}` by `switchboard-hardware generate`; "
              "do not edit by hand. In each chain the first chip listed is the one wired to "
              "the Pi, and each next chip is cascaded behind the one before.\n"]
        for chain in board.chains.values():
            crow = [r for r in rows if r["chain"] == chain.name]
            cols = list(CHAIN_COLUMNS)
            if chain.type == "74HC595":
                cols.insert(4, ("driver_out_pin", "ULN2803 out pin"))
            md.append(f"\n## Chain `{chain.name}`: {chain.chips} x {chain.type} "
                      f"({', '.join(f'{k} {v}' for k, v in chain.pins.items())})\n\n")
            md.append(markdown_table(crow, cols))
        written.append(_write(out / f"{stem}-chains.md", "".join(md)))
        written.append(_write(out / f"{stem}-chains.csv",
                              _csv(rows, ["chain", "type", "bit", "chip", "ref", "chip_pin",
                                          "chip_pin_number", "driver_out_pin", "what", "label",
                                          "active"])))
    dot = wiring_dot(board)
    written.append(_write(out / f"{stem}-wiring.dot", dot))
    for fmt in pictures:
        written.append(render_dot(dot, out / f"{stem}-wiring.{fmt}"))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _csv(rows, fields) -> str:
    import io
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return buf.getvalue()


# -- command line ------------------------------------------------------------
def _print_table(rows, columns):
    widths = [max(len(title), *(len(str(r.get(k) if r.get(k) is not None else ""))
                                for r in rows)) for k, title in columns]
    print("  ".join(t.ljust(w) for (_, t), w in zip(columns, widths)).rstrip())
    for r in rows:
        print("  ".join(str(r.get(k) if r.get(k) is not None else "").ljust(w)
                        for (k, _), w in zip(columns, widths)).rstrip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="switchboard-hardware", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    # --json is accepted after the subcommand too.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name, help):
        return sub.add_parser(name, help=help, description=help, parents=[common])

    p = add("pins", "the header pin table of a board")
    p.add_argument("board", help="board file path or shipped board name (desk, tas100)")
    p = add("chains", "the chain map of a board (chip and bit of each key/lamp)")
    p.add_argument("board")
    p = add("wiring", "draw the wiring picture (Graphviz)")
    p.add_argument("board")
    p.add_argument("-o", "--output", required=True, help="picture file: .svg or .png")
    p = add("bom", "check a bill of materials against the board file")
    p.add_argument("board")
    p.add_argument("--csv", help="BOM file (default hardware/bom-<board>.csv)")
    p = add("generate", "write tables and pictures for boards into a folder")
    p.add_argument("boards", nargs="*", help="boards (default: every shipped board)")
    p.add_argument("-o", "--out", help="folder (default: hardware/)")
    p = add("schematics", "draw the building blocks' schematics (schemdraw)")
    p.add_argument("-o", "--out", help="folder (default: hardware/blocks/)")
    p = add("check", "electrical rules check of a board from its board file and BOM")
    p.add_argument("board")
    p.add_argument("--csv", help="BOM file (default hardware/bom-<board>.csv)")
    p = add("self-test", "bench self-test of a wired board (see BUILD.md)")
    from .selftest import add_arguments
    add_arguments(p)
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:         # the reader (head, less) went away: nothing to say
        return 1
    except (SwitchboardError, OSError) as e:
        if args.json:
            print(json.dumps({"ok": False, "error": str(e)}))
        else:
            print(f"switchboard-hardware: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.cmd == "pins":
        board = load_board(find_board(args.board))
        rows = pin_table(board)
        if args.json:
            print(json.dumps({"board": board.name, "pins": rows}, indent=1))
        else:
            _print_table(rows, PIN_COLUMNS)
        return 0
    if args.cmd == "chains":
        board = load_board(find_board(args.board))
        rows = chain_map(board)
        if args.json:
            print(json.dumps({"board": board.name, "chains": rows}, indent=1))
        elif not rows:
            print(f"{board.name}: no chains; every key and lamp is on a header pin")
        else:
            _print_table(rows, [("chain", "Chain")] + CHAIN_COLUMNS)
        return 0
    if args.cmd == "wiring":
        board = load_board(find_board(args.board))
        target = Path(args.output)
        if target.suffix == ".dot":
            target.write_text(wiring_dot(board), encoding="utf-8")
        else:
            render_dot(wiring_dot(board), target)
        print(json.dumps({"ok": True, "written": str(target)}) if args.json else f"wrote {target}")
        return 0
    if args.cmd == "bom":
        board = load_board(find_board(args.board))
        path = Path(args.csv) if args.csv else bom_path(board)
        rows = read_bom(path)
        result = check_bom(board, rows)
        ok = all(r["ok"] for r in result)
        if args.json:
            print(json.dumps({"board": board.name, "bom": str(path), "ok": ok,
                              "total_usd": bom_total(rows), "check": result}, indent=1))
        else:
            _print_table([dict(r, ok="ok" if r["ok"] else "WRONG") for r in result],
                         [("covers", "Part for"), ("needed", "Board needs"), ("on_bom", "On BOM"),
                          ("ok", "")])
            print(f"{path.name}: {'matches' if ok else 'does NOT match'} {board.path.name}; "
                  f"rough total ${bom_total(rows):.2f}")
        return 0 if ok else 1
    if args.cmd == "generate":
        boards = args.boards or [p.stem for p in shipped_boards()]
        out = Path(args.out) if args.out else hardware_dir()
        written = []
        for name in boards:
            written += generate(load_board(find_board(name)), out)
        if args.json:
            print(json.dumps({"ok": True, "written": [str(p) for p in written]}))
        else:
            for p in written:
                print(f"wrote {p}")
        return 0
    if args.cmd == "schematics":
        from .schematics import draw_all
        out = Path(args.out) if args.out else hardware_dir() / "blocks"
        written = draw_all(out)
        if args.json:
            print(json.dumps({"ok": True, "written": [str(p) for p in written]}))
        else:
            for p in written:
                print(f"wrote {p}")
        return 0
    if args.cmd == "check":
        from .erc import run
        board = load_board(find_board(args.board))
        return run(board, Path(args.csv) if args.csv else bom_path(board), args.json)
    if args.cmd == "self-test":
        from .selftest import run_from_args
        return run_from_args(args)
    raise AssertionError(args.cmd)


if __name__ == "__main__":
    sys.exit(main())
