"""switchboard-blank: the lamps go dark after a daemon that could not blank them died.

A killed process leaves its pins as it had them: outputs at their last level,
with no reservation (the kernel frees the lines). That is the state set up
here on the simulated board's pins, before the helper runs on the same pins.
"""

import json
import os
import signal
import subprocess

import pytest

from firmware.config.board import find_board, load_board
from firmware.panel.blank import blank, lamp_pins
from firmware.panel.sim import SimBoard

from conftest import project_env, python_cmd


def left_lit(sim: SimBoard):
    """Every lamp pin as a killed daemon may leave it: an output, lamp lit; /OE low."""
    for lamp in sim.board.lamps.values():
        if lamp.wire.pin:
            pin = sim.factory.pin(lamp.wire.pin)
            pin.function = "output"
            pin.state = not lamp.wire.active_low
    if sim.oe_pin is not None:
        sim.oe_pin.function = "output"
        sim.oe_pin.state = 0.0          # /OE low: the latched pattern shows


def test_ok__tas100_oe_is_driven_high_then_left_to_its_pull_up():
    board = load_board(find_board("tas100"))
    sim = SimBoard(board)
    left_lit(sim)
    sim.oe_pin.clear_states()
    assert sim.lamps_enabled and sim.lamp_lit("fault")
    done = blank(board, sim.factory)
    assert done[0] == "74HC595 /OE on GPIO12" and "lamp fault on GPIO26" in done
    assert not sim.lamps_enabled and sim.oe_duty == 0.0
    # driven high (dark) first, so it is never low while it changes to an input
    assert [s.state for s in sim.oe_pin.states][1] == 1.0
    assert sim.oe_pin.function == "input" and sim.factory.pin("GPIO26").function == "input"
    assert not sim.lamp_lit("fault")


def test_ok__desk_lamps_on_pins_are_driven_off_and_left_undriven():
    board = load_board(find_board("desk"))
    sim = SimBoard(board)
    left_lit(sim)
    assert all(sim.lamp_lit(n) for n in board.lamps)
    done = blank(board, sim.factory)
    assert len(done) == len(board.lamps) == len(lamp_pins(board))
    for lamp in board.lamps.values():
        pin = sim.factory.pin(lamp.wire.pin)
        assert pin.function == "input", lamp.name
        assert not sim.lamp_lit(lamp.name), lamp.name
    # the pins are free again: the next daemon can claim them
    blank(board, sim.factory)


def run_blank(*args, **env):
    return subprocess.run(python_cmd("firmware.panel.blank", *args), capture_output=True,
                          text=True, timeout=60, env=project_env(**env))


def test_ok__the_command_blanks_the_board_named_by_the_service_environment():
    r = run_blank(SWITCHBOARD_BOARD="tas100", GPIOZERO_PIN_FACTORY="mock",
                  LG_WD="/nonexistent/switchboard")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ("switchboard-blank: lamps dark: 74HC595 /OE on GPIO12, "
                                "lamp fault on GPIO26"), r.stderr


def test_fail__a_bad_board_or_no_gpio_is_one_line_and_status_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((find_board("tas100")).read_text().replace('oe = "GPIO12"', 'oe = "GPIO99"'))
    r = run_blank("--board", bad, GPIOZERO_PIN_FACTORY="mock")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "bad.toml" in r.stderr and "lamps.oe" in r.stderr and "GPIO99" in r.stderr, r.stderr
    r = run_blank("--board", "tas100", "--pin-factory", "no-such-factory")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("switchboard-blank: no GPIO to blank the lamps with"), r.stderr


@pytest.mark.parametrize("board, sig", [("tas100", signal.SIGTERM), ("desk", signal.SIGINT)])
def test_ok__the_daemon_stopped_by_sigterm_or_sigint_leaves_every_lamp_dark(tmp_path, board, sig):
    """What the build guides' lamp tests say: Ctrl-C or kill blanks the lamps by itself (only a
    killed daemon needs switchboard-blank). OE driven high then left to its pull-up; lamps on
    pins left undriven inputs."""
    env = project_env(SWITCHBOARD_SOCKET=str(tmp_path / "run" / "control.sock"))
    proc = subprocess.Popen(python_cmd("daemon_lamps", "--sim", "--board", board, "--no-web",
                                       "--data-dir", tmp_path / "var"),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or "lit" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, "daemon ended early: " + "".join(lines) + proc.stderr.read()
            if line.startswith("{"):
                lines.append(json.loads(line))
        assert lines[-1] == {"lit": ["fault", "line-201"]}
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    after = json.loads(out.strip().splitlines()[-1])["after"]
    assert after["status"] == 0, err
    assert after["lit"] == [] and after["enabled"] is (board == "desk")  # no OE: tied enabled
    assert after["oe"] == ("input" if board == "tas100" else None)
    assert set(after["lamp_pins"].values()) == {"input"}, after["lamp_pins"]


def test_ok__verbose_and_the_journal_format_as_the_daemon_has_them(tmp_path):
    r = run_blank("-v", "--board", "tas100", GPIOZERO_PIN_FACTORY="mock")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("switchboard-blank: DEBUG switchboard.blank: board tas100 from "), lines
    assert lines[-1].startswith("switchboard-blank: INFO switchboard.blank: lamps dark: "), lines
    # Run by the unit (ExecStopPost=), stderr is the journal: priorities, no program name.
    with open(tmp_path / "journal", "w") as journal:
        st = os.fstat(journal.fileno())
        p = subprocess.run(python_cmd("firmware.panel.blank", "--board", "tas100"), stderr=journal,
                           timeout=60, env=project_env(GPIOZERO_PIN_FACTORY="mock",
                                                       JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"))
    assert p.returncode == 0
    assert (tmp_path / "journal").read_text() == ("<6>lamps dark: 74HC595 /OE on GPIO12, "
                                                  "lamp fault on GPIO26\n")
