"""The project's own PJSUA2 build (scripts/build-pjsua2.sh): what the venv holds, how a
worker measures it, and the build script's refusals (one line each, no traceback)."""

import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
from importlib import metadata

import pytest

from firmware.telephony.supervisor import SPARE_WORKERS
from firmware.telephony.front import setups_per_worker_s
from firmware.telephony.pool import WorkerProc

from conftest import ROOT

pytestmark = pytest.mark.telephony
SCRIPT = ROOT / "scripts" / "build-pjsua2.sh"


def run(*args, **env):
    e = dict(os.environ, **{k: str(v) for k, v in env.items()})
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env=e, timeout=60)


def test_ok__the_venv_holds_the_projects_build_not_pypis():
    version = metadata.version("pjsua2")
    assert "+tas." in version, version
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("pjsua2-python")
    wheel = run("--print-path", PYTHON=sys.executable).stdout.strip()
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert wheel.endswith(f"pjsua2-{version}-{tag}-{tag}-linux_{platform.machine()}.whl"), wheel
    assert os.path.isfile(wheel)        # cached outside the clone
    assert not wheel.startswith(str(ROOT))


def test_ok__a_worker_measures_128_calls_and_the_pool_needs_two(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))     # no remembered limit: it probes
    cache = tmp_path / "tas-switchboard" / "pjsua2-limits.json"
    w = WorkerProc(0, lambda *_: None, listen="127.0.0.1")
    w.start(timeout=60)
    try:
        assert w.limit == 128
    finally:
        w.stop()
    (key, limit), = json.loads(cache.read_text()).items()   # remembered for this build
    assert limit == 128 and "_pjsua2" in key
    # The next start takes the build's limit from the cache (a planted value proves it);
    # a damaged cache is probed again and rewritten.
    cache.write_text(json.dumps({key: 77}))
    again = WorkerProc(1, lambda *_: None, listen="127.0.0.1")
    again.start(timeout=60)
    again.stop()
    assert again.limit == 77
    cache.write_text("{not json")
    third = WorkerProc(2, lambda *_: None, listen="127.0.0.1")
    third.start(timeout=60)
    third.stop()
    assert third.limit == 128 and json.loads(cache.read_text()) == {key: 128}
    per = w.limit - 1                   # one slot kept for the operator's leg
    assert -(-115 // per) + SPARE_WORKERS == 2      # the TAS-100's 115 lines, one spare
    assert setups_per_worker_s([(1, per), (2, per)]) * 2 >= 115   # all ring at once
    assert setups_per_worker_s([(1, 3)]) == 12       # PyPI's 4-call wheel: paced as before


def test_fail__a_tarball_with_a_wrong_checksum_is_named_with_both_hashes(tmp_path):
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.addfile(tarfile.TarInfo("pjproject-2.15.1/empty"), io.BytesIO(b""))
    (vendor / "pjproject-2.15.1.tar.gz").write_bytes(buf.getvalue())
    actual = hashlib.sha256(buf.getvalue()).hexdigest()
    (vendor / "SHA256SUMS").write_text("ab" * 32 + "  pjproject-2.15.1.tar.gz\n")
    r = run(SWITCHBOARD_VENDOR=vendor, XDG_CACHE_HOME=tmp_path / "cache", PYTHON=sys.executable)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last == (f"build-pjsua2: {vendor}/pjproject-2.15.1.tar.gz: SHA-256 expected {'ab' * 32}, "
                    f"got {actual} (a damaged or different file)"), r.stderr
    assert "Traceback" not in r.stderr


def test_fail__an_unpinned_release_and_a_sysroot_without_python_are_refused(tmp_path):
    r = run(PJ_RELEASE="2.16")
    assert r.returncode == 1 and r.stderr.strip() == \
        "build-pjsua2: PJ_RELEASE=2.16 is not a pinned release (pinned: 2.15.1 2.17)"
    r = run("--sysroot", tmp_path)
    assert r.returncode == 1 and r.stderr.strip() == \
        f"build-pjsua2: {tmp_path} has no Python headers (usr/include/python3.*/Python.h): " \
        "install python3-dev in it"
