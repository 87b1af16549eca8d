"""The project's programs as processes in tests: stopping one, the customers' tool, and
switchboard-diag's answers."""

import json
import subprocess

from conftest import project_env, python_cmd


def stop(proc, seconds: float = 10.0) -> bool:
    """SIGTERM ``proc`` and wait; kill it if it is still there after ``seconds``.
    True when it stopped by itself."""
    proc.terminate()
    try:
        proc.wait(seconds)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def reap(proc) -> None:
    """After a test with a child: kill it if it still runs, close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def add_customer(data, *fields):
    """``switchboard-customers --data DATA add`` Mary's Gloves on line 201 with ``fields`` added."""
    r = subprocess.run(python_cmd("switchboard_tools.customers", "--data", data, "add",
                                  "--id", "marys-gloves", "--name", "Mary's Gloves",
                                  "--line", "201", "--kind", "shop", "--plan", "basic",
                                  "--contract-start", "2026-11-01", *fields),
                       env=project_env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r


def diag_json(sock, *args, timeout: float = 60) -> dict:
    """``switchboard-diag ARGS --socket SOCK --json``: its answer (a command may answer no,
    exit 1), or ``{"out": text}`` when what it printed is not JSON."""
    p = subprocess.run(python_cmd("switchboard_tools.diag", *args, "--socket", sock, "--json"),
                       capture_output=True, text=True, env=project_env(), timeout=timeout)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout) if p.stdout.strip().startswith("{") else {"out": p.stdout}
