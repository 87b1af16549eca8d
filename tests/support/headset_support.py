"""Real peers for the headset tests: position processes, a PJSUA2 far end, a SIPp caller.

Everything listens on 127.0.0.1 on ports the OS picks, lives in the test's
temp dir, and is stopped by the test (the classes are context managers).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

from conftest import project_env, python_cmd
from board_support import wait_for  # noqa: F401 (tests import it from here too)

HERE = Path(__file__).resolve().parent


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JsonProc:
    """A child process that prints JSON lines; each line is stamped with its arrival time."""

    def __init__(self, cmd, *, env, log: Path, stdin=True):
        self.log = log
        self.events: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self.proc = subprocess.Popen(cmd, env=env, text=True,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=open(log, "wb"))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                ev = {"event": "garbage", "line": line}
            ev["t"] = time.monotonic()
            self.seen.append(ev)
            self.events.put(ev)
        self.events.put({"event": "eof", "t": time.monotonic()})

    def next(self, event: str, timeout: float = 15.0, **match) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event!r} event within {timeout} s; saw {self.seen}; "
                                     f"stderr tail: {self.stderr()[-800:]}")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev["event"] == event and all(ev.get(k) == v for k, v in match.items()):
                return ev
            if ev["event"] == "eof":
                raise AssertionError(f"process ended before {event!r}; saw {self.seen}; "
                                     f"stderr tail: {self.stderr()[-800:]}")

    def stderr(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def send(self, **cmd) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()  # end of stdin: the position quits cleanly
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


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


class PeerProc(JsonProc):
    """tests/pjsua_peer.py: a bare PJSUA2 endpoint that calls or answers and records."""

    def __init__(self, tmp_path: Path, *, name="peer", call=None, answer=False, record=None,
                 play=None, seconds=4.0, codec="G722"):
        cmd = [sys.executable, str(HERE / "pjsua_peer.py"), "--seconds", str(seconds)]
        if call:
            cmd += ["--call", call]
        if answer:
            cmd += ["--answer"]
        if record:
            cmd += ["--record", str(record)]
        if play:
            cmd += ["--play", str(play)]
        if codec:
            cmd += ["--codec", codec]
        super().__init__(cmd, env=project_env(), log=Path(tmp_path) / f"{name}.stderr",
                         stdin=False)
        self.ready = self.next("ready", 20)
        self.uri = self.ready["uri"]


def ulaw_wav(path: Path, seconds: float = 4, hz: int = 1000, vol: float = 1.0) -> Path:
    """An 8 kHz u-law WAV of a tone (vol 0: digital silence), as SIPp's rtp_stream wants."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(path),
                    "synth", str(seconds), "sine", str(hz), "vol", str(vol)], check=True)
    return path


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


def wait_sipp(proc: subprocess.Popen, timeout: float = 30) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("SIPp did not finish in time")


def ensure_tools():
    """The README's test command installs these; fail loudly (never skip) if missing."""
    missing = [t for t in ("sipp", "sox") if not any(
        os.access(os.path.join(d, t), os.X_OK) for d in os.environ.get("PATH", "").split(":"))]
    if missing:
        raise AssertionError(f"missing tools {missing}: run scripts/setup.sh")
