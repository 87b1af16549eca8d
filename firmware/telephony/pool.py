"""The pool of PJSUA2 worker processes, seen from the daemon.

Each worker is a child process (``firmware.telephony.pj.worker``) speaking the
protocol of ``firmware.telephony.protocol`` on its stdin/stdout, run by
``ChildProcess`` (dies with the daemon, log file in the run dir); a reader
thread per worker hands its events to one callback. Workers are started in
parallel and each reports its own call limit.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from firmware.errors import SwitchboardError
from firmware.telephony import protocol
from firmware.telephony.children import ChildProcess

log = logging.getLogger("switchboard.telephony.pool")


class WorkerError(SwitchboardError, RuntimeError):
    """A PJSUA2 worker could not be started."""


class WorkerProc:
    """The daemon's handle on one worker: its process, port, limit and the calls it holds.

    ``on_event(worker, message)`` gets every event; when the process is gone,
    ``on_exit(worker)`` is called once."""

    def __init__(self, index: int, on_event, *, on_exit=None, listen="127.0.0.1", limit=0,
                 log_dir=None, port=0):
        self.index = index
        self.want_port = port
        self.on_event = on_event
        self.on_exit = on_exit
        self.listen = listen
        self.limit_hint = limit
        self.log_dir = Path(log_dir) if log_dir else None
        self.port: int | None = None
        self.limit: int | None = None
        self.maxload: int | None = None
        self.pid: int | None = None
        self.calls: set[str] = set()      # board call ids held here
        self._ready = threading.Event()
        self.child = ChildProcess(
            f"worker{index}", "firmware.telephony.pj.worker",
            ["--index", index, "--listen", listen, "--limit", limit, "--port", port],
            events=protocol.WORKER_EVENTS, on_message=self._message, on_exit=self._exited,
            log_path=self.log_dir / f"worker{index}.log" if self.log_dir else None)

    def start(self, timeout=120.0):   # generous: a Pi Zero, or arm64 under emulation (~10x), is slow to import PJSUA2
        self.child.start()
        if not self._ready.wait(timeout):
            self.child.kill()
            raise WorkerError(f"PJSUA2 worker {self.index} did not start within {timeout} s"
                              + (f"; see {self.log_dir}/worker{self.index}.log" if self.log_dir else ""))
        if not self.child.alive():
            raise WorkerError(f"PJSUA2 worker {self.index} exited at start-up "
                              f"(code {self.child.proc.returncode})"
                              + (f"; see {self.log_dir}/worker{self.index}.log" if self.log_dir else ""))

    def _message(self, msg):
        if isinstance(msg, protocol.WorkerReady):
            self.port, self.limit, self.pid = msg.port, msg.limit, msg.pid
            self._ready.set()
        try:
            self.on_event(self, msg)
        except Exception as e:          # a bad event must not kill the reader
            log.error("telephony: worker %s event %r: %s", self.index, msg, e)

    def _exited(self):
        self._ready.set()
        if self.on_exit is not None:
            self.on_exit(self)

    @property
    def proc(self):
        return self.child.proc

    def alive(self) -> bool:
        return self.child.alive()

    def send(self, msg: protocol.Message) -> bool:
        return self.child.send(msg)

    def stop(self, timeout=5.0):
        self.child.stop(protocol.Quit(), timeout)

    def kill(self):
        self.child.kill()

    def rss_kb(self) -> int:
        return self.child.rss_kb()


def start_workers(count: int, on_event, *, on_exit=None, listen="127.0.0.1", limit=0,
                  log_dir=None, first=None) -> list[WorkerProc]:
    """Start ``count`` workers in parallel (``first``, already started, is reused)."""
    workers = [first] if first is not None else []
    todo = [WorkerProc(i, on_event, on_exit=on_exit, listen=listen, limit=limit, log_dir=log_dir)
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
