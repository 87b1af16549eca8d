"""A bare PJSUA2 auto-answer endpoint: a stand-in position, a customer's phone, a baseline.

It answers every call (after ``--answer-after`` seconds, 180 Ringing till
then), optionally plays a tone into the call and records what it hears to a
WAV file per call, and reports on stdout as JSON lines (``ready``,
``incoming``, ``confirmed``, ``ended``; one ``{"event": ...}`` object a line). It owns PJSUA2 the same way the
workers do: one thread, ``libHandleEvents`` in a loop, calls dropped outside
callbacks, all before ``libDestroy``. Reading ``quit`` on stdin stops it.

The benchmark measures it beside the board as the baseline; tests use it as
an operator position's endpoint and as a customer's phone.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from pathlib import Path

import pjsua2 as pj

from firmware.telephony.pj.support import own_stdout, tone_generator


class PeerCall(pj.Call):
    def __init__(self, peer, acc, call_id):
        super().__init__(acc, call_id)
        self.peer = peer
        self.n = peer.count
        self.dead = False
        self.recorder = None

    def onCallState(self, prm):
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.peer.emit("confirmed", n=self.n)
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.dead:
            self.dead = True
            self.peer.dead.append(self)
            self.peer.emit("ended", n=self.n, code=ci.lastStatusCode)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                am = self.getAudioMedia(i)
                if self.peer.tone is not None:
                    self.peer.tone.startTransmit(am)
                if self.peer.record_dir and self.recorder is None:
                    self.recorder = pj.AudioMediaRecorder()
                    self.recorder.createRecorder(str(Path(self.peer.record_dir) / f"call{self.n}.wav"))
                    am.startTransmit(self.recorder)
                self.peer.emit("media", n=self.n)


class PeerAccount(pj.Account):
    def __init__(self, peer):
        super().__init__()
        self.peer = peer

    def onIncomingCall(self, prm):
        self.peer.count += 1
        call = PeerCall(self.peer, self, prm.callId)
        self.peer.calls.append(call)
        p = pj.CallOpParam(True)
        p.statusCode = 180 if self.peer.answer_after > 0 else 200
        call.answer(p)
        self.peer.emit("incoming", n=call.n, remote=call.getInfo().remoteUri)
        if self.peer.answer_after > 0:
            self.peer.later.append((time.time() + self.peer.answer_after, call))


class Peer:
    def __init__(self, port=0, tone_hz=0, record_dir=None, answer_after=0.0, log_level=0):
        self.port, self.tone_hz, self.record_dir = port, tone_hz, record_dir
        self.answer_after, self.log_level = answer_after, log_level
        self.calls, self.dead, self.later = [], [], []
        self.count = 0
        self.tone = None
        self.out = queue.Queue()
        self.cmds = queue.Queue()

    def emit(self, ev, **kw):
        kw.update(event=ev, t=time.time())
        self.out.put(kw)

    def run(self):
        def writer():
            while (item := self.out.get()) is not None:
                sys.stdout.write(json.dumps(item) + "\n")
                sys.stdout.flush()

        def reader():
            for line in sys.stdin:
                self.cmds.put(line.strip())
            self.cmds.put("quit")

        wt = threading.Thread(target=writer, daemon=True)
        wt.start()
        threading.Thread(target=reader, daemon=True).start()
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.logConfig.level = cfg.logConfig.consoleLevel = self.log_level
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        tc = pj.TransportConfig()
        tc.boundAddress = "127.0.0.1"
        tc.port = self.port
        tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        ep.libStart()
        ac = pj.AccountConfig()
        ac.idUri = f"sip:peer@127.0.0.1:{port}"
        ac.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        ac.mediaConfig.transportConfig.port = 0
        acc = PeerAccount(self)
        acc.create(ac, True)
        if self.tone_hz:
            self.tone = tone_generator(self.tone_hz, 30000, 0, loop=True)
        self.emit("ready", port=port, uri=f"sip:peer@127.0.0.1:{port}")
        quit_ = False
        while not quit_:
            ep.libHandleEvents(10)
            now = time.time()
            for due, call in list(self.later):
                if due <= now:
                    self.later.remove((due, call))
                    if not call.dead:
                        p = pj.CallOpParam(True)
                        p.statusCode = 200
                        call.answer(p)
            while self.dead:
                call = self.dead.pop()
                call.recorder = None        # closes the WAV
                self.calls.remove(call)
            try:
                cmd = self.cmds.get_nowait()
            except queue.Empty:
                continue
            if cmd == "quit":
                quit_ = True
            elif cmd == "hangup":
                ep.hangupAllCalls()
        ep.hangupAllCalls()
        deadline = time.time() + 2
        while any(not c.dead for c in self.calls) and time.time() < deadline:
            ep.libHandleEvents(10)
        for c in self.calls:
            c.recorder = None
        self.calls.clear()
        self.dead.clear()
        self.tone = None
        acc.shutdown()
        del acc
        ep.libDestroy()
        self.out.put(None)
        wt.join(timeout=2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tone", type=int, default=0, help="play a tone of this many Hz into calls")
    ap.add_argument("--record-dir", help="record each call's received audio to callN.wav here")
    ap.add_argument("--answer-after", type=float, default=0.0)
    ap.add_argument("--log-level", type=int, default=0)
    a = ap.parse_args(argv)
    # Our events own stdout; anything the C library prints goes to stderr instead.
    sys.stdout = own_stdout()
    Peer(a.port, a.tone, a.record_dir, a.answer_after, a.log_level).run()


if __name__ == "__main__":
    main()
