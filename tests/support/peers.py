"""The tests' PJSUA2 far ends, as child processes that print JSON lines.

``JsonProc`` runs any such child and keeps its events (each stamped with its
arrival time, ``t``, on ``time.monotonic``). ``PeerProc`` is the one far end
the tests use, in either of its two forms:

- **answering** (``firmware.telephony.pj.peer``): a stand-in position, a
  customer's phone, a contact number; answers every call (after
  ``answer_after`` s), plays ``tone`` Hz into it, records each call to
  ``<dir>/callN.wav`` (``record=True``);
- **one call** (``tests/support/pjsua_peer.py``): calls ``call=URI`` (or
  answers one call with ``answer=True``), records what it hears to
  ``record=PATH``, plays ``play=WAV``, hangs up after ``seconds``.

Both print ``{"event": ...}`` lines; both stop at the end of their stdin or
when ``stop()`` is called, and are context managers.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import project_env

HERE = Path(__file__).resolve().parent


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
                raise AssertionError(f"{self.log.stem}: no {event!r} event within {timeout} s; "
                                     f"saw {self.seen}; stderr tail: {self.stderr()[-800:]}")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev["event"] == event and all(ev.get(k) == v for k, v in match.items()):
                return ev
            if ev["event"] == "eof":
                raise AssertionError(f"{self.log.stem}: process ended before {event!r}; "
                                     f"saw {self.seen}; stderr tail: {self.stderr()[-800:]}")

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
                    self.proc.stdin.close()  # end of stdin: the child quits cleanly
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


class PeerProc(JsonProc):
    """A bare PJSUA2 far end: answering (tone, answer_after, record=True) or one call
    (call / answer, record=PATH, play, seconds, codec, stamped). See the module's docstring
    and tests/support/pjsua_peer.py's."""

    def __init__(self, tmp_path, name="peer", *, tone=0, answer_after=0.0, record=True,
                 call=None, answer=False, play=None, seconds=None, codec=None, stamped=False):
        self.dir = Path(tmp_path) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        one_call = call is not None or answer or play is not None or seconds is not None \
            or not isinstance(record, bool)
        if one_call:
            cmd = [sys.executable, str(HERE / "pjsua_peer.py"), "--seconds",
                   str(4.0 if seconds is None else seconds), "--codec", codec or "G722"]
            if call:
                cmd += ["--call", call]
            if answer:
                cmd += ["--answer"]
            if record and not isinstance(record, bool):
                cmd += ["--record", str(record)]
            if play:
                cmd += ["--play", str(play)]
            if stamped:
                cmd += ["--stamped"]
            log, stdin = Path(tmp_path) / f"{name}.stderr", False
        else:
            cmd = [sys.executable, "-m", "firmware.telephony.pj.peer", "--tone", str(tone),
                   "--answer-after", str(answer_after)]
            if record:
                cmd += ["--record-dir", str(self.dir)]
            log, stdin = self.dir / "stderr.log", True
        super().__init__(cmd, env=project_env(), log=log, stdin=stdin)
        self.ready = self.next("ready", 20)
        self.uri = self.ready["uri"]
