"""The daemon with a site file: real SIP behind the simulated board, driven by switchboard-diag."""

import json
import subprocess
from contextlib import contextmanager

import pytest

from firmware.records.calls import JsonLinesRecords

from conftest import project_env, python_cmd
from procs import stop
from telephony_support import have_tools, wait_for

pytestmark = pytest.mark.telephony


@contextmanager
def site_daemon(tmp_path, until: bytes, *extra):
    """The daemon on the desk board's site file; yields its control socket once it
    has printed ``until``."""
    have_tools()
    sock = tmp_path / "ctl.sock"
    out = open(tmp_path / "daemon.out", "wb")
    proc = subprocess.Popen(python_cmd("firmware.runtime.daemon", "--sim", "--board", "desk",
                                       "--site", "boards/desk.site.toml", "--sip-port", "0",
                                       "--socket", sock, "--no-web", *extra),
                            stdout=out, stderr=subprocess.STDOUT, env=project_env())
    try:
        wait_for(lambda: until in (tmp_path / "daemon.out").read_bytes()
                 or proc.poll() is not None, 60, until.decode())
        assert proc.poll() is None, (tmp_path / "daemon.out").read_text()
        yield sock
    finally:
        stop(proc, 20)
        out.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """One daemon for this module's tests: starting 2 workers, Kamailio and 2 positions
    takes seconds."""
    tmp_path = tmp_path_factory.mktemp("daemon")
    with site_daemon(tmp_path, b"telephony ready", "--data-dir", tmp_path / "var") as sock:
        yield sock, tmp_path


def diag(sock, *args, timeout=60):
    r = subprocess.run(python_cmd("switchboard_tools.diag", *args, "--socket", sock, "--json"),
                       capture_output=True, text=True, env=project_env(), timeout=timeout)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip().startswith("{") else r.stdout), r.stderr


def test_ok__ring_goes_through_sip_and_status_shows_capacity(daemon):
    sock, tmp = daemon
    rc, st, err = diag(sock, "status")
    assert rc == 0, err
    tel = st["telephony"]
    assert st["faults"] == {}          # the shipped sim site file starts clean
    assert tel["state"] == "running" and tel["calls_per_worker"] >= 1
    assert tel["capacity"] >= 6 and tel["free"] == tel["capacity"] and tel["in_use"] == 0
    rc, r, err = diag(sock, "ring", "201")
    assert rc == 0, err
    assert r["via"] == "sip" and r["rang"] and r["state"] == "ringing" and r["call"]
    rc, st, _ = diag(sock, "status")
    assert st["telephony"]["in_use"] == 1
    assert next(ln for ln in st["lines"] if ln["number"] == "201")["state"] == "ringing"
    rc, r, err = diag(sock, "hangup", "201")
    assert rc == 0, err
    assert r["via"] == "sip"
    wait_for(lambda: next(ln for ln in diag(sock, "status")[1]["lines"]
                          if ln["number"] == "201")["state"] == "idle", 5, "201 idle")
    # the call was recorded in the daemon's data dir
    recs = JsonLinesRecords(tmp / "var" / "calls.jsonl").read()   # checksummed lines
    assert recs[-1]["line"] == "201" and recs[-1]["outcome"] == "abandoned"


def test_ok__trunk_test_with_echo_reports_audio_both_ways(daemon):
    sock, _ = daemon
    rc, r, err = diag(sock, "test-call", "202", "--echo", "--talk-s", "1.5")
    assert rc == 0, json.dumps(r)
    assert r["rang"] and r["answered"] and r["ok"]
    assert r["audio_to_board"] > 0 and r["audio_from_board"] > 0
    assert r["ring_ms"] < 2000


def test_ok__trunk_test_answered_by_the_operator(daemon):
    sock, _ = daemon
    test = subprocess.Popen(python_cmd("switchboard_tools.diag", "test-call", "203", "--answer-s",
                                       "15", "--talk-s", "1", "--socket", sock, "--json"),
                            stdout=subprocess.PIPE, text=True, env=project_env())
    wait_for(lambda: next(ln for ln in diag(sock, "status")[1]["lines"]
                          if ln["number"] == "203")["state"] == "ringing", 10, "203 ringing")
    assert diag(sock, "tap", "line-203")[0] == 0
    out, _ = test.communicate(timeout=30)
    assert test.returncode == 1     # not every check passed: the exit status says so
    r = json.loads(out)
    assert r["rang"] and r["answered"] and r["audio_to_board"] > 0, r
    # the caller's tone went on to the position's leg through the worker's bridge
    assert r["audio_to_position"] > 0
    # nobody speaks into the simulated position's (absent) microphone: silence back, so
    # the test reports it instead of passing
    assert r["audio_from_board"] == 0 and r["ok"] is False


def test_ok__every_key_and_switch_on_a_real_call_through_the_diag_tool(daemon):
    """A real SIP caller on line 204; every kind of key and both switches worked with
    switchboard-diag as a process; the board's commands and the call record show each one."""
    sock, tmp = daemon
    follower = subprocess.Popen(python_cmd("switchboard_tools.diag", "events", "--seconds", "40",
                                           "--socket", sock, "--json"),
                                stdout=subprocess.PIPE, text=True, env=project_env())
    caller = subprocess.Popen(python_cmd("switchboard_tools.diag", "test-call", "204",
                                         "--answer-s", "30", "--talk-s", "20", "--socket", sock,
                                         "--json"),
                              stdout=subprocess.PIPE, text=True, env=project_env())

    def line(number="204"):
        return next(ln for ln in diag(sock, "status")[1]["lines"] if ln["number"] == number)

    try:
        wait_for(lambda: line()["state"] == "ringing", 10, "204 ringing")
        steps = [("tap", "line-204", "operator"),       # answer
                 ("tap", "p1-dial-5", "operator"),      # the dial pad
                 ("tap", "p1-dial-star", "operator"),
                 ("tap", "p1-stamp", "operator"),       # the time clock
                 ("tap", "p1-hold", "held"),            # hold: the caller hears the hold tone
                 ("tap", "line-204", "operator"),       # picked up again
                 ("press", "secrecy", "operator"),      # the switches latch
                 ("release", "secrecy", "operator"),
                 ("press", "split", "operator"),
                 ("release", "split", "operator"),
                 ("tap", "p1-release", "idle")]         # the operator drops off: call over
        for verb, key, state in steps:
            rc, _, err = diag(sock, verb, key)
            assert rc == 0, err
            wait_for(lambda: line()["state"] == state, 10, f"{key}: line 204 {state}")
        caller.wait(timeout=30)
    finally:
        for p in (caller, follower):
            if p.poll() is None:
                p.terminate()
    out, _ = follower.communicate(timeout=45)
    events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    commands = [(e["command"], e.get("line")) for e in events if e["type"] == "command"]
    for expected in [("Answer", "204"), ("Dial", "204"), ("StampRequest", "204"),
                     ("Hold", "204"), ("Resume", "204"), ("Release", "204")]:
        assert expected in commands, (expected, commands)
    switches = [(e["switch"], e["on"]) for e in events if e["type"] == "switch"]
    assert switches == [("secrecy", True), ("secrecy", False), ("split", True), ("split", False)]
    # The SIP side saw it too: the call record has the answer, the hold and the end.
    recs = JsonLinesRecords(tmp / "var" / "calls.jsonl").read()   # checksummed lines
    rec = [r for r in recs if r["line"] == "204"][-1]
    assert rec["answered"] and rec["ended"] and rec["position"] == 1 and rec["hold_s"] > 0


def test_ok__a_relative_data_dir_works_as_run_sim_uses_it(tmp_path):
    """run-sim.sh leaves the data dir at its default, ./var: Kamailio runs in a directory of
    its own, so every path handed to it must be absolute."""
    have_tools()
    from conftest import ROOT
    out = open(tmp_path / "daemon.out", "wb")
    proc = subprocess.Popen(python_cmd("firmware.runtime.daemon", "--sim", "--board", "desk", "--site",
                                       ROOT / "boards" / "desk.site.toml", "--sip-port", "0",
                                       "--socket", tmp_path / "ctl.sock", "--no-web",
                                       "--data-dir", "var"),
                            stdout=out, stderr=subprocess.STDOUT, env=project_env(), cwd=tmp_path)
    try:
        wait_for(lambda: b"telephony ready" in (tmp_path / "daemon.out").read_bytes()
                 or b"FAULT" in (tmp_path / "daemon.out").read_bytes()
                 or proc.poll() is not None, 60, "telephony ready")
        rc, st, err = diag(tmp_path / "ctl.sock", "status")
        assert rc == 0 and st["faults"] == {}, (st, (tmp_path / "daemon.out").read_text())
        assert st["telephony"]["state"] == "running"
        assert (tmp_path / "var" / "telephony").is_dir()
    finally:
        stop(proc, 20)
        out.close()


def test_ok__retention_days_covers_the_call_records(tmp_path):
    """--retention-days reaches call retention too (it used to keep call records
    30 days whatever the option said): with 60, a call from 45 days ago stays."""
    from datetime import datetime, timedelta, timezone
    data = tmp_path / "var"
    data.mkdir()
    now = datetime.now(timezone.utc)
    recs = [{"id": f"c{age}", "line": "201", "direction": "in", "kind": "call", "caller": "5551234",
             "callee": "201", "offered": (now - timedelta(days=age)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
             "answered": None, "ended": None, "rings": 1, "position": None, "hold_s": 0,
             "outcome": "abandoned"} for age in (45, 10)]
    (data / "calls.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    with site_daemon(tmp_path, b"switchboard: ready", "--retention-days", "60", "--data-dir", data) as sock:
        last = wait_for(lambda: diag(sock, "status")[1]["call-retention"]["last"], 20,
                        "call retention's first run")
        st = diag(sock, "status")[1]["call-retention"]
        assert st["retention_days"] == 60 and st["error"] is None
        assert last["purged"] == 0 and last["cutoff"] == (now.date() - timedelta(days=60)).isoformat()
        kept = [r["id"] for r in JsonLinesRecords(data / "calls.jsonl").read()]
        assert kept[:2] == ["c45", "c10"]
