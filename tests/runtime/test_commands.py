"""Control commands: declared arguments are checked before any handler runs."""

import asyncio
from pathlib import Path

import pytest

from firmware.config.board import find_board, load_board
from firmware.errors import ControlError
from firmware.runtime.commands import KEY, LINE, Arg, Command, Commands, NotMine

BOARD = load_board(find_board("desk"))


def registry(*commands):
    r = Commands(BOARD)
    for c in commands:
        r.add(c)
    return r


async def echo(args):
    return args


def run(r, name, **args):
    return asyncio.run(r.run(name, args))


def test_ok__arguments_are_converted_and_defaults_filled(tmp_path):
    r = registry(Command("x", echo, (Arg("line", LINE, required=True), Arg("key", KEY),
                                     Arg("n", int, default=3, min=1, max=9), Arg("s", float),
                                     Arg("on", bool, default=True), Arg("f", Path, under=lambda: tmp_path),
                                     Arg("c", choices=("a", "b")))))
    got = run(r, "x", line=201, n="4", s=2, f="sub/a.wav", c="b", extra="kept")
    assert got == {"line": "201", "n": 4, "s": 2.0, "on": True, "f": tmp_path / "sub" / "a.wav",
                   "c": "b", "extra": "kept"}
    assert run(r, "x", line="202", key="p1-hold")["key"] == "p1-hold"


@pytest.mark.parametrize("args, expected", [
    ({}, "x: line: missing (expected line)"),
    ({"line": "999"}, "no line '999' on the desk board; lines: 201, 202"),
    ({"line": "201", "key": "p9-hold"}, "no key 'p9-hold' on the desk board"),
    ({"line": "201", "n": 10}, "x: n = 10: expected int from 1 to 9"),
    ({"line": "201", "n": "many"}, "x: n = 'many': expected int"),
    ({"line": "201", "n": 1.5}, "x: n = 1.5: expected int"),
    ({"line": "201", "n": True}, "x: n = True: expected int"),
    ({"line": "201", "on": "yes"}, "x: on = 'yes': expected true or false"),
    ({"line": "201", "s": "nan"}, "x: s = 'nan': expected float"),
    ({"line": "201", "f": "../../etc/passwd"}, "x: f = '../../etc/passwd': expected a file in "),
    ({"line": "201", "f": "/etc/passwd"}, "x: f = '/etc/passwd': expected a file in "),
    ({"line": "201", "c": "z"}, "x: c = 'z': expected one of a, b"),
    ({"line": "201", "d": [1]}, None),
])
def test_fail__a_bad_argument_is_named_before_the_handler_runs(tmp_path, args, expected):
    ran = []

    async def handler(a):
        ran.append(a)
        return a
    r = registry(Command("x", handler, (Arg("line", LINE, required=True), Arg("key", KEY),
                                        Arg("n", int, min=1, max=9), Arg("s", float), Arg("on", bool),
                                        Arg("f", Path, under=lambda: tmp_path),
                                        Arg("c", choices=("a", "b")))))
    if expected is None:                   # undeclared arguments pass through
        assert run(r, "x", **args)["d"] == [1]
        return
    with pytest.raises(ControlError) as e:
        run(r, "x", **args)
    assert expected in str(e.value) and ran == []


def test_ok__a_replacing_command_hands_on_what_is_not_its_own():
    async def sip_hangup(args):
        if args["line"] != "201":
            raise NotMine
        return {"via": "sip"}

    async def board_hangup(args):
        return {"via": "board"}
    r = registry(Command("hangup", board_hangup, (Arg("line", LINE),)),
                 Command("hangup", sip_hangup, (Arg("line", LINE),), replaces=True))
    assert run(r, "hangup", line="201") == {"via": "sip"}
    assert run(r, "hangup", line="202") == {"via": "board"}
    assert r.names() == ["hangup"] and "hangup" in r


def test_fail__one_name_one_command():
    r = registry(Command("status", echo))
    with pytest.raises(ValueError, match="'status' is registered twice"):
        r.add(Command("status", echo))
    with pytest.raises(ValueError, match="'ring' replaces nothing"):
        r.add(Command("ring", echo, replaces=True))
    with pytest.raises(ControlError, match="unknown command 'nope'; commands: status"):
        run(r, "nope")
