"""Shared fixtures: gpiozero's MockFactory, and running the project's programs as processes."""

import os
import sys
import tempfile
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

ROOT = Path(__file__).resolve().parent.parent

# PJSUA2 workers remember their build's call limit in the user's cache (the probe costs
# ~10 s a start); tests that point HOME elsewhere (file-plugin headsets) share it too.
os.environ.setdefault("XDG_CACHE_HOME", str(Path.home() / ".cache"))


def project_env(**extra) -> dict:
    """Environment for a subprocess that runs the project's code from this tree."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "host-tools"), str(ROOT / "tests" / "support")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # A daemon started without --data-dir keeps its records here, never in the tree.
    env["SWITCHBOARD_DATA"] = tempfile.mkdtemp(prefix="switchboard-data-")
    env.update(extra)
    return env


def python_cmd(module: str, *args) -> list:
    return [sys.executable, "-m", module, *map(str, args)]


@pytest.fixture
def mock_factory():
    """Install gpiozero's MockFactory for one test and restore the old factory after."""
    saved = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = saved
