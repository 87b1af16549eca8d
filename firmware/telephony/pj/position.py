"""An operator position's SIP endpoint: auto-answers the board's legs into its headset.

The telephony workers hold the callers' calls; when an operator picks one up,
a worker INVITEs this position over loopback and bridges the caller with
that leg. This process answers such INVITEs (only from allowed addresses:
loopback unless told otherwise; anyone else gets 403) and joins the headset
to each answered leg both ways once its media is active.

Run as a process, one per position:

    python -m firmware.telephony.pj.position --port 0 --headset "USB Audio Device" [--name p1]

It speaks the protocol of ``firmware.telephony.protocol`` (position commands
and events). It prints one JSON line when ready, `{"event": "ready", "uri":
"sip:p1@127.0.0.1:PORT", "port": PORT, ...}`, then one JSON line per event
(incoming, answered, rejected, media, ended). It reads JSON lines on stdin:
`{"cmd": "status"}`, `{"cmd": "hangup"}` (every leg, or `"call": ID`),
`{"cmd": "quit"}`; anything else is answered with an `error` event naming it.
End of stdin also quits, so the process dies with the daemon that feeds it.

One thread owns PJSUA2 (threadCnt = 0, mainThreadOnly, one loop calling
libHandleEvents); stdin is read on another thread that only queues
commands. PJSUA2 objects are deleted explicitly: each Call right after it
disconnects, and everything before libDestroy.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import logging
import os
import queue
import sys
import threading
import time

from firmware import logs
from firmware.errors import SwitchboardError
from firmware.telephony import protocol as msg
from firmware.telephony.children import ChildProcess
from firmware.telephony.pj.headset import Headset, HeadsetError
from firmware.telephony.pj.support import PREFERRED_CODECS, own_stdout, prefer_codecs, read_commands

log = logging.getLogger("switchboard.position")

LOOPBACK = ("127.0.0.0/8", "::1/128")
DEFAULT_CODECS = PREFERRED_CODECS


class PositionError(SwitchboardError, RuntimeError):
    """The position endpoint could not start."""


def parse_networks(values, where="--allow") -> list:
    nets = []
    for v in values:
        try:
            nets.append(ipaddress.ip_network(v, strict=False))
        except ValueError:
            raise PositionError(f"{where} {v!r}: expected an IP address or network "
                                f"such as 127.0.0.1 or 10.0.0.0/24") from None
    return nets


def source_ip(src: str) -> str:
    """'127.0.0.1:5060' or '[::1]:5060' -> the address part."""
    if src.startswith("["):
        return src[1:src.index("]")]
    return src.rsplit(":", 1)[0] if src.count(":") == 1 else src


def _pj():
    import pjsua2 as pj
    return pj


class Position:
    """The endpoint; every method runs on the thread that calls `run()`."""

    def __init__(self, *, name="position", bind="127.0.0.1", port=0, headset=None,
                 allow=LOOPBACK, clock_rate=16000, headset_rate=None, buffer_ms=200,
                 headset_ptime=10, headset_period=None, bridge_ptime=10, packet_ms=10,
                 max_calls=2, codecs=DEFAULT_CODECS, out=None, log_level=0):
        self.name = name
        self.bind = bind
        self.port = port
        self.headset_name = headset
        self.allow = parse_networks(allow)
        self.clock_rate = clock_rate
        self.headset_rate = headset_rate
        self.buffer_ms = buffer_ms
        self.headset_ptime = headset_ptime
        self.headset_period = headset_period
        self.bridge_ptime = bridge_ptime
        self.packet_ms = packet_ms
        self.max_calls = max_calls
        self.codecs = [c for c in codecs if c]
        self.out = out or sys.stdout
        self.log_level = log_level
        self.commands: queue.Queue = queue.Queue()
        self.ep = None
        self.transport_id = None
        self.account = None
        self.headset: Headset | None = None
        self.calls = {}      # call id -> PositionCall, until disconnected
        self._dead = []      # disconnected calls, deleted after the callback returns
        self.uri = ""
        self.started = time.monotonic()
        self.counts = {"answered": 0, "rejected": 0, "ended": 0}
        self._quit = False

    # -- output ------------------------------------------------------------

    def emit(self, event: msg.Message) -> None:
        self.out.write(msg.encode(event) + "\n")
        self.out.flush()

    # -- start and stop (PJSUA2 thread) --------------------------------------

    def start(self) -> None:
        pj = _pj()
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = max(self.max_calls, 1)
        cfg.uaConfig.userAgent = f"switchboard-position/{self.name}"
        cfg.logConfig.level = self.log_level
        cfg.logConfig.consoleLevel = self.log_level
        cfg.medConfig.clockRate = self.clock_rate
        cfg.medConfig.sndClockRate = self.clock_rate
        cfg.medConfig.ecTailLen = 0   # the headset is not a speakerphone
        cfg.medConfig.noVad = True    # keep RTP flowing in silence: no comfort-noise gaps
        # The bridge's tick: a frame waits up to a tick on its way in and out of the headset.
        cfg.medConfig.audioFramePtime = self.bridge_ptime
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()  # the wheel has no sound device: the bridge ticks alone

        tcfg = pj.TransportConfig()
        tcfg.port = self.port
        tcfg.boundAddress = self.bind
        tcfg.publicAddress = self.bind
        self.transport_id = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.ep.libStart()
        self._prefer_codecs()
        local = self.ep.transportGetInfo(self.transport_id).localName
        self.port = int(local.rsplit(":", 1)[1])
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        self.uri = f"sip:{self.name}@{host}:{self.port}"

        acfg = pj.AccountConfig()
        acfg.idUri = self.uri
        acfg.mediaConfig.transportConfig.boundAddress = self.bind
        acfg.mediaConfig.transportConfig.publicAddress = self.bind
        acfg.mediaConfig.transportConfig.port = 0
        self.account = _classes()[0](self)
        self.account.create(acfg, True)

        if self.headset_name:
            self.headset = Headset(self.headset_name, clock_rate=self.clock_rate,
                                   rate=self.headset_rate, buffer_ms=self.buffer_ms,
                                   ptime_ms=self.headset_ptime,
                                   period_ms=self.headset_period).create()

    def _prefer_codecs(self) -> None:
        """The listed codecs first (support.prefer_codecs), each sending `packet_ms` a packet."""
        try:
            raised = prefer_codecs(self.ep, self.codecs)
        except LookupError as exc:
            raise PositionError(f"--codecs {exc}") from None
        for cid in raised:
            self._set_packet(cid)

    def _set_packet(self, cid: str) -> None:
        """Send `packet_ms` of audio a packet: a frame waits in the encoder until its packet
        is full, so PJSUA2's 20 ms packets of 10 ms G.722 frames hold the first one 10 ms
        longer on the way to the far end. The legs are on loopback, where the packet rate
        costs nothing; a codec with longer frames keeps one frame a packet."""
        param = self.ep.codecGetParam(cid)
        frame_ms = max(param.info.frameLen, 1)
        param.setting.frmPerPkt = max(1, self.packet_ms // frame_ms)
        self.ep.codecSetParam(cid, param)

    def stop(self) -> None:
        """Hang up, then delete in order: calls, headset port, account, library."""
        if self.ep is None:
            return
        if self.calls:
            try:
                self.ep.hangupAllCalls()
            except Exception:
                pass
            deadline = time.monotonic() + 2
            while self.calls and time.monotonic() < deadline:
                self.ep.libHandleEvents(10)
                self._reap()
        self._reap()
        for cid in list(self.calls):  # did not disconnect in time: still delete before libDestroy
            call = self.calls.pop(cid)
            del call
        if self.headset is not None:
            self.headset.close()
            self.headset = None
        if self.account is not None:
            try:
                self.account.shutdown()
            except Exception:
                pass
            self.account = None
        self.ep.libDestroy()
        self.ep = None

    # -- the loop -------------------------------------------------------------

    def run(self) -> None:
        self.start()
        try:
            self.emit(msg.PositionReady(name=self.name, uri=self.uri, host=self.bind,
                                        port=self.port, pid=os.getpid(),
                                        headset=self.headset.status() if self.headset else None))
            while not self._quit:
                self.ep.libHandleEvents(10)
                self._reap()
                self._commands()
        finally:
            self.stop()
            self.emit(msg.PositionStopped(name=self.name))

    def _reap(self) -> None:
        while self._dead:
            call = self._dead.pop()
            del call  # Call's destructor clears its slot's user data: do it before reuse

    def _commands(self) -> None:
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return
            self.do(cmd)

    def do(self, cmd) -> None:
        """One command off the queue: a message, or the ``ProtocolError`` its line was."""
        if isinstance(cmd, msg.ProtocolError):
            self.emit(msg.PositionErrorEv(message=str(cmd)))
        elif isinstance(cmd, msg.PositionStatusRequest):
            self.emit(msg.PositionStatus(**self.status()))
        elif isinstance(cmd, msg.PositionHangup):
            pj = _pj()
            hung = []
            for cid, call in list(self.calls.items()):
                if cmd.call is None or cmd.call == cid:
                    try:
                        call.hangup(pj.CallOpParam(True))
                        hung.append(cid)
                    except Exception as exc:
                        self.emit(msg.PositionErrorEv(message=f"hangup of call {cid} failed: {exc}"))
            self.emit(msg.PositionHungUp(calls=hung))
        elif isinstance(cmd, msg.PositionQuit):
            self._quit = True

    def status(self) -> dict:
        calls = []
        for cid, call in self.calls.items():
            calls.append({"call": cid, "remote": call.remote, "state": call.state,
                          "audio": call.audio_port is not None, "codec": call.codec})
        return {"name": self.name, "uri": self.uri, "calls": calls,
                "uptime_s": round(time.monotonic() - self.started, 1), **self.counts,
                "headset": self.headset.status() if self.headset else None}

    # -- callbacks (PJSUA2 thread, inside libHandleEvents: never block) --------

    def allowed(self, src: str) -> bool:
        try:
            ip = ipaddress.ip_address(source_ip(src))
        except ValueError:
            return False
        return any(ip in net for net in self.allow)

    def incoming(self, prm) -> None:
        pj = _pj()
        src = prm.rdata.srcAddress
        call = _classes()[1](self, prm.callId)
        self.calls[prm.callId] = call
        op = pj.CallOpParam()
        if not self.allowed(src):
            self.counts["rejected"] += 1
            self.emit(msg.PositionRejected(call=prm.callId, source=src, code=msg.NOT_ALLOWED.code))
            op.statusCode = msg.NOT_ALLOWED.code
            op.reason = msg.NOT_ALLOWED.reason
            call.hangup(op)
            return
        active = sum(1 for c in self.calls.values() if c.state != "DISCONNECTED")
        if active > self.max_calls:
            op.statusCode = msg.POSITION_BUSY.code
            call.hangup(op)
            self.emit(msg.PositionRejected(call=prm.callId, source=src,
                                           code=msg.POSITION_BUSY.code))
            return
        call.remote = call.getInfo().remoteUri
        self.emit(msg.PositionIncoming(call=prm.callId, source=src, remote=call.remote))
        op.statusCode = 200
        call.answer(op)
        call.answered = True
        self.counts["answered"] += 1
        self.emit(msg.PositionAnswered(call=prm.callId))

    def media_changed(self, call) -> None:
        pj = _pj()
        info = call.getInfo()
        for mi in info.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                media = call.getAudioMedia(mi.index)
                if self.headset is not None:
                    if call.audio_port not in (None, media.getPortId()):
                        self.headset.forget(call.audio_port)  # a re-INVITE moved its port
                    self.headset.connect(media)
                call.audio_port = media.getPortId()
                try:
                    si = call.getStreamInfo(mi.index)
                    call.codec = f"{si.codecName}/{si.codecClockRate}"
                except pj.Error:  # status only: never lose the call's audio over it
                    call.codec = "?"
                self.emit(msg.PositionMedia(call=call.cid, state="active", port=call.audio_port))
            elif call.audio_port is not None:  # held or gone: the operator hears nothing of it
                if self.headset is not None:
                    if mi.status == pj.PJSUA_CALL_MEDIA_NONE:  # its port is gone already
                        self.headset.forget(call.audio_port)
                    else:
                        self.headset.disconnect(call.getAudioMedia(mi.index))
                self.emit(msg.PositionMedia(call=call.cid, state=_media_state(mi.status)))
                call.audio_port = None

    def state_changed(self, call) -> None:
        pj = _pj()
        info = call.getInfo()
        call.state = info.stateText
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if call.audio_port is not None and self.headset is not None:
                self.headset.forget(call.audio_port)  # its bridge port is already gone
            call.audio_port = None
            self.calls.pop(call.cid, None)
            self._dead.append(call)
            if info.lastStatusCode not in (403, 486) or call.answered:
                self.counts["ended"] += 1
                self.emit(msg.PositionEnded(call=call.cid, code=info.lastStatusCode,
                                            reason=info.lastReason))


def _media_state(status) -> str:
    pj = _pj()
    return {pj.PJSUA_CALL_MEDIA_NONE: "none", pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local-hold",
            pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote-hold",
            pj.PJSUA_CALL_MEDIA_ERROR: "error"}.get(status, str(status))


def guarded(position, fn, *args) -> None:
    """Run a callback's work; an error is reported, never raised back into PJSUA2's C++."""
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - anything raised here would abort the process
        info = getattr(exc, "info", None)
        position.emit(msg.PositionErrorEv(
            message=f"{fn.__name__}: {info() if callable(info) else exc}"))


@functools.cache
def _classes():
    """The PJSUA2 subclasses, built on first use so that importing this module needs no PJSUA2."""
    pj = _pj()

    class PositionAccount(pj.Account):
        def __init__(self, position):
            super().__init__()
            self.position = position

        def onIncomingCall(self, prm):
            guarded(self.position, self.position.incoming, prm)

    class PositionCall(pj.Call):
        def __init__(self, position, call_id):
            super().__init__(position.account, call_id)
            self.position = position
            self.cid = call_id
            self.remote = ""
            self.state = "INCOMING"
            self.audio_port = None
            self.codec = ""  # what its media runs on, e.g. "G722/16000"
            self.answered = False

        def onCallState(self, prm):
            guarded(self.position, self.position.state_changed, self)

        def onCallMediaState(self, prm):
            guarded(self.position, self.position.media_changed, self)

    return PositionAccount, PositionCall


class PositionProcess:
    """A position endpoint run as a child process, for the daemon to start, query and stop.

    `on_event(event)` is called on a reader thread for every event the child
    prints (incoming, answered, media, ended, rejected, error...), as the JSON
    object of the protocol's message; hand it to the daemon's loop with
    `daemon.post` or `loop.call_soon_threadsafe`. The child is a
    ``ChildProcess``: it dies with the daemon.
    """

    def __init__(self, *, name: str, headset: str | None = None, bind: str = "127.0.0.1",
                 port: int = 0, allow=None, args=(), env=None, on_event=None, on_exit=None,
                 log=None, python: str = sys.executable):
        self.name = name
        argv = ["--name", name, "--bind", bind, "--port", str(port)]
        if headset:
            argv += ["--headset", headset]
        for a in allow or ():
            argv += ["--allow", a]
        argv += [str(a) for a in args]
        self.on_event = on_event
        self.on_exit = on_exit          # called once when the child is gone
        self.ready: dict | None = None
        self._replies: queue.Queue = queue.Queue()
        self.child = ChildProcess(f"position {name}", "firmware.telephony.pj.position", argv,
                                  events=msg.POSITION_EVENTS, on_message=self._message,
                                  on_exit=self._exited,
                                  log_path=log, env=env, python=python)

    @property
    def proc(self):
        return self.child.proc

    @property
    def uri(self) -> str | None:
        return self.ready["uri"] if self.ready else None

    def start(self, timeout: float = 120.0) -> dict:   # slow machines: see pool.WorkerProc.start
        """Start the child and wait for it to be ready; PositionError says why it was not."""
        self.child.start()
        ev = self._wait(("ready", "error", "eof"), timeout)
        if ev is None or ev["event"] != "ready":
            why = ev.get("message", "it exited") if ev else f"not ready within {timeout} s"
            self.stop()
            raise PositionError(f"position {self.name!r} did not start: {why}")
        self.ready = ev
        return ev

    def _exited(self):
        self._replies.put({"event": "eof"})
        if self.on_exit is not None:
            self.on_exit(self)

    def _message(self, m: msg.Message):
        ev = msg.as_dict(m)
        if m.wire in ("ready", "status", "error", "hangup", "stopped"):
            self._replies.put(ev)
        if self.on_event is not None:
            self.on_event(ev)

    def _wait(self, events, timeout):
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                ev = self._replies.get(timeout=left)
            except queue.Empty:
                break
            if ev["event"] in events:
                return ev
        return None

    def alive(self) -> bool:
        return self.child.alive()

    def status(self, timeout: float = 5.0) -> dict:
        self.child.send(msg.PositionStatusRequest())
        ev = self._wait(("status",), timeout)
        if ev is None:
            raise PositionError(f"position did not answer a status request within {timeout} s")
        return ev

    def hangup(self, call: int | None = None) -> None:
        self.child.send(msg.PositionHangup(call=call))

    def stop(self, timeout: float = 5.0) -> int | None:
        """Ask it to quit (hangs up, tears PJSUA2 down in order); kill it if it hangs."""
        return self.child.stop(msg.PositionQuit(), timeout)


def _failed(out, text: str) -> int:
    """The position cannot run: tell the daemon (an ``error`` event) and the log."""
    out.write(msg.encode(msg.PositionErrorEv(message=text)) + "\n")
    out.flush()
    log.error("%s", text)
    return 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.telephony.pj.position",
                                     description="An operator position's SIP endpoint.")
    parser.add_argument("--name", default="position", help="user part of the position's SIP URI")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="UDP port (0: any free port)")
    parser.add_argument("--headset", help="sound device name as PyAudio lists it "
                                          "(python -m firmware.telephony.pj.headset --list)")
    parser.add_argument("--allow", action="append", default=None, metavar="ADDR",
                        help="address or network allowed to call in (repeat; default loopback)")
    parser.add_argument("--clock-rate", type=int, default=16000, help="bridge clock rate (Hz)")
    parser.add_argument("--headset-rate", type=int, default=None,
                        help="sample rate to open the headset at (default: bridge rate if the "
                             "card takes it, else the card's own)")
    parser.add_argument("--buffer-ms", type=int, default=200,
                        help="most audio each headset ring holds (ms); the standing delay is "
                             "trimmed to a frame when the device keeps time")
    parser.add_argument("--headset-ptime", type=int, default=10, choices=(5, 10, 20),
                        help="ms of audio per headset frame, the rings' unit (default 10; 20 "
                             "halves the wake-ups and adds about 20 ms each way)")
    parser.add_argument("--headset-period", type=int, default=None,
                        help="ms per sound-card period (PortAudio's callback); it divides "
                             "--headset-ptime (default: half of it, at least 5)")
    parser.add_argument("--bridge-ptime", type=int, default=10, choices=(5, 10, 20),
                        help="ms per tick of the position's conference bridge (default 10)")
    parser.add_argument("--packet-ms", type=int, default=10, choices=(10, 20),
                        help="ms of audio per RTP packet sent (default 10: a frame does not wait "
                             "for the next to fill a packet; PJSUA2's own is 20)")
    parser.add_argument("--max-calls", type=int, default=2, help="legs answered at once")
    parser.add_argument("--codecs", default=",".join(DEFAULT_CODECS),
                        help="codecs to prefer, in order (comma-separated; others stay on below)")
    parser.add_argument("--log-level", type=int, default=0, help="PJSUA2 log level (0-6)")
    args = parser.parse_args(argv)
    logs.setup(f"position {args.name}")
    out = own_stdout()
    try:
        pos = Position(name=args.name, bind=args.bind, port=args.port, headset=args.headset,
                       allow=args.allow or LOOPBACK, clock_rate=args.clock_rate,
                       headset_rate=args.headset_rate, buffer_ms=args.buffer_ms,
                       headset_ptime=args.headset_ptime, headset_period=args.headset_period,
                       bridge_ptime=args.bridge_ptime, packet_ms=args.packet_ms,
                       max_calls=args.max_calls, codecs=args.codecs.split(","),
                       log_level=args.log_level, out=out)
    except SwitchboardError as exc:
        return _failed(out, str(exc))
    threading.Thread(target=read_commands, daemon=True, name="position-stdin",
                     args=(sys.stdin, msg.POSITION_COMMANDS, pos.commands, msg.PositionQuit(),
                           pos.commands.put)).start()   # do() answers a bad one
    try:
        pos.run()
    except (HeadsetError, PositionError) as exc:
        return _failed(out, str(exc))
    except Exception as exc:  # PJSUA2 raises its own Error type (e.g. port in use)
        info = getattr(exc, "info", None)
        return _failed(out, f"position failed to start: {info() if callable(info) else exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
