"""The daemon as a systemd service: readiness, the watchdog and the journal.

systemd starts the daemon with ``Type=notify``: it waits for ``READY=1`` on
the datagram socket named in ``$NOTIFY_SOCKET`` before it calls the service
started, and with ``WatchdogSec=`` it expects ``WATCHDOG=1`` at least every
``$WATCHDOG_USEC`` microseconds, else it kills and restarts the daemon. This
module speaks that protocol itself (sd_notify(3): one datagram of
newline-separated ``KEY=value`` fields; an address starting with ``@`` is in
the abstract namespace), so no library is needed, and does nothing at all
when the variables are absent (a terminal, the tests).

``ServiceNotifier.run`` is a task on the daemon's own asyncio loop: it waits
for every adapter still starting (``Adapter.phase``; the telephony starts in a
thread) and only then sends ``READY=1``; it pets the watchdog from the loop,
so a loop that is stuck stops the pets and systemd restarts the daemon.
``STOPPING=1`` goes out when the daemon is asked to stop, and ``STATUS=``
lines say what it is doing (``systemctl status switchboard``).

Under systemd the daemon's output goes to the journal, which stamps each
line itself: ``JournalFormatter`` writes no timestamp and starts each line
with its syslog priority (``<3>`` error, ``<4>`` warning, ``<6>`` info, as
sd-daemon(3) describes), so ``journalctl -p warning`` finds the warnings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time

log = logging.getLogger("switchboard.systemd")

#: logging level -> syslog priority (sd-daemon(3)'s SD_ERR ... SD_DEBUG).
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
              (logging.INFO, 6), (logging.DEBUG, 7))

#: How long ``ServiceNotifier`` waits for an adapter to finish starting before it says
#: ready anyway (with the adapter still starting in STATUS=); systemd's TimeoutStartSec=
#: normally ends a start-up that hangs long before this.
MAX_START_S = 900.0


def _address(name: str):
    """$NOTIFY_SOCKET as a socket address: a path, or ``@name`` in the abstract namespace."""
    if name.startswith("@"):
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    raise ValueError(f"NOTIFY_SOCKET={name!r}: expected a socket path or an @abstract name")


class Notifier:
    """sd_notify(3) over ``$NOTIFY_SOCKET``; every call is a no-op without one."""

    def __init__(self, socket_name: str | None, watchdog_usec: int | None = None):
        self.socket_name = socket_name or None
        self.watchdog_usec = watchdog_usec
        self.error: str | None = None
        self._sock = None
        self._addr = None
        if self.socket_name:
            try:
                self._addr = _address(self.socket_name)
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            except (ValueError, OSError) as e:
                self._fail(str(e))

    @classmethod
    def from_env(cls, environ=None, *, unset: bool = True) -> "Notifier":
        """The notifier systemd set up for this process.

        ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID`` are removed from
        the environment (``unset``), as sd_notify's ``unset_environment`` does, so the
        daemon's children (Kamailio, the PJSUA2 workers) do not speak for it. The
        watchdog applies only when ``$WATCHDOG_PID`` is absent or this process's pid."""
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET")
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if unset:
            for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                env.pop(key, None)
        watchdog = None
        if usec and (not pid or pid == str(os.getpid())):
            try:
                watchdog = int(usec)
            except ValueError:
                watchdog = None
            if watchdog is not None and watchdog <= 0:
                watchdog = None
        return cls(name, watchdog)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pets: half the watchdog's timeout, as sd_watchdog_enabled(3)
        recommends; None when systemd runs no watchdog for this service."""
        if not self.enabled or not self.watchdog_usec:
            return None
        return self.watchdog_usec / 2e6

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one datagram; False (and a message, once) on failure."""
        if self._sock is None:
            return False
        data = "\n".join(f.replace("\n", " ") if f.startswith("STATUS=") else f
                         for f in fields).encode()
        try:
            self._sock.sendto(data, self._addr)
        except OSError as e:
            self._fail(str(e))
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *((f"STATUS={status}",) if status else ()))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = "stopping") -> bool:
        return self.notify("STOPPING=1", *((f"STATUS={status}",) if status else ()))

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _fail(self, why: str):
        if self.error is None:
            log.warning("systemd notify socket %s: %s; not telling systemd", self.socket_name, why)
        self.error = why


def describe_daemon(daemon) -> str:
    """One status line: the board, each adapter that has a phase to report, and the faults."""
    kind = "simulated" if daemon.sim is not None else "GPIO"
    parts = [f"board {daemon.board.name} ({kind})"]
    for adapter in daemon.adapters:
        phase = adapter.phase()
        if phase is not None:
            parts.append(f"{adapter.name} {phase}")
    faults = daemon.state.faults
    parts.append("faults: " + ("; ".join(f"{k}: {v}" for k, v in sorted(faults.items()))
                               if faults else "none"))
    return "ready: " + ", ".join(parts)


class ServiceNotifier:
    """Tell systemd how the daemon is doing, from a task on the daemon's loop.

    ``describe()`` gives the status line once ready (what the board is and its
    faults); it is sent again whenever it changes."""

    def __init__(self, notifier: Notifier, daemon, describe=None):
        self.notifier = notifier
        self.daemon = daemon
        self.describe = describe or (lambda: describe_daemon(daemon))
        self.is_ready = False
        self._stopping = False
        self._last_status: str | None = None
        self._tasks: list[asyncio.Task] = []

    def start(self):
        """Start the watchdog and readiness tasks (call on the daemon's running loop)."""
        if not self.notifier.enabled:
            return
        if self.notifier.watchdog_interval:
            self._tasks.append(asyncio.ensure_future(self._pet()))
        self._tasks.append(asyncio.ensure_future(self._ready()))

    def stopping(self):
        """The daemon was asked to stop: STOPPING=1, and no more pets or readiness."""
        if self._stopping:
            return
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        self.notifier.stopping("stopping: lamps off, calls and helpers ending")

    def set_status(self, text: str):
        if text != self._last_status:
            self._last_status = text
            self.notifier.status(text)

    async def _pet(self):
        # The pets come from the daemon's loop: if the loop is stuck, they stop, and
        # systemd restarts the daemon after WatchdogSec=.
        interval = self.notifier.watchdog_interval
        while not self._stopping:
            self.notifier.watchdog()
            if self.is_ready:
                try:
                    self.set_status(self.describe())
                except Exception as e:      # a status line must never stop the pets
                    self.set_status(f"ready (status unavailable: {type(e).__name__}: {e})")
            await asyncio.sleep(interval)

    async def _ready(self):
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + MAX_START_S
        for adapter in list(self.daemon.adapters):
            if adapter.phase() != "starting":
                continue
            self.set_status(f"starting: waiting for the {adapter.name}")
            # Wait in short steps: the daemon may be stopped meanwhile.
            while adapter.phase() == "starting" and time.monotonic() < deadline:
                await loop.run_in_executor(None, adapter.wait_ready, 1.0)
        self.is_ready = True
        self._last_status = self.describe()
        self.notifier.ready(self._last_status)


# -- the journal -----------------------------------------------------------------
def journal_stream(stream=None, environ=None) -> bool:
    """True when ``stream`` (stderr) is connected to the journal.

    systemd sets ``$JOURNAL_STREAM`` to ``device:inode`` of the stream it gave the
    service; comparing it with the stream's own (as systemd.exec(5) advises) tells a
    redirected stderr (``2>file`` in ExecStart, a child's pipe) from the journal."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (AttributeError, OSError, ValueError):
        return False


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (a level between two takes the lower one's)."""
    for level, prio in PRIORITIES:
        if levelno >= level:
            return prio
    return 7


class JournalFormatter(logging.Formatter):
    """``<N>`` syslog priority prefixes on every line, no timestamp (journald adds one)."""

    def __init__(self, fmt: str = "%(name)s: %(message)s"):
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines() or [""])


def journal_formatter(verbose: bool = False) -> JournalFormatter:
    """The formatter for diagnostics that go to the journal: no program name either (the
    journal records the unit and ``SyslogIdentifier=``); verbose adds the logger's name."""
    return JournalFormatter("%(name)s: %(message)s" if verbose else "%(message)s")
