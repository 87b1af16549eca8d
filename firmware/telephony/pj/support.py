"""Small pieces every PJSUA2 process here needs: the worker, the test peer, a position,
the modem gateway."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time

from firmware.telephony import protocol


# The codecs a board's own legs prefer (worker <-> position on loopback, and what a worker
# offers a trunk): G.722 is wideband for little CPU; speex, PJSUA2's own first choice, costs
# more CPU and, through the board, 23 ms more delay caller -> earpiece (README, Headsets).
PREFERRED_CODECS = ("G722/16000", "PCMU/8000", "PCMA/8000")


def prefer_codecs(ep, wanted=PREFERRED_CODECS) -> list[str]:
    """Put the `wanted` codecs first, in order; the others stay on, below them.

    An answerer takes the offer's order, so what the offering side prefers is what a
    leg gets. Returns the codec ids raised; a name this PJSUA2 lacks is a LookupError
    that lists those it has."""
    codecs = ep.codecEnum2()
    known = [c.codecId for c in codecs]
    for want in wanted:
        if not any(k.lower().startswith(want.lower()) for k in known):
            raise LookupError(f"{want!r}: no such codec; this PJSUA2 has {', '.join(known)}")
    raised = []
    for codec in codecs:
        cid = codec.codecId
        rank = next((i for i, w in enumerate(wanted) if cid.lower().startswith(w.lower())), None)
        if rank is not None:
            ep.codecSetPriority(cid, 254 - rank)
            raised.append(cid)
        elif codec.priority:  # 0 is off: leave it off
            ep.codecSetPriority(cid, min(codec.priority, 100))
    return raised


def destroy_port(port) -> None:
    """Delete an `AudioMediaPort` of ours now, while its Python object is still alive.

    The bridge's clock thread calls a port every tick, connected or not. Dropping the last
    reference would free the Python object first and only then delete the C++ port (with
    the GIL released): a callback already on its way lands in a half-freed object, and the
    process dies (seen in about one teardown in 30). Deleted this way, PJSUA2's
    `~AudioMediaPort` waits for a callback in flight and stops the next ones first; the
    Python object is left disowned, to be freed whenever. Run it on the PJSUA2 thread.
    """
    if port is not None and getattr(port, "thisown", False):
        type(port).__swig_destroy__(port)


def own_stdout():
    """Keep stdout for our JSON lines: PJSUA2 (and ALSA, JACK) print to fd 1 from C.

    Returns a line-buffered file on a copy of the old stdout; fd 1 then goes to stderr.
    """
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)


def serve(proc, stdin=None, stdout=None) -> None:
    """Run a PJSUA2 child process (the worker, the modem gateway): ``proc._reader(stdin)``
    on a thread of its own, ``proc.events`` written to ``stdout`` from another (so no
    callback ever blocks on a pipe), then ``proc.start()`` and ``proc.step()`` on this
    thread, which owns PJSUA2, until ``proc.quit``; ``proc.shutdown()`` whatever happens,
    then the last events are written out."""
    threading.Thread(target=proc._reader, args=(stdin or sys.stdin,), daemon=True).start()
    writer = threading.Thread(target=write_events, args=(proc.events, stdout or sys.stdout),
                              daemon=True)
    writer.start()
    try:
        proc.start()
        while not proc.quit:
            proc.step()
    finally:
        proc.shutdown()
        proc.events.put(None)
        writer.join(timeout=2)


def loop_endpoint(user_agent: str, *, max_calls: int, log_level: int, bind: str, port: int,
                  clock_rate: int | None = None):
    """A started Endpoint that the calling thread owns (``threadCnt = 0``,
    ``mainThreadOnly``: its own ``libHandleEvents`` loop runs everything), PJSIP's log
    through ``logging``, the bridge on the null sound device, one UDP transport on
    ``bind:port`` (0: any). Returns (endpoint, log writer: keep it referenced, transport
    id, the port bound)."""
    import pjsua2 as pj

    from firmware.telephony.pj.legs import PjsipLog
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.maxCalls = max_calls
    cfg.uaConfig.userAgent = user_agent
    cfg.logConfig.level = cfg.logConfig.consoleLevel = log_level
    writer = PjsipLog()
    cfg.logConfig.writer = writer
    cfg.medConfig.noVad = True
    if clock_rate:
        cfg.medConfig.clockRate = cfg.medConfig.sndClockRate = clock_rate
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    tc = pj.TransportConfig()
    tc.boundAddress = bind
    tc.port = port
    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
    bound = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
    ep.libStart()
    return ep, writer, tid, bound


def hang_up_all(ep, pending, step=None, seconds: float = 2.0) -> None:
    """Hang up every call of ``ep`` and run its loop until ``pending()`` is false (the calls
    have disconnected; at most ``seconds``), calling ``step()`` each turn (to reap them)."""
    import pjsua2 as pj
    try:
        ep.hangupAllCalls()
    except pj.Error:
        pass
    deadline = time.monotonic() + seconds
    while pending() and time.monotonic() < deadline:
        ep.libHandleEvents(10)
        if step is not None:
            step()


def drain(q: queue.Queue, most: int = 100):
    """What is waiting on ``q`` now, at most ``most`` items (the loop must get back to SIP)."""
    for _ in range(most):
        try:
            yield q.get_nowait()
        except queue.Empty:
            return


class Timers:
    """Functions to call later, run by the loop that owns PJSUA2 (never in a callback)."""

    def __init__(self):
        self._due: list = []             # (when, fn)

    def after(self, seconds: float, fn) -> None:
        self._due.append((time.monotonic() + seconds, fn))

    def run(self) -> None:
        now = time.monotonic()
        due = [t for t in self._due if t[0] <= now]
        if due:
            self._due = [t for t in self._due if t[0] > now]
            for _, fn in due:
                fn()


def read_commands(stream, table: dict, commands: queue.Queue, quit_msg, on_error) -> None:
    """A child's stdin reader: each line decoded against ``table`` onto ``commands``
    (for the thread that owns PJSUA2); a line that is not a command goes to
    ``on_error(ProtocolError)``, never dropped. End of stdin (the daemon is gone) is
    ``quit_msg``."""
    for line in stream:
        if not line.strip():
            continue
        try:
            commands.put(protocol.decode(table, line))
        except protocol.ProtocolError as e:
            on_error(e)
    commands.put(quit_msg)


def write_events(events: queue.Queue, stream) -> None:
    """A child's stdout writer: each message taken off ``events`` as one JSON line, until
    ``None`` (so that no PJSUA2 callback ever blocks on a full pipe)."""
    while True:
        item = events.get()
        if item is None:
            return
        stream.write(protocol.encode(item) + "\n")
        stream.flush()


def tone_generator(freq: int, on_ms: int, off_ms: int, loop: bool):
    """A started 8 kHz ToneGenerator playing ``freq`` Hz; keep it referenced while used."""
    import pjsua2 as pj
    gen = pj.ToneGenerator()
    gen.createToneGenerator(8000, 1)
    play_tone(gen, freq, on_ms, off_ms, loop)
    return gen


def play_tone(gen, freq: int, on_ms: int, off_ms: int, loop: bool):
    """(Re)start ``gen`` on one tone: ``on_ms`` of ``freq`` Hz, then ``off_ms`` of silence."""
    import pjsua2 as pj
    td = pj.ToneDesc()
    td.freq1, td.freq2, td.on_msec, td.off_msec = freq, 0, on_ms, off_ms
    tv = pj.ToneDescVector()
    tv.append(td)
    gen.play(tv, loop)
