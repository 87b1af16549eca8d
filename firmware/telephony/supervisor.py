"""Starting, watching and stopping the telephony's processes: workers, positions, the front.

Start-up runs in a thread, so the daemon's loop is not held up: one PJSUA2
worker is started and reports its call limit (the PyPI wheel's is 4); enough
further workers are started for every line to ring at once (or as many as
the site file says); each is told its ``maxload``; a position endpoint is
started per position; then Kamailio, the front; then trunks register.

While running, one watch thread:

- asks each worker every ``RECONCILE_S`` which calls it still holds, and
  ends (clears the line, writes the record) any call the board has that its
  worker no longer has: a call's end that got lost cannot leave a line
  ringing for ever;
- checks the front by a real SIP ``OPTIONS`` round trip every ``HEALTH_S``;
  a front that is gone or does not answer ``FRONT_MISSES`` times in a row
  lights the fault lamp (``Fault("front", ...)``), status says so, and the
  front is restarted on its port until it answers again.

A worker that exits is restarted on its port (the front's list names it),
its calls cleared and recorded, with the fault lamp lit meanwhile.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from firmware.core.state import Fault, LineCleared, PlacedCallEnded
from firmware.errors import SwitchboardError
from firmware.records.calls import JsonLinesRecords
from firmware.telephony import orphans, routing
from firmware.telephony import protocol as msg
from firmware.telephony.front import Front, FrontError
from firmware.telephony.frontblock import FrontBlocks, FrontRpc, RpcError, front_rules
from firmware.telephony.pool import WorkerProc, start_workers

log = logging.getLogger("switchboard.telephony.supervisor")

RECONCILE_S = 2.0         # how often the board checks its calls against the workers'
HEALTH_S = 1.0            # how often the front is asked OPTIONS
FRONT_MISSES = 2          # unanswered checks in a row before the front counts as down
WORKER_RESTART_TRIES = 5

SPARE_WORKERS = 1         # workers beyond what every line ringing at once needs


class Supervision:
    """Mixin of ``TelephonyAdapter``: process lifecycle, supervision and status."""

    # -- the adapter contract -------------------------------------------
    def start(self, ctx):
        """``ctx`` is what the daemon gives its adapters: ``post``, ``loop``, ``data_dir``."""
        self.ctx = ctx
        if self.run_dir is None:
            base = ctx.data_dir
            self.run_dir = Path(base) / "telephony" if base else \
                Path(tempfile.mkdtemp(prefix="switchboard-telephony-"))
        if self.records is None:
            path = self.site.records or (self.run_dir.parent / "calls.jsonl"
                                         if ctx.data_dir else
                                         self.run_dir / "calls.jsonl")
            self.records = JsonLinesRecords(path)
        self.book.records = self.records
        # Before anything starts: a front left over from a daemon that was killed
        # (same data dir) is ended, and a port someone else holds is a start-up
        # error naming the address, not a "ready" answered by a stranger.
        self.front = self._make_front()
        self.site = routing.with_front(self.site, f"{self.front.host}:{self.front.port}")
        self.front.end_stale()
        self.front.check_free()
        self.state = "starting"
        threading.Thread(target=self._start, name="telephony-start", daemon=True).start()

    def phase(self) -> str:
        return self.state

    def wait_ready(self, timeout=60.0) -> bool:
        self._ready.wait(timeout)
        return self.state == "running"

    def _make_front(self) -> Front:
        return Front(self.run_dir / "front", listen=self.site.listen, port=self.port,
                     transports=self.site.transports, peers=self.site.peer_addresses(),
                     numbers=list(self.site.numbers), workers=[],
                     modems={t.name: t.gateway_port for t in self.site.modem_trunks()
                             if t.gateway_port},
                     tls_certificate=self.site.tls_certificate,
                     tls_private_key=self.site.tls_private_key,
                     refuse=self.site.blocked_refuse)

    def _start(self):
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            logs = self.run_dir / "logs"
            first = WorkerProc(0, self._on_event, on_exit=self._worker_exited,
                               listen="127.0.0.1", limit=self.site.calls_per_worker, log_dir=logs)
            first.start()
            self.limit = first.limit
            per = self._maxload(first.limit)
            # Enough for every line to ring at once, and one more: a worker that dies
            # (restarted on its port within seconds) costs no capacity, and the front
            # fails over to the spare. With the project's build (128 calls a process)
            # that is 2 workers for any shipped board; the PyPI wheel's 4 needed 39+.
            count = self.want_workers or math.ceil(
                (self.site.max_calls or len(self.board.lines)) / per) + SPARE_WORKERS
            self.workers = start_workers(count, self._on_event, on_exit=self._worker_exited,
                                         listen="127.0.0.1", limit=first.limit, log_dir=logs,
                                         first=first)
            for w in self.workers:
                w.maxload = self._maxload(w.limit)
                w.send(self._limits(w))
            self._start_positions()
            self.front.workers = [(w.port, w.maxload) for w in self.workers]
            self.front.start()
            self.front_up = True
            self.front_blocks = FrontBlocks(FrontRpc(self.front.rpc_path))
            self._sync_blocks()
            self.state = "running"
            print(f"switchboard: telephony ready: sip:<line>@{self.site.listen}:{self.front.port} "
                  f"rings a line; {len(self.workers)} PJSUA2 workers x {self.limit} calls",
                  flush=True)
            for t in self.site.trunks:
                if t.mode == "register":
                    self._register(t)
            threading.Thread(target=self._watch, name="telephony-watch", daemon=True).start()
        except Exception as e:            # reported on status and as a fault, never a traceback
            self.state, self.error = "failed", f"{type(e).__name__}: {e}"
            log.error("telephony failed to start: %s", self.error)
            self._post(Fault("telephony", self.error))
            self._teardown()
        finally:
            self._ready.set()

    def _limits(self, w):
        return msg.Limits(maxload=w.maxload, refusal=self.site.blocked_announcement
                          if self.site.blocked_refuse == "announcement" else None)

    # -- blocked callers, refused at the front (frontblock.py) ----------------
    def _sync_blocks(self):
        """Give the front the block list as it is now (only what changed), and read
        back how many it refused. A failure is reported and tried again next time;
        meanwhile the worker still turns blocked callers away (``screen``)."""
        fb = self.front_blocks
        if fb is None or self.block_rules is None:
            return
        try:
            fb.sync(front_rules(self.block_rules(), self.site.numbers))
            fb.read_counts()
            fb.error = None
        except (RpcError, SwitchboardError, OSError, FutureTimeout) as e:
            if fb.error != str(e):
                log.warning("blocked callers at the front: %s", e)
            fb.error = str(e) or type(e).__name__

    def front_refusals(self) -> dict | None:
        """Callers the front refused as blocked (for the time clock's status)."""
        if self.front_blocks is None:
            return None
        out = self.front_blocks.status()
        if out["last"]:
            called = out["last"]["called"]
            out["last"]["line"] = self.site.line_for(called) or called
        return out

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
        from firmware.telephony.pj.position import PositionError, PositionProcess
        proc = PositionProcess(name=f"p{number}", headset=headset,
                               on_exit=lambda p: self._position_exited(number, headset, p),
                               log=self.run_dir / "logs" / f"position{number}.log")
        try:
            proc.start()
        except PositionError as e:
            return None, str(e)
        self.position_procs[number] = proc
        return proc.uri, None

    def _position_exited(self, number, headset, proc):
        """A position that exits while the board runs: its operator cannot talk. Light the
        fault, start a new one (its legs go to the new address), clear the fault."""
        with self._lock:
            if self.state != "running" or self.position_procs.get(number) is not proc:
                return
            source = f"position p{number}"
            log.warning("position p%s (pid %s) exited; restarting it", number, proc.child.pid)
            self._post(Fault(source, "the position's endpoint exited; restarting it"))

        def restart():
            for attempt in range(WORKER_RESTART_TRIES):
                if self.state != "running":
                    return
                uri, err = self._position_proc(number, headset)
                if uri is not None:
                    with self._lock:
                        if self.state != "running":
                            self.position_procs.pop(number).stop()   # stopped meanwhile
                            return
                        self.position_uris[number] = uri
                        self.restarts_positions += 1
                    self._post(Fault(source, None))
                    return
                log.warning("restarting position p%s: %s", number, err)
                time.sleep(min(30, 2 ** attempt))

        threading.Thread(target=restart, name=f"restart-p{number}", daemon=True).start()

    def _maxload(self, limit: int) -> int:
        # One slot per worker stays free for the position leg of the call a position
        # picks up; where customers' phones are rung too, each call takes two slots.
        if self.site.customers:
            return max(1, (limit - 1) // 2)
        return max(1, limit - 1)

    def _register(self, t):
        self.workers[0].send(msg.Register(
            trunk=t.name, registrar=t.registrar, username=t.username, password=t.password,
            realm=t.realm, expires=t.expires, transport=t.transport,
            retry_min_s=t.retry_min_s, retry_max_s=t.retry_max_s,
            contact=f"<sip:{t.username}@{self.site.listen}:{self.front.port}>"))

    def stop(self):
        self._ready.wait(60)
        with self._lock:
            self.state = "stopping"      # workers exiting now is no fault
            for c in list(self.book.by_id.values()):
                self.book.finish(c, c.default_outcome())
        self._stopped.set()
        self._teardown()
        self.state = "stopped"

    def _teardown(self):
        if self.front is not None:
            self.front.stop()
        for proc in self.position_procs.values():
            proc.stop()
        self.position_procs = {}
        for w in self.workers:        # ask them all first: each takes a second to wind down
            w.send(msg.Quit())
        for w in self.workers:
            w.stop()
        self.workers = []

    def status(self) -> dict:
        with self._lock:
            ws = [{"index": w.index, "pid": w.pid, "port": w.port, "limit": w.limit,
                   "maxload": w.maxload, "calls": len(w.calls), "alive": w.alive()}
                  for w in self.workers]
            capacity = sum(w["maxload"] or 0 for w in ws if w["alive"])
            in_use = len(self.book.by_id)
            return {
                "state": self.status_state(), "error": self.error,
                "front": f"{self.site.listen}:{self.front.port}" if self.front else None,
                "front_up": self.front_up, "front_restarts": self.front_restarts,
                "calls_per_worker": self.limit, "workers": ws,
                "capacity": capacity if self.front_up else 0,
                "in_use": in_use,
                "free": max(0, capacity - in_use) if self.front_up else 0,
                "turned_away": self.turned_away, "worker_restarts": self.restarts,
                "position_restarts": self.restarts_positions,
                "trunks": {n: {"registered": t.registered, "code": t.code, "reason": t.reason,
                               "retry_in_s": t.retry_in_s} for n, t in self.trunks.items()},
                "calls": [c.record() for c in self.book.by_id.values()],
                "memory_kb": sum(w.rss_kb() for w in self.workers),
                "blocked_at_front": self.front_refusals(),
                "texts": self.texts.status(),
            }

    def status_state(self) -> str:
        """The lifecycle state, except that a running telephony whose front is down (so
        nothing can ring) is never reported as "running"."""
        return "front down" if self.state == "running" and not self.front_up else self.state

    def _post(self, event):
        # Nothing after stop(): the daemon's loop and panel may already be gone.
        if self.ctx is not None and self.state not in ("stopping", "stopped"):
            self.ctx.post(event)

    # -- a worker that exits ---------------------------------------------
    def _worker_exited(self, w):
        with self._lock:
            if self.state == "running" and w in self.workers:
                self._worker_died(w)

    def _worker_died(self, w):
        """A worker is gone with its calls: clear them, light the fault, start a new one
        on the same port (the front's list names it), then clear the fault."""
        source = f"worker {w.index}"
        log.warning("PJSUA2 worker %s (pid %s) exited with %d calls", w.index, w.pid,
                    len(w.calls))
        self._post(Fault(source, "a PJSUA2 worker exited; its calls were lost; restarting it"))
        lost = [c for c in self.book.by_id.values() if c.worker is w]
        # Their callers hear the end of it (a BYE, or 480 while ringing): see orphans.py.
        # Sent from the dead worker's port, before the new worker takes it.
        dialogs = [(*c.dialog, c.connected) for c in lost if c.dialog is not None]
        for c in lost:
            self._lost(c, "worker lost")
        for tid in [t for t, x in self.tests.items() if x["worker"] is w]:
            t = self.tests.pop(tid)
            c = self.book.get(t["board_call"]) if t["board_call"] else None
            if c is not None:
                # A test caller died with its worker: the call it made on the board (held
                # by the other worker) has nobody on the far end and would stay for ever,
                # the line busy to every new caller.
                self._end_from_board(c, "test caller lost")

        def restart():
            if dialogs:
                orphans.end_calls(dialogs, "127.0.0.1", w.port)
            for attempt in range(WORKER_RESTART_TRIES):
                if self.state != "running":
                    return
                new = WorkerProc(w.index, self._on_event, on_exit=self._worker_exited,
                                 listen="127.0.0.1", limit=w.limit, log_dir=w.log_dir, port=w.port)
                try:
                    new.start()
                except Exception as e:
                    log.warning("restarting worker %s: %s", w.index, e)
                    time.sleep(min(30, 2 ** attempt))
                    continue
                new.maxload = w.maxload
                new.send(self._limits(new))
                with self._lock:
                    if self.state != "running" or w not in self.workers:
                        new.stop()             # stopped meanwhile: leave nothing behind
                        return
                    self.workers[self.workers.index(w)] = new
                    self.restarts += 1
                self._post(Fault(source, None))
                return
            log.error("worker %s could not be restarted", w.index)

        threading.Thread(target=restart, name=f"restart-worker{w.index}", daemon=True).start()

    def _end_from_board(self, c, why):
        """End a call whose far end the board cannot hear from: its worker hangs up (BYE),
        and the line is cleared and the call recorded now, once (``_lost``)."""
        c.worker.send(msg.ReleaseCall(call=c.id))
        self._lost(c, why)

    def _lost(self, c, why):
        """End a call the board will hear nothing more of (its worker is gone, or no
        longer has it): the line is cleared and the call recorded, once."""
        if c.placed is not None:        # a wake-up or reminder call: the scheduler retries it
            outcome = "answered" if c.answered else "failed"
            if self.book.finish(c, outcome):
                self._post(PlacedCallEnded(c.placed["occurrence"], c.id, outcome, why))
            return
        if self.book.finish(c, c.default_outcome()):
            self._post(LineCleared(c.line, why))

    # -- the watch: reconciliation and the front's health --------------------
    def _watch(self):
        next_reconcile = time.monotonic() + RECONCILE_S
        misses = 0
        while not self._stopped.wait(HEALTH_S):
            if self.state != "running":
                return
            if time.monotonic() >= next_reconcile:
                next_reconcile = time.monotonic() + RECONCILE_S
                self._reconcile()
            self._sync_blocks()
            healthy = self.front.alive() and self.front.answers_options()
            misses = 0 if healthy else misses + 1
            if misses >= FRONT_MISSES and self.front_up:
                self._front_down()
            if not self.front_up:
                self._restart_front()

    def _reconcile(self):
        with self._lock:
            for w in self.workers:
                self._seq += 1
                self._asked[self._seq] = (w, time.monotonic())
                w.send(msg.ListCalls(seq=self._seq))
            # Answers that never came (a worker that died meanwhile) are forgotten.
            old = time.monotonic() - 10 * RECONCILE_S
            for seq in [s for s, (_, t) in self._asked.items() if t < old]:
                del self._asked[seq]

    def _call_list(self, w, m: msg.CallList):
        asked = self._asked.pop(m.seq, None)
        if asked is None or asked[0] is not w:
            return
        held = set(m.calls)
        for c in [c for c in self.book.by_id.values()
                  if c.worker is w and c.opened < asked[1] and c.id not in held]:
            log.warning("call %s on line %s: its worker no longer has it; clearing the line",
                        c.id, c.line)
            self._lost(c, "call gone from its worker")

    def _front_down(self):
        self.front_up = False
        why = ("the SIP front (Kamailio) exited" if not self.front.alive() else
               f"the SIP front (Kamailio) does not answer OPTIONS on "
               f"{self.front.listen}:{self.front.port}")
        log.error("%s; restarting it", why)
        self._post(Fault("front", f"{why}; calls cannot come in; restarting it"))

    def _restart_front(self):
        try:
            self.front.stop()             # what is left of it, its children included
            self.front.end_stale()        # and any of its processes outside the group
            # Killed processes let go of the port a moment after they die.
            deadline = time.monotonic() + 5
            while True:
                try:
                    self.front.check_free()
                    break
                except FrontError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            self.front.start()
        except FrontError as e:
            log.warning("restarting the front: %s", e)
            return
        self.front_up = True
        self.front_restarts += 1
        if self.front_blocks is not None:
            self.front_blocks.restarted()     # a new Kamailio: its rules are given again
            self._sync_blocks()
        log.info("the SIP front answers again on %s:%s", self.front.listen, self.front.port)
        self._post(Fault("front", None))
