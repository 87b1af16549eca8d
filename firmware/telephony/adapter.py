"""The telephony adapter: the board's calls on real SIP, for the daemon.

Start-up (in a thread, so the daemon's loop is not held up): one PJSUA2
worker is started and reports its call limit (128 with the project's build,
scripts/build-pjsua2.sh; the PyPI wheel's was 4); enough further workers are
started for every line to ring at once, plus a spare (or as many as the site
file says); each worker is told its ``maxload`` (its limit less one
slot kept for the operator's position leg, or half that where customers'
phones are rung too) and refuses callers beyond it; a position endpoint is
started per position; then Kamailio, the front, is started on the site's
address; then trunks register. A worker that dies is restarted on its port.

Calls in: a worker reports an INVITE it answered with 180 Ringing; the
adapter maps the called number to the board line and posts
``LineRinging(line, caller, call)``. The board's commands (``Answer``,
``Hold``, ``Resume``, ``Release``, ``Join``, ``Seize`` + ``Dial``) become
worker commands on that call. A caller hanging up posts ``LineCleared``; the
customer's phone answering or hanging up posts ``CustomerAnswered`` /
``CustomerHungUp``; a call rung out takes a voice message and posts
``MessageWaiting``. Every call ends in a call record.

The adapter's state is touched from the workers' reader threads and the
daemon's loop, under one lock; nothing here blocks on a worker.

Registration: a trunk that fails to register posts ``Fault("trunk <name>",
message)`` (the fault lamp) and is retried with doubling back-off; success
clears the fault.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from firmware.core.state import (Answer, CustomerAnswered, CustomerHungUp, Dial, Fault, Hold, Join,
                     LineChanged, LineCleared, LineRinging, LineState, MessageWaiting, PlaceCall,
                     PlacedCallEnded, Release, Resume, Seize, SwitchChanged)
from firmware.telephony.front import Front
from firmware.telephony.pool import WorkerProc, _child_env, start_workers
from firmware.records.calls import JsonLinesRecords, iso

#: SIP final codes that mean nobody took a placed call (busy, no answer, we gave up).
NO_ANSWER_CODES = (408, 480, 486, 487, 600, 603)
DIAL_TIMEOUT_S = 4.0      # an office line's number is complete this long after the last digit
LINE_BUSY = "Line Busy"   # our 486: the front must not try another worker
SPARE_WORKERS = 1         # workers beyond what every line ringing at once needs


@dataclass
class _Call:
    id: str
    worker: WorkerProc
    line: str
    direction: str
    caller: str | None
    callee: str | None
    offered: float
    answered: float | None = None
    ended: float | None = None
    rings: int = 1
    position: int | None = None
    hold_s: float = 0.0
    held_since: float | None = None
    outcome: str | None = None
    board_done: bool = False      # the board already cleared the line (Release)
    sip_call_id: str | None = None
    customer_on: bool = False
    overflowed: bool = False
    patching: str | None = None   # a transfer / live patch to this number is under way
    dialled: str = ""
    kind: str = "call"            # "wakeup" / "reminder" for a call the board placed itself
    placed: dict | None = None    # a PlaceCall's customer, schedule and occurrence

    def record(self) -> dict:
        extra = {} if self.placed is None else {
            "customer": self.placed["customer"], "schedule": self.placed["schedule"]}
        return {**extra, "id": self.id, "line": self.line, "direction": self.direction, "kind": self.kind,
                "caller": self.caller, "callee": self.callee, "offered": iso(self.offered),
                "answered": iso(self.answered), "ended": iso(self.ended), "rings": self.rings,
                "position": self.position, "hold_s": round(self.hold_s, 3),
                "outcome": self.outcome}


@dataclass
class _Trunk:
    name: str
    registered: bool = False
    faulted: bool = False
    code: int | None = None
    reason: str = ""
    retry_in_s: float | None = None
    since: float | None = None


class TelephonyAdapter:
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
        self.daemon = None
        self.workers: list[WorkerProc] = []
        self.front: Front | None = None
        self.calls: dict[str, _Call] = {}         # call id -> call
        self.line_call: dict[str, str] = {}       # line -> call id
        self.trunks = {t.name: _Trunk(t.name) for t in site.trunks if t.mode == "register"}
        self.secrecy = False
        self.state = "stopped"
        self.error: str | None = None
        self.limit: int | None = None
        self.turned_away = 0
        self.restarts = 0
        self._lock = threading.RLock()
        self._ready = threading.Event()
        self._dial_timers: dict[int, object] = {}
        self._seq = 0
        self.tests: dict[str, dict] = {}          # test callers (ring, test-call) by id
        self.messages: dict[str, list] = {}       # line -> voice messages taken on overflow
        self.position_procs: dict = {}            # position -> firmware.telephony.pj.position.PositionProcess
        self._levels: dict[int, dict] = {}

    # -- the adapter contract -------------------------------------------
    def start(self, daemon):
        self.daemon = daemon
        if self.run_dir is None:
            base = getattr(daemon, "data_dir", None)
            self.run_dir = Path(base) / "telephony" if base else \
                Path(tempfile.mkdtemp(prefix="switchboard-telephony-"))
        if self.records is None:
            path = self.site.records or (self.run_dir.parent / "calls.jsonl"
                                         if getattr(daemon, "data_dir", None) else
                                         self.run_dir / "calls.jsonl")
            self.records = JsonLinesRecords(path)
        self.state = "starting"
        threading.Thread(target=self._start, name="telephony-start", daemon=True).start()

    def wait_ready(self, timeout=60.0) -> bool:
        self._ready.wait(timeout)
        return self.state == "running"

    def _start(self):
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            logs = self.run_dir / "logs"
            first = WorkerProc(0, self._on_event, listen="127.0.0.1",
                               limit=self.site.calls_per_worker, log_dir=logs)
            first.start()
            self.limit = first.limit
            per = self._maxload(first.limit)
            # Enough for every line to ring at once, and one more: a worker that dies
            # (restarted on its port within seconds) costs no capacity, and the front
            # fails over to the spare. With the project's build (128 calls a process)
            # that is 2 workers for any shipped board; the PyPI wheel's 4 needed 39+.
            count = self.want_workers or math.ceil(
                (self.site.max_calls or len(self.board.lines)) / per) + SPARE_WORKERS
            self.workers = start_workers(count, self._on_event, listen="127.0.0.1",
                                         limit=first.limit, log_dir=logs, first=first)
            for w in self.workers:
                w.maxload = self._maxload(w.limit)
                w.send(op="limits", maxload=w.maxload)
            self._start_positions()
            self.front = Front(self.run_dir / "front", listen=self.site.listen, port=self.port,
                               transports=self.site.transports, peers=self.site.peer_addresses(),
                               numbers=list(self.site.numbers),
                               workers=[(w.port, w.maxload) for w in self.workers],
                               tls_certificate=self.site.tls_certificate,
                               tls_private_key=self.site.tls_private_key)
            self.front.start()
            self.state = "running"
            print(f"switchboard: telephony ready: sip:<line>@{self.site.listen}:{self.front.port} "
                  f"rings a line; {len(self.workers)} PJSUA2 workers x {self.limit} calls",
                  flush=True)
            for t in self.site.trunks:
                if t.mode == "register":
                    self._register(t)
        except Exception as e:            # reported on status and as a fault, never a traceback
            self.state, self.error = "failed", f"{type(e).__name__}: {e}"
            self._post(Fault("telephony", self.error))
            self._teardown()
        finally:
            self._ready.set()

    def _start_positions(self):
        """An endpoint per position not given by URI: ``firmware.telephony.pj.position`` with its headset.

        A headset that cannot be opened is a fault, and the position runs without
        one (its legs are still answered), so calls can be answered anyway."""
        for p in self.site.positions:
            if p.number in self.position_uris:
                continue
            uri, err = self._position_proc(p.number, p.headset)
            if uri is None and p.headset:
                self._post(Fault(f"headset p{p.number}", err))
                uri, err = self._position_proc(p.number, None)
            if uri is not None:
                self.position_uris[p.number] = uri
            else:
                self._post(Fault(f"position p{p.number}", err))

    def _position_proc(self, number, headset):
        from firmware.telephony.pj.position import PositionProcess, PositionError
        proc = PositionProcess(name=f"p{number}", headset=headset, env=_child_env())
        try:
            proc.start()
        except PositionError as e:
            return None, str(e)
        self.position_procs[number] = proc
        return proc.uri, None

    def _maxload(self, limit: int) -> int:
        # One slot per worker stays free for the position leg of the call a position
        # picks up; where customers' phones are rung too, each call takes two slots.
        if self.site.customers:
            return max(1, (limit - 1) // 2)
        return max(1, limit - 1)

    def _register(self, t):
        self.workers[0].send(
            op="register", trunk=t.name, registrar=t.registrar, username=t.username,
            password=t.password, realm=t.realm, expires=t.expires, transport=t.transport,
            retry_min_s=t.retry_min_s, retry_max_s=t.retry_max_s,
            contact=f"<sip:{t.username}@{self.site.listen}:{self.front.port}>")

    def stop(self):
        self._ready.wait(60)
        with self._lock:
            self.state = "stopping"      # workers exiting now is no fault
            for c in list(self.calls.values()):
                self._finish(c, c.outcome or ("answered" if c.answered else "abandoned"))
        self._teardown()
        self.state = "stopped"

    def _teardown(self):
        if self.front is not None:
            self.front.stop()
        for proc in self.position_procs.values():
            proc.stop()
        self.position_procs = {}
        for w in self.workers:        # ask them all first: each takes a second to wind down
            w.send(op="quit")
        for w in self.workers:
            w.stop()
        self.workers = []

    def status(self) -> dict:
        with self._lock:
            ws = [{"index": w.index, "pid": w.pid, "port": w.port, "limit": w.limit,
                   "maxload": w.maxload, "calls": len(w.calls)} for w in self.workers]
            capacity = sum(w["maxload"] or 0 for w in ws)
            in_use = len(self.calls)
            return {
                "state": self.state, "error": self.error,
                "front": f"{self.site.listen}:{self.front.port}" if self.front else None,
                "calls_per_worker": self.limit, "workers": ws, "capacity": capacity,
                "in_use": in_use, "free": max(0, capacity - in_use),
                "turned_away": self.turned_away, "worker_restarts": self.restarts,
                "trunks": {n: {"registered": t.registered, "code": t.code, "reason": t.reason,
                               "retry_in_s": t.retry_in_s} for n, t in self.trunks.items()},
                "calls": [c.record() for c in self.calls.values()],
                "memory_kb": sum(w.rss_kb() for w in self.workers),
            }

    # -- events from the workers (reader threads) -----------------------
    def _post(self, event):
        # Nothing after stop(): the daemon's loop and panel may already be gone.
        if self.daemon is not None and self.state not in ("stopping", "stopped"):
            self.daemon.post(event)

    def _on_event(self, w: WorkerProc, ev: dict):
        kind = ev.get("ev")
        with self._lock:
            t = self.tests.get(ev.get("call"))
            if kind == "levels":
                self._levels[ev.get("seq")] = ev
            elif t is not None:
                self._test_event(t, ev)
            elif kind == "incoming":
                self._incoming(w, ev)
            elif kind == "ended":
                c = self.calls.get(ev["call"])
                if c is not None:
                    self._ended(c, ev)
            elif kind == "confirmed":
                c = self.calls.get(ev["call"])
                if c is not None and c.direction == "out" and c.answered is None:
                    c.answered = self.clock()
            elif kind in ("customer_answered", "customer_hungup"):
                c = self.calls.get(ev["call"])
                if c is not None:
                    if kind == "customer_answered":
                        c.answered = c.answered or self.clock()
                        c.customer_on = True
                        if c.patching:
                            c.outcome = "transferred"
                        self._post(CustomerAnswered(c.line))
                    else:
                        c.customer_on = False
                        self._post(CustomerHungUp(c.line))
            elif kind == "patch_failed":
                c = self.calls.get(ev["call"])
                if c is not None:
                    c.patching = None
                    if c.board_done:           # the operator had let go: the call comes back
                        c.board_done = False
                        self._post(LineRinging(c.line, c.caller, c.id))
            elif kind == "message":
                c = self.calls.get(ev["call"])
                line = c.line if c is not None else None
                if line is not None:
                    self.messages.setdefault(line, []).append(
                        {"path": ev["path"], "seconds": ev["seconds"], "caller": c.caller,
                         "at": iso(self.clock())})
                    self._post(MessageWaiting(line, len(self.messages[line])))
            elif kind == "reg":
                self._reg(ev)
            elif kind == "reg_retry":
                t = self.trunks.get(ev["trunk"])
                if t is not None:
                    t.retry_in_s = ev["in_s"]
            elif kind == "exit" and self.state == "running" and w in self.workers:
                self._worker_died(w)

    def _worker_died(self, w):
        """A worker is gone with its calls: clear them, light the fault, start a new one
        on the same port (the front's list names it), then clear the fault."""
        source = f"worker {w.index}"
        self._post(Fault(source, "a PJSUA2 worker exited; its calls were lost; restarting it"))
        for c in [c for c in self.calls.values() if c.worker is w]:
            if c.placed is not None:        # a wake-up or reminder call: the scheduler retries it
                outcome = "answered" if c.answered else "failed"
                self._finish(c, outcome)
                self._post(PlacedCallEnded(c.placed["occurrence"], c.id, outcome, "worker lost"))
                continue
            self._post(LineCleared(c.line, "worker lost"))
            self._finish(c, c.outcome or ("answered" if c.answered else "abandoned"))
        for tid in [t for t, x in self.tests.items() if x["worker"] is w]:
            self.tests.pop(tid, None)

        def restart():
            for attempt in range(5):
                if self.state != "running":
                    return
                new = WorkerProc(w.index, self._on_event, listen="127.0.0.1", limit=w.limit,
                                 log_dir=w.log_dir, port=w.port)
                try:
                    new.start()
                except Exception:
                    time.sleep(min(30, 2 ** attempt))
                    continue
                new.maxload = w.maxload
                new.send(op="limits", maxload=new.maxload)
                with self._lock:
                    self.workers[self.workers.index(w)] = new
                    self.restarts += 1
                self._post(Fault(source, None))
                return

        threading.Thread(target=restart, name=f"restart-worker{w.index}", daemon=True).start()

    def _incoming(self, w, ev):
        line = self.site.line_for(ev.get("user") or "")
        cid = ev["call"]
        if line is None:
            w.send(op="release", call=cid, code=404)
            return
        if line in self.line_call:
            # The board shows one call per line: a second caller hears busy.
            self.turned_away += 1
            w.send(op="release", call=cid, code=486, reason=LINE_BUSY)
            return
        c = _Call(id=cid, worker=w, line=line, direction="in", caller=ev.get("caller"),
                  callee=ev.get("user"), offered=ev.get("t") or self.clock(),
                  sip_call_id=ev.get("sip_call_id"))
        for t in self.tests.values():
            if t["sip_call_id"] and t["sip_call_id"] == c.sip_call_id:
                self._test_rang(t, c)
        self.calls[cid] = c
        self.line_call[line] = cid
        w.calls.add(cid)
        self._post(LineRinging(line, ev.get("caller"), cid))
        if line in self.site.customers:
            w.send(op="fork", call=cid, uri=self.site.customers[line])

    def _ended(self, c, ev):
        if c.placed is not None:
            # A call the board placed itself: no line on the board to clear;
            # the scheduler hears how it went.
            code = ev.get("code") or 0
            outcome = "answered" if c.answered else (
                "no-answer" if code in NO_ANSWER_CODES else "failed")
            self._finish(c, outcome)
            self._post(PlacedCallEnded(c.placed["occurrence"], c.id, outcome))
            return
        # Always: the board may have let the line go and taken it up again (a customer
        # or a transfer on it); while this call lives no other can be on the line.
        self._post(LineCleared(c.line, "hangup"))
        outcome = c.outcome or ("answered" if c.answered else "abandoned")
        self._finish(c, outcome)

    def _finish(self, c, outcome):
        if c.ended is not None:
            return
        c.ended = self.clock()
        if c.held_since is not None:
            c.hold_s += c.ended - c.held_since
            c.held_since = None
        c.outcome = outcome
        self.calls.pop(c.id, None)
        if self.line_call.get(c.line) == c.id:
            del self.line_call[c.line]
        c.worker.calls.discard(c.id)
        if self.records is not None:
            self.records.write(c.record())

    def _reg(self, ev):
        t = self.trunks.get(ev["trunk"])
        if t is None:
            return
        t.code, t.reason = ev.get("code"), ev.get("reason", "")
        if ev.get("ok"):
            t.registered, t.retry_in_s, t.since = True, None, self.clock()
            if t.faulted:
                t.faulted = False
                self._post(Fault(f"trunk {t.name}", None))
        elif ev.get("expires", 0) == 0 and ev.get("code") == 200:
            t.registered = False      # we unregistered on purpose
        else:
            t.registered = False
            t.faulted = True
            self._post(Fault(f"trunk {t.name}",
                             f"registration failed: {t.code} {t.reason}".strip()))

    # -- commands from the board (the daemon's loop) --------------------
    def handle(self, command):
        method = getattr(self, "_do_" + type(command).__name__, None)
        if method is not None:
            with self._lock:
                method(command)

    def _call_on(self, line):
        cid = self.line_call.get(line)
        return self.calls.get(cid) if cid else None

    def _position_uri(self, position):
        return self.position_uris.get(position)

    def _do_Answer(self, cmd: Answer):
        c = self._call_on(cmd.line)
        if c is None:
            return
        if c.answered is None and c.direction == "in":
            c.answered = self.clock()
        c.position = cmd.position
        c.worker.send(op="answer", call=c.id, position_uri=self._position_uri(cmd.position),
                      listen=True)

    def _do_Join(self, cmd: Join):
        # Secrecy is off (the board only sends Join then): the operator may listen in.
        self._do_Answer(Answer(cmd.line, cmd.position))

    def _do_Resume(self, cmd: Resume):
        c = self._call_on(cmd.line)
        if c is None:
            return
        if c.held_since is not None:
            c.hold_s += self.clock() - c.held_since
            c.held_since = None
        c.position = cmd.position
        c.worker.send(op="resume", call=c.id, position_uri=self._position_uri(cmd.position),
                      listen=True)

    def _do_Hold(self, cmd: Hold):
        c = self._call_on(cmd.line)
        if c is None:
            return
        if c.held_since is None:
            c.held_since = self.clock()
        c.worker.send(op="hold", call=c.id)

    def _do_Release(self, cmd: Release):
        c = self._call_on(cmd.line)
        timer = self._dial_timers.pop(cmd.position, None)
        if timer is not None:
            timer.cancel()
        getattr(self, "_seized", {}).pop(cmd.position, None)
        if c is None:
            return
        keep = not cmd.ends_call or c.patching is not None
        if cmd.ends_call:
            c.board_done = True
        c.worker.send(op="release", call=c.id, keep=keep)

    def _do_LineChanged(self, cmd: LineChanged):
        c = self._call_on(cmd.line)
        if c is not None and cmd.state is LineState.RINGING:
            c.rings = max(c.rings, cmd.rings)
            if self.site.overflow_rings and c.rings > self.site.overflow_rings and \
                    self.site.overflow_action == "message" and not c.overflowed:
                self._overflow(c)

    def _overflow(self, c):
        """Rung out: the board answers with the announcement and takes a voice message."""
        c.overflowed, c.outcome, c.board_done = True, "overflowed", True
        c.answered = self.clock()
        folder = self.run_dir.parent / "messages" if self.run_dir else Path("messages")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{c.line}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{c.id}.wav"
        c.worker.send(op="overflow", call=c.id, path=str(path), announcement=self.site.announcement)
        self._post(LineCleared(c.line, "overflowed"))

    def _do_SwitchChanged(self, cmd: SwitchChanged):
        if cmd.switch == "secrecy":
            self.secrecy = cmd.on

    def _do_Seize(self, cmd: Seize):
        """An idle line taken to call out: the number follows on the dial pad."""
        self._seq += 1
        self._seized = getattr(self, "_seized", {})
        self._seized[cmd.position] = {"line": cmd.line, "digits": "", "at": self.clock()}

    def _do_Dial(self, cmd: Dial):
        c = self._call_on(cmd.line) if cmd.line else None
        if c is not None:
            c.worker.send(op="dtmf", call=c.id, digits=cmd.digit)
            return
        seized = getattr(self, "_seized", {}).get(cmd.position)
        if seized is None or seized["line"] != cmd.line:
            return
        if cmd.digit == "#":
            self._place(cmd.position)
            return
        seized["digits"] += cmd.digit
        loop = getattr(self.daemon, "loop", None)
        if loop is not None:
            old = self._dial_timers.pop(cmd.position, None)
            if old is not None:
                old.cancel()
            self._dial_timers[cmd.position] = loop.call_later(
                DIAL_TIMEOUT_S, self._dial_timeout, cmd.position)

    def _dial_timeout(self, position):
        with self._lock:
            self._dial_timers.pop(position, None)
            self._place(position)

    def _place(self, position):
        seized = getattr(self, "_seized", {}).pop(position, None)
        if seized is None or not seized["digits"]:
            return
        trunk = next((t for t in self.site.trunks if t.outbound), None)
        if trunk is None or not self.workers:
            self._post(LineCleared(seized["line"], "no outbound trunk"))
            return
        number = seized["digits"]
        if trunk.dial:
            uri = trunk.dial.replace("{number}", number)
            worker = self.workers[0] if trunk.mode == "register" else self._least_loaded()
            acc = trunk.name if trunk.mode == "register" else None
        elif trunk.mode == "register":
            host = trunk.registrar.split(":", 1)[1]
            uri, worker, acc = f"sip:{number}@{host};transport={trunk.transport}", self.workers[0], trunk.name
        else:
            uri, worker, acc = f"sip:{number}@{trunk.peers[0]}", self._least_loaded(), None
        self._seq += 1
        cid = f"out-{position}-{self._seq}"
        c = _Call(id=cid, worker=worker, line=seized["line"], direction="out", caller=seized["line"],
                  callee=number, offered=self.clock(), position=position)
        self.calls[cid] = c
        self.line_call[c.line] = cid
        worker.calls.add(cid)
        worker.send(op="call", call=cid, uri=uri, trunk=acc,
                    position_uri=self._position_uri(position))

    # -- calls the board places itself (wake-up and reminder calls) -------
    def _do_PlaceCall(self, cmd: PlaceCall):
        """Call ``cmd.number`` from an office line and play the message once it
        is answered; a ``PlacedCallEnded`` event reports the outcome. The
        message is made ready in a thread (speaking it takes a moment)."""
        threading.Thread(target=self._place_call, args=(cmd,), name="telephony-place",
                         daemon=True).start()

    def _place_call(self, cmd: PlaceCall):
        def fail(why):
            self._post(PlacedCallEnded(cmd.occurrence, None, "failed", why))
        try:
            play = self._message_file(cmd.message)
        except (OSError, subprocess.SubprocessError) as e:
            return fail(str(e))
        with self._lock:
            self._place_now(cmd, play, fail)

    def _place_now(self, cmd, play, fail):
        if self.state != "running" or not self.workers:
            return fail(f"the telephony is {self.state}")
        office = [ln.number for ln in self.board.lines if ln.kind == "office"]
        line = cmd.line if cmd.line in office else next(
            (n for n in office if n not in self.line_call), None)
        if line is None or line in self.line_call:
            return fail("no free office line")
        if cmd.number.startswith(("sip:", "sips:")):
            uri, acc, worker = cmd.number, None, self._least_loaded()
        else:
            # The way an office line dials out (see _place): the trunk's dial URI,
            # else its registrar or its first peer.
            trunk = next((t for t in self.site.trunks if t.outbound), None)
            if trunk is None:
                return fail("no outbound trunk in the site file")
            if trunk.dial:
                uri = trunk.dial.replace("{number}", cmd.number)
                worker = self.workers[0] if trunk.mode == "register" else self._least_loaded()
                acc = trunk.name if trunk.mode == "register" else None
            elif trunk.mode == "register":
                host = trunk.registrar.split(":", 1)[1]
                uri, worker, acc = (f"sip:{cmd.number}@{host};transport={trunk.transport}",
                                    self.workers[0], trunk.name)
            else:
                uri, worker, acc = f"sip:{cmd.number}@{trunk.peers[0]}", self._least_loaded(), None
        self._seq += 1
        cid = f"placed-{self._seq}"
        c = _Call(id=cid, worker=worker, line=line, direction="out", caller=line, callee=cmd.number,
                  offered=self.clock(), kind=cmd.kind,
                  placed={"customer": cmd.customer, "schedule": cmd.schedule_id,
                          "occurrence": cmd.occurrence})
        self.calls[cid] = c
        self.line_call[line] = cid
        worker.calls.add(cid)
        worker.send(op="call", call=cid, uri=uri, trunk=acc, play=str(play), ring_s=cmd.ring_s)

    def _message_file(self, message: str) -> Path:
        """``file:<path>`` as it is; text spoken into a WAV by espeak-ng (cached)."""
        if message.startswith("file:"):
            path = Path(message[5:])
            if not path.is_file():
                raise OSError(f"message file {path} does not exist")
            return path
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise OSError("no speech synthesizer (install espeak-ng) for a spoken message; "
                          "or give a recording as file:<path>")
        out = self.run_dir / "messages" / (hashlib.sha1(message.encode()).hexdigest()[:16] + ".wav")
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp.wav")
            r = subprocess.run([exe, "-w", str(tmp), message], capture_output=True, timeout=30)
            if r.returncode != 0:
                raise OSError(f"espeak-ng failed: {r.stderr.decode(errors='replace')[:200]}")
            os.replace(tmp, out)
        return out

    def transfer(self, line: str, number: str, consult: bool = False) -> dict:
        """Transfer the call on ``line`` to ``number`` (a live patch: the board stays in the
        media path). Blind: release at once. Attended: with ``consult`` the caller waits on
        the hold tone while the operator talks to them, then release connects the two
        (also while it still rings); without, all three hear each other until release."""
        with self._lock:
            c = self._call_on(line)
            if c is None:
                raise RuntimeError(f"line {line} has no call to transfer")
            trunk = next((t for t in self.site.trunks if t.outbound and t.dial), None)
            if trunk is None:
                raise RuntimeError("no outbound trunk with a dial URI in the site file")
            c.patching = number
            c.worker.send(op="patch", call=c.id, uri=trunk.dial.replace("{number}", number),
                          consult=consult)
            return {"line": line, "to": number, "call": c.id, "consult": consult}

    def _least_loaded(self):
        return min(self.workers, key=lambda w: len(w.calls) / max(1, w.maxload or 1))

    # -- test callers: the simulated board's "ring", and the trunk test -----------
    def ring(self, line: str, caller: str | None = None, echo: float = 0.0) -> dict:
        """Place a real SIP call into ``line`` through the front, as a caller would."""
        with self._lock:
            if self.state != "running":
                raise RuntimeError(f"telephony is {self.state}" +
                                   (f": {self.error}" if self.error else ""))
            number = next((n for n, ln in self.site.numbers.items() if ln == line), line)
            w = self._least_loaded()
            self._seq += 1
            tid = f"test-{self._seq}"
            t = {"id": tid, "line": line, "worker": w, "sip_call_id": None, "board_call": None,
                 "placed_t": self.clock(), "rang_t": None, "answered_t": None, "ended_t": None,
                 "code": None, "echo": echo}
            self.tests[tid] = t
            w.calls.add(tid)
            host = "127.0.0.1" if self.site.listen in ("0.0.0.0", "::") else self.site.listen
            w.send(op="call", kind="ring", call=tid, caller=caller or "diag",
                   uri=f"sip:{number}@{host}:{self.front.port}")
            return t

    def _test_rang(self, t, c):
        """A test caller's INVITE has arrived on the board as call ``c``."""
        t["board_call"], t["rang_t"] = c.id, self.clock()
        if t.get("echo"):
            c.answered = self.clock()
            threading.Timer(t["echo"], c.worker.send, kwargs={"op": "echo", "call": c.id}).start()

    def _test_event(self, t, ev):
        kind = ev.get("ev")
        if kind == "placed":
            # The two workers' reports race: the board's side may have arrived first.
            t["sip_call_id"] = ev.get("sip_call_id")
            c = next((c for c in self.calls.values() if c.sip_call_id == t["sip_call_id"]), None)
            if c is not None:
                self._test_rang(t, c)
        elif kind == "confirmed":
            t["answered_t"] = self.clock()
        elif kind == "ended":
            t["ended_t"], t["code"] = self.clock(), ev.get("code")
            t["worker"].calls.discard(t["id"])
            self.tests.pop(t["id"], None)
            self._done_tests = getattr(self, "_done_tests", {})
            self._done_tests[t["id"]] = t

    def hang_up_test(self, line) -> bool:
        with self._lock:
            for t in self.tests.values():
                if t["line"] == line:
                    t["worker"].send(op="release", call=t["id"])
                    return True
        return False

    def levels(self, worker, call, timeout=2.0) -> dict | None:
        self._seq += 1
        seq = self._seq
        worker.send(op="levels", call=call, seq=seq)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if seq in self._levels:
                return self._levels.pop(seq)
            time.sleep(0.01)
        return None

    def register_commands(self, daemon):
        """Control-socket commands: ``ring`` and ``hangup`` through real SIP, ``test-call``."""
        sim_hangup = daemon.commands.get("hangup")

        async def ring(args):
            line = daemon._line(args)
            t = self.ring(line, args.get("caller"))
            deadline = time.time() + 5
            while t["rang_t"] is None and t["ended_t"] is None and time.time() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.02)
            return {"line": line, "state": daemon.state.lines[line].state.value, "via": "sip",
                    "call": t["board_call"], "rang": t["rang_t"] is not None}

        async def hangup(args):
            line = daemon._line(args)
            if self.hang_up_test(line):
                for _ in range(200):
                    if not any(t["line"] == line for t in self.tests.values()):
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)
                return {"line": line, "state": daemon.state.lines[line].state.value, "via": "sip"}
            return await sim_hangup(args)

        async def test_call(args):
            return await self.test_call(daemon._line(args), float(args.get("answer_s", 20)),
                                        float(args.get("talk_s", 2)), bool(args.get("echo")))

        async def transfer(args):
            return self.transfer(daemon._line(args), str(args.get("to", "")),
                                 bool(args.get("consult")))

        daemon.add_command("transfer", transfer)
        daemon.add_command("ring", ring)
        daemon.add_command("hangup", hangup)
        daemon.add_command("test-call", test_call)

    async def test_call(self, line, answer_s=20.0, talk_s=2.0, echo=False) -> dict:
        """Ring ``line``, wait for it to be answered, measure audio both ways, hang up.

        With ``echo`` the board answers by itself after a ring and sends the caller's
        tone straight back, so one person can test a trunk end to end."""
        t0 = self.clock()
        t = self.ring(line, "trunktest", echo=1.0 if echo else 0.0)
        report = {"line": line, "echo": echo, "rang": False, "answered": False, "ring_ms": None,
                  "answer_s": None, "audio_to_board": None, "audio_from_board": None}

        async def until(pred, timeout):
            deadline = time.time() + timeout
            while not pred() and time.time() < deadline:
                await asyncio.sleep(0.01)
            return pred()

        if await until(lambda: t["rang_t"] is not None or t["ended_t"] is not None, 5):
            report["rang"] = t["rang_t"] is not None
            if report["rang"]:
                report["ring_ms"] = round((t["rang_t"] - t0) * 1000, 1)
        if report["rang"] and await until(
                lambda: t["answered_t"] is not None or t["ended_t"] is not None, answer_s):
            report["answered"] = t["answered_t"] is not None
            if report["answered"]:
                report["answer_s"] = round(t["answered_t"] - t["rang_t"], 2)
                await asyncio.sleep(talk_s)
                loop = asyncio.get_running_loop()
                mine = await loop.run_in_executor(None, self.levels, t["worker"], t["id"])
                board = self.calls.get(t["board_call"])
                theirs = await loop.run_in_executor(None, self.levels, board.worker, board.id) \
                    if board is not None else None
                report["audio_from_board"] = mine and mine["heard"]
                report["audio_to_board"] = theirs and theirs["heard"]
                report["audio_to_position"] = theirs and theirs["position_sent"]
        if t["ended_t"] is None:
            t["worker"].send(op="release", call=t["id"])
            await until(lambda: t["id"] not in self.tests, 5)
        if not report["rang"]:
            report["code"] = t["code"]
        report["ok"] = bool(report["rang"] and report["answered"] and report["audio_to_board"]
                            and report["audio_from_board"])
        return report
