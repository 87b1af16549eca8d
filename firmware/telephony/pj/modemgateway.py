"""An FXO-to-SIP gateway for one USB voice modem: one analog line, one process.

It does what an Ethernet FXO gateway in front of the board would do, on loopback:

- the analog line rings: at the first ``RING`` an INVITE goes to the board's front for
  ``--line`` (``sip:901@front``), From ``unknown`` (or the caller's number and name when
  the caller ID came before the ring); the caller ID block that follows the first ring is
  reported as a ``caller_id`` event with the INVITE's Call-ID, and the daemon puts the
  number on the board's call; the rings stopping before anyone answered CANCELs it;
- the board answers (200 OK): the modem goes off-hook in full-duplex voice and the call's
  audio is bridged through an ``AudioMediaPort`` (8000 Hz, 16-bit, 20 ms frames) fed from
  and drained into the line's drift buffers, which the serial thread fills and empties;
- a BYE from the board puts the line back on-hook; the far end hanging up (the modem's
  DLE codes, or the line's audio) sends BYE;
- an INVITE from the board (an office line dialling out) is dialled with ``ATD`` the
  profile's way: 180 while it dials, 200 once dialled, 486/480/503 for BUSY / NO ANSWER /
  NO DIALTONE; RFC 2833 digits from the board go down the line with ``AT+VTS``;
- INVITEs are accepted only from the board's front (``--front``, host and port: a
  worker's call out reaches the gateway through it), or from ``--allow`` networks when
  given; anyone else gets 403, and a second call while the line is busy 486.

PJSUA2 is owned by the main thread (``threadCnt = 0``, a ``libHandleEvents`` loop); the
modem by ``ModemLine``'s thread; they meet only in queues. It speaks the gateway messages
of ``firmware.telephony.protocol``: events go out as JSON lines on stdout (its own:
``ready``, ``answered``, ``ended``, ``call_lost``, ``status``...; and each of the line's:
``modem_ready``, ``modem_fault``, ``offer``, ``caller_id`` (with the INVITE's SIP
Call-ID), ``test_result``...); commands come in on stdin (``{"cmd": "status"}``,
``{"cmd": "test", "seconds": 4}``, ``{"cmd": "hangup"}``, ``{"cmd": "quit"}``); a line
that is not one is answered with an ``error`` event naming it.

Run: ``python -m firmware.telephony.pj.modemgateway --name pots1 --device /dev/serial/by-id/...
--line 901 --front 127.0.0.1:5070``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import ipaddress
import logging
import os
import queue
import sys

import pjsua2 as pj

from firmware import logs
from firmware.telephony import protocol as msg
from firmware.telephony.modem.line import FRAME, ModemLine
from firmware.telephony.pj.legs import PjsipLog, account_config, call_param, request_user
from firmware.telephony.pj.support import (Timers, destroy_port, drain, hang_up_all, loop_endpoint, own_stdout,
                                           read_commands, serve)

CLOCK = 8000
LOST_HANGUP_S = 2.0          # a call on a modem that vanished is hung up by then at the latest
#: A call out that failed on the analog line: the SIP reply for the modem's result code.
DIAL_REPLIES = {r.code: r for r in (msg.FAR_END_BUSY, msg.NO_ANSWER, msg.NO_DIAL_TONE)}

log = logging.getLogger("switchboard.modemgateway")


def _port_class():
    class LinePort(pj.AudioMediaPort):
        """The analog line on the bridge; callbacks run on PJSUA2's media clock."""

        def __init__(self, line: ModemLine):
            super().__init__()
            self.line = line
            self.silence = bytes(2 * FRAME)

        def onFrameRequested(self, frame):       # the bridge pulls what the line carries
            try:
                data = self.line.rx.take_bytes() if self.line.state == "voice" else self.silence
            except Exception:
                data = self.silence
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(data)
            frame.size = len(data)

        def onFrameReceived(self, frame):        # the bridge pushes what goes down the line
            if self.line.state == "voice" and frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO \
                    and frame.size:
                self.line.tx.put(bytes(frame.buf))

    return LinePort


class Leg(pj.Call):
    def __init__(self, gw, acc, call_id=pj.PJSUA_INVALID_ID, direction="in"):
        super().__init__(acc, call_id)
        self.gw = gw
        self.direction = direction      # "in": the line rang the board; "out": the board dials
        self.media = None
        self.dead = False
        self.confirmed = False
        self.caller_acc = None

    def onCallState(self, prm):
        ci = self.getInfo()
        self.gw.on_state(self, ci.state, ci.lastStatusCode, ci.lastReason)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.media = self.getAudioMedia(i)
                self.gw.connect_audio(self)
                return

    def onDtmfDigit(self, prm):
        self.gw.line.commands.put(("dtmf", prm.digit))


class Account(pj.Account):
    def __init__(self, gw):
        super().__init__()
        self.gw = gw

    def onIncomingCall(self, prm):
        self.gw.on_incoming(self, prm)


class Gateway:
    def __init__(self, a):
        self.a = a
        self.name = a.name
        self.events: queue.Queue = queue.Queue()
        self.commands: queue.Queue = queue.Queue()
        self.from_line: queue.Queue = queue.Queue()
        self.allow = [ipaddress.ip_network(n, strict=False) for n in a.allow or ()]
        self.line = ModemLine(a.device, self._from_line, profile=a.profile, country=a.country,
                              silence_s=a.silence_s, tone_s=a.tone_s,
                              ring_gone_s=a.ring_gone_s, retry_min_s=a.retry_min_s,
                              retry_max_s=a.retry_max_s, log=log.info)
        self.ep: pj.Endpoint | None = None
        self.log_writer: PjsipLog | None = None  # PJSIP's log into logging: the endpoint keeps no reference
        self.acc: Account | None = None
        self.port_media = None                   # the line's AudioMediaPort on the bridge
        self.port = a.port
        self.leg: Leg | None = None
        self.dead: list[Leg] = []
        self.old_accs: list = []
        self.timers = Timers()
        self.quit = False
        self.modem = {"state": "opening"}

    # -- plumbing --------------------------------------------------------------
    def emit(self, event: msg.Message):
        self.events.put(event)
        if not isinstance(event, msg.GatewayStatus):     # the technician's log: every event
            log.info("%s", msg.encode(event))

    def _reader(self, stream):
        """Commands onto the loop's queue; a bad line is answered with an ``error`` event."""
        read_commands(stream, msg.GATEWAY_COMMANDS, self.commands, msg.GatewayQuit(),
                      lambda e: self.emit(msg.GatewayError(message=str(e))))

    def _from_line(self, ev, **kw):          # the serial thread: hand over, never touch PJSUA2
        self.from_line.put((ev, kw))

    # -- PJSUA2 ------------------------------------------------------------------
    def start(self):
        self.ep, self.log_writer, _, self.port = loop_endpoint(
            f"switchboard-modem/{self.name}", max_calls=4, log_level=self.a.log_level,
            bind=self.a.bind, port=self.a.port, clock_rate=CLOCK)
        self.acc = Account(self)
        self.acc.create(account_config(f"sip:modem-{self.name}@{self.a.bind}:{self.port}",
                                       self.a.bind), True)
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.id = pj.PJMEDIA_FORMAT_L16
        fmt.clockRate = CLOCK
        fmt.channelCount = 1
        fmt.bitsPerSample = 16
        fmt.frameTimeUsec = 20000
        fmt.avgBps = fmt.maxBps = CLOCK * 16
        self.port_media = _port_class()(self.line)
        self.port_media.createPort(f"modem:{self.name}"[:30], fmt)
        self.emit(msg.GatewayReady(port=self.port, pid=os.getpid(),
                                   uri=f"sip:{{number}}@{self.a.bind}:{self.port}"))
        self.line.start()

    def run(self):
        serve(self)

    def step(self):
        """One turn of the loop (``serve``)."""
        # SIP and RTP wake the loop at once; the line's events wait for the
        # timeout, so poll briskly only while there is a call
        self.ep.libHandleEvents(10 if self.leg is not None else 40)
        self.reap()
        self.timers.run()
        for ev, kw in drain(self.from_line):
            try:
                event = msg.from_dict(msg.GATEWAY_EVENTS, {"event": ev, **kw})
            except msg.ProtocolError as e:   # the line and the protocol disagree
                log.error("%s", e)
                self.emit(msg.GatewayError(message=str(e)))
                continue
            self.on_line(event)
        for cmd in drain(self.commands):
            self.do(cmd)

    def shutdown(self):
        self.line.stop()
        if self.ep is None:
            return
        hang_up_all(self.ep, lambda: self.leg is not None and not self.leg.dead)
        self.leg = None
        self.dead.clear()
        self.old_accs.clear()
        gc.collect()
        if self.acc is not None:
            self.acc.shutdown()
        destroy_port(self.port_media)            # off the bridge, no callback left in flight
        self.acc = self.port_media = None        # deleted before the library, in this order
        self.ep.libDestroy()
        self.ep = None

    def reap(self):
        while self.dead:
            leg = self.dead.pop()
            if self.leg is leg:
                self.leg = None
            leg.media = None
            if leg.caller_acc is not None:
                self.old_accs.append(leg.caller_acc)
                leg.caller_acc = None
        if len(self.old_accs) > 2:          # caller-ID accounts, deleted outside callbacks
            for acc in self.old_accs[:-2]:
                acc.shutdown()
            del self.old_accs[:-2]

    def _hangup(self, leg, reply: msg.Reply | None = None):
        if leg is None or leg.dead:
            return
        try:
            leg.hangup(call_param(reply))
        except pj.Error:
            pass

    # -- SIP side ------------------------------------------------------------------
    def on_incoming(self, acc, prm):
        leg = Leg(self, acc, prm.callId, direction="out")
        src = prm.rdata.srcAddress.rsplit(":", 1)[0].strip("[]")
        if self.allow:
            try:
                allowed = any(ipaddress.ip_address(src) in n for n in self.allow)
            except ValueError:
                allowed = False
        else:                       # the board's calls out come through its front alone
            allowed = prm.rdata.srcAddress == self.a.front
        if not allowed:
            self.emit(msg.GatewayRejected(src=prm.rdata.srcAddress, code=msg.GATEWAY_NOT_ALLOWED.code))
            leg.hangup(call_param(msg.GATEWAY_NOT_ALLOWED))
            self.dead.append(leg)
            return
        if self.leg is not None or self.line.state != "idle":
            leg.hangup(call_param(msg.LINE_BUSY))
            self.dead.append(leg)
            return
        number = request_user(prm.rdata.wholeMsg)
        self.leg = leg
        leg.answer(call_param(msg.Reply(180, "Ringing")))
        self.line.commands.put(("dial", number))
        self.emit(msg.GatewayDialling(number=number))

    def on_state(self, leg, state, code, reason):
        if state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if leg.dead:
                return
            leg.dead = True
            self.dead.append(leg)
            if leg is self.leg:
                # the board hung up (or turned the call away): the line goes back on-hook
                self.line.commands.put(("release",))
                self.emit(msg.GatewayEnded(direction=leg.direction, code=code, reason=reason))
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and leg is self.leg:
            leg.confirmed = True
            if leg.direction == "in":            # the operator answered: off-hook
                self.line.commands.put(("answer",))
                self.emit(msg.GatewayAnswered())

    def connect_audio(self, leg):
        if leg is not self.leg or leg.media is None:
            return
        leg.media.startTransmit(self.port_media)
        self.port_media.startTransmit(leg.media)

    # -- the line's events ---------------------------------------------------------
    def on_line(self, ev: msg.Message):
        if isinstance(ev, msg.ModemReady):
            self.modem = {"state": "ready", **msg.fields(ev)}
        elif isinstance(ev, msg.ModemFault):
            self.modem = {"state": "fault", **msg.fields(ev)}
        if isinstance(ev, msg.LineOffer):
            self._offer(ev)
        elif isinstance(ev, msg.LineCallerId):
            # the INVITE went at the first ring; the number follows it to the daemon, which
            # finds the board's call by this SIP Call-ID (the front keeps it)
            if self.leg is None or self.leg.direction != "in":
                return
            ev = dataclasses.replace(ev, sip_call_id=self.leg.getInfo().callIdString)
        elif isinstance(ev, msg.LineRingStopped):
            if self.leg is not None and self.leg.direction == "in" and not self.leg.confirmed:
                self._hangup(self.leg)              # CANCEL: the caller gave up
        elif isinstance(ev, msg.LineDialled):
            if self.leg is not None and self.leg.direction == "out":
                self.leg.answer(call_param(msg.Reply(200, "OK")))
        elif isinstance(ev, msg.LineDialFailed):
            if self.leg is not None and self.leg.direction == "out":
                self._hangup(self.leg, DIAL_REPLIES.get(ev.code, msg.DIAL_FAILED))
        elif isinstance(ev, (msg.LineFarEndHangup, msg.LineAnswerFailed)):
            self._hangup(self.leg)
        elif isinstance(ev, msg.ModemFault) and ev.in_call and self.leg is not None:
            # the daemon marks the call failed, then asks us to hang up; never later than this
            leg = self.leg
            self.timers.after(LOST_HANGUP_S, lambda: self._hangup(leg))
            self.emit(msg.GatewayCallLost(message=ev.message))
        self.emit(ev)

    def _offer(self, cid: msg.LineOffer):
        if self.leg is not None:
            return
        number = cid.number
        user = number if number and all(c.isalnum() or c in "+-_.*#" for c in number) else \
            ("anonymous" if cid.absent == "private" else "unknown")
        name = (cid.name or "").replace('"', "'")
        uri = f"sip:{user}@{self.a.bind}:{self.port}"
        acc = Account(self)
        acc.create(account_config(f'"{name}" <{uri}>' if name else uri, self.a.bind), False)
        leg = Leg(self, acc, direction="in")
        leg.caller_acc = acc
        try:
            leg.makeCall(f"sip:{self.a.line}@{self.a.front}", pj.CallOpParam(True))
        except pj.Error as e:
            self.emit(msg.GatewayError(message=f"INVITE to the board: {e.info()}"))
            self.old_accs.append(acc)
            return
        self.leg = leg

    # -- commands --------------------------------------------------------------------
    def do(self, cmd: msg.Message):
        if isinstance(cmd, msg.GatewayQuit):
            self.quit = True
        elif isinstance(cmd, msg.GatewayHangup):
            self._hangup(self.leg)
            self.line.commands.put(("release",))
        elif isinstance(cmd, msg.GatewayTest):
            if self.line.state != "idle" or self.leg is not None:
                self.emit(msg.LineTestResult(error=f"the line is {self.line.state}"))
            else:
                self.line.commands.put(("test", cmd.seconds))
        elif isinstance(cmd, msg.GatewayStatusRequest):
            self.emit(msg.GatewayStatus(line=self.line.state, modem=self.modem,
                                        call=None if self.leg is None else self.leg.direction,
                                        rx=self.line.rx.stats(), tx=self.line.tx.stats(),
                                        seq=cmd.seq))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True, help="the trunk's name")
    ap.add_argument("--device", required=True, help="the modem, e.g. /dev/serial/by-id/...")
    ap.add_argument("--line", required=True, help="the board line it rings")
    ap.add_argument("--front", required=True, help="the board's front, host:port")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--allow", action="append", default=None,
                    help="addresses or networks whose INVITEs are accepted (default: the "
                    "front's host:port alone)")
    ap.add_argument("--profile", default=None, help="conexant, dell, usr, multitech, "
                    "generic (default: from ATI0 / AT+GMI / AT+GMM)")
    ap.add_argument("--country", default=None, help="AT+GCI country (US, GB, DE... or hex)")
    ap.add_argument("--silence-s", type=float, default=30.0)
    ap.add_argument("--tone-s", type=float, default=4.0)
    ap.add_argument("--ring-gone-s", type=float, default=8.0)
    ap.add_argument("--retry-min-s", type=float, default=1.0)
    ap.add_argument("--retry-max-s", type=float, default=60.0)
    ap.add_argument("--log-level", type=int, default=int(os.environ.get("SWITCHBOARD_PJ_LOG", "1")))
    a = ap.parse_args(argv)
    logs.setup(f"modem {a.name}")
    sys.stdout = own_stdout()
    Gateway(a).run()


if __name__ == "__main__":
    main()
