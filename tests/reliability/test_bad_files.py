"""Board and site files that are wrong in every way a bad day makes them (issue 10, finding 12).

Each is refused with one line naming the file, the key and the value, never a
traceback, never a hang, and before anything starts (the daemon as a process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from firmware.config.board import load_board
from firmware.config.site import MAX_CALLS_PER_WORKER, load_site
from firmware.errors import ConfigError

from conftest import ROOT, project_env

DESK_PATH = ROOT / "boards" / "desk.toml"
DESK = load_board(DESK_PATH)
GOOD_TRUNK = '[[trunks]]\nname = "gw"\nmode = "peer"\npeers = ["127.0.0.1"]\n'


def one_line(e: ConfigError, *words):
    text = str(e)
    assert "\n" not in text and len(text) < 400, text
    assert "Traceback" not in text
    for w in words:
        assert w in text, (w, text)
    return text


def bad_board(tmp_path, kind) -> str:
    p = tmp_path / f"{kind}.toml"
    good = DESK_PATH.read_text()
    if kind == "binary":
        p.write_bytes(bytes(range(256)) * 8)
    elif kind == "utf16":
        p.write_bytes(good.encode("utf-16"))
    elif kind == "latin1":
        p.write_bytes(good.replace("Mary's Gloves", "Caf\u00e9 M\u00fcller").encode("latin-1")
                      if "Mary's Gloves" in good else ("# caf\u00e9\n" + good).encode("latin-1"))
    elif kind == "random50mb":
        with open(p, "wb") as f:
            f.truncate(50 * 1024 * 1024)   # sparse: 50 MB on paper, nothing on disk
    elif kind == "nested":
        p.write_text("x = " + "[" * 50000 + "]" * 50000 + "\n")
    elif kind == "nested_tables":
        p.write_text("x = " + "{a = " * 20000 + "1" + "}" * 20000 + "\n")
    elif kind == "devzero":
        return "/dev/zero"
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "directory":
        p.mkdir()
    elif kind == "newline_number":
        p.write_text(good.replace('number = "202"', 'number = "202\\n"', 1))
    elif kind == "nul_label":
        import re
        p.write_text(re.sub(r'label = "([^"]*)"', r'label = "\1\\u0000"', good, count=1))
    return str(p)


BOARD_CASES = ["binary", "utf16", "latin1", "random50mb", "nested", "nested_tables", "devzero",
               "fifo", "directory", "newline_number", "nul_label"]


@pytest.mark.parametrize("kind", BOARD_CASES)
def test_fail__bad_board_file_one_line_no_hang(tmp_path, kind):
    path = bad_board(tmp_path, kind)
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as e:
        load_board(path)
    assert time.monotonic() - t0 < 10
    one_line(e.value, path)


@pytest.mark.parametrize("kind", ["fifo", "random50mb", "utf16", "nested"])
def test_fail__the_daemon_refuses_a_bad_board_file_with_one_line(tmp_path, kind):
    path = bad_board(tmp_path, kind)
    r = subprocess.run([sys.executable, "-m", "firmware.runtime.daemon", "--sim", "--no-web",
                        "--board", path, "--socket", str(tmp_path / "c.sock"),
                        "--data-dir", str(tmp_path / "data")],
                       capture_output=True, text=True, timeout=60, env=project_env(), cwd=ROOT)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("switchboard:")]
    assert "Traceback" not in r.stderr and len(lines) == 1 and path in lines[0], r.stderr
    assert not (tmp_path / "c.sock").exists()


def write_site(tmp_path, text, name="desk.site.toml"):
    p = tmp_path / name
    p.write_text(text)
    p.chmod(0o600)
    return p


def pem_pair(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.mark.parametrize("text, words", [
    ("", ["trunks", "at least one"]),
    ("# nothing but a comment\n[numbers]\n", ["trunks", "at least one"]),
    (GOOD_TRUNK + "[limits]\ncalls_per_worker = 1024\n",
     ["limits.calls_per_worker", "1024", f"0 to {MAX_CALLS_PER_WORKER}"]),
    (GOOD_TRUNK + '[overflow]\nrings = 3\naction = "message"\nannouncement = "nope.wav"\n',
     ["overflow.announcement", "'nope.wav'", "WAV"]),
    (GOOD_TRUNK + '[overflow]\nannouncement = "notwav.wav"\n',
     ["overflow.announcement", "'notwav.wav'", "WAV"]),
    ('[front]\nlisten = "10.99.99.99"\n' + GOOD_TRUNK,
     ["front.listen", "'10.99.99.99'", "address of this machine"]),
    (GOOD_TRUNK + '[[positions]]\nheadset = "usb\\u0000card"\n',
     ["positions[0].headset", "sound device"]),
    (GOOD_TRUNK + '[[positions]]\nheadset = "usb\\ncard"\n',
     ["positions[0].headset", "sound device"]),
    (GOOD_TRUNK + '[numbers]\n"4155550123\\n" = "201"\n', ["numbers.", "digits"]),
    (GOOD_TRUNK + '[numbers]\n"4155550123" = "201\\n"\n', ["numbers.4155550123", "a line"]),
    ('[front]\ntransports = ["udp", "tls"]\ntls_certificate = "notpem.pem"\n'
     'tls_private_key = "key.pem"\n' + GOOD_TRUNK,
     ["front.tls_certificate", "'notpem.pem'", "PEM"]),
    ('[front]\ntransports = ["udp", "tls"]\ntls_certificate = "cert.pem"\n'
     'tls_private_key = "notpem.pem"\n' + GOOD_TRUNK,
     ["front.tls_private_key", "'notpem.pem'", "PEM"]),
    ('[front]\ntransports = ["udp", "tls"]\ntls_certificate = "cert.pem"\n'
     'tls_private_key = "otherkey.pem"\n' + GOOD_TRUNK,
     ["front.tls_certificate", "goes with"]),
], ids=["empty", "no-trunks", "calls-per-worker", "missing-announcement", "not-a-wav",
        "listen-elsewhere", "headset-nul", "headset-newline", "number-newline",
        "line-newline", "cert-not-pem", "key-not-pem", "cert-key-mismatch"])
def test_fail__bad_site_file_names_file_key_and_value(tmp_path, text, words):
    (tmp_path / "notwav.wav").write_bytes(os.urandom(300))
    (tmp_path / "notpem.pem").write_text("this is not a certificate\n")
    if "cert.pem" in text:
        pem_pair(tmp_path)
        other = tmp_path / "other"
        other.mkdir()
        _, okey = pem_pair(other)
        (tmp_path / "otherkey.pem").write_bytes(okey.read_bytes())
    p = write_site(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_site(p, DESK)
    one_line(e.value, str(p), *words)


def test_ok__a_good_announcement_and_tls_pair_load(tmp_path):
    import wave
    with wave.open(str(tmp_path / "hello.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    pem_pair(tmp_path)
    p = write_site(tmp_path, '[front]\ntransports = ["udp", "tls"]\ntls_certificate = "cert.pem"\n'
                   'tls_private_key = "key.pem"\n' + GOOD_TRUNK
                   + '[overflow]\nannouncement = "hello.wav"\n[limits]\ncalls_per_worker = 128\n')
    site = load_site(p, DESK)
    assert site.announcement == str(tmp_path / "hello.wav") and site.calls_per_worker == 128


def test_fail__the_daemon_stops_on_a_bad_site_file_before_anything_starts(tmp_path):
    p = write_site(tmp_path, '[front]\nlisten = "10.99.99.99"\n' + GOOD_TRUNK)
    r = subprocess.run([sys.executable, "-m", "firmware.runtime.daemon", "--sim", "--no-web",
                        "--board", "desk", "--site", str(p), "--socket", str(tmp_path / "c.sock"),
                        "--data-dir", str(tmp_path / "data")],
                       capture_output=True, text=True, timeout=60, env=project_env(), cwd=ROOT)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"{p}: front.listen = '10.99.99.99'" in r.stderr
    assert not (tmp_path / "c.sock").exists() and not (tmp_path / "data" / "telephony").exists()


# -- fuzz: mutated board and site files -----------------------------------------
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

SITE_TEXT = (ROOT / "boards" / "desk.site.toml").read_text()
BOARD_TEXT = DESK_PATH.read_text()


@st.composite
def mutated(draw, text):
    data = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "value"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip":
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b"\x00", b"\n", b"[", b"]", b'"', b"=", b"{",
                                                b"\xff\xfe", b"1e999", b"[[trunks]]\n", b"'''"]))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 40))]
        elif op == "dup":
            n = draw(st.integers(1, 200))
            data[at:at] = data[at:at + n]
        else:
            data[at:at] = draw(st.sampled_from([b'x = 1\n', b'number = "202\\n"\n',
                                                b'peers = ["::1", "999.1.1.1"]\n',
                                                b'calls_per_worker = 99999\n', b'headset = "\\u0000"\n',
                                                b'listen = "10.99.99.99"\n', b'port = -1\n']))
    return bytes(data)


def _check(path, loader):
    try:
        loader(path)
    except ConfigError as e:
        one_line(e, str(path))


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
          derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated(SITE_TEXT))
def test_fuzz__mutated_site_files_load_or_say_why_in_one_line(tmp_path, data):
    p = tmp_path / "fuzz.site.toml"
    p.write_bytes(data)
    p.chmod(0o600)
    _check(p, lambda q: load_site(q, DESK))


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
          derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated(BOARD_TEXT))
def test_fuzz__mutated_board_files_load_or_say_why_in_one_line(tmp_path, data):
    p = tmp_path / "fuzz.toml"
    p.write_bytes(data)
    _check(p, load_board)
