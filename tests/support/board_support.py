"""The real daemon on the simulated board, in-process: its loop in a thread of its own."""

import asyncio
import threading
import time
from contextlib import contextmanager

from firmware.config.board import find_board, load_board
from firmware.runtime.daemon import Daemon
from firmware.panel.gpio import Panel
from firmware.panel.sim import SimBoard


@contextmanager
def running(board_name="desk", adapters=()):
    """Yield (daemon, sim) with the daemon's loop running; stop and close after."""
    board = load_board(find_board(board_name))
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    daemon = Daemon(board, panel, sim=sim)
    for adapter in adapters:
        daemon.add_adapter(adapter)
    ready = threading.Event()

    async def on_ready():
        ready.set()

    t = threading.Thread(target=lambda: asyncio.run(daemon.run(on_ready)), daemon=True)
    t.start()
    assert ready.wait(5)
    try:
        yield daemon, sim
    finally:
        daemon.loop.call_soon_threadsafe(daemon.stop)
        t.join(5)
        panel.close()


def request(daemon, name, **args):
    """A control command, as the control socket would send it."""
    return asyncio.run_coroutine_threadsafe(daemon.request(name, args), daemon.loop).result(5)


def poll(pred, timeout: float, step: float = 0.05):
    """``pred()``'s first true value within ``timeout`` seconds, else None.

    The one waiting loop of the tests: ``wait_for`` and ``wait_until`` are it."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v or None
        time.sleep(step)


def wait_until(predicate, timeout=3.0) -> bool:
    """True once ``predicate()`` is; False after ``timeout`` seconds."""
    return poll(predicate, timeout, 0.002) is not None


def wait_for(pred, timeout: float, what: str, step: float = 0.05):
    """Wait until ``pred()`` is true and return its value; fail naming ``what``."""
    v = poll(pred, timeout, step)
    if v is None:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return v
