"""A simulated voice modem on a pseudo-terminal pair, with an analog line behind it.

The driver opens the slave side by its path (or a symlink standing in for
``/dev/serial/by-id/...``) exactly as it opens a USB modem; this object answers on the
master side in the vendor's dialect, paced at 8000 bytes a second (times ``clock``, e.g.
1.001 for a modem whose crystal runs 0.1 % fast) once in full-duplex voice:

- profiles ``conexant`` (mu-law, ``DLE R`` rings in ``+FCLASS=8``, ``+VTR=?`` ERROR),
  ``dell`` (a Conexant that sends caller ID only after ``AT!4886=00``, named by ``+GMM``),
  ``usr`` (8-bit linear, a spurious ``DLE H`` after ``+VLS=1``), ``multitech`` (no hang-up
  codes), each with its own ``ATI0`` / ``AT+GMI``;
- ``stuck=True``: it starts in full duplex, streaming, deaf to AT until ``DLE ^``;
- the line: ``ring()`` (with or without a caller ID block, NAME or not), what the far end
  sends (``far_end``: a tone, silence, busy or dial tone), ``hang_up()`` (busy tone or
  silence, with the profile's DLE codes), ``dial_result`` for calls out; what the host sent
  down the line is kept in ``heard`` (16-bit PCM, with arrival times);
- ``unplug()`` closes the pty (the device disappears mid-call), ``plug()`` makes a new one
  behind the same link.

Run ``python -m firmware.telephony.modem.sim --link /tmp/modem0`` to try the gateway with
one: it prints the device and takes ``ring NUMBER [NAME]``, ``hangup busy|silence``,
``unplug``, ``plug``, ``quit`` on stdin.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import select
import sys
import threading
import time
import tty
from pathlib import Path

from firmware.telephony.modem import codec
from firmware.telephony.modem.dle import DLE, ETX

IDENTITY = {
    "conexant": ("56000", "CONEXANT"),
    "dell": ("56000", "CONEXANT"),          # a Conexant inside: only +GMM tells them apart
    "usr": ("5601", "U.S. Robotics"),
    "multitech": ("MT9234MU", "Multi-Tech Systems"),
    "generic": ("336", "Generic V.253 modem"),
}
#: ``AT+GMM`` answers (a modem without one answers ERROR).
MODEL = {"conexant": "CX93001-EIS_V0.2002-V92", "dell": "Dell RD02-D400 USB Modem",
         "usr": "USR5637"}
VSM = {
    "conexant": ['0,"SIGNED PCM",8,0,(7200,8000,11025),(0),(0)',
                 '1,"UNSIGNED PCM",8,0,(7200,8000,11025),(0),(0)',
                 '129,"16-BIT LINEAR",16,0,(7200,8000,11025),(0),(0)',
                 '130,"8-BIT ALAW",8,0,(7200,8000,11025),(0),(0)',
                 '131,"8-BIT ULAW",8,0,(7200,8000,11025),(0),(0)'],
    "usr": ['128,"8-BIT LINEAR",8,0,(7200,8000,11025),(0),(0)',
            '129,"16-BIT LINEAR",16,0,(7200,8000,11025),(0),(0)'],
    "multitech": ['0,"SIGNED PCM",8,0,(8000),(0),(0)',
                  '131,"G.711U",8,0,(8000),(0),(0)'],
    "generic": ['131,"ULAW",8,0,(8000),(0),(0)'],
}
CODES = {"conexant": {0: "s8", 1: "u8", 129: "s16", 130: "alaw", 131: "ulaw"},
         "dell": {0: "s8", 1: "u8", 129: "s16", 130: "alaw", 131: "ulaw"},
         "usr": {128: "u8", 129: "s16"}, "multitech": {0: "s8", 131: "ulaw"},
         "generic": {131: "ulaw"}}
HANGUP_CODES = {"conexant": True, "dell": True, "usr": True, "multitech": False, "generic": True}
VSM["dell"] = VSM["conexant"]
CONEXANT = ("conexant", "dell")
DIAL_MODE = {"conexant": "semicolon", "dell": "semicolon", "usr": "voice", "multitech": "voice",
             "generic": "voice"}


def tone_source(*freqs, amp=8000, on_s=None, off_s=None):
    """A far end sending ``freqs`` (summed), steady or in an on/off cadence."""
    def gen(i0, n):
        out = []
        for i in range(i0, i0 + n):
            t = i / 8000.0
            if on_s is not None and (t % (on_s + off_s)) >= on_s:
                out.append(0)
                continue
            out.append(int(sum(amp / len(freqs) * math.sin(2 * math.pi * f * t) for f in freqs)))
        return out
    return gen


def line_noise(amp=6):
    """An idle analog line: not digital zero, a little hiss."""
    rnd = random.Random(7)
    return lambda i0, n: [rnd.randint(-amp, amp) for _ in range(n)]


BUSY = tone_source(480, 620, on_s=0.5, off_s=0.5)
DIAL_TONE = tone_source(350, 440)


class SimModem:
    def __init__(self, profile="conexant", *, link=None, clock=1.0, stuck=False,
                 chunk=80):
        self.profile = profile
        self.link = Path(link) if link else None
        self.clock = clock                 # the modem's sample clock against ours
        self.chunk = chunk                 # bytes per write while streaming (10 ms)
        self.lock = threading.RLock()
        self.echo = True
        self.fclass = 0
        self.fmt = "ulaw"
        self.off_hook = False
        self.streaming = False
        self.cid_on = False
        self.source = line_noise()
        self.answer_source = line_noise()   # what a call sends once answered (or dialled)
        self.heard: list[tuple[float, bytes]] = []   # (arrival, 16-bit PCM) from the host
        self.sent: list[tuple[float, int, int]] = []  # (write time, first sample, samples) to it
        self.commands: list[str] = []
        self.dialled: list[str] = []
        self.vts: list[str] = []           # digits sent with AT+VTS, one entry a command
        self.dial_result = "VCON"
        self.timers: list[tuple[float, object]] = []
        self.ringing = False
        self._ring_gen = 0
        self.rings_sent = 0
        self._cid_block = None
        self.cid_blocks_sent = 0
        self.rang_at: list[float] = []
        self.cid_at: float | None = None
        self.dell_cid_unlocked = False     # Dell RD02-D400: AT!4886=00 seen since power-on
        self.events_out: list[str] = []    # DLE codes to send in the stream
        self.plugged = False
        self._inbuf = b""
        self._host_dle = False
        self._quit = False
        self._stream_t0 = 0.0
        self._sent = 0
        self._sample = 0
        self.plug()
        if stuck:
            self._start_stream()
        self._thread = threading.Thread(target=self._run, name="sim-modem", daemon=True)
        self._thread.start()

    # -- the device ---------------------------------------------------------
    def plug(self):
        with self.lock:
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave)          # no echo or line editing in the pty itself
            os.set_blocking(self.master, False)
            self.tty = os.ttyname(self.slave)
            if self.link is not None:
                tmp = self.link.with_name(self.link.name + ".new")
                if tmp.is_symlink() or tmp.exists():
                    tmp.unlink()
                tmp.symlink_to(self.tty)
                os.replace(tmp, self.link)
            self.plugged = True
            self.echo, self.fclass, self.off_hook, self.streaming = True, 0, False, False
            self.cid_on = self.dell_cid_unlocked = False      # powered up afresh
            self._inbuf = b""

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else self.tty

    def unplug(self):
        """The USB cable pulled: the device is gone, mid-call or not."""
        with self.lock:
            if not self.plugged:
                return
            self.plugged = False
            self.streaming = False
            self.ringing = False
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if self.link is not None and self.link.is_symlink():
                self.link.unlink()

    def stop(self):
        self._quit = True
        self._thread.join(timeout=2)
        self.unplug()

    # -- the line -----------------------------------------------------------
    def ring(self, number=None, name=None, *, cid=True, rings=8, period=1.0, order=None,
             spaces=True, date="1130", time_="0915", source=None):
        """A call comes in: RING every ``period`` s, the caller ID block after the first
        (``cid="later"``: only when ``send_caller_id()`` says; ``cid=False``: never). A
        modem whose caller ID is off (not switched on, or a Dell RD02-D400 before
        ``AT!4886=00``) passes the rings but not the block."""
        with self.lock:
            self._ring_gen = gen = self._ring_gen + 1   # an earlier call's ring timers stop
            self.ringing = True
            self.rings_sent = self.cid_blocks_sent = 0
            self.rang_at, self.cid_at = [], None        # when each RING, the block, was written
            self.answer_source = source or tone_source(1000)
            now = time.monotonic()
            for k in range(rings):
                self.timers.append((now + k * period, lambda: self._ring_gen == gen and self._ring_once()))
            self.timers.append((now + rings * period, lambda: self._ring_gen == gen and self._give_up()))
            if cid:
                eq = " = " if spaces else "="
                fields = {"DATE": date, "TIME": time_, "NMBR": number or "O"}
                if name:
                    fields["NAME"] = name
                keys = order or list(fields)
                block = "".join(f"\r\n{k}{eq}{fields[k]}" for k in keys if k in fields) + "\r\n"
                if cid == "later":
                    self._cid_block = block
                else:
                    self.timers.append((now + period * 0.4, lambda: self._caller_id(block)))

    def send_caller_id(self):
        """The caller ID block of the call ringing now (rung with ``cid="later"``), now."""
        with self.lock:
            block, self._cid_block = self._cid_block, None
            if block and self.ringing:
                self._caller_id(block)

    def _caller_id(self, block):
        if self.cid_on and (self.profile != "dell" or self.dell_cid_unlocked):
            self.cid_blocks_sent += 1
            self.cid_at = time.monotonic()
            self._send_text(block)

    def _ring_once(self):
        if not self.ringing:
            return
        self.rings_sent += 1
        self.rang_at.append(time.monotonic())
        if self.fclass == 8 and self.profile in CONEXANT:
            self._send(bytes((DLE, ord("R"))))
        else:
            self._send_text("\r\nRING\r\n")

    def _give_up(self):
        self.ringing = False

    def far_end(self, source):
        with self.lock:
            self.source = source

    def hang_up(self, how="busy"):
        """The far end hangs up: the exchange sends busy tone, or the line just goes quiet."""
        with self.lock:
            if how == "busy":
                self.source = BUSY
                if HANGUP_CODES[self.profile]:
                    self.timers.append((time.monotonic() + 0.8, lambda: self._event("b")))
            elif how == "loop":
                self.source = line_noise()
                if HANGUP_CODES[self.profile]:
                    self._event("l")
            else:
                self.source = line_noise()

    def _event(self, ch):
        with self.lock:
            if self.streaming:
                self.events_out.append(ch)

    def heard_pcm(self, since=0.0) -> bytes:
        with self.lock:
            return b"".join(p for t, p in self.heard if t >= since)

    # -- the modem's side of the serial line --------------------------------
    def _send(self, data: bytes):
        if not self.plugged:
            return
        try:
            os.write(self.master, data)
        except (BlockingIOError, OSError):
            pass                            # nobody reading: a real modem overruns too

    def _send_text(self, text: str):
        self._send(text.encode("ascii"))

    def _ok(self, *lines):
        self._send_text("".join(f"\r\n{ln}" for ln in lines) + "\r\nOK\r\n")

    def _error(self):
        self._send_text("\r\nERROR\r\n")

    def _start_stream(self):
        self.streaming = True
        self._stream_t0 = time.monotonic()
        self._sent = 0
        self._host_dle = False

    def _run(self):
        while not self._quit:
            with self.lock:
                fd = self.master if self.plugged else None
            if fd is None:
                time.sleep(0.01)
                self._timers()
                continue
            try:
                r, _, _ = select.select([fd], [], [], 0.005)
            except (OSError, ValueError):
                r = []
            with self.lock:
                if not self.plugged:
                    continue
                if r:
                    try:
                        data = os.read(fd, 4096)
                    except (BlockingIOError, OSError):
                        data = b""
                    if data:
                        if self.streaming:
                            self._from_host_stream(data)
                        else:
                            self._from_host_text(data)
                self._timers()
                if self.streaming:
                    self._pace()

    def _timers(self):
        now = time.monotonic()
        with self.lock:
            due = [t for t in self.timers if t[0] <= now]
            self.timers = [t for t in self.timers if t[0] > now]
        for _, fn in sorted(due, key=lambda t: t[0]):
            fn()

    def _pace(self):
        due = int((time.monotonic() - self._stream_t0) * 8000 * self.clock) - self._sent
        if due < self.chunk:
            return
        n = min(due, 8 * self.chunk)
        bps = codec.BYTES_PER_SAMPLE[self.fmt]
        samples = self.source(self._sample, n // bps)
        self.sent.append((time.monotonic(), self._sample, n // bps))
        if len(self.sent) > 200000:
            del self.sent[:100000]
        self._sample += n // bps
        pcm = b"".join(int(max(-32768, min(32767, s))).to_bytes(2, "little", signed=True)
                       for s in samples)
        out = codec.encode(self.fmt, pcm).replace(b"\x10", b"\x10\x10")
        for ch in self.events_out:
            out += bytes((DLE, ord(ch)))
        self.events_out = []
        self._sent += n
        self._send(out)

    def _from_host_stream(self, data: bytes):
        audio = bytearray()
        for b in data:
            if self._host_dle:
                self._host_dle = False
                if b == DLE:
                    audio.append(DLE)
                elif b == ord("^") or b == ord("!"):   # leave duplex (^), or abort (!)
                    self.streaming = False
                    self._send(bytes((DLE, ETX)) + b"\r\nOK\r\n")
                    self._inbuf = b""
                    break
                continue                     # DLE ETX and others: nothing to play
            if b == DLE:
                self._host_dle = True
            else:
                audio.append(b)
        if audio and self.fmt:
            bps = codec.BYTES_PER_SAMPLE[self.fmt]
            audio = bytes(audio[:len(audio) // bps * bps])
            self.heard.append((time.monotonic(), codec.decode(self.fmt, audio)))

    def _from_host_text(self, data: bytes):
        self._inbuf += data
        while b"\r" in self._inbuf:
            line, self._inbuf = self._inbuf.split(b"\r", 1)
            line = bytes(b for b in line if 32 <= b < 127).decode("ascii").strip()
            if not line:
                continue
            if self.echo:
                self._send_text(line + "\r")
            if line.upper().startswith("AT"):
                self.commands.append(line)
                self._at(line[2:])
                if self.streaming:            # +VTR: the rest is stream data
                    rest, self._inbuf = self._inbuf, b""
                    if rest:
                        self._from_host_stream(rest)
                    return

    def _at(self, body: str):
        p = self.profile
        up = body.upper()
        if up in ("", "E0", "E1", "V1", "M0", "M1", "L0"):
            if up == "E0":
                self.echo = False
            elif up == "E1":
                self.echo = True
            return self._ok()
        if up == "Z":
            self.echo, self.fclass, self.off_hook, self.cid_on = True, 0, False, False
            return self._ok()
        if up == "H" or up == "H0":
            self.off_hook = False
            return self._ok()
        if up == "I0":
            return self._ok(IDENTITY[p][0])
        if up.startswith("D"):
            # Conexant: ATD<number>; in data mode (OK once dialled, still off-hook); the
            # others: ATD in voice mode, VCON. The other way fails as a data call would.
            semicolon = body.endswith(";")
            number = body[1:].lstrip("TtPp").rstrip(";")
            if (DIAL_MODE[p] == "semicolon") != semicolon or \
                    self.fclass != (0 if semicolon else 8):
                return self._send_text("\r\nNO CARRIER\r\n")
            self.dialled.append(number)
            self.off_hook = True
            result = self.dial_result
            self.source = self.answer_source if result == "VCON" else line_noise()
            if result != "VCON":
                self.off_hook = False
            elif semicolon:
                result = "OK"
            self.timers.append((time.monotonic() + 0.3, lambda: self._send_text(f"\r\n{result}\r\n")))
            return
        replies = []
        for part in body.split(";"):
            r = self._extended(part.strip(), replies)
            if r is False:
                return self._error()
            if r == "CONNECT":
                self._send_text("".join(f"\r\n{x}" for x in replies) + "\r\nCONNECT\r\n")
                self._start_stream()
                return
        self._ok(*replies)
        if body.upper().startswith("+VLS=1") and p == "usr":
            self._send(bytes((DLE, ord("H"))))

    def _extended(self, cmd, replies):
        p = self.profile
        up = cmd.upper()
        if up == "+GMI":
            replies.append(IDENTITY[p][1])
        elif up.startswith("+GCI="):
            pass
        elif up.startswith("+VCID="):
            self.cid_on = up.endswith("1")
        elif up == "+GMM":
            if p not in MODEL:
                return False
            replies.append(MODEL[p])
        elif up.startswith("!4886="):         # Conexant's caller ID switch (the Dell's is off)
            if p not in CONEXANT:
                return False
            if p == "dell":
                self.dell_cid_unlocked = up.endswith("=00")
        elif up.startswith("-"):
            if p not in CONEXANT:
                return False
        elif up in ("+FCLASS=0", "+FCLASS=8"):
            self.fclass = int(up[-1])
        elif up == "+VSM=?":
            replies.extend(VSM[p])
        elif up.startswith("+VSM="):
            code = int(up[5:].split(",")[0])
            if code not in CODES[p]:
                return False
            self.fmt = CODES[p][code]
        elif up.startswith("+VSD=") or up.startswith("+VIT="):
            pass
        elif up.startswith("+VTS="):
            if self.fclass != 8 or not self.off_hook or self.streaming:
                return False                   # voice mode, off-hook, out of duplex
            self.vts.append("".join(d for d in up[5:] if d in "0123456789*#ABCD"))
        elif up == "+VLS=1":
            if self.fclass != 8:
                return False
            self.off_hook = True
            if self.ringing:                   # answering the call that rings
                self.ringing = False
                self.source = self.answer_source
            elif not self.dialled or self.source is not self.answer_source:
                self.source = DIAL_TONE        # nobody on the line: the exchange's dial tone
                if HANGUP_CODES[p]:
                    self.timers.append((time.monotonic() + 0.5, lambda: self._event("d")))
        elif up == "+VLS=0":
            self.off_hook = False
        elif up == "+VTR=?":
            if p in CONEXANT:
                return False
            replies.append("(0)")
        elif up == "+VTR":
            if self.fclass != 8 or not self.off_hook:
                return False
            return "CONNECT"
        else:
            return False
        return True


def main(argv=None):
    ap = argparse.ArgumentParser(description="A simulated voice modem on a pseudo-terminal.")
    ap.add_argument("--profile", default="conexant", choices=sorted(IDENTITY))
    ap.add_argument("--link", help="a symlink to the device (stands in for /dev/serial/by-id/...)")
    ap.add_argument("--clock", type=float, default=1.0, help="the modem's clock (1.001: 0.1 %% fast)")
    a = ap.parse_args(argv)
    sim = SimModem(a.profile, link=a.link, clock=a.clock)
    print(f"simulated {a.profile} modem on {sim.path}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "ring":
            sim.ring(words[1] if len(words) > 1 else None, " ".join(words[2:]) or None,
                     period=6.0, rings=10)
        elif words[0] == "hangup":
            sim.hang_up(words[1] if len(words) > 1 else "busy")
        elif words[0] == "unplug":
            sim.unplug()
        elif words[0] == "plug":
            sim.plug()
        elif words[0] == "quit":
            break
        print("ok", flush=True)
    sim.stop()


if __name__ == "__main__":
    main()
