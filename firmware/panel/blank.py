"""Blank the lamps after the daemon is gone: `switchboard-blank` (the unit's ExecStopPost=).

A daemon that exits cleanly drives the 74HC595s' /OE high and releases it
(firmware/panel/gpio.py). One that is killed (SIGKILL, the watchdog, a
crash, the OOM killer) cannot: the pin stays an output at its last level, so
the latched lamp pattern may stay lit with nobody answering. systemd runs
this after the daemon's process has ended, however it ended:

    switchboard-blank [--board NAME|FILE] [--pin-factory NAME] [-v]

It drives /OE (the board file's `[lamps] oe`) high, then leaves it an input,
which the board's 10k pull-up holds high: dark whatever happens next. Lamps
wired straight to pins (the desk board) are driven off and left inputs too:
an undriven LED is dark. The board defaults to $SWITCHBOARD_BOARD, as for
the daemon. Exit status: 0 done (or nothing to blank), 2 a bad board file
or no pins to drive (one line says which).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from firmware import logs
from firmware.config.board import Board, find_board, load_board
from firmware.errors import ConfigError

log = logging.getLogger("switchboard.blank")


def lamp_pins(board: Board) -> list[tuple[str, bool, str]]:
    """(pin, level that darkens it, what it is) for every pin that can hold a lamp lit."""
    pins = []
    if board.oe:
        pins.append((board.oe, True, "74HC595 /OE"))   # active low: high is dark
    seen = {board.oe}
    for lamp in board.lamps.values():
        pin = lamp.wire.pin
        if pin and pin not in seen:
            seen.add(pin)
            pins.append((pin, lamp.wire.active_low, f"lamp {lamp.name}"))
    return pins


def blank(board: Board, pin_factory) -> list[str]:
    """Drive each lamp pin to its dark level, then leave it an input; returns what was done."""
    from gpiozero import DigitalOutputDevice, InputDevice

    done = []
    for pin, dark_high, what in lamp_pins(board):
        out = DigitalOutputDevice(pin, initial_value=dark_high, pin_factory=pin_factory)
        out.close()
        # An input is dark too: /OE's pull-up holds it high, a bare LED is not driven.
        InputDevice(pin, pull_up=None, active_state=True, pin_factory=pin_factory).close()
        done.append(f"{what} on {pin}")
    return done


def _factory(name: str | None):
    if name:
        os.environ["GPIOZERO_PIN_FACTORY"] = name
    # lgpio keeps its pipes in LG_WD: the unit's RuntimeDirectory may be gone by now.
    wd = os.environ.get("LG_WD")
    if wd and not os.path.isdir(wd):
        os.environ["LG_WD"] = os.getcwd() if os.access(os.getcwd(), os.W_OK) else "/tmp"
    from gpiozero import Device
    with warnings.catch_warnings():  # gpiozero warns of each factory it falls back from
        warnings.simplefilter("ignore")
        return Device._default_pin_factory()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="switchboard-blank", description=__doc__.splitlines()[0])
    ap.add_argument("--board", default=os.environ.get("SWITCHBOARD_BOARD") or "desk",
                    help="board file, or a shipped board's name (default $SWITCHBOARD_BOARD, desk)")
    ap.add_argument("--pin-factory", default=None,
                    help="gpiozero pin factory (default: GPIOZERO_PIN_FACTORY or gpiozero's choice)")
    logs.add_verbose(ap)
    args = ap.parse_args(argv)
    # The daemon's format: in the journal after it (ExecStopPost=), priorities and no stamps.
    logs.setup("switchboard-blank", args.verbose)
    try:
        board = load_board(find_board(args.board))
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    log.debug("board %s from %s", board.name, board.path)
    if not lamp_pins(board):
        log.info("board %s drives no lamp from a pin: nothing to blank", board.name)
        return 0
    try:
        factory = _factory(args.pin_factory)
    except Exception as exc:  # gpiozero raises BadPinFactory, ImportError, ...
        log.error("no GPIO to blank the lamps with (%s: %s)", type(exc).__name__, exc)
        return 2
    log.debug("pin factory %s", type(factory).__name__)
    try:
        done = blank(board, factory)
    except Exception as exc:  # a pin in use or refused: say which, never a traceback
        log.error("could not blank the lamps of %s: %s: %s", Path(board.path).name,
                  type(exc).__name__, exc)
        return 2
    finally:
        factory.close()
    log.info("lamps dark: %s", ", ".join(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
