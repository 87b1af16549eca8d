"""A PJSUA2 worker process: holds a few of the board's calls.

The PyPI wheel takes at most 4 calls per process, so the board runs a pool of
these behind its SIP front (Kamailio). Each worker:

- owns PJSUA2 in one thread (``threadCnt = 0``, ``mainThreadOnly``), a loop
  calling ``libHandleEvents``; the conference bridge runs on the null device
  (``bridge.py``);
- reads commands (``firmware.telephony.protocol``, one JSON line each) on a
  reader thread that puts them on a queue the loop drains, and writes events
  from a writer thread taking them off a queue, so no callback ever blocks on
  a pipe; a line that is not a command is answered with an ``error`` event
  naming it;
- reports every call it is given and answers it with 180 Ringing; the daemon
  decides what happens next (answer, hold, release...);
- joins an answered call to the operator's position over a second, local
  SIP/RTP leg (the position endpoint auto-answers calls from loopback), and
  bridges the two legs; on hold it hangs that leg up (freeing the slot) and
  plays a hold tone to the caller;
- measures its own call limit at start-up (the wheel's is 4 whatever
  ``maxCalls`` says) by filling its slots with calls to itself;
- registers trunks (digest authentication) when asked, with its Contact set
  to the front, so that calls for the trunk arrive through the front.

Every ``Call`` (``legs.py``) is kept referenced until it is disconnected,
then dropped in the loop (never inside a callback), and all are gone before
``libDestroy``. A call's end is reported exactly once (``Leg.dead``).

Run: ``python -m firmware.telephony.pj.worker --index 0 --listen 127.0.0.1 --port 0``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import sys
import time
from pathlib import Path

import pjsua2 as pj

from firmware import logs
from firmware.telephony import protocol as msg
from firmware.telephony.pj.bridge import Bridge
from firmware.telephony.pj.legs import (Leg, LocalAccount, PjsipLog, TrunkAccount, account_config,
                                        blocked_mark, call_param, display_caller, header_tag, request_user,
                                        takes_offer)
from firmware.telephony.pj.support import (Timers, drain, hang_up_all, loop_endpoint, own_stdout,
                                           prefer_codecs, read_commands, serve)
from firmware.telephony.pj.texts import Texts

# Call slots asked for; PJSUA2 gives at most its build's PJSUA_MAX_CALLS
# (scripts/pjsua2/config_site.h: 128) and the probe measures what it got.
MAX_CALLS = 128
REFUSAL_RING_S = 0.2   # a blocked caller hears this much ringing before the announcement

log = logging.getLogger("switchboard.worker")


def limit_cache_path() -> Path:
    """Where measured call limits are kept: systemd's CacheDirectory, else the user's cache."""
    base = os.environ.get("CACHE_DIRECTORY") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "tas-switchboard" / "pjsua2-limits.json"


def build_key() -> str:
    """The identity of the PJSUA2 build in use (its extension module file)."""
    so = Path(getattr(getattr(pj, "_pjsua2", None), "__file__", None) or pj.__file__)
    st = so.stat()
    return f"{so.resolve()}:{st.st_size}:{st.st_mtime_ns}"


#: Legs that are a board call of their own (a caller, an office line, a test caller).
CALL_KINDS = ("in", "out", "ring")


class Worker:
    def __init__(self, index: int, listen: str, port: int, limit: int = 0, log_level: int = 1):
        self.index = index
        self.listen = listen
        self.port = port
        self.limit_hint = limit
        self.limit = 0
        self.log_level = log_level
        self.commands: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()
        self.ep: pj.Endpoint | None = None
        self.log_writer: PjsipLog | None = None
        self.transports: dict[str, int] = {}
        self.acc: LocalAccount | None = None
        self.bridge = Bridge(self)
        self.legs: dict[int, Leg] = {}           # pjsua call id -> Leg, until disconnected
        self.calls: dict[str, Leg] = {}          # board id -> caller or outgoing leg
        self.trunks: dict[str, TrunkAccount] = {}
        self.caller_accs: dict[str, LocalAccount] = {}   # test callers' caller IDs
        self.timers = Timers()
        self.reg_backoff: dict[str, float] = {}
        self.dead: list[Leg] = []
        self.seq = 0
        self.quit = False
        self.probing = False
        self.maxload = 0                         # callers we take (0: as many as PJSUA2 does)
        self.refusal: str | None = None          # WAV for callers the front marks blocked
        self.texts = Texts(self)                 # SIP MESSAGE texts (texts.py)
        self.handlers = {
            msg.Quit: self.op_quit, msg.Limits: self.op_limits, msg.Ping: self.op_ping,
            msg.ListCalls: self.op_calls, msg.AnswerCall: self.op_answer,
            msg.ResumeCall: self.op_answer, msg.HoldCall: self.op_hold,
            msg.ReleaseCall: self.op_release, msg.OverflowCall: self.op_overflow,
            msg.ForkCall: self.op_fork, msg.PatchCall: self.op_patch, msg.EchoCall: self.op_echo,
            msg.PlaceOutgoing: self.op_call, msg.GetLevels: self.op_levels,
            msg.SendDtmf: self.op_dtmf, msg.Register: self.op_register,
            msg.Unregister: self.op_unregister, msg.SendText: self.op_text,
        }
        missing = set(msg.WORKER_COMMANDS.values()) - set(self.handlers)
        assert not missing, f"worker commands without a handler: {missing}"

    # -- plumbing ------------------------------------------------------
    def emit(self, event: msg.Message):
        self.events.put(event)

    def _reader(self, stream):
        """Commands onto the loop's queue; a bad line is answered with an ``error`` event."""
        read_commands(stream, msg.WORKER_COMMANDS, self.commands, msg.Quit(),
                      lambda e: self.emit(msg.WorkerError(message=str(e))))

    def after(self, seconds: float, fn):
        self.timers.after(seconds, fn)

    # -- start-up and the loop ----------------------------------------
    def start(self):
        self.ep, self.log_writer, tid, self.port = loop_endpoint(
            f"switchboard-worker/{self.index}", max_calls=MAX_CALLS, log_level=self.log_level,
            bind=self.listen, port=self.port)
        prefer_codecs(self.ep)  # what it offers a position (and a trunk): G.722, not speex
        self.transports = {"udp": tid}
        ac = account_config(f"sip:worker{self.index}@{self.listen}:{self.port}", self.listen)
        self.acc = LocalAccount(self)
        self.acc.create(ac, True)
        self.bridge.start()
        self.limit = self.limit_hint or self.measured_limit()
        self.emit(msg.WorkerReady(port=self.port, limit=self.limit, pid=os.getpid()))

    def measured_limit(self) -> int:
        """The build's call limit: probed once per PJSUA2 build and remembered.

        The probe takes ~10 s (each call to ourselves sets up its media), and a
        worker that restarts mid-service must be back in well under that. The
        cache is keyed by the extension module's path, size and mtime, so a
        rebuilt or reinstalled PJSUA2 is probed again; a cache that cannot be
        read or written only costs the probe."""
        path = limit_cache_path()
        key = build_key()
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        if isinstance(known, dict) and isinstance(known.get(key), int) and known[key] > 0:
            return known[key]
        limit = self.probe_limit()
        if not isinstance(known, dict):
            known = {}
        known[key] = limit
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(known))
            os.replace(tmp, path)
        except OSError as e:
            log.info("worker %s: call limit not cached (%s)", self.index, e)
        return limit

    def probe_limit(self) -> int:
        """Fill the call slots with calls to ourselves until PJSUA2 refuses one."""
        self.probing = True
        probes = []
        uri = f"sip:probe@{self.listen}:{self.port}"
        for _ in range(MAX_CALLS + 1):
            leg = Leg(self, self.acc, kind="probe")
            try:
                leg.makeCall(uri, pj.CallOpParam(True))
            except pj.Error:
                break
            probes.append(leg)
            self.legs[leg.getId()] = leg
        limit = len(probes)
        for leg in probes:
            if not leg.dead:
                try:
                    leg.hangup(pj.CallOpParam(True))
                except pj.Error:
                    pass
        deadline = time.time() + 5
        while any(not leg.dead for leg in probes) and time.time() < deadline:
            self.ep.libHandleEvents(10)
            self.reap()
        self.reap()
        self.probing = False
        return limit

    def run(self):
        serve(self)

    def step(self):
        """One turn of the loop (``serve``)."""
        # SIP and RTP wake the loop at once; only our own commands wait
        # for the timeout, so poll briskly only while calls are up.
        self.ep.libHandleEvents(10 if self.legs else 100)
        self.reap()
        self.texts.reap()
        self.timers.run()
        for cmd in drain(self.commands):
            self.do(cmd)

    def shutdown(self):
        """Hang up, drop every Call, then accounts, then the library (this order)."""
        if self.ep is None:
            return
        hang_up_all(self.ep, lambda: self.legs, self.reap)
        self.calls.clear()
        self.legs.clear()
        self.dead.clear()
        self.texts.shutdown()
        for acc in list(self.trunks.values()) + list(self.caller_accs.values()):
            acc.shutdown()
        self.trunks.clear()
        self.caller_accs.clear()
        if self.acc is not None:
            self.acc.shutdown()
            self.acc = None
        self.bridge.close()
        self.ep.libDestroy()
        self.ep = None

    def reap(self):
        """Drop disconnected calls, outside any callback."""
        while self.dead:
            leg = self.dead.pop()
            for k, v in list(self.legs.items()):
                if v is leg:
                    del self.legs[k]
            if leg.cid and self.calls.get(leg.cid) is leg:
                del self.calls[leg.cid]
            if leg.peer is not None and leg.peer.peer is leg:
                leg.peer.peer = None
            leg.peer = None
            leg.media = None
            leg.player = None            # deleted here, in the loop, not in a callback
            leg.call_rec = None          # closes a conversation's recording

    # -- callbacks (never block) ---------------------------------------
    def on_incoming(self, acc, prm):
        leg = Leg(self, acc, prm.callId, kind="in")
        self.legs[prm.callId] = leg
        if self.probing:
            leg.kind = "probe"
            leg.hangup(call_param(msg.WORKER_FULL))
            return
        whole = prm.rdata.wholeMsg
        # Callers only: position legs, our start-up probes and calls being turned away
        # (still hanging up under load) take no caller's slot.
        busy = sum(1 for x in self.legs.values()
                   if not x.dead and x.kind not in ("pos", "probe", "refused") and x is not leg)
        if self.maxload and busy >= self.maxload:
            # Full (one slot stays free for a position leg): the front tries the next worker.
            self._refuse(leg, msg.WORKER_FULL)
            return
        if not takes_offer(whole):
            # A body that is no audio offer: nothing to talk over.
            self._refuse(leg, msg.NOT_ACCEPTABLE)
            return
        if blocked_mark(whole):
            self._refusal(leg)
            return
        leg.invite = whole.partition("\r\n\r\n")[0]
        self.seq += 1
        # Unique across restarts (a restarted worker must not reuse a lost call's id).
        leg.cid = f"w{self.index}-{os.getpid()}-{self.seq}"
        self.calls[leg.cid] = leg
        ci = leg.getInfo()
        # Report the call before answering 180: if the caller is gone already the
        # answer disconnects it at once, and its "ended" must come after "incoming".
        self.emit(msg.Incoming(call=leg.cid, user=request_user(whole),
                               caller=display_caller(ci.remoteUri), remote=ci.remoteUri,
                               trunk=acc.trunk, src=prm.rdata.srcAddress,
                               sip_call_id=ci.callIdString, t=time.time()))
        try:
            leg.answer(call_param(msg.Reply(180, "Ringing")))
        except pj.Error:
            # Cancelled already: its DISCONNECTED state (now or soon) ends it.
            if not leg.dead and leg.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.on_state(leg, pj.PJSIP_INV_STATE_DISCONNECTED, 487, "Request Terminated")

    def _refusal(self, leg):
        """A caller the front found on the block list: answered, the announcement
        played (bridge.play_message), hung up. The board is never told: it does not ring."""
        leg.kind = "refusal"
        if not self.refusal:
            self._refuse(leg, msg.LINE_BUSY)
            return
        leg.cid = f"refusal-{self.index}-{os.getpid()}-{leg.getId()}"
        leg.play = self.refusal
        try:
            leg.answer(call_param(msg.Reply(180, "Ringing")))   # as any call, a moment
        except pj.Error:
            return                       # cancelled already: its DISCONNECTED ends it

        def answer():
            try:
                if not leg.dead:
                    leg.answer(call_param(msg.Reply(200, "OK")))
            except pj.Error:
                pass                     # the caller gave up first
        # Ringing a moment before the answer: sent together, the 180 and the 200 could pass
        # each other in the front's processes, and a caller may take a 200 before its 180
        # badly (SIPp aborts the call).
        self.after(REFUSAL_RING_S, answer)
        self.after(120, lambda: self.hangup(leg))          # a file that never ends

    def _refuse(self, leg, reply: msg.Reply):
        """Turn a new call away, from the loop, after ``onIncomingCall`` has returned.

        Hanging up inside ``onIncomingCall`` a call whose INVITE had no SDP aborts the
        process: PJSUA2 still holds the cloned request for the media set-up it has
        started, frees it when that completes, and the hangup frees it too
        (``pjsip_rx_data_free_cloned: Assertion 'rdata' failed``, every call of the
        worker lost). From the loop the set-up has finished and the request is gone."""
        leg.kind = "refused"
        self.after(0, lambda: self.hangup(leg, reply.code, reply.reason))

    def on_state(self, leg, state, code, reason):
        if state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if leg.dead:
                return                   # a call's life ends once
            leg.dead = True
            self.dead.append(leg)
            if leg.kind in CALL_KINDS:
                if leg.message is not None:
                    self.bridge.finish_message(leg)
                self.emit(msg.Ended(call=leg.cid, code=code, reason=reason))
                if leg.peer is not None:
                    self.hangup(leg.peer)
                if leg.customer is not None:
                    self.hangup(leg.customer)
            elif leg.kind == "cust":
                caller = leg.peer
                if caller is not None and caller.customer is leg:
                    caller.customer = None
                    if leg.patch and not leg.answered and not caller.dead:
                        self.emit(msg.PatchFailed(call=caller.cid, code=code, reason=reason))
                    if leg.answered and not caller.dead:
                        self.emit(msg.CustomerHungUpEv(call=caller.cid))
                        # Nobody from the board is on it: the customer's hanging up ends it.
                        if caller.peer is None and not caller.held:
                            self.hangup(caller)
            elif leg.kind == "pos":
                caller = leg.peer
                if caller is not None and not caller.dead:
                    self.emit(msg.PositionLeft(call=caller.cid, code=code, reason=reason))
        elif leg.dead:
            return
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and leg.kind in CALL_KINDS:
            self.emit(msg.Confirmed(call=leg.cid))
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and leg.kind == "cust":
            caller = leg.peer
            if caller is None or caller.dead:
                self.hangup(leg)
                return
            leg.answered = True
            caller.held = False
            if caller.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
                caller.answer(call_param(msg.Reply(200, "OK")))   # the customer took the call
            self.emit(msg.CustomerAnsweredEv(call=caller.cid))
            self.bridge.connect(leg)
        elif state == pj.PJSIP_INV_STATE_EARLY and leg.kind in ("out", "ring"):
            self.emit(msg.Ringing(call=leg.cid, code=code))

    def on_tsx(self, leg, prm):
        """Our first answer to a caller's INVITE has gone out: report the dialog (with the
        tag we gave it), so the daemon can end the call for the caller should we die."""
        if leg.kind != "in" or leg.dialog_reported or leg.dead or leg.invite is None:
            return
        tsx = prm.e.body.tsxState.tsx
        if tsx.role != pj.PJSIP_ROLE_UAS or tsx.method != "INVITE":
            return
        tag = header_tag(tsx.lastTx.wholeMsg or "")
        if tag:
            leg.dialog_reported = True
            self.emit(msg.Dialog(call=leg.cid, invite=leg.invite, tag=tag))

    def on_dtmf(self, leg, digit):
        self.emit(msg.DtmfDigit(call=leg.cid, digit=digit, leg=leg.kind))

    def on_reg(self, acc, code, reason, expiration):
        ok = 200 <= code < 300 and expiration > 0
        self.emit(msg.RegState(trunk=acc.trunk, ok=ok, code=code, reason=reason,
                               expires=expiration))
        if ok:
            self.reg_backoff.pop(acc.trunk, None)
        elif self.trunks.get(acc.trunk) is acc and acc.want:
            lo, hi = acc.retry
            delay = min(hi, self.reg_backoff.get(acc.trunk, lo / 2) * 2)
            self.reg_backoff[acc.trunk] = delay
            self.emit(msg.RegRetry(trunk=acc.trunk, in_s=delay))
            self.after(delay, lambda a=acc: self._reregister(a))

    def _reregister(self, acc):
        if self.trunks.get(acc.trunk) is acc and acc.want:
            try:
                acc.setRegistration(True)
            except pj.Error as e:
                self.emit(msg.RegState(trunk=acc.trunk, ok=False, code=0, reason=e.info(),
                                       expires=0))

    # -- commands ------------------------------------------------------
    def hangup(self, leg, code=None, reason=None):
        if leg is None or leg.dead:
            return
        try:
            p = pj.CallOpParam(True)
            if code:
                p.statusCode = code
            if reason:
                p.reason = reason
            leg.hangup(p)
        except pj.Error:
            pass

    def _position_leg(self, caller, uri):
        if not uri:
            return
        pos = Leg(self, self.acc, kind="pos")
        pos.peer = caller
        caller.peer = pos
        try:
            pos.makeCall(uri, pj.CallOpParam(True))
        except pj.Error as e:
            caller.peer = None
            self.emit(msg.WorkerError(call=caller.cid,
                                      message=f"position leg to {uri}: {e.info()}"))
            return
        self.legs[pos.getId()] = pos

    def do(self, cmd: msg.Message):
        """Carry out one command. PJSUA2 refusing it is an ``error`` event for that call;
        a bug in a handler is logged with its traceback and reported as one, never
        mistaken for a bad command."""
        try:
            self.handlers[type(cmd)](cmd)
        except pj.Error as e:
            self.emit(msg.WorkerError(call=getattr(cmd, "call", None),
                                      message=f"{cmd.wire}: {e.info()}"))
        except Exception as e:              # noqa: BLE001 - the loop must go on for the other calls
            log.exception("worker %s: %s failed", self.index, cmd)
            self.emit(msg.WorkerError(call=getattr(cmd, "call", None),
                                      message=f"{cmd.wire}: internal error: "
                                              f"{type(e).__name__}: {e}"))

    def _caller(self, cmd):
        leg = self.calls.get(cmd.call)
        if leg is None or leg.dead:
            self.emit(msg.WorkerError(call=cmd.call, message=f"{cmd.wire}: no such call"))
            return None
        return leg

    def op_quit(self, cmd):
        self.quit = True

    def op_limits(self, cmd):
        self.maxload = cmd.maxload
        self.refusal = cmd.refusal

    def op_ping(self, cmd):
        self.emit(msg.Pong(calls=len(self.calls), legs=len(self.legs), seq=cmd.seq))

    def op_calls(self, cmd):
        """The board's calls this worker holds. A leg PJSUA2 has ended without telling us
        (its DISCONNECTED state lost, e.g. a CANCEL racing our 180) is ended here first,
        so its "ended" goes out before the list and the board clears its line."""
        for leg in list(self.calls.values()):
            if leg.dead:
                continue
            try:
                ci = leg.getInfo()
                state, code, reason = ci.state, ci.lastStatusCode, ci.lastReason
            except pj.Error:
                state, code, reason = pj.PJSIP_INV_STATE_DISCONNECTED, 0, "gone from PJSUA2"
            if state == pj.PJSIP_INV_STATE_DISCONNECTED:
                log.warning("worker %s: call %s had ended unreported (%s %s)", self.index,
                            leg.cid, code, reason)
                self.on_state(leg, state, code, reason)
        self.emit(msg.CallList(seq=cmd.seq,
                               calls=sorted(c for c, leg in self.calls.items() if not leg.dead)))

    def op_answer(self, cmd):
        leg = self._caller(cmd)
        if leg is None:
            return
        leg.listen = cmd.listen
        leg.held = False
        # Resume shares this handler; only an answer starts the conversation's recording.
        record = cmd.record if isinstance(cmd, msg.AnswerCall) else None
        if record and leg.call_rec is None:
            try:
                leg.call_rec = pj.AudioMediaRecorder()
                leg.call_rec.createRecorder(record)
            except pj.Error as e:        # a recording that cannot start never stops the call
                leg.call_rec = None
                self.emit(msg.WorkerError(call=leg.cid, message=f"recording {record}: {e.info()}"))
        if leg.kind == "in" and leg.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
            leg.answer(call_param(msg.Reply(200, "OK")))
        if leg.peer is None:
            self._position_leg(leg, cmd.position_uri)
        self.bridge.connect(leg)

    def op_overflow(self, cmd):
        """Nobody picked the call up: answer, play the announcement, record a message."""
        leg = self._caller(cmd)
        if leg is None:
            return
        leg.message = (cmd.path, time.time(), cmd.announcement)
        if leg.peer is not None:
            self.hangup(leg.peer)
        if leg.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
            leg.answer(call_param(msg.Reply(200, "OK")))
        elif leg.media is not None:
            self.bridge.connect(leg)
        self.after(cmd.max_s, lambda: self.hangup(leg))

    def op_fork(self, cmd):
        """Ring the customer's own phone together with the board (secrecy needs to know
        when the customer answers): a second leg, bridged to the caller if it answers."""
        leg = self._caller(cmd)
        if leg is None:
            return
        cust = Leg(self, self.acc, kind="cust")
        cust.peer = leg
        leg.customer = cust
        try:
            cust.makeCall(cmd.uri, pj.CallOpParam(True))
        except pj.Error as e:
            leg.customer = None
            self.emit(msg.WorkerError(call=leg.cid,
                                      message=f"customer phone {cmd.uri}: {e.info()}"))
            return
        self.legs[cust.getId()] = cust

    def op_patch(self, cmd):
        """Transfer / live patch: call ``uri`` and join it to the caller when it answers.

        The board stays in the media path (no REFER: callers and gateways that do not
        support it still work); the caller hears the hold tone until the far end answers."""
        leg = self._caller(cmd)
        if leg is None:
            return
        if leg.customer is not None:
            self.hangup(leg.customer)
            leg.customer = None
        cust = Leg(self, self.acc, kind="cust")
        cust.patch = True
        cust.peer = leg
        leg.customer = cust
        leg.consult = cmd.consult
        cust.makeCall(cmd.uri, pj.CallOpParam(True))
        self.legs[cust.getId()] = cust
        if leg.consult:
            self.bridge.connect(leg)             # the caller to the hold tone now
        self.emit(msg.Patching(call=leg.cid, consult=leg.consult))

    def op_echo(self, cmd):
        """Answer and send the caller's audio straight back (the trunk test's far end)."""
        leg = self._caller(cmd)
        if leg is None:
            return
        leg.echo = True
        if leg.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
            leg.answer(call_param(msg.Reply(200, "OK")))
        self.bridge.connect(leg)

    def op_hold(self, cmd):
        leg = self._caller(cmd)
        if leg is None:
            return
        leg.held = True
        pos, leg.peer = leg.peer, None
        if pos is not None:
            pos.peer = None
            self.hangup(pos)
        self.bridge.hold(leg)

    def op_release(self, cmd):
        """The operator drops off; the call ends unless ``keep`` (the customer is on it)."""
        leg = self._caller(cmd)
        if leg is None:
            return
        pos, leg.peer = leg.peer, None
        if pos is not None:
            pos.peer = None
            self.hangup(pos)
        if leg.consult:
            self.bridge.unconsult(leg)
        if not cmd.keep:
            self.hangup(leg, cmd.code, cmd.reason)
        elif leg.customer is not None and not leg.customer.answered and leg.media is not None:
            self.bridge.hold(leg)                # a transfer still ringing: the caller waits
        elif leg.customer is not None and leg.media is not None:
            self.bridge.connect(leg)             # connect: caller and far end talk

    def op_call(self, cmd):
        """An outgoing call: an office line (joined to a position when it answers), or a
        test caller ringing a line through the front (``kind = "ring"``)."""
        acc = self.trunks.get(cmd.trunk) if cmd.trunk else None
        acc = acc or self._caller_account(cmd.caller)
        leg = Leg(self, acc, kind=cmd.kind, cid=cmd.call)
        leg.play = cmd.play              # a placed call's message
        leg.makeCall(cmd.uri, pj.CallOpParam(True))
        self.legs[leg.getId()] = leg
        self.calls[leg.cid] = leg
        self.emit(msg.Placed(call=leg.cid, sip_call_id=leg.getInfo().callIdString))
        if cmd.ring_s:
            # A placed call nobody answers is given up after its ring time.
            self.after(cmd.ring_s, lambda: self._unanswered(leg))
        if leg.kind == "out":
            self._position_leg(leg, cmd.position_uri)

    def _caller_account(self, caller):
        """A local account whose user part is the caller ID a test call shows."""
        if not caller or not all(c.isalnum() or c in "+-_." for c in caller):
            return self.acc
        if caller not in self.caller_accs and len(self.caller_accs) < 4:
            ac = account_config(f"sip:{caller}@{self.listen}:{self.port}", self.listen)
            acc = LocalAccount(self)
            acc.create(ac, False)
            self.caller_accs[caller] = acc
        return self.caller_accs.get(caller, self.acc)

    def op_levels(self, cmd):
        leg = self._caller(cmd)
        if leg is None:
            return
        self.emit(msg.Levels(call=leg.cid, seq=cmd.seq, **self.bridge.levels(leg)))

    def _unanswered(self, leg):
        if leg.dead:
            return
        try:
            if leg.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
                self.hangup(leg)
        except pj.Error:
            pass

    def op_dtmf(self, cmd):
        leg = self._caller(cmd)
        if leg is not None:
            leg.dialDtmf(cmd.digits)

    def _transport(self, kind):
        """A TCP or TLS client transport, made the first time a trunk needs one."""
        if kind in self.transports:
            return
        tc = pj.TransportConfig()
        tc.boundAddress = self.listen if self.listen != "0.0.0.0" else ""
        tc.port = 0
        ttype = {"tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}[kind]
        self.transports[kind] = self.ep.transportCreate(ttype, tc)

    def op_register(self, cmd):
        name = cmd.trunk
        if cmd.transport != "udp":
            self._transport(cmd.transport)
        old = self.trunks.pop(name, None)
        if old is not None:
            old.shutdown()
        ac = account_config(f"sip:{cmd.username}@{cmd.registrar.split(':', 1)[1]}", self.listen)
        ac.regConfig.registrarUri = cmd.registrar + (
            f";transport={cmd.transport}" if cmd.transport != "udp" else "")
        ac.regConfig.timeoutSec = cmd.expires
        ac.regConfig.retryIntervalSec = 0          # we back off ourselves
        ac.regConfig.delayBeforeRefreshSec = max(1, min(5, cmd.expires // 3))
        ac.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", cmd.realm, cmd.username, 0, cmd.password))
        if cmd.contact:
            ac.sipConfig.contactForced = cmd.contact
        acc = TrunkAccount(self, name, (cmd.retry_min_s, cmd.retry_max_s))
        self.trunks[name] = acc
        acc.create(ac, True)

    def op_text(self, cmd):
        self.texts.send(cmd)

    def op_unregister(self, cmd):
        acc = self.trunks.get(cmd.trunk)
        if acc is not None:
            acc.want = False
            acc.setRegistration(False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="calls per worker; 0: measure")
    ap.add_argument("--log-level", type=int, default=int(os.environ.get("SWITCHBOARD_PJ_LOG", "1")))
    a = ap.parse_args(argv)
    logs.setup(f"worker{a.index}")
    # Our events own stdout; anything the C library prints goes to stderr instead.
    sys.stdout = own_stdout()
    Worker(a.index, a.listen, a.port, a.limit, a.log_level).run()


if __name__ == "__main__":
    main()
