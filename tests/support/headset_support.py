"""Real peers for the headset tests: position processes, a PJSUA2 far end, a SIPp caller.

Everything listens on 127.0.0.1 on ports the OS picks, lives in the test's
temp dir, and is stopped by the test (the classes are context managers).
"""

from __future__ import annotations

import os
import subprocess
import time
import wave
from pathlib import Path

from conftest import project_env, python_cmd
from board_support import wait_for  # noqa: F401 (tests import it from here too)
from firmware.telephony.front import free_port
from peers import JsonProc, PeerProc  # noqa: F401 (tests import PeerProc from here too)
# one SIPp waiter and one tone maker for all the telephony tests; the headset tests' names:
from telephony_support import finish as wait_sipp, ulaw_wav  # noqa: F401

HERE = Path(__file__).resolve().parent




class PositionProc(JsonProc):
    """`python -m firmware.telephony.pj.position` with its headset on a FakeCard device."""

    def __init__(self, tmp_path: Path, card, *, name="p1", headset=None, args=(), wait=True):
        cmd = python_cmd("firmware.telephony.pj.position", "--name", name, "--port", 0, *args)
        if headset:
            cmd += ["--headset", headset]
        super().__init__(cmd, env=project_env(**card.env()) if card else project_env(),
                         log=Path(tmp_path) / f"{name}.stderr")
        self.ready = self.next("ready", 20) if wait else None
        self.uri = self.ready["uri"] if self.ready else None

    def status(self) -> dict:
        self.send(cmd="status")
        return self.next("status", 5)


def pcm_wav(path: Path, pcm: bytes, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def wav_pcm(path: Path) -> tuple[bytes, int]:
    """16-bit PCM and rate of a WAV (u-law ones are decoded by sox first)."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() == 2 and w.getnchannels() == 1:
                return w.readframes(w.getnframes()), w.getframerate()
    except wave.Error:  # wave reads PCM only
        pass
    decoded = Path(path).with_suffix(".s16.wav")
    subprocess.run(["sox", str(path), "-e", "signed", "-b", "16", "-c", "1", str(decoded)],
                   check=True)
    return wav_pcm(decoded)


def sipp_tone_call(tmp_path: Path, target_port: int, tone: Path, *, user="p1",
                   hold_ms=3000) -> subprocess.Popen:
    """Start a SIPp caller that sends `tone` as PCMU RTP for hold_ms, then hangs up."""
    text = (HERE / "sipp" / "tone_caller.xml").read_text()
    sf = Path(tmp_path) / f"tone_caller-{time.time_ns()}.xml"
    sf.write_text(text.replace("@TONE@", str(tone)).replace("@USER@", user))
    cmd = ["sipp", "-sf", str(sf), "-i", "127.0.0.1", "-p", str(free_port()),
           "-mi", "127.0.0.1", "-mp", str(free_port()), "-m", "1", "-l", "1",
           "-d", str(hold_ms), "-timeout", "30s", "-timeout_error", "-nostdin",
           "-trace_err", "-error_file", str(Path(tmp_path) / "sipp-errors.log"),
           f"127.0.0.1:{target_port}"]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=open(Path(tmp_path) / "sipp.out", "wb"),
                            stderr=subprocess.STDOUT)


def ensure_tools():
    """The README's test command installs these; fail loudly (never skip) if missing."""
    missing = [t for t in ("sipp", "sox") if not any(
        os.access(os.path.join(d, t), os.X_OK) for d in os.environ.get("PATH", "").split(":"))]
    if missing:
        raise AssertionError(f"missing tools {missing}: run scripts/setup.sh")
