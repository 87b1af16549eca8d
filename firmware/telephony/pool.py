"""The pool of PJSUA2 worker processes, seen from the daemon.

Each worker is a child process (``firmware.telephony.pj.worker``) speaking JSON
lines on its stdin/stdout; a reader thread per worker hands its events to one
callback. Workers are started in parallel and each reports its own call limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from firmware.errors import SwitchboardError


class WorkerError(SwitchboardError, RuntimeError):
    """A PJSUA2 worker could not be started."""


class WorkerProc:
    def __init__(self, index: int, on_event, *, listen="127.0.0.1", limit=0, log_dir=None,
                 port=0):
        self.index = index
        self.want_port = port
        self.on_event = on_event
        self.listen = listen
        self.limit_hint = limit
        self.log_dir = Path(log_dir) if log_dir else None
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.limit: int | None = None
        self.maxload: int | None = None
        self.pid: int | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.calls: set[str] = set()      # board call ids held here

    def start(self, timeout=120.0):   # generous: a Pi Zero, or arm64 under emulation (~10x), is slow to import PJSUA2
        log = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / f"worker{self.index}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware.telephony.pj.worker", "--index", str(self.index),
             "--listen", self.listen, "--limit", str(self.limit_hint),
             "--port", str(self.want_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
            env=_child_env(), start_new_session=True)
        if log is not subprocess.DEVNULL:
            log.close()
        threading.Thread(target=self._read, name=f"worker{self.index}", daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise WorkerError(f"PJSUA2 worker {self.index} did not start within {timeout} s"
                              + (f"; see {self.log_dir}/worker{self.index}.log" if self.log_dir else ""))
        if self.proc.poll() is not None:
            raise WorkerError(f"PJSUA2 worker {self.index} exited at start-up "
                              f"(code {self.proc.returncode})")

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("ev") == "ready":
                self.port, self.limit, self.pid = ev["port"], ev["limit"], ev["pid"]
                self._ready.set()
            try:
                self.on_event(self, ev)
            except Exception as e:          # a bad event must not kill the reader
                print(f"telephony: worker {self.index} event {ev!r}: {e}", file=sys.stderr)
        self._ready.set()
        self.on_event(self, {"ev": "exit", "worker": self.index})

    def send(self, **cmd):
        if self.proc is None or self.proc.poll() is not None:
            return False
        with self._lock:
            try:
                self.proc.stdin.write(json.dumps(cmd) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                return False
        return True

    def stop(self, timeout=5.0):
        if self.proc is None:
            return
        self.send(op="quit")
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def rss_kb(self) -> int:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, TypeError):
            pass
        return 0


def _child_env() -> dict:
    """The workers import ``firmware`` from wherever this process did."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def start_workers(count: int, on_event, *, listen="127.0.0.1", limit=0, log_dir=None,
                  first=None) -> list[WorkerProc]:
    """Start ``count`` workers in parallel (``first``, already started, is reused)."""
    workers = [first] if first is not None else []
    todo = [WorkerProc(i, on_event, listen=listen, limit=limit, log_dir=log_dir)
            for i in range(len(workers), count)]
    errors = []

    def one(w):
        try:
            w.start()
        except WorkerError as e:
            errors.append(e)

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(todo)))) as ex:
        list(ex.map(one, todo))
    workers += todo
    if errors:
        for w in workers:
            w.stop()
        raise errors[0]
    return workers
