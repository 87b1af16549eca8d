"""A PJSUA2 worker process: holds the board's calls.

The project's own PJSUA2 build (scripts/build-pjsua2.sh) takes 128 calls per
process (the PyPI wheel took 4); the board runs a small pool of these behind
its SIP front (Kamailio): enough for every line plus one for failover. Each
worker:

- owns PJSUA2 in one thread (``threadCnt = 0``, ``mainThreadOnly``), a loop
  calling ``libHandleEvents``; the conference bridge runs on the null device;
- reads commands as JSON lines on stdin (a reader thread puts them on a queue
  the loop drains) and writes events as JSON lines on stdout (a writer thread
  takes them off a queue), so no callback ever blocks on a pipe;
- answers every call it is given with 180 Ringing and reports it; the daemon
  decides what happens next (answer, hold, release...);
- joins an answered call to the operator's position over a second, local
  SIP/RTP leg (the position endpoint auto-answers calls from loopback), and
  bridges the two legs in its conference bridge; on hold it hangs that leg up
  (freeing the slot) and plays a hold tone to the caller;
- measures its own call limit at start-up (PJSUA2 caps ``maxCalls`` at the
  build's ``PJSUA_MAX_CALLS``: 128 in the project's build, 4 in the PyPI
  wheel) by filling its slots with calls to itself;
- registers trunks (digest authentication) when asked, with its Contact set
  to the front, so that calls for the trunk arrive through the front.

Every ``Call`` is kept referenced until it is disconnected, then dropped in
the loop (never inside a callback), and all are gone before ``libDestroy``.

Run: ``python -m firmware.telephony.pj.worker --index 0 --listen 127.0.0.1 --port 0``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time

import pjsua2 as pj

from firmware.telephony.pj.support import own_stdout, play_tone, tone_generator

HOLD_TONE = (425, 600, 2400)   # Hz, on ms, off ms: a soft beep every 3 s
# Call slots asked for; PJSUA2 gives at most its build's PJSUA_MAX_CALLS
# (scripts/pjsua2/config_site.h) and the probe measures what it got.
MAX_CALLS = 128


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def request_user(whole_msg: str) -> str:
    """The user part of the Request-URI of an INVITE (the called number / DID)."""
    first = whole_msg.split("\r\n", 1)[0].split(" ")
    uri = first[1] if len(first) > 1 else ""
    uri = uri.split(":", 1)[1] if ":" in uri else uri
    return uri.split("@", 1)[0].split(";", 1)[0] if "@" in uri else ""


def display_caller(remote_uri: str) -> str:
    """``"Ann" <sip:4155550100@host>`` -> ``4155550100`` (the caller ID the board shows)."""
    u = remote_uri
    if "<" in u:
        u = u.split("<", 1)[1].split(">", 1)[0]
    u = u.split(":", 1)[1] if u.startswith(("sip:", "sips:", "tel:")) else u
    return u.split("@", 1)[0].split(";", 1)[0]


class Leg(pj.Call):
    """One SIP call in this worker: a caller, a position leg, or an outgoing call."""

    def __init__(self, worker, acc, call_id=pj.PJSUA_INVALID_ID, kind="in", cid=None):
        super().__init__(acc, call_id)
        self.worker = worker
        self.kind = kind                 # "in", "out", "pos", "probe"
        self.cid = cid                   # the board's id for the call
        self.peer: Leg | None = None     # the position leg of a caller, or its caller
        self.customer: Leg | None = None # the customer's phone, rung with the board
        self.answered = False            # a customer leg that picked up
        self.recorder = None             # overflow: the caller's voice message
        self.player = None               # overflow: the announcement
        self.message = None              # (path, started) of the message being recorded
        self.media: pj.AudioMedia | None = None
        self.listen = True               # the position hears the caller (not under secrecy)
        self.held = False
        self.dead = False
        self.play: str | None = None     # a placed call's message (WAV), played once answered
        self.player = None               # its AudioMediaPlayer while it plays

    def onCallState(self, prm):
        ci = self.getInfo()
        self.worker.on_state(self, ci.state, ci.lastStatusCode, ci.lastReason)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.media = self.getAudioMedia(i)
                self.worker.bridge(self)
                return

    def onDtmfDigit(self, prm):
        self.worker.emit("dtmf", call=self.cid, digit=prm.digit, leg=self.kind)


def account_config(uri: str, listen: str) -> pj.AccountConfig:
    """An account whose RTP binds to our address only (PJSUA2 would bind 0.0.0.0:4000+)."""
    ac = pj.AccountConfig()
    ac.idUri = uri
    ac.mediaConfig.transportConfig.boundAddress = listen
    ac.mediaConfig.transportConfig.port = 0
    return ac


class LocalAccount(pj.Account):
    def __init__(self, worker):
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm):
        self.worker.on_incoming(self, prm)


class TrunkAccount(pj.Account):
    def __init__(self, worker, name):
        super().__init__()
        self.worker = worker
        self.name = name

    def onIncomingCall(self, prm):
        self.worker.on_incoming(self, prm)

    def onRegState(self, prm):
        self.worker.on_reg(self, prm.code, prm.reason, prm.expiration)


class StderrLog(pj.LogWriter):
    """PJSIP's console log goes to stdout, which carries our events: send it to stderr."""

    def write(self, entry):
        sys.stderr.write(entry.msg if entry.msg.endswith("\n") else entry.msg + "\n")


class Worker:
    def __init__(self, index: int, listen: str, port: int, limit: int = 0, log_level: int = 1):
        self.index = index
        self.listen = listen
        self.port = port
        self.limit_hint = limit
        self.log_level = log_level
        self.commands: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()
        self.legs: dict[int, Leg] = {}           # pjsua call id -> Leg, until disconnected
        self.calls: dict[str, Leg] = {}          # board id -> caller or outgoing leg
        self.trunks: dict[str, TrunkAccount] = {}
        self.timers: list = []                   # (due, fn)
        self.reg_backoff: dict[str, float] = {}
        self.dead: list[Leg] = []
        self.seq = 0
        self.quit = False
        self.probing = False
        self.maxload = 0                         # callers we take (0: as many as PJSUA2 does)

    # -- plumbing ------------------------------------------------------
    def emit(self, ev: str, **kw):
        kw["ev"] = ev
        kw["worker"] = self.index
        kw["t"] = time.time()
        self.events.put(kw)

    def _reader(self, stream):
        for line in stream:
            line = line.strip()
            if line:
                try:
                    self.commands.put(json.loads(line))
                except ValueError:
                    self.emit("error", message=f"not JSON: {line[:80]}")
        self.commands.put({"op": "quit"})

    def _writer(self, stream):
        while True:
            item = self.events.get()
            if item is None:
                return
            stream.write(json.dumps(item) + "\n")
            stream.flush()

    # -- start-up and the loop ----------------------------------------
    def start(self):
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = f"switchboard-worker/{self.index}"
        cfg.logConfig.level = self.log_level
        cfg.logConfig.consoleLevel = self.log_level
        self.log_writer = StderrLog()
        cfg.logConfig.writer = self.log_writer
        cfg.medConfig.noVad = True
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        tc = pj.TransportConfig()
        tc.boundAddress = self.listen
        tc.port = self.port
        tid = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        self.port = int(self.ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        self.transports = {"udp": tid}
        self.ep.libStart()
        ac = account_config(f"sip:worker{self.index}@{self.listen}:{self.port}", self.listen)
        self.acc = LocalAccount(self)
        self.acc.create(ac, True)
        self.tone = tone_generator(*HOLD_TONE, loop=True)
        self.limit = self.limit_hint or self.probe_limit()
        self.emit("ready", port=self.port, limit=self.limit, pid=os.getpid())

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
        threading.Thread(target=self._reader, args=(sys.stdin,), daemon=True).start()
        writer = threading.Thread(target=self._writer, args=(sys.stdout,), daemon=True)
        writer.start()
        try:
            self.start()
            while not self.quit:
                # SIP and RTP wake the loop at once; only our own commands wait
                # for the timeout, so poll briskly only while calls are up.
                self.ep.libHandleEvents(10 if self.legs else 100)
                self.reap()
                self.run_timers()
                while True:
                    try:
                        cmd = self.commands.get_nowait()
                    except queue.Empty:
                        break
                    self.do(cmd)
        finally:
            self.shutdown()
            self.events.put(None)
            writer.join(timeout=2)

    def shutdown(self):
        """Hang up, drop every Call, then accounts, then the library (this order)."""
        if not hasattr(self, "ep"):
            return
        try:
            self.ep.hangupAllCalls()
        except pj.Error:
            pass
        deadline = time.time() + 2
        while self.legs and time.time() < deadline:
            self.ep.libHandleEvents(10)
            self.reap()
        self.calls.clear()
        self.legs.clear()
        self.dead.clear()
        for acc in list(self.trunks.values()) + list(self.__dict__.get("caller_accs", {}).values()):
            acc.shutdown()
        self.trunks.clear()
        self.__dict__.get("caller_accs", {}).clear()
        if hasattr(self, "acc"):
            self.acc.shutdown()
            del self.acc
        if hasattr(self, "tone"):
            del self.tone
        self._test_tone = None
        self._beep = None
        self.ep.libDestroy()
        del self.ep

    def run_timers(self):
        now = time.time()
        due = [t for t in self.timers if t[0] <= now]
        if due:
            self.timers = [t for t in self.timers if t[0] > now]
            for _, fn in due:
                fn()

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

    # -- callbacks (never block) ---------------------------------------
    def on_incoming(self, acc, prm):
        leg = Leg(self, acc, prm.callId, kind="in")
        self.legs[prm.callId] = leg
        if self.probing:
            leg.kind = "probe"
            leg.hangup(self._status(486))
            return
        busy = sum(1 for x in self.legs.values() if not x.dead and x.kind != "pos" and x is not leg)
        if self.maxload and busy >= self.maxload:
            # Full (one slot stays free for a position leg): the front tries the next worker.
            leg.kind = "refused"
            leg.hangup(self._status(486))
            return
        self.seq += 1
        leg.cid = f"w{self.index}-{self.seq}"
        self.calls[leg.cid] = leg
        ci = leg.getInfo()
        user = request_user(prm.rdata.wholeMsg)
        trunk = getattr(acc, "name", None)
        leg.answer(self._status(180))
        self.emit("incoming", call=leg.cid, user=user, caller=display_caller(ci.remoteUri),
                  remote=ci.remoteUri, trunk=trunk, src=prm.rdata.srcAddress,
                  sip_call_id=ci.callIdString)

    def on_state(self, leg, state, code, reason):
        if state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if leg.dead:
                return
            leg.dead = True
            self.dead.append(leg)
            if leg.kind in ("in", "out", "ring"):
                if leg.message is not None:
                    self.finish_message(leg)
                self.emit("ended", call=leg.cid, code=code, reason=reason)
                if leg.peer is not None and not leg.peer.dead:
                    self._hangup(leg.peer)
                if leg.customer is not None and not leg.customer.dead:
                    self._hangup(leg.customer)
            elif leg.kind == "cust":
                caller = leg.peer
                if caller is not None and caller.customer is leg:
                    caller.customer = None
                    if getattr(leg, "patch", False) and not leg.answered and not caller.dead:
                        self.emit("patch_failed", call=caller.cid, code=code, reason=reason)
                    if leg.answered and not caller.dead:
                        self.emit("customer_hungup", call=caller.cid)
                        # Nobody from the board is on it: the customer's hanging up ends it.
                        if caller.peer is None and not caller.held:
                            self._hangup(caller)
            elif leg.kind == "pos":
                caller = leg.peer
                if caller is not None and not caller.dead:
                    self.emit("position_left", call=caller.cid, code=code, reason=reason)
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and leg.kind in ("in", "out", "ring"):
            self.emit("confirmed", call=leg.cid)
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and leg.kind == "cust":
            caller = leg.peer
            if caller is None or caller.dead:
                self._hangup(leg)
                return
            leg.answered = True
            caller.held = False
            if caller.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
                caller.answer(self._status(200))     # the customer took the call
            self.emit("customer_answered", call=caller.cid)
            self.bridge(leg)
        elif state == pj.PJSIP_INV_STATE_EARLY and leg.kind in ("out", "ring"):
            self.emit("ringing", call=leg.cid, code=code)

    def on_reg(self, acc, code, reason, expiration):
        ok = 200 <= code < 300 and expiration > 0
        self.emit("reg", trunk=acc.name, ok=ok, code=code, reason=reason, expires=expiration)
        if ok:
            self.reg_backoff.pop(acc.name, None)
        elif acc.name in self.trunks and acc.want:
            lo, hi = acc.retry
            delay = min(hi, self.reg_backoff.get(acc.name, lo / 2) * 2)
            self.reg_backoff[acc.name] = delay
            self.emit("reg_retry", trunk=acc.name, in_s=delay)
            self.timers.append((time.time() + delay, lambda a=acc: self._reregister(a)))

    def _reregister(self, acc):
        if acc.name in self.trunks and acc.want:
            try:
                acc.setRegistration(True)
            except pj.Error as e:
                self.emit("reg", trunk=acc.name, ok=False, code=0, reason=e.info(), expires=0)

    def bridge(self, leg):
        """Connect audio once both legs' media are active."""
        if leg.kind == "ring":       # a test caller: sends a tone, its received level is read
            self.test_tone().startTransmit(leg.media)
            # The bridge reads (and measures) a port only while it has a listener:
            # give it the null sound device's.
            leg.media.startTransmit(self.ep.audDevManager().getPlaybackDevMedia())
            return
        caller = leg if leg.kind in ("in", "out") else leg.peer
        if caller is None or caller.media is None:
            return
        if caller.play:
            self._play(caller)
            return
        pos = caller.peer
        cust = caller.customer
        if cust is not None and (not cust.answered or cust.media is None or cust.dead):
            cust = None
        if getattr(caller, "consult", False):
            # Attended transfer, consulting: the caller waits on the hold tone while the
            # operator and the far end talk; nothing of either reaches the caller.
            self.tone.startTransmit(caller.media)
            if pos is not None and pos.media is not None and cust is not None:
                pos.media.startTransmit(cust.media)
                cust.media.startTransmit(pos.media)
            return
        if cust is not None:                 # caller and customer talk
            cust.media.startTransmit(caller.media)
            caller.media.startTransmit(cust.media)
        if caller.message is not None:       # overflow: announce, then record
            if caller.recorder is None:
                caller.recorder = pj.AudioMediaRecorder()
                caller.recorder.createRecorder(caller.message[0])
                caller.media.startTransmit(caller.recorder)
                if caller.message[2]:
                    try:
                        caller.player = pj.AudioMediaPlayer()
                        caller.player.createPlayer(caller.message[2], pj.PJMEDIA_FILE_NO_LOOP)
                        caller.player.startTransmit(caller.media)
                    except pj.Error as e:
                        caller.player = None
                        self.emit("error", call=caller.cid, message=f"announcement: {e.info()}")
                if caller.player is None:
                    self.beep().startTransmit(caller.media)
            return
        if getattr(caller, "echo", False):   # trunk test: the caller hears itself
            caller.media.startTransmit(caller.media)
            return
        if caller.held:
            self.tone.startTransmit(caller.media)
            return
        try:
            self.tone.stopTransmit(caller.media)
        except pj.Error:
            pass
        if pos is None or pos.media is None or pos.dead:
            return
        pos.media.startTransmit(caller.media)
        if caller.listen:
            caller.media.startTransmit(pos.media)
        if cust is not None:                 # the operator joined (or was there first)
            pos.media.startTransmit(cust.media)
            if caller.listen:
                cust.media.startTransmit(pos.media)
        self.emit("bridged", call=caller.cid, listen=caller.listen, customer=cust is not None)

    # -- commands ------------------------------------------------------
    @staticmethod
    def _status(code):
        p = pj.CallOpParam(True)
        p.statusCode = code
        return p

    def _hangup(self, leg, code=None, reason=None):
        if leg is None or leg.dead:
            return
        try:
            p = self._status(code) if code else pj.CallOpParam(True)
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
            self.emit("error", call=caller.cid, message=f"position leg to {uri}: {e.info()}")
            return
        self.legs[pos.getId()] = pos

    def do(self, cmd):
        op = cmd.get("op")
        try:
            getattr(self, "op_" + op)(cmd)
        except (AttributeError, TypeError) as e:
            self.emit("error", message=f"bad command {cmd!r}: {e}")
        except pj.Error as e:
            self.emit("error", call=cmd.get("call"), message=f"{op}: {e.info()}")

    def _caller(self, cmd):
        leg = self.calls.get(cmd.get("call"))
        if leg is None or leg.dead:
            self.emit("error", call=cmd.get("call"), message=f"{cmd.get('op')}: no such call")
            return None
        return leg

    def op_quit(self, cmd):
        self.quit = True

    def op_limits(self, cmd):
        self.maxload = int(cmd.get("maxload", 0))

    def op_ping(self, cmd):
        self.emit("pong", calls=len(self.calls), legs=len(self.legs), seq=cmd.get("seq"))

    def op_answer(self, cmd):
        leg = self._caller(cmd)
        if leg is None:
            return
        leg.listen = cmd.get("listen", True)
        leg.held = False
        if leg.kind == "in" and leg.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
            leg.answer(self._status(200))
        if leg.peer is None:
            self._position_leg(leg, cmd.get("position_uri"))
        self.bridge(leg)

    op_resume = op_answer

    def beep(self):
        """The tone that says: speak now (one short beep, then silence)."""
        if getattr(self, "_beep", None) is None:
            self._beep = tone_generator(1400, 400, 100, loop=False)
        else:
            play_tone(self._beep, 1400, 400, 100, loop=False)
        return self._beep

    def finish_message(self, leg):
        path, started, _ = leg.message
        leg.message = None
        try:
            if leg.media is not None and leg.recorder is not None:
                leg.media.stopTransmit(leg.recorder)
        except pj.Error:
            pass
        leg.recorder = None           # closes the WAV
        leg.player = None
        self.emit("message", call=leg.cid, path=path, seconds=round(time.time() - started, 2))

    def op_overflow(self, cmd):
        """Nobody picked the call up: answer, play the announcement, record a message."""
        leg = self._caller(cmd)
        if leg is None:
            return
        leg.message = (cmd["path"], time.time(), cmd.get("announcement"))
        if leg.peer is not None:
            self._hangup(leg.peer)
        if leg.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
            leg.answer(self._status(200))
        elif leg.media is not None:
            self.bridge(leg)
        limit = cmd.get("max_s", 120)
        self.timers.append((time.time() + limit, lambda: self._hangup(leg)))

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
            cust.makeCall(cmd["uri"], pj.CallOpParam(True))
        except pj.Error as e:
            leg.customer = None
            self.emit("error", call=leg.cid, message=f"customer phone {cmd['uri']}: {e.info()}")
            return
        self.legs[cust.getId()] = cust

    def _unconsult(self, leg):
        """End a consultation: the operator's and the far end's audio stop crossing."""
        leg.consult = False
        pos, cust = leg.peer, leg.customer
        for a, b in ((pos, cust), (cust, pos)):
            if a is not None and b is not None and a.media is not None and b.media is not None:
                try:
                    a.media.stopTransmit(b.media)
                except pj.Error:
                    pass

    def op_patch(self, cmd):
        """Transfer / live patch: call ``uri`` and join it to the caller when it answers.

        The board stays in the media path (no REFER: callers and gateways that do not
        support it still work); the caller hears the hold tone until the far end answers."""
        leg = self._caller(cmd)
        if leg is None:
            return
        if leg.customer is not None:
            self._hangup(leg.customer)
            leg.customer = None
        cust = Leg(self, self.acc, kind="cust")
        cust.patch = True
        cust.peer = leg
        leg.customer = cust
        leg.consult = bool(cmd.get("consult"))
        cust.makeCall(cmd["uri"], pj.CallOpParam(True))
        self.legs[cust.getId()] = cust
        if leg.consult:
            self.bridge(leg)                 # the caller to the hold tone now
        self.emit("patching", call=leg.cid, consult=leg.consult)

    def op_echo(self, cmd):
        """Answer and send the caller's audio straight back (the trunk test's far end)."""
        leg = self._caller(cmd)
        if leg is None:
            return
        leg.echo = True
        if leg.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
            leg.answer(self._status(200))
        self.bridge(leg)

    def op_hold(self, cmd):
        leg = self._caller(cmd)
        if leg is None:
            return
        leg.held = True
        pos, leg.peer = leg.peer, None
        if pos is not None:
            pos.peer = None
            self._hangup(pos)
        if leg.media is not None:
            self.tone.startTransmit(leg.media)

    def op_release(self, cmd):
        """The operator drops off; the call ends unless ``keep`` (the customer is on it)."""
        leg = self._caller(cmd)
        if leg is None:
            return
        pos, leg.peer = leg.peer, None
        if pos is not None:
            pos.peer = None
            self._hangup(pos)
        if getattr(leg, "consult", False):
            self._unconsult(leg)
        if not cmd.get("keep"):
            self._hangup(leg, cmd.get("code"), cmd.get("reason"))
        elif leg.customer is not None and not leg.customer.answered and leg.media is not None:
            self.tone.startTransmit(leg.media)   # a transfer still ringing: the caller waits
        elif leg.customer is not None and leg.media is not None:
            self.bridge(leg)                     # connect: caller and far end talk

    def test_tone(self):
        if getattr(self, "_test_tone", None) is None:
            self._test_tone = tone_generator(1000, 30000, 0, loop=True)
        return self._test_tone

    def op_call(self, cmd):
        """An outgoing call: an office line (joined to a position when it answers), or a
        test caller ringing a line through the front (``kind = "ring"``)."""
        acc = self.trunks.get(cmd.get("trunk")) or self._caller_account(cmd.get("caller"))
        leg = Leg(self, acc, kind=cmd.get("kind", "out"), cid=cmd["call"])
        leg.play = cmd.get("play")       # a placed call's message
        leg.makeCall(cmd["uri"], pj.CallOpParam(True))
        self.legs[leg.getId()] = leg
        self.calls[leg.cid] = leg
        self.emit("placed", call=leg.cid, sip_call_id=leg.getInfo().callIdString)
        if cmd.get("ring_s"):
            # A placed call nobody answers is given up after its ring time.
            self.timers.append((time.time() + float(cmd["ring_s"]), lambda: self._unanswered(leg)))
        if leg.kind == "out":
            self._position_leg(leg, cmd.get("position_uri"))

    def _caller_account(self, caller):
        """A local account whose user part is the caller ID a test call shows."""
        if not caller or not all(c.isalnum() or c in "+-_." for c in caller):
            return self.acc
        accs = self.__dict__.setdefault("caller_accs", {})
        if caller not in accs and len(accs) < 4:
            ac = account_config(f"sip:{caller}@{self.listen}:{self.port}", self.listen)
            acc = LocalAccount(self)
            acc.create(ac, False)
            accs[caller] = acc
        return accs.get(caller, self.acc)

    def op_levels(self, cmd):
        """Audio levels of a call and of its position leg: ``heard`` from the far end,
        ``sent`` to it. (PJSUA2 names them from the bridge port's side: a port's
        "tx" level is what it transmits into the bridge, i.e. what the far end sent.)"""
        leg = self._caller(cmd)
        if leg is None:
            return
        def both(media):
            return (media.getTxLevel(), media.getRxLevel()) if media is not None else (None, None)
        a, b = both(leg.media)
        c, d = both(leg.peer.media if leg.peer is not None else None)
        self.emit("levels", call=leg.cid, heard=a, sent=b, position_heard=c, position_sent=d,
                  seq=cmd.get("seq"))

    def _unanswered(self, leg):
        if leg.dead:
            return
        try:
            if leg.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
                self._hangup(leg)
        except pj.Error:
            pass

    def _play(self, leg):
        """Play a placed call's message once, then hang up (a wake-up or reminder call)."""
        if leg.player is not None or leg.dead:
            return
        import wave
        try:
            with wave.open(leg.play) as w:
                seconds = w.getnframes() / float(w.getframerate())
            player = pj.AudioMediaPlayer()
            player.createPlayer(leg.play, pj.PJMEDIA_FILE_NO_LOOP)
            player.startTransmit(leg.media)
        except (OSError, EOFError, wave.Error, pj.Error) as e:
            msg = e.info() if isinstance(e, pj.Error) else str(e)
            self.emit("error", call=leg.cid, message=f"message {leg.play}: {msg}")
            self._hangup(leg)
            return
        leg.player = player
        self.emit("playing", call=leg.cid, seconds=round(seconds, 2))
        self.timers.append((time.time() + seconds + 0.5, lambda: self._hangup(leg)))

    def op_dtmf(self, cmd):
        leg = self._caller(cmd)
        if leg is not None:
            leg.dialDtmf(cmd["digits"])

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
        name = cmd["trunk"]
        if cmd.get("transport", "udp") != "udp":
            self._transport(cmd["transport"])
        old = self.trunks.pop(name, None)
        if old is not None:
            old.shutdown()
        ac = account_config(f"sip:{cmd['username']}@{cmd['registrar'].split(':', 1)[1]}",
                            self.listen)
        ac.regConfig.registrarUri = cmd["registrar"] + (
            f";transport={cmd['transport']}" if cmd.get("transport", "udp") != "udp" else "")
        ac.regConfig.timeoutSec = cmd.get("expires", 300)
        ac.regConfig.retryIntervalSec = 0          # we back off ourselves
        ac.regConfig.delayBeforeRefreshSec = max(1, min(5, cmd.get("expires", 300) // 3))
        cred = pj.AuthCredInfo("digest", cmd.get("realm", "*"), cmd["username"], 0,
                               cmd["password"])
        ac.sipConfig.authCreds.append(cred)
        if cmd.get("contact"):
            ac.sipConfig.contactForced = cmd["contact"]
        acc = TrunkAccount(self, name)
        acc.want = True
        acc.retry = (cmd.get("retry_min_s", 5), cmd.get("retry_max_s", 300))
        self.trunks[name] = acc
        acc.create(ac, True)

    def op_unregister(self, cmd):
        acc = self.trunks.get(cmd["trunk"])
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
    # Our events own stdout; anything the C library prints goes to stderr instead.
    sys.stdout = own_stdout()
    Worker(a.index, a.listen, a.port, a.limit, a.log_level).run()


if __name__ == "__main__":
    main()
