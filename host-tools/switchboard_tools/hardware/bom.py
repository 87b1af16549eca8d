"""Bills of materials: what a board file needs, and whether its BOM carries it."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from firmware.config.board import Board
from firmware.config.shipped import shipped_dir
from firmware.errors import ConfigError


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
    from switchboard_tools.hardware.erc import layout_needs
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
        "pullup-10k": sum(1 for k in direct_keys if k.wire.pull is None)
        + 8 * key_chips,
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
    return shipped_dir("hardware")


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


