"""The adapter protocol: what the daemon gives an adapter, and what an adapter offers.

An adapter is a part at the board's edge (the telephony, the time clock, the
scheduled calls, call retention). The composition root (``firmware.app``)
builds each one from its slice of the validated configuration and hands it
to the daemon, which

- registers the control commands it offers (``commands()``), before anything runs;
- calls ``start(context)`` once its loop runs, with a ``Context``;
- hands it every command the board's state emits (``handle``), on the loop's thread;
- puts its ``status()`` in the board's status under its ``name``;
- calls ``stop()`` when the daemon stops (in reverse order of starting).

Under systemd, ``READY=1`` waits for every adapter whose ``phase()`` is
``"starting"`` (``wait_ready``). An adapter subclasses ``Adapter`` to take the
defaults: ready once ``start`` returns, with no phase to report.

An adapter touches the daemon only through its ``Context``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from firmware.core.state import Fault
from firmware.runtime.commands import Command


@dataclass
class Context:
    """What the daemon gives an adapter.

    - ``board``: the board file, loaded and checked;
    - ``data_dir``: where the daemon keeps its records (absolute);
    - ``post(event)``: hand an event to the board's state; safe from any thread;
    - ``clock()``: the daemon's monotonic clock (the board's state runs on it);
    - ``loop``: the daemon's asyncio loop (timers, tasks), running by ``start``;
    - ``state``: the board's state, to read (lines, positions) on the loop's thread;
      None where an adapter runs without a board (tests of the adapter alone);
    - ``fault(source, message)``: light the fault lamp for ``source`` (None clears it);
    - ``log``: the adapter's logger.
    """

    board: Any
    data_dir: Path
    post: Callable[[object], None]
    clock: Callable[[], float] = time.monotonic
    loop: asyncio.AbstractEventLoop | None = None
    state: Any = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("switchboard"))

    def fault(self, source: str, message: str | None) -> None:
        """The fault lamp for ``source``: lit with ``message``, or cleared with None."""
        self.post(Fault(source, message))


@runtime_checkable
class Adapter(Protocol):
    """What an adapter offers the daemon."""

    #: Its name: the key of its status in the board's status, and in log lines.
    name: str

    def commands(self) -> Iterable[Command]:
        """The control commands it answers (``firmware.runtime.commands``)."""

    def start(self, context: Context) -> None:
        """Begin work; called on the daemon's loop. Must not block for long."""

    def handle(self, command) -> None:
        """One command from the board's state (``firmware.core.state``); ignore the rest."""

    def status(self) -> dict:
        """What it is doing, as JSON-ready data for ``status``."""

    def stop(self) -> None:
        """Stop work and release what it holds; called once."""

    def phase(self) -> str | None:
        """Where it is in its life, for systemd's status line: ``"starting"`` while it
        starts in the background, then e.g. ``"running"`` or ``"failed"``. None (the
        default): nothing to say, it runs once ``start`` returns."""
        return None

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a start in the background to end; True
        if it is running. The default has nothing to wait for."""
        return True
