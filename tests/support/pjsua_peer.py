"""A bare PJSUA2 endpoint as a test peer: the far end of a position's call.

    python tests/pjsua_peer.py --call sip:p1@127.0.0.1:PORT --record out.wav --seconds 4
    python tests/pjsua_peer.py --answer --record out.wav --play tone.wav

Calls (or auto-answers), records what it hears with AudioMediaRecorder,
optionally plays a WAV into the call, hangs up after --seconds of media and
prints JSON lines on stdout: ready, media (with the CLOCK_MONOTONIC time the
recorder and player were joined), ended, done (with the RTP packets and
payload bytes received). The recording is complete once "done" is printed
(the recorder is deleted before that).

With --stamped the player and recorder are this script's own bridge ports
(16-bit WAV at the bridge's rate): "done" then carries the CLOCK_MONOTONIC
time of every frame the bridge took from the player and gave the recorder
(`played`, `heard`: [[time, first sample], ...]). A file player starts, and a
recorder's first frame lands, at the bridge's next tick after it is joined,
up to a 20 ms frame after `play_at`/`record_at`: the benchmarks' delays
are exact to the tick only with these stamps.
"""

import argparse
import faulthandler
import json
import os
import sys
import time
import wave

import pjsua2 as pj

from firmware.telephony.pj.support import destroy_port


def stamped_ports():
    """A player and a recorder that stamp each frame with the time the bridge moved it."""

    class Player(pj.AudioMediaPort):
        def __init__(self, path, rate):
            super().__init__()
            with wave.open(path, "rb") as w:
                if (w.getframerate(), w.getsampwidth(), w.getnchannels()) != (rate, 2, 1):
                    raise ValueError(f"--stamped plays 16-bit mono WAV at {rate} Hz: {path}")
                self.pcm = w.readframes(w.getnframes())
            self.pos, self.stamps = 0, []

        def onFrameRequested(self, frame):
            n = frame.size or 640
            data = self.pcm[self.pos:self.pos + n]
            self.stamps.append([time.monotonic(), self.pos // 2])
            self.pos += n
            data += bytes(n - len(data))
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(data)
            frame.size = len(data)

    class Recorder(pj.AudioMediaPort):
        def __init__(self, path, rate):
            super().__init__()
            self.path, self.rate, self.chunks, self.stamps, self.samples = path, rate, [], [], 0

        def onFrameReceived(self, frame):
            if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
                data = bytes(frame.buf)
                self.stamps.append([time.monotonic(), self.samples])
                self.chunks.append(data)
                self.samples += len(data) // 2

        def save(self):
            with wave.open(self.path, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(self.rate)
                w.writeframes(b"".join(self.chunks))

    def create(port, name, rate, ptime_ms):
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.id = pj.PJMEDIA_FORMAT_L16
        fmt.clockRate, fmt.channelCount, fmt.bitsPerSample = rate, 1, 16
        fmt.frameTimeUsec = ptime_ms * 1000
        fmt.avgBps = fmt.maxBps = rate * 16
        port.createPort(name, fmt)
        return port

    return Player, Recorder, create


def main():
    faulthandler.enable()  # a crash in PJSUA2's threads says where, in the peer's stderr
    ap = argparse.ArgumentParser()
    ap.add_argument("--call")
    ap.add_argument("--answer", action="store_true")
    ap.add_argument("--record")
    ap.add_argument("--play")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--idle", type=float, default=30.0, help="give up without a call after this")
    ap.add_argument("--codec", default=None, help="prefer this codec, e.g. PCMU/8000")
    ap.add_argument("--stamped", action="store_true",
                    help="play and record through own ports that stamp every frame")
    args = ap.parse_args()

    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # PJSUA2's C code prints to fd 1

    def emit(event, **kw):
        out.write(json.dumps({"event": event, **kw}) + "\n")

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    if args.codec:
        for c in ep.codecEnum2():
            ep.codecSetPriority(c.codecId, 255 if c.codecId.startswith(args.codec) else 0)
    port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])

    state = {"call": None, "media_at": None, "ended": False}
    media = {}

    class Peer(pj.Call):
        def onCallState(self, prm):
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                state["ended"] = True
                emit("ended", code=info.lastStatusCode)

        def onCallMediaState(self, prm):
            try:
                self.media_state()
            except Exception:
                import traceback
                traceback.print_exc()

        def media_state(self):
            info = self.getInfo()  # keep it: .media is a view into this object
            for mi in info.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE \
                        and state["media_at"] is None:
                    am = self.getAudioMedia(mi.index)
                    state["media_index"] = mi.index
                    t = {}
                    if args.stamped:
                        Player, Recorder, create = stamped_ports()
                        rate, ptime = cfg.medConfig.clockRate, cfg.medConfig.audioFramePtime
                    if args.record and args.stamped:
                        media["rec"] = create(Recorder(args.record, rate), "rec", rate, ptime)
                        am.startTransmit(media["rec"])
                        t["record_at"] = time.monotonic()
                    elif args.record:
                        media["rec"] = pj.AudioMediaRecorder()
                        media["rec"].createRecorder(args.record)
                        am.startTransmit(media["rec"])
                        t["record_at"] = time.monotonic()
                    if args.play and args.stamped:
                        media["player"] = create(Player(args.play, rate), "play", rate, ptime)
                        media["player"].startTransmit(am)
                        t["play_at"] = time.monotonic()
                    elif args.play:
                        media["player"] = pj.AudioMediaPlayer()
                        media["player"].createPlayer(args.play, pj.PJMEDIA_FILE_NO_LOOP)
                        media["player"].startTransmit(am)
                        t["play_at"] = time.monotonic()
                    state["media_at"] = time.monotonic()
                    emit("media", **t)

    class Acc(pj.Account):
        def onIncomingCall(self, prm):
            call = Peer(self, prm.callId)
            state["call"] = call
            op = pj.CallOpParam()
            op.statusCode = 200
            call.answer(op)

    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:peer@127.0.0.1:{port}"
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acc = Acc()
    acc.create(acfg, True)
    emit("ready", port=port, uri=f"sip:peer@127.0.0.1:{port}", pid=os.getpid())

    if args.call:
        state["call"] = Peer(acc)
        try:
            state["call"].makeCall(args.call, pj.CallOpParam(True))
        except pj.Error as exc:
            emit("error", message=exc.info())
            state["ended"] = True
    start = time.monotonic()
    hung = False
    said = {}  # what "done" carries
    while not state["ended"]:
        ep.libHandleEvents(10)
        now = time.monotonic()
        if state["media_at"] and not hung and now - state["media_at"] > args.seconds:
            hung = True
            try:
                rx = state["call"].getStreamStat(state["media_index"]).rtcp.rxStat
                said.update(rx_packets=rx.pkt, rx_bytes=rx.bytes)
            except pj.Error:  # the other end hung up first
                pass
            try:
                state["call"].hangup(pj.CallOpParam(True))
            except pj.Error:  # the other end hung up first
                pass
        if state["media_at"] is None and now - start > args.idle:
            emit("error", message="no call")
            break
    for _ in range(20):
        ep.libHandleEvents(10)
    if args.stamped:
        if "player" in media:
            said["played"] = media["player"].stamps
        if "rec" in media:
            media["rec"].save()
            said["heard"] = media["rec"].stamps
    # explicit order: media players/recorders, the call, the account, then the library
    if args.stamped:
        for port in media.values():
            destroy_port(port)  # our own ports: no callback may be in flight as they go
    media.clear()
    state["call"] = None
    del acc
    ep.libDestroy()
    emit("done", **said)


if __name__ == "__main__":
    main()
