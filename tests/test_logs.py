"""Diagnostics go through logging: one line each, debug lines only with -v."""

import io
import logging
import subprocess

import pytest

from firmware import logs

from conftest import project_env, python_cmd


@pytest.fixture
def restore_logging():
    root = logging.getLogger(logs.ROOT)
    saved = root.handlers[:], root.level, root.propagate
    yield
    root.handlers[:], root.level, root.propagate = saved


def test_ok__one_line_each_and_debug_only_when_verbose(restore_logging):
    out = io.StringIO()
    logs.setup("switchboard-x", False, stream=out)
    logging.getLogger("switchboard.part").info("started")
    logging.getLogger("switchboard.part").debug("details")
    logs.setup("switchboard-x", True, stream=out)         # again: replaces, never doubles
    logging.getLogger("switchboard.part").debug("details")
    assert out.getvalue().splitlines() == ["switchboard-x: started",
                                           "switchboard-x: DEBUG switchboard.part: details"]


def test_ok__the_daemon_logs_each_command_with_verbose(tmp_path):
    sock = tmp_path / "run" / "c.sock"
    proc = subprocess.Popen(python_cmd("firmware.runtime.daemon", "-v", "--sim", "--no-web",
                                       "--socket", sock, "--data-dir", tmp_path / "var"),
                            env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "ready" in proc.stdout.readline()
        r = subprocess.run(python_cmd("switchboard_tools.diag", "-v", "--socket", sock, "ring", "201"),
                           env=project_env(), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "line 201 ringing", r.stderr
        assert "switchboard-diag: DEBUG switchboard.diag: to " in r.stderr      # the request...
        assert '"line": "201"' in r.stderr and '"ok": true' in r.stderr        # ... and the reply
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "switchboard: DEBUG switchboard.commands: command ring {'line': '201'" in err


def test_fail__errors_are_one_line_without_a_traceback(tmp_path):
    r = subprocess.run(python_cmd("switchboard_tools.diag", "--socket", tmp_path / "none.sock", "status"),
                       env=project_env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.startswith("switchboard-diag: no daemon at ")
    assert len(r.stderr.splitlines()) == 1
