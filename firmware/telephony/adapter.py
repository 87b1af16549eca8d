"""The telephony adapter: the board's calls on real SIP, for the daemon.

``TelephonyAdapter`` is what the daemon sees (constructed with the board and
the site file; ``start(ctx)``, ``handle(command)``, ``status()``,
``stop()``, ``commands()``). It is put together from one
module per job, each a mixin working on the state declared here:

- ``supervisor``: start-up, the workers, positions and front as supervised
  processes (restart, fault lamp, health checks), reconciliation, status;
- ``events``: what the workers report, turned into board events and records;
- ``board``: the board's commands on a line's call (answer, hold, resume,
  release, join, overflow) and transfers;
- ``dialling``: office lines seized and dialled from a position's pad;
- ``placed``: wake-up and reminder calls placed by the board itself;
- ``testcalls``: the simulated board's ``ring`` and the trunk test.

The daemon's side and the workers' side talk through
``firmware.telephony.protocol``; where outgoing calls go is ``routing``; the
calls themselves are kept in a ``calls.CallBook``.

Calls in: a worker reports an INVITE it answered with 180 Ringing; the
adapter maps the called number to the board line and posts
``LineRinging(line, caller, call)``. The board's commands (``Answer``,
``Hold``, ``Resume``, ``Release``, ``Join``, ``Seize`` + ``Dial``) become
worker commands on that call. A caller hanging up posts ``LineCleared``; the
customer's phone answering or hanging up posts ``CustomerAnswered`` /
``CustomerHungUp``; a call rung out takes a voice message and posts
``MessageWaiting``. Every call ends in exactly one call record.

The adapter's state is touched from the workers' reader threads, the watch
thread and the daemon's loop, under one lock; nothing here blocks on a worker.

Registration: a trunk that fails to register posts ``Fault("trunk <name>",
message)`` (the fault lamp) and is retried with doubling back-off; success
clears the fault.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from firmware.runtime.adapter import Adapter
from firmware.telephony.board import BoardCommands
from firmware.telephony.calls import NO_ANSWER_CODES, Call, CallBook  # noqa: F401 (re-exported)
from firmware.telephony.dialling import DIAL_TIMEOUT_S, OfficeDialling  # noqa: F401 (re-exported)
from firmware.telephony.events import WorkerEvents
from firmware.telephony.front import Front
from firmware.telephony.placed import PlacedCalls
from firmware.telephony.pool import WorkerProc
from firmware.telephony.protocol import LINE_BUSY  # noqa: F401 (re-exported)
from firmware.telephony.supervisor import Supervision
from firmware.telephony.testcalls import TestCallers
from firmware.telephony.texts import TextSender


@dataclass
class _Trunk:
    name: str
    registered: bool = False
    faulted: bool = False
    code: int | None = None
    reason: str = ""
    retry_in_s: float | None = None
    since: float | None = None


class TelephonyAdapter(Supervision, WorkerEvents, BoardCommands, OfficeDialling, PlacedCalls,
                       TestCallers, Adapter):
    name = "telephony"

    def __init__(self, board, site, *, run_dir=None, records=None, port=None, workers=None,
                 position_uris=None, clock=time.time):
        self.board = board
        self.site = site
        self.run_dir = Path(run_dir) if run_dir else None
        self.records = records
        self.port = site.port if port is None else port
        self.want_workers = workers if workers is not None else site.workers
        self.position_uris = dict(position_uris or {})
        for p in site.positions:
            if p.uri and p.number not in self.position_uris:
                self.position_uris[p.number] = p.uri
        self.clock = clock
        self.ctx = None                           # what the daemon gave start()
        # processes (supervisor)
        self.workers: list[WorkerProc] = []
        self.front: Front | None = None
        self.front_up = False
        self.front_restarts = 0
        self.position_procs: dict = {}            # position -> PositionProcess
        self.state = "stopped"
        self.error: str | None = None
        self.limit: int | None = None
        self.restarts = 0
        self.restarts_positions = 0
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._asked: dict[int, tuple] = {}        # ListCalls seq -> (worker, when asked)
        # calls (events, board)
        self.book = CallBook(clock)
        self.trunks = {t.name: _Trunk(t.name) for t in site.trunks if t.mode == "register"}
        self.secrecy = False
        self.turned_away = 0
        self.late_callers: dict[str, tuple] = {}  # SIP Call-ID -> (caller, when): caller ID
        #                                           said before the worker reported the call
        self.screen = None        # (line, caller) -> a block-list entry refusing it (app.py)
        # () -> the block list's block entries as (digits pattern, line or None, label),
        # given to the front (frontblock.py; app.py sets it)
        self.block_rules = None
        self.front_blocks = None
        self.texts = TextSender(self)   # texts by SIP MESSAGE, for the outbox
        self.recording_for = None  # (line, call) -> a WAV path when the line's calls are recorded
        self.messages: dict[str, list] = {}       # line -> voice messages taken on overflow
        self._event_handlers = self._event_table()
        # office lines (dialling), by position
        self.seized: dict[int, dict] = {}
        self.dial_timers: dict[int, object] = {}
        # test callers (testcalls)
        self.tests: dict[str, dict] = {}          # test callers (ring, test-call) by id
        self._levels: dict[int, dict] = {}
        self._seq = 0
        self._lock = threading.RLock()

    @property
    def calls(self) -> dict[str, Call]:
        """Open calls by id."""
        return self.book.by_id

    @property
    def line_call(self) -> dict[str, str]:
        """Line -> the id of its open call."""
        return self.book.by_line
