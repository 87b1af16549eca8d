"""The daemon's options: the command line and environment, read and checked once.

``parse_args`` reads the command line; ``load(args)`` turns it (and the
environment it names: ``SWITCHBOARD_TZ``) into one ``Config``, with the board
file and site file loaded and checked. Nothing else in the daemon reads its
arguments or its environment: the composition root (``firmware.app``) hands
each part its slice (``config.web``, ``config.timeclock``, ``config.site``...).
A bad option is a ``ConfigError`` naming it, the value and what was expected.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

from firmware.config.board import Board, find_board, load_board
from firmware.errors import ConfigError
from firmware.logs import add_verbose
from firmware.records.times import zone

#: Dead-box slips and call records are kept at least this long.
MIN_RETENTION_DAYS = 30


@dataclass(frozen=True)
class WebConfig:
    """The board's view (``firmware.runtime.web``)."""
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8557
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimeClockConfig:
    """The time clock, the rack and the slip printer (``firmware.timeclock.adapter``)."""
    printer: dict | None = None
    operators: dict = field(default_factory=dict)
    retention_days: int = MIN_RETENTION_DAYS
    #: How the clock is known to be set (--clock-source): "system", "set", "unset",
    #: or None: "system" on real pins, "set" on the simulated board.
    clock_source: str | None = None


@dataclass(frozen=True)
class Config:
    """Everything the daemon was asked to do, checked."""
    board: Board
    data_dir: Path
    socket: Path | None = None
    sim: bool = False
    pin_factory: str | None = None
    web: WebConfig = WebConfig()
    site: object = None                   # firmware.config.site.Site, or None: no telephony
    site_path: str | None = None
    sip_port: int | None = None
    timeclock: TimeClockConfig = TimeClockConfig()
    #: How long dead-box slips and call records are kept (--retention-days).
    retention_days: int = MIN_RETENTION_DAYS
    #: The service's local time zone (SWITCHBOARD_TZ): scheduled calls, figures' days.
    tz: tzinfo | None = None
    verbose: bool = False


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="switchboard",
        description="Run an answering-service switchboard: keys and lamps on GPIO, "
                    "a control socket for switchboard-diag, and the board's view.")
    ap.add_argument("--board", default=os.environ.get("SWITCHBOARD_BOARD", "desk"),
                    help="board file, or a shipped board's name (desk, tas100); default desk")
    ap.add_argument("--sim", action="store_true",
                    help="run the simulated board (gpiozero MockFactory) instead of real pins")
    ap.add_argument("--pin-factory", default=None,
                    help="gpiozero pin factory (lgpio, rpigpio, pigpio, native); "
                         "default: GPIOZERO_PIN_FACTORY or gpiozero's choice")
    ap.add_argument("--socket", default=None, help="control socket path (default: "
                    "$SWITCHBOARD_SOCKET, /run/switchboard/control.sock or a per-user one)")
    ap.add_argument("--web-allow-host", action="append", default=[], metavar="NAME",
                    help="another name the view may be reached by (e.g. the Pi's LAN DNS "
                         "name); repeatable")
    ap.add_argument("--web-host", default="127.0.0.1",
                    help="address the board's view listens on (default 127.0.0.1)")
    ap.add_argument("--web-port", type=int, default=8557,
                    help="port of the board's view (0 picks a free one; default 8557)")
    ap.add_argument("--no-web", action="store_true", help="do not serve the board's view")
    ap.add_argument("--site", default=os.environ.get("SWITCHBOARD_SITE"),
                    help="site file (trunks, numbers, headsets): starts the telephony, e.g. "
                         "boards/desk.site.toml; without it calls are only simulated")
    ap.add_argument("--sip-port", type=int, default=None,
                    help="override the site file's front port (0 picks a free one)")
    ap.add_argument("--data-dir", default=None,
                    help="where records are kept (default: $SWITCHBOARD_DATA or ./var)")
    g = ap.add_argument_group("time clock and slip printer")
    g.add_argument("--printer", default=os.environ.get("SWITCHBOARD_PRINTER"),
                   help="the slip printer's serial port (ESC/POS), e.g. /dev/serial0; "
                        "default $SWITCHBOARD_PRINTER, or none (stamps are only stored)")
    g.add_argument("--printer-speed", type=int, default=9600,
                   help="its speed in baud, as on its self-test slip (default 9600)")
    g.add_argument("--paper-mm", type=int, default=58, help="paper width: 58, 76 or 80 mm")
    g.add_argument("--retention-days", type=int, default=MIN_RETENTION_DAYS,
                   help="keep dead-box slips and call records this many days (at least 30)")
    g.add_argument("--operator", action="append", default=[], metavar="POSITION=NAME",
                   help='operator at a position, for the answer phrase: "1=Becky" (repeat)')
    g.add_argument("--clock-source", choices=("system", "set", "unset"), default=None,
                   help="how the daemon knows the clock is set for the time clock's stamps: "
                        "system (NTP-synchronised or a real-time clock; the default on GPIO), "
                        "set or unset (simulated; the simulated board's default is set)")
    add_verbose(ap)
    return ap


def parse_args(argv=None) -> argparse.Namespace:
    return parser().parse_args(argv)


def load(args: argparse.Namespace, environ=None) -> Config:
    """The checked ``Config`` of parsed ``args``; ``ConfigError`` names a bad option."""
    env = os.environ if environ is None else environ
    board = load_board(find_board(args.board))
    if args.retention_days < MIN_RETENTION_DAYS:
        raise ConfigError("command line", "--retention-days", args.retention_days,
                          f"at least {MIN_RETENTION_DAYS} days")
    site = None
    if args.site:
        from firmware.config.site import load_site
        site = load_site(args.site, board)
    return Config(
        board=board,
        # Absolute: helpers such as Kamailio run in a directory of their own.
        data_dir=Path(args.data_dir or env.get("SWITCHBOARD_DATA", "var")).resolve(),
        socket=Path(args.socket) if args.socket else None,
        sim=args.sim, pin_factory=args.pin_factory,
        web=WebConfig(enabled=not args.no_web, host=args.web_host, port=args.web_port,
                      allowed_hosts=tuple(args.web_allow_host)),
        site=site, site_path=args.site, sip_port=args.sip_port,
        timeclock=TimeClockConfig(printer=_printer(args), operators=_operators(args.operator),
                                  retention_days=args.retention_days,
                                  clock_source=args.clock_source),
        retention_days=args.retention_days,
        tz=zone(env.get("SWITCHBOARD_TZ"), "SWITCHBOARD_TZ", ""),
        verbose=args.verbose,
    )


def _printer(args) -> dict | None:
    if not args.printer:
        return None
    from firmware.timeclock.printer import printer_config
    return printer_config({"port": args.printer, "speed": args.printer_speed,
                           "paper_mm": args.paper_mm}, "command line", "--printer")


def _operators(texts) -> dict:
    ops = {}
    for text in texts:
        pos, sep, name = text.partition("=")
        if not sep or not pos.strip().isdigit() or not name.strip():
            raise ConfigError("command line", "--operator", text, "POSITION=NAME, e.g. 1=Becky")
        ops[int(pos)] = name.strip()
    return ops
