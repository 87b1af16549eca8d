"""Small pieces every PJSUA2 process here needs: the worker, the test peer, a position,
the modem gateway."""

from __future__ import annotations

import os
import queue
import sys

from firmware.telephony import protocol


def own_stdout():
    """Keep stdout for our JSON lines: PJSUA2 (and ALSA, JACK) print to fd 1 from C.

    Returns a line-buffered file on a copy of the old stdout; fd 1 then goes to stderr.
    """
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)


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
