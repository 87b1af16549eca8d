"""The whole paper flow on the simulated board, through switchboard-diag run as a process.

Ring, answer, the card shown, a message typed and stamped, the message lamp
lit, the customer checks in, the message read back to the dead box, the lamp
dark; the slips come out of a printer on a pseudo-terminal along the way.
"""

import json
import re
import subprocess
import time

import pytest

from firmware.timeclock.customers import Customers
from firmware.timeclock.clock import TimeClock

from procs import stop
from conftest import project_env, python_cmd
from fakeprinter import FakePrinter
from test_customers import MARY


def diag(sock, *args, check=True):
    r = subprocess.run(python_cmd("switchboard_tools.diag", "--socket", sock, *args),
                       env=project_env(), capture_output=True, text=True, timeout=30)
    if check:
        assert r.returncode == 0, f"diag {args}: {r.stderr}"
    return r


def diag_json(sock, *args):
    return json.loads(diag(sock, *args, "--json").stdout)


def lamp(sock, name):
    return diag_json(sock, "status")["lamps"][name]["cadence"]


def wait_lamp(sock, name, cadence, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if lamp(sock, name) == cadence:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def daemon(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cs = Customers(data)
    cs.add(MARY)
    cs.close()
    sock = tmp_path / "run" / "control.sock"
    printer = FakePrinter(tmp_path / "printer")
    p = subprocess.Popen(python_cmd("firmware.runtime.daemon", "--sim", "--no-web", "--socket", sock,
                                    "--data-dir", data, "--printer", tmp_path / "printer",
                                    "--printer-speed", 19200, "--operator", "1=Becky"),
                         env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        assert "ready" in line, line + p.stderr.read()
        yield sock, data, printer, p
    finally:
        stop(p, 10)
        p.stdout.close()
        p.stderr.close()
        printer.close()


def test_ok__ring_answer_card_message_lamp_check_in_read_back_dead_box(daemon):
    sock, data, printer, proc = daemon
    assert lamp(sock, "msg-201") == "dark"
    diag(sock, "ring", "201", "--caller", "5550123")
    card = diag(sock, "card", "201").stdout
    assert "Mary's Gloves, this is Becky" in card
    diag(sock, "tap", "line-201")                               # the operator answers
    status = diag_json(sock, "status")
    shown = status["timeclock"]["cards"]["1"]
    assert shown["name"] == "Mary's Gloves" and shown["collect"][-1] == "glove size"
    diag(sock, "type-message", "Mrs Lee: are the gloves ready? 555-0123")
    diag(sock, "tap", "p1-stamp")                               # punched in the time clock
    assert wait_lamp(sock, "msg-201", "steady")
    text = diag(sock, "status").stdout
    assert "messages waiting: 201: 1" in text
    assert "position 1 card: Mary's Gloves (line 201): \"Mary's Gloves, this is Becky\"" in text
    diag(sock, "tap", "p1-release")
    got = diag_json(sock, "check-in", "201")                    # the customer calls in
    assert [m["text"] for m in got["waiting"]] == ["Mrs Lee: are the gloves ready? 555-0123"]
    slip = got["waiting"][0]["slip"]
    rb = diag_json(sock, "read-back", str(slip))["stamp"]
    assert rb["what"] == "read-back" and rb["of"] == slip
    assert wait_lamp(sock, "msg-201", "dark")
    assert diag_json(sock, "check-in", "201")["waiting"] == []
    dead = diag_json(sock, "messages", "--customer", "marys-gloves", "--what", "read-back")
    assert [s["of"] for s in dead["stamps"]] == [slip]
    text = diag(sock, "messages", "--customer", "marys-gloves").stdout
    assert re.search(rf"slip +{slip} .* message .*Mrs Lee", text)
    # The message and its read-back came out of the slip printer, in order.
    assert printer.wait_for(2)
    assert printer.numbers() == [slip, rb["slip"]]
    assert "Mary's Gloves" in printer.slips[0] and "READ BACK" in printer.slips[1]
    # Stamps are on disk: answer, message, read-back, with gapless numbers.
    proc.terminate()
    proc.wait(10)
    stamps = TimeClock(data, readonly=True).stamps()
    assert [s["what"] for s in stamps] == ["answer", "message", "read-back"]
    assert [s["slip"] for s in stamps] == [1, 2, 3]


def test_fail__diag_time_clock_errors_are_clear(daemon):
    sock, data, printer, proc = daemon
    r = diag(sock, "read-back", "42", check=False)
    assert r.returncode == 2 and "slip 42 is not waiting in the rack" in r.stderr
    r = diag(sock, "check-in", "203", check=False)
    assert r.returncode == 2 and "no customer for line 203" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args,expected", [
    (("--printer", "/dev/ttyS9", "--printer-speed", "1234"),
     "command line: --printer.speed = 1234: expected a serial speed"),
    (("--retention-days", "7"), "command line: --retention-days = 7: expected at least 30"),
    (("--operator", "Becky"), "--operator = 'Becky': expected POSITION=NAME"),
])
def test_fail__bad_time_clock_options_stop_the_daemon_with_one_line(tmp_path, args, expected):
    r = subprocess.run(python_cmd("firmware.runtime.daemon", "--sim", "--no-web", "--socket",
                                  tmp_path / "s.sock", "--data-dir", tmp_path / "data", *args),
                       env=project_env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr
