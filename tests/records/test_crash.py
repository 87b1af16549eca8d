"""SIGKILL a stamping process at random moments, many times; nothing acknowledged is lost."""

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from firmware.timeclock.rack import Rack
from firmware.records.journal import encode_line
from firmware.timeclock.clock import TimeClock

from conftest import project_env
from procs import reap

CHILD = Path(__file__).resolve().parents[1] / "support" / "crash_child.py"
KILLS = 30


def run_until_killed(data, seed, rnd) -> list[dict]:
    """Start the stamper, let it run a random while, SIGKILL it; return what it acknowledged."""
    p = subprocess.Popen([sys.executable, str(CHILD), str(data), str(seed)], env=project_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    acked, buf = [], b""
    try:
        deadline = time.monotonic() + 10
        while b"ready\n" not in buf and time.monotonic() < deadline:
            if p.poll() is not None:
                raise AssertionError(f"stamper died at start: {p.stderr.read().decode()}")
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if r:
                buf += os.read(p.stdout.fileno(), 65536)
        assert b"ready\n" in buf, "stamper did not start"
        buf = buf.split(b"ready\n", 1)[1]
        kill_at = time.monotonic() + rnd.uniform(0.02, 0.25)
        while time.monotonic() < kill_at:
            r, _, _ = select.select([p.stdout], [], [], 0.005)
            if r:
                buf += os.read(p.stdout.fileno(), 65536)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        buf += p.stdout.read()
    finally:
        reap(p)
    # Only whole lines were acknowledged (the last may be cut by the kill).
    for line in buf.split(b"\n")[:-1]:
        acked.append(json.loads(line))
    return acked


def tear_tail(data: Path, rnd):
    """Like a power cut mid-append: part of a record that was never acknowledged."""
    days = sorted((data / "slips").glob("*.jsonl"))
    if not days:
        return
    line = encode_line({"n": 10**6, "ops": [["stamps", "999999", {"slip": 999999}]]})
    with open(days[-1], "ab") as f:
        f.write(line[: rnd.randrange(1, len(line) - 1)])


def test_ok__sigkill_at_random_moments_loses_no_acknowledged_stamp(tmp_path):
    rnd = random.Random(4)
    data = tmp_path / "data"
    data.mkdir()
    acked = {}
    started = time.monotonic()
    for i in range(KILLS):
        for s in run_until_killed(data, 1000 + i, rnd):
            assert s["slip"] not in acked, f"slip {s['slip']} given twice"
            acked[s["slip"]] = s
        if i % 3 == 2:
            tear_tail(data, rnd)
        # Restart as the daemon would: the store opens, torn tails are cut off.
        tc = TimeClock(data)
        rack = Rack(tc)
        stored = {s["slip"]: s for s in tc.stamps()}
        for slip, s in acked.items():
            assert stored.get(slip) == s, f"kill {i}: acknowledged slip {slip} lost or changed"
        assert sorted(stored) == list(range(1, tc.last_slip + 1)), f"kill {i}: gap or repeat"
        rep = tc.verify()
        assert rep["ok"], rep["problems"]
        # The rack agrees with the stamps: every message not read back, and nothing else.
        read = {s["of"] for s in stored.values() if s["what"] == "read-back"}
        want = sorted(n for n, s in stored.items() if s["what"] == "message" and n not in read)
        assert [m["slip"] for m in rack.waiting()] == want, f"kill {i}: rack out of step"
        rack.close()
        tc.close()
    assert len(acked) > 300, f"only {len(acked)} stamps in {KILLS} runs: the test did not stamp"
    assert len(list((data / "slips").glob("*.jsonl"))) > 2       # days rolled over
    assert time.monotonic() - started < 90


def test_ok__daemon_killed_while_taking_messages_keeps_every_acknowledged_one(tmp_path):
    """The real daemon, messages taken over its control socket, SIGKILLed, restarted."""
    import socket

    from conftest import python_cmd

    rnd = random.Random(7)
    data = tmp_path / "data"
    sock_path = tmp_path / "run" / "control.sock"
    acked = {}
    expect_waiting = 0
    for i in range(5):
        p = subprocess.Popen(python_cmd("firmware.runtime.daemon", "--sim", "--no-web", "--socket",
                                        sock_path, "--data-dir", data),
                             env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            assert "ready" in p.stdout.readline(), p.stderr.read()
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(sock_path))
            f = s.makefile("rb")
            # After each restart the lamps show what is in the rack.
            s.sendall(b'{"cmd": "status", "args": {}}\n')
            st = json.loads(f.readline())["result"]
            assert st["timeclock"]["waiting"] == ({"201": expect_waiting} if expect_waiting
                                                  else {})
            assert st["lamps"]["msg-201"]["cadence"] == ("steady" if expect_waiting else "dark")
            kill_at = time.monotonic() + rnd.uniform(0.3, 0.8)
            n = 0
            while time.monotonic() < kill_at:
                n += 1
                req = {"cmd": "take-message", "args": {"line": "201", "text": f"run {i} #{n}"}}
                s.sendall((json.dumps(req) + "\n").encode())
                reply = json.loads(f.readline())
                assert reply["ok"], reply
                st = reply["result"]["stamp"]
                acked[st["slip"]] = st
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            s.close()
        finally:
            reap(p)
        tc = TimeClock(data)
        stored = {x["slip"]: x for x in tc.stamps()}
        for slip, x in acked.items():
            assert stored.get(slip) == x, f"kill {i}: acknowledged slip {slip} lost"
        assert sorted(stored) == list(range(1, tc.last_slip + 1))
        # Stamped but killed before the reply: on disk, so in the rack too (not lost).
        expect_waiting = len(stored)
        tc.close()
    assert len(acked) > 20
