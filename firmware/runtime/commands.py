"""Control commands: the one way a command is declared and registered.

A command is a name, the arguments it takes and an async handler. Each
argument is declared with its name, its type, whether it is required, its
default, its range or choices, and, for a file, the folder it must lie in::

    Command("lamp-test", self._lamp_test,
            args=(Arg("step_s", float, default=0.25, min=0.01, max=10,
                      expected="0.01 to 10 seconds"),
                  Arg("follow", bool)),
            help="light every lamp in turn")

The daemon keeps every command in one ``Commands`` registry: its own, the
ones each adapter offers (``Adapter.commands()``) and the control socket's
streaming ones. ``Commands.run`` checks the arguments against the
declaration (a bad one is a ``ControlError`` naming the command, the
argument, the value and what was expected) and hands the handler the checked
dict: declared arguments converted to their type, defaults filled in.
Arguments that are not declared are passed through unchanged.

Two commands may share a name when the later one ``replaces`` the earlier
(the telephony's ``ring`` over SIP replaces the simulated board's); a
replacing handler that raises ``NotMine`` hands the request on to the one it
replaced (the telephony's ``hangup`` for a line it did not ring).

A command with a ``stream`` is a following one on the control socket: when
``streams(args)`` holds, the socket calls ``stream(args, send)``, which
sends ``{"event": ...}`` lines until it is done, instead of the handler.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from firmware.errors import ControlError

log = logging.getLogger("switchboard.commands")
MAX_TEXT = 10_000   # characters in one string argument (a message's text is a few hundred)

Handler = Callable[[dict], Awaitable[Any]]
Stream = Callable[[dict, Callable[[dict], Awaitable[None]]], Awaitable[None]]


class BoardName:
    """An argument that names something on the board (a line, a key): its
    value is a string the board knows, checked by ``Commands`` against it."""

    def __init__(self, what: str):
        self.__name__ = what

    def __repr__(self):
        return self.__name__.upper()


#: A line's number on this board ("201"); an unknown one lists the board's lines.
LINE = BoardName("line")
#: A key's name on this board ("line-201", "p1-hold"); an unknown one says how keys are named.
KEY = BoardName("key")


class NotMine(Exception):
    """Raised by a replacing handler: the command it replaced should answer this request."""


@dataclass(frozen=True)
class Arg:
    """One argument of a control command.

    ``type`` is ``str``, ``int``, ``float``, ``bool``, ``dict``, ``list``,
    ``Path`` (with ``under``: a function returning the folder the file must
    resolve into) or ``LINE``/``KEY`` (checked against the board).
    """

    name: str
    type: Any = str
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    under: Callable[[], Path] | None = None
    expected: str = ""
    help: str = ""

    def describe(self) -> str:
        """What a good value looks like, for error messages."""
        if self.expected:
            return self.expected
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        kind = {bool: "true or false", dict: "an object", list: "a list"}.get(
            self.type, getattr(self.type, "__name__", str(self.type)))
        if self.min is not None and self.max is not None:
            return f"{kind} from {self.min:g} to {self.max:g}"
        if self.min is not None:
            return f"{kind} of at least {self.min:g}"
        if self.max is not None:
            return f"{kind} of at most {self.max:g}"
        return kind


@dataclass(frozen=True)
class Command:
    """A control command: its name, declared arguments and handler."""

    name: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    help: str = ""
    replaces: bool = False
    stream: Stream | None = None
    streams: Callable[[dict], bool] = field(default=lambda args: True)


class Commands:
    """Every control command the daemon answers, by name."""

    def __init__(self, board=None):
        self.board = board
        self._by_name: dict[str, list[Command]] = {}

    def add(self, command: Command) -> None:
        """Register ``command``; a second one of a name must say it ``replaces`` the first."""
        have = self._by_name.get(command.name, [])
        if have and not command.replaces:
            raise ValueError(f"control command {command.name!r} is registered twice")
        if command.replaces and not have:
            raise ValueError(f"control command {command.name!r} replaces nothing")
        self._by_name[command.name] = have + [command]

    def get(self, name: str) -> Command | None:
        have = self._by_name.get(name)
        return have[-1] if have else None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __contains__(self, name) -> bool:
        return name in self._by_name

    def find(self, name: str) -> Command:
        cmd = self.get(name)
        if cmd is None:
            raise ControlError(f"unknown command {name!r}; commands: " + ", ".join(self.names()))
        return cmd

    async def run(self, name: str, args: dict | None) -> Any:
        """Check ``args`` against the command's declaration and run its handler."""
        chain = self._by_name.get(name) or [self.find(name)]
        log.debug("command %s %r", name, args)
        for cmd in reversed(chain):
            try:
                return await cmd.handler(self.check(cmd, args or {}))
            except NotMine:
                continue
        raise ControlError(f"{name}: nothing answers this request")

    def check(self, cmd: Command, args: dict) -> dict:
        """``args`` with every declared argument checked and converted, defaults filled in."""
        if not isinstance(args, dict):
            raise ControlError(f"{cmd.name}: arguments must be an object, not {args!r}")
        out = dict(args)
        for a in cmd.args:
            v = args.get(a.name)
            if v is None:
                if a.required:
                    raise ControlError(f"{cmd.name}: {a.name}: missing (expected {a.describe()})")
                if a.default is not None:
                    out[a.name] = a.default
                continue
            out[a.name] = self._value(cmd, a, v)
        return out

    def _bad(self, cmd, a, v, expected=None):
        shown = repr(v)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return ControlError(f"{cmd.name}: {a.name} = {shown}: expected {expected or a.describe()}")

    def _value(self, cmd: Command, a: Arg, v):
        t = a.type
        if isinstance(t, BoardName):
            return self._board_name(cmd, a, v)
        if t is bool:
            if not isinstance(v, bool):
                raise self._bad(cmd, a, v)
            return v
        if t in (dict, list):
            if not isinstance(v, t):
                raise self._bad(cmd, a, v)
            return v
        if isinstance(v, (dict, list, bool)):
            raise self._bad(cmd, a, v)
        if t in (str, Path):
            v = self._text(cmd, a, v, t)
        if t is int:
            try:
                n = int(v)
                if isinstance(v, float) and n != v:
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                raise self._bad(cmd, a, v) from None
            v = n
        elif t is float:
            try:
                f = float(v)
            except (TypeError, ValueError, OverflowError):
                raise self._bad(cmd, a, v) from None
            if not math.isfinite(f):
                raise self._bad(cmd, a, v)
            v = f
        elif t is Path:
            v = self._path(cmd, a, v)
        elif t is not str:
            raise TypeError(f"{cmd.name}: argument {a.name}: no check for type {t!r}")
        if a.choices and v not in a.choices:
            raise self._bad(cmd, a, v)
        if isinstance(v, (int, float)) and (
                (a.min is not None and v < a.min) or (a.max is not None and v > a.max)):
            raise self._bad(cmd, a, v)
        return v

    def _text(self, cmd, a, v, t) -> str:
        """A string argument: text (a number is taken as its digits), at most
        ``MAX_TEXT`` characters, no control characters but tab and newline; a
        path is a non-empty string."""
        if isinstance(v, (int, float)) and not isinstance(v, bool) and t is str:
            v = str(v)
        if not isinstance(v, str) or (t is Path and not v):
            raise self._bad(cmd, a, v, f"{a.describe()} (a string)" if t is str else None)
        if len(v) > MAX_TEXT:
            raise ControlError(f"{cmd.name}: {a.name}: {len(v)} characters; expected at most "
                               f"{MAX_TEXT}")
        if any(c < " " and c not in "\t\n" or c == "\x7f" for c in v):
            raise self._bad(cmd, a, v, f"{a.describe()} without control characters")
        return v

    def _path(self, cmd, a, v) -> Path:
        p = Path(str(v))
        if a.under is None:
            return p
        root = Path(a.under()).resolve()
        full = (root / p).resolve()
        if full != root and root not in full.parents:
            raise self._bad(cmd, a, v, f"a file in {root}")
        return full

    def _board_name(self, cmd, a, v) -> str:
        v = str(v)
        board = self.board
        if board is None:
            return v
        if a.type is LINE and v not in board.line_by_number:
            raise ControlError(f"no line {v!r} on the {board.name} board; lines: "
                               + ", ".join(ln.number for ln in board.lines))
        if a.type is KEY and v not in board.keys:
            raise ControlError(f"no key {v!r} on the {board.name} board; keys are named "
                               "as in the board file: line-201, p1-hold, p1-release, p1-stamp, "
                               "p1-dial-5, p1-dial-star, secrecy, split")
        return v
