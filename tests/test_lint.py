"""The tree follows the lint rules in pyproject.toml ([tool.ruff])."""

import subprocess
import sys

from conftest import ROOT


def test_ok__ruff_finds_nothing():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "All checks passed" in r.stdout
