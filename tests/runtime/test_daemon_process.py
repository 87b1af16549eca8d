"""The daemon started as a process, and the diagnostic tool run as a process against it."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import project_env, python_cmd
from procs import add_customer


class DaemonProcess:
    def __init__(self, tmp_path, board="desk", extra=()):
        self.sock = tmp_path / "run" / "control.sock"
        self.env = project_env(SWITCHBOARD_SOCKET=str(self.sock))
        self.proc = subprocess.Popen(
            python_cmd("firmware.runtime.daemon", "--sim", "--board", board, "--no-web",
                       "--data-dir", tmp_path / "var", *extra),
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "ready" not in line:
            self.proc.kill()
            raise AssertionError(f"daemon did not start: {line}{self.proc.stderr.read()}")
        self.ready_line = line

    def diag(self, *args, check=True, timeout=20):
        r = subprocess.run(python_cmd("switchboard_tools.diag", *args), env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"diag {args} failed: {r.stderr}")
        return r

    def json(self, *args):
        return json.loads(self.diag("--json", *args).stdout)

    def follow(self, command, act):
        """Run a following diag command (4 events, 10 s at most) while ``act()``
        works the board; returns the JSON lines it printed."""
        follower = subprocess.Popen(python_cmd("switchboard_tools.diag", "--json", command,
                                               "--count", "4", "--seconds", "10"),
                                    env=self.env, stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        act()
        out, _ = follower.communicate(timeout=15)
        return [json.loads(line) for line in out.splitlines()]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def daemon(tmp_path):
    d = DaemonProcess(tmp_path)
    yield d
    d.stop()


def line_of(status, number):
    return next(ln for ln in status["lines"] if ln["number"] == number)


def test_ok__ring_answer_hold_release_through_the_diag_tool(daemon):
    assert daemon.json("ring", "201", "--caller", "5551234")["state"] == "ringing"
    s = daemon.json("status")
    assert line_of(s, "201")["state"] == "ringing" and s["lamps"]["line-201"]["cadence"] == "flash"
    assert line_of(s, "201")["caller"] == "5551234"
    daemon.diag("tap", "line-201")
    s = daemon.json("status")
    assert line_of(s, "201")["state"] == "operator"
    assert s["lamps"]["line-201"]["cadence"] == "steady"
    assert s["positions"][0]["line"] == "201"
    daemon.diag("tap", "p1-hold")
    assert daemon.json("status")["lamps"]["line-201"]["cadence"] == "wink"
    daemon.diag("tap", "line-201")
    daemon.diag("tap", "p1-release")
    s = daemon.json("status")
    assert line_of(s, "201")["state"] == "idle" and s["lamps"]["line-201"]["cadence"] == "dark"


def test_ok__human_status_names_every_line_and_switch(daemon):
    daemon.diag("press", "split")
    out = daemon.diag("status").stdout
    assert "split ON" in out and "secrecy off" in out
    for number in ("201", "202", "203", "204", "901", "902"):
        assert re.search(rf"^\s+{number}\s", out, re.M), out
    assert "position 2: in service" in out


def test_ok__split_and_secrecy_switches(daemon):
    daemon.diag("press", "split")        # latching keys stay down
    daemon.diag("press", "secrecy")
    daemon.json("ring", "202")
    daemon.diag("tap", "line-202")
    s = daemon.json("status")
    assert line_of(s, "202")["position"] == 2 and s["switches"] == {"secrecy": True, "split": True}
    daemon.json("ring", "203")
    daemon.json("customer-answer", "203")
    daemon.diag("tap", "line-203")      # secrecy: the operator stays off
    s = daemon.json("status")
    assert line_of(s, "203")["state"] == "customer" and s["positions"][0]["line"] is None


def test_ok__events_follow_the_board(daemon):
    events = daemon.follow("events", lambda: daemon.diag("ring", "204"))
    assert {"type": "line", "line": "204", "state": "ringing", "position": None,
            "rings": 1} in events
    assert {"type": "lamp", "lamp": "line-204", "cadence": "flash"} in events


def test_ok__key_test_reports_each_key_and_keys_do_nothing(daemon):
    def press_keys():
        daemon.json("ring", "201")
        daemon.diag("tap", "line-201")
        daemon.diag("tap", "p2-dial-star")      # a chained key on the desk board
    keys = daemon.follow("key-test", press_keys)
    assert [(k["key"], k["down"]) for k in keys] == [
        ("line-201", True), ("line-201", False), ("p2-dial-star", True), ("p2-dial-star", False)]
    assert line_of(daemon.json("status"), "201")["state"] == "ringing"


def test_ok__lamp_test_walks_every_lamp(daemon):
    r = daemon.diag("--json", "lamp-test", "--step", "0.02")
    steps = [json.loads(line) for line in r.stdout.splitlines()]
    assert [s["lamp"] for s in steps] == [
        "fault", "line-201", "msg-201", "line-202", "msg-202", "line-203", "msg-203",
        "line-204", "msg-204", "line-901", "line-902"]


def test_ok__socket_is_owner_and_group_only(daemon):
    mode = stat.S_IMODE(os.stat(daemon.sock).st_mode)
    assert mode & 0o007 == 0 and mode & 0o600 == 0o600


def test_fail__bad_requests_get_clear_errors_not_tracebacks(daemon):
    r = daemon.diag("press", "line-999", check=False)
    assert r.returncode == 2 and "no key 'line-999' on the desk board" in r.stderr
    assert "Traceback" not in r.stderr
    r = daemon.diag("ring", "555", check=False)
    assert r.returncode == 2 and "no line '555'" in r.stderr
    r = daemon.diag("call", "nosuch", check=False)
    assert "unknown command 'nosuch'" in r.stderr
    r = daemon.diag("call", "ring", "{not json", check=False)
    assert "is not JSON" in r.stderr
    # Raw garbage on the socket gets an answer and the daemon carries on.
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.sock))
        s.sendall(b"garbage\n")
        assert b"expected one JSON object" in s.recv(4096)
    assert daemon.json("status")["board"] == "desk"


def test_fail__diag_without_a_daemon(tmp_path):
    env = project_env(SWITCHBOARD_SOCKET=str(tmp_path / "none.sock"))
    r = subprocess.run(python_cmd("switchboard_tools.diag", "status"), env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "is it running?" in r.stderr and "Traceback" not in r.stderr


def test_fail__daemon_refuses_a_bad_board_file(tmp_path):
    bad = tmp_path / "bad.toml"
    from firmware.config.board import find_board
    bad.write_text(find_board("desk").read_text().replace("positions = 2", "positions = 3"))
    r = subprocess.run(python_cmd("firmware.runtime.daemon", "--sim", "--no-web", "--board", bad),
                       env=project_env(SWITCHBOARD_SOCKET=str(tmp_path / "s.sock")),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
    assert f"{bad}: board.positions = 3: expected a whole number from 1 to 2" in r.stderr
    assert "Traceback" not in r.stderr


def test_fail__second_daemon_on_the_same_socket(daemon, tmp_path):
    r = subprocess.run(python_cmd("firmware.runtime.daemon", "--sim", "--no-web"), env=daemon.env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "already serving" in r.stderr


def test_ok__without_gpio_the_daemon_says_so_and_simulates(tmp_path):
    env = project_env(SWITCHBOARD_SOCKET=str(tmp_path / "s.sock"), GPIOZERO_PIN_FACTORY="lgpio")
    p = subprocess.Popen(python_cmd("firmware.runtime.daemon", "--no-web"), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "ready" in p.stdout.readline()
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
    assert "no GPIO on this machine" in err and "simulated board" in err


def test_ok__tas100_board_runs_with_its_chains(tmp_path):
    d = DaemonProcess(tmp_path, board="tas100")
    try:
        d.json("ring", "300")
        d.diag("tap", "line-300")
        s = d.json("status")
        assert line_of(s, "300")["state"] == "operator" and len(s["lines"]) == 115
    finally:
        assert d.stop() == 0


def test_ok__call_back_a_number_from_the_customers_card(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    add_customer(data, "--emergency", "Mary=555-0101", "--alternate", "Shop=555-0199")
    d = DaemonProcess(tmp_path)
    try:
        r = d.diag("callback", "201", check=False)      # nothing seized yet
        assert r.returncode == 2 and "press an idle office line's key first" in r.stderr
        d.diag("tap", "line-901")                       # seize an office line
        r = d.json("callback", "201", "--contact", "alternate")
        assert r["dialled"] == "5550199" and r["on_line"] == "901"
        pos = d.json("status")["positions"][0]
        assert pos["line"] == "901" and pos["digits"] == "5550199#"
        r = d.diag("callback", "201", "--index", "3", check=False)
        assert r.returncode == 2 and "has 1 emergency number(s)" in r.stderr
    finally:
        d.stop()


def test_ok__tas100_on_spi_runs_with_its_chains(tmp_path):
    """driver = "spi": the simulated board's SimSpiDev stands in for spidev."""
    from firmware.config.board import find_board
    text = find_board("tas100").read_text().replace('driver = "bitbang"', 'driver = "spi"')
    spi = tmp_path / "tas100-spi.toml"
    spi.write_text(text.replace('clock = "GPIO21"', 'clock = "GPIO11"'))
    d = DaemonProcess(tmp_path, board=spi)
    try:
        d.json("ring", "300")
        d.diag("tap", "line-300")
        s = d.json("status")
        assert line_of(s, "300")["state"] == "operator" and s["faults"] == {}
    finally:
        assert d.stop() == 0


def test_fail__clock_not_set_lights_the_fault_lamp(tmp_path):
    d = DaemonProcess(tmp_path, extra=("--clock-source", "unset"))
    try:
        s = d.json("status")
        assert s["faults"]["clock"].startswith("clock not set: simulated clock")
        assert s["clock"]["set"] is False
        assert "fault" in s["lamps"] and s["lamps"]["fault"] != "dark"
    finally:
        assert d.stop() == 0
