"""The daemon's child processes: started so that they die with it, read as protocol messages.

Every child the telephony starts (PJSUA2 workers, operator positions, the
Kamailio front's guard) goes through ``spawn``:

- **It dies with the daemon.** The child asks the kernel for ``SIGKILL`` (or
  the signal given) when its parent goes (``prctl(PR_SET_PDEATHSIG)``, set in
  the child between fork and exec). The kernel sends it when the *thread* that
  forked the child ends, not the process, so every child is forked from one
  long-lived spawner thread that lasts as long as the daemon does; a child
  started from a short-lived start-up or restart thread would otherwise be
  killed the moment that thread returned.
- **Its own session** (``setsid``): a Ctrl-C in the daemon's terminal reaches
  the daemon, which stops its children in order, not all of them at once.
- **Its log file's mode does not depend on the umask** at that instant (the
  control socket briefly narrows the umask while it binds, in another
  thread): the file is made 0640 explicitly.

``ChildProcess`` runs one protocol-speaking child (``firmware.telephony.protocol``):
a reader thread decodes each stdout line against the child's event table and
hands the message to ``on_message``; a line that is not a message is logged
with the child's name, never dropped silently; ``on_exit`` is called once
when stdout ends (the child exited or closed it).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from firmware.telephony import protocol

log = logging.getLogger("switchboard.telephony.children")

PR_SET_PDEATHSIG = 1
LOG_MODE = 0o640

_libc = None
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telephony-spawner")


def _prctl_pdeathsig(sig: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _in_child(parent: int, sig: int):
    def preexec():
        os.setsid()
        _prctl_pdeathsig(sig)
        # The parent may have died between fork and prctl: then nobody would send it.
        if os.getppid() != parent:
            os._exit(1)
    return preexec


def open_log(path: Path):
    """Append to ``path``, created 0640 whatever the process's umask is just now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, LOG_MODE)
    os.fchmod(fd, LOG_MODE)
    return os.fdopen(fd, "ab")


def spawn(cmd, *, death_signal=signal.SIGKILL, log_path=None, **popen) -> subprocess.Popen:
    """``subprocess.Popen(cmd)`` from the spawner thread, in its own session, dying with us."""
    err = open_log(Path(log_path)) if log_path else subprocess.DEVNULL
    popen.setdefault("stderr", err)
    try:
        return _spawner.submit(lambda: subprocess.Popen(
            cmd, preexec_fn=_in_child(os.getpid(), death_signal), **popen)).result()
    finally:
        if log_path:
            err.close()             # the child has its own copy


def child_env() -> dict:
    """Children import ``firmware`` from wherever this process did."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


class ChildProcess:
    """One child speaking the protocol on its stdin (commands) and stdout (events)."""

    def __init__(self, name: str, module: str, args, *, events: dict, on_message=None,
                 on_exit=None, log_path=None, env=None, python=sys.executable):
        self.name = name
        self.cmd = [python, "-m", module, *map(str, args)]
        self.events = events
        self.on_message = on_message
        self.on_exit = on_exit
        self.log_path = Path(log_path) if log_path else None
        self.env = env if env is not None else child_env()
        self.proc: subprocess.Popen | None = None
        self.protocol_errors = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self.proc = spawn(self.cmd, log_path=self.log_path, env=self.env, text=True, bufsize=1,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        threading.Thread(target=self._read, name=f"{self.name}-reader", daemon=True).start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read(self):
        for line in self.proc.stdout:
            if not line.strip():
                continue
            try:
                msg = protocol.decode(self.events, line)
            except protocol.ProtocolError as e:
                self.protocol_errors += 1
                log.error("%s: %s", self.name, e)
                continue
            if self.on_message is not None:
                try:
                    self.on_message(msg)
                except Exception:           # one bad handler must not stop the reader
                    log.exception("%s: handling %s", self.name, msg)
        if self.on_exit is not None:
            self.on_exit()

    def send(self, msg: protocol.Message) -> bool:
        """Write one command; False if the child is gone (its exit is reported on its own)."""
        if not self.alive():
            return False
        with self._lock:
            try:
                self.proc.stdin.write(protocol.encode(msg) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                return False
        return True

    def stop(self, quit_msg: protocol.Message | None = None, timeout: float = 5.0) -> int | None:
        """Ask it to quit (or close its stdin, which means the same), kill it if it hangs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if quit_msg is not None:
                self.send(quit_msg)
            try:
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def rss_kb(self) -> int:
        return rss_kb(self.pid)


def rss_kb(pid: int | None) -> int:
    """Resident memory of process ``pid`` in kB (0 when it is gone, or None)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, TypeError):
        pass
    return 0
