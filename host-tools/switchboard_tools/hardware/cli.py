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
import json
import sys
from pathlib import Path

from firmware.config.board import Board, find_board, load_board, shipped_boards
from firmware.errors import SwitchboardError
from firmware.logs import add_verbose

from switchboard_tools._common import run
from switchboard_tools.hardware.bom import bom_path, bom_total, check_bom, hardware_dir, read_bom
from switchboard_tools.hardware.drawings import render_dot, wiring_dot
from switchboard_tools.hardware.tables import (CHAIN_COLUMNS, PIN_COLUMNS, _csv,
                                              chain_map, markdown_table, pin_table)



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
    add_verbose(ap)
    add_verbose(common, sub=True)
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
    from switchboard_tools.hardware.selftest import add_arguments
    add_arguments(p)
    args = ap.parse_args(argv)
    return run("switchboard-hardware", lambda: _run(args), args, errors=(SwitchboardError, OSError))


def _report_written(args, written) -> int:
    """Say which files a command wrote: JSON, or a line each."""
    if args.json:
        print(json.dumps({"ok": True, "written": [str(p) for p in written]}))
    else:
        for p in written:
            print(f"wrote {p}")
    return 0


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
        return _report_written(args, written)
    if args.cmd == "schematics":
        from switchboard_tools.hardware.schematics import draw_all
        out = Path(args.out) if args.out else hardware_dir() / "blocks"
        return _report_written(args, draw_all(out))
    if args.cmd == "check":
        from switchboard_tools.hardware.erc import run
        board = load_board(find_board(args.board))
        return run(board, Path(args.csv) if args.csv else bom_path(board), args.json)
    if args.cmd == "self-test":
        from switchboard_tools.hardware.selftest import run_from_args
        return run_from_args(args)
    raise AssertionError(args.cmd)


if __name__ == "__main__":
    sys.exit(main())

