"""Diagnostics go through ``logging``; this sets it up, once, for the daemon and every tool.

Each program calls ``setup(prog, verbose)`` first thing. Lines go to stderr
as ``prog: message`` (what the programs printed before ``logging``); with
``-v/--verbose`` the debug lines too, each naming its logger. What a person
asked for (a tool's output, the daemon's ``ready`` line) is still printed to
stdout: logging is for diagnostics only.

Modules log to ``logging.getLogger("switchboard.<part>")`` (an adapter gets its
own in its ``Context``). How a line looks is ``formatter(prog, verbose)``:
one place to change it (e.g. for journald under systemd).
"""

from __future__ import annotations

import argparse
import logging
import sys

#: The root of every logger in the project.
ROOT = "switchboard"


def formatter(prog: str, verbose: bool) -> logging.Formatter:
    """How a diagnostic line looks: ``prog: message``; verbose adds the level and logger."""
    if verbose:
        return logging.Formatter(f"{prog}: %(levelname)s %(name)s: %(message)s")
    return logging.Formatter(f"{prog}: %(message)s")


class _Handler(logging.StreamHandler):
    """The handler ``setup`` installs (so a second ``setup`` can find and replace it)."""


def setup(prog: str, verbose: bool = False, stream=None) -> logging.Logger:
    """Send the project's diagnostics to ``stream`` (stderr) for program ``prog``.

    Calling it again (a test running ``main`` twice) replaces the handler, so
    lines are never doubled. Returns the project's root logger.
    """
    root = logging.getLogger(ROOT)
    for h in list(root.handlers):
        if isinstance(h, _Handler):
            root.removeHandler(h)
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(formatter(prog, verbose))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    return root


def add_verbose(parser, sub=False) -> None:
    """``-v/--verbose`` on a program's argument parser; ``sub`` for a
    sub-command's copy (it must not undo a ``-v`` given before the sub-command)."""
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if sub else False,
                        help="also log debug diagnostics (to stderr)")
