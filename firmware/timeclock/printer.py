"""The slip printer: ESC/POS over a serial port, with a queue that survives anything.

Any ESC/POS receipt or slip printer on a serial port (a TTL printer on the
Pi's UART, or USB-serial): port, speed and paper width come from the site
file. Before each slip the printer is asked how it is (DLE EOT 1, and DLE EOT
2 and 4 when it says it is offline): no answer, offline, cover open or out of
paper is a fault (``on_fault(message)``, which lights the fault lamp), and
the slips wait. When it answers well again they print in slip order.

Nothing is lost or printed twice: the stamps themselves are the queue (they
are durable in the time clock's journals before they reach the printer), and
``printed.json`` holds the last slip printed, rewritten by write-new-then-
rename after each slip. A slip cut short by the paper running out is printed
again in full, marked REPRINT.

The ESC/POS subset used here is a dozen bytes (ESC @, ESC a, ESC E, ESC d,
GS V, DLE EOT), so it is written out rather than taken from python-escpos,
which would bring Pillow, pyusb, qrcode and more onto the Pi for none of them.
"""

from __future__ import annotations

import collections
import json
import termios
import textwrap
import threading
import time
from pathlib import Path

import serial

from firmware.errors import ConfigError, SwitchboardError
from firmware.records.files import atomic_write

ESC, GS, DLE, EOT = b"\x1b", b"\x1d", b"\x10", b"\x04"
INIT = ESC + b"@"
BOLD_ON, BOLD_OFF = ESC + b"E\x01", ESC + b"E\x00"
CENTER, LEFT = ESC + b"a\x01", ESC + b"a\x00"
CUT = GS + b"V\x01"                       # partial cut
STATUS = {n: DLE + EOT + bytes([n]) for n in (1, 2, 4)}

#: Characters per line for the usual paper widths (font A).
COLUMNS = {58: 32, 76: 40, 80: 48}
WHAT_TITLE = {"message": "MESSAGE", "read-back": "READ BACK", "answer": "ANSWERED",
              "stamp": "STAMP"}


class PrinterFault(SwitchboardError, OSError):
    """The printer cannot print now (offline, unplugged, out of paper, not answering).

    ``stopped`` is True when the printer itself says it stopped (offline, out
    of paper): a slip sent just before may be cut short.
    """

    def __init__(self, message, stopped=False):
        super().__init__(message)
        self.stopped = stopped


def printer_config(cfg: dict, path="site file", keypath="printer") -> dict:
    """Check the site file's [printer] table: port, speed, paper width, what to print."""
    allowed = {"port", "speed", "paper_mm", "columns", "print", "timeout_s", "retry_s"}
    for k in cfg:
        if k not in allowed:
            raise ConfigError(path, f"{keypath}.{k}", cfg[k], "one of " + ", ".join(sorted(allowed)))
    if not isinstance(cfg.get("port"), str) or not cfg["port"]:
        raise ConfigError(path, f"{keypath}.port", cfg.get("port"),
                          "the serial port's path (/dev/serial0, /dev/ttyUSB0)")
    speed = cfg.get("speed", 9600)
    if speed not in serial.Serial.BAUDRATES or speed < 1200:
        raise ConfigError(path, f"{keypath}.speed", speed, "a serial speed: 9600, 19200, 38400, "
                          "57600 or 115200 (as set on the printer's self-test slip)")
    paper = cfg.get("paper_mm", 58)
    if paper not in COLUMNS:
        raise ConfigError(path, f"{keypath}.paper_mm", paper, "58, 76 or 80")
    cols = cfg.get("columns", COLUMNS[paper])
    if not isinstance(cols, int) or not 16 <= cols <= 80:
        raise ConfigError(path, f"{keypath}.columns", cols, "characters per line, 16 to 80")
    kinds = cfg.get("print", ["message", "read-back", "stamp"])
    if not isinstance(kinds, list) or not set(kinds) <= set(WHAT_TITLE):
        raise ConfigError(path, f"{keypath}.print", kinds,
                          "a list of: " + ", ".join(WHAT_TITLE))
    out = {"port": cfg["port"], "speed": speed, "columns": cols, "print": kinds}
    for k, default in (("timeout_s", 0.5), ("retry_s", 3.0)):
        v = cfg.get(k, default)
        if not isinstance(v, (int, float)) or not 0.05 <= v <= 60:
            raise ConfigError(path, f"{keypath}.{k}", v, "seconds, 0.05 to 60")
        out[k] = float(v)
    return out


def render_slip(stamp: dict, columns: int = 32, customer_name: str | None = None,
                reprint: bool = False) -> bytes:
    """One stamp as ESC/POS bytes: a headed, wrapped, cut slip."""
    def enc(s):
        return s.encode("cp437", errors="replace")

    t = stamp["time"]
    lines = [f"{t[:10]}  {t[11:19]}"]
    if stamp.get("unverified"):
        lines.append("TIME UNVERIFIED: clock not set")
    if stamp.get("line"):
        lines.append(f"Line {stamp['line']}")
    who = customer_name or stamp.get("customer")
    if who:
        lines.append(who)
    if stamp.get("position"):
        lines.append(f"Position {stamp['position']}")
    if stamp.get("of"):
        lines.append(f"Message slip {stamp['of']}")
    if stamp.get("call"):
        lines.append(f"Call {stamp['call']}")
    body = []
    for para in (stamp.get("text") or "").splitlines():
        body += textwrap.wrap(para, columns) or [""]
    if stamp.get("recording"):
        body += textwrap.wrap(f"Recording: {stamp['recording']}", columns)
    title = f"{WHAT_TITLE.get(stamp['what'], stamp['what'].upper())}  No. {stamp['slip']}"
    out = INIT + CENTER + BOLD_ON + enc(title) + b"\n" + BOLD_OFF
    if reprint:
        out += enc("REPRINT") + b"\n"
    out += LEFT
    for ln in lines:
        for part in textwrap.wrap(ln, columns):
            out += enc(part) + b"\n"
    if body:
        out += enc("-" * columns) + b"\n"
        for ln in body:
            out += enc(ln) + b"\n"
    return out + ESC + b"d\x03" + CUT


class SlipPrinter:
    """Prints stamps in slip order on its own thread; never blocks the caller."""

    def __init__(self, cfg: dict, mark_path, on_fault=None, names=None):
        self.cfg = cfg
        self.mark_path = Path(mark_path)
        self.on_fault = on_fault or (lambda msg: None)
        self.names = names or (lambda cid: None)   # customer id -> business name
        self.fault: str | None = None
        self.printed = 0
        self.paper_low = False
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._ser = None
        self._thread = None
        self._reprint = None                        # slip cut short: print again, marked

    # -- the printed-up-to mark ------------------------------------------
    def load_mark(self, default: int) -> int:
        """The last slip printed; a new printer starts at ``default`` (no backlog)."""
        try:
            self.printed = int(json.loads(self.mark_path.read_text())["printed_upto"])
        except FileNotFoundError:
            self.printed = default
            self._save_mark()
        except (ValueError, KeyError, TypeError):
            raise SwitchboardError(f"{self.mark_path}: unreadable printed-up-to mark; "
                                   "write {\"printed_upto\": N} with the last slip on paper") from None
        return self.printed

    def _save_mark(self, slip=None):
        slip = self.printed if slip is None else slip
        atomic_write(self.mark_path, json.dumps({"printed_upto": slip}).encode())
        self.printed = slip

    # -- the caller's side -------------------------------------------------
    def start(self, pending=()):
        """Start printing; ``pending`` are stored stamps above the mark, in order."""
        with self._cond:
            for s in pending:
                if s["slip"] > self.printed:
                    self._queue.append(s)
        self._thread = threading.Thread(target=self._run, name="slip-printer", daemon=True)
        self._thread.start()

    def submit(self, stamp: dict) -> None:
        """Queue a durable stamp (thread-safe)."""
        with self._cond:
            self._queue.append(stamp)
            self._cond.notify()

    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)

    def status(self) -> dict:
        return {"port": self.cfg["port"], "fault": self.fault, "printed_upto": self.printed,
                "waiting": self.waiting(), "paper_low": self.paper_low}

    def stop(self, timeout=5.0):
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout)
        self._close()

    # -- the printer's side ---------------------------------------------
    def _set_fault(self, msg):
        if msg != self.fault:
            self.fault = msg
            self.on_fault(msg)

    def _close(self):
        if self._ser is not None:
            try:
                self._ser.close()
            except Exception:
                pass
            self._ser = None

    def _open(self):
        if self._ser is None:
            try:
                self._ser = serial.Serial(self.cfg["port"], self.cfg["speed"],
                                          timeout=self.cfg["timeout_s"],
                                          write_timeout=max(2.0, self.cfg["timeout_s"]))
            except (serial.SerialException, OSError, termios.error) as e:
                raise PrinterFault(f"cannot open {self.cfg['port']} (unplugged?): "
                                   f"{getattr(e, 'strerror', None) or e}") from None

    def _ask(self, n: int) -> int | None:
        try:
            self._ser.reset_input_buffer()
            self._ser.write(STATUS[n])
            self._ser.flush()
            r = self._ser.read(1)
        except (serial.SerialException, OSError, termios.error) as e:
            raise PrinterFault(f"printer on {self.cfg['port']} went away (unplugged?): "
                               f"{e}") from None
        return r[0] if r else None

    def check(self) -> None:
        """Raise ``PrinterFault`` unless the printer is there, online and has paper."""
        self._open()
        b = self._ask(1)
        if b is None:
            raise PrinterFault(f"printer on {self.cfg['port']} is not answering "
                               "(switched off, offline, or the wrong speed)")
        if b & 0x93 != 0x12:
            raise PrinterFault(f"printer on {self.cfg['port']} answered {b:#04x}, not a status "
                               f"byte: check the speed ({self.cfg['speed']}) on its self-test slip")
        paper = self._ask(4)
        self.paper_low = bool(paper is not None and paper & 0x0C)
        if paper is not None and paper & 0x60:
            raise PrinterFault("printer is out of paper: load a new roll", stopped=True)
        if b & 0x08:
            why = self._ask(2) or 0
            causes = [t for bit, t in ((0x04, "cover open"), (0x20, "out of paper"),
                                       (0x40, "error: see its manual"), (0x08, "paper feed "
                                       "button held")) if why & bit]
            raise PrinterFault("printer is offline" + (f": {', '.join(causes)}" if causes else ""),
                               stopped=True)

    def _print_one(self, stamp) -> None:
        self.check()
        data = render_slip(stamp, self.cfg["columns"], self.names(stamp.get("customer")),
                           reprint=self._reprint == stamp["slip"])
        try:
            self._ser.write(data)
            self._ser.flush()
        except (serial.SerialException, OSError, termios.error) as e:
            self._reprint = stamp["slip"]
            raise PrinterFault(f"printer on {self.cfg['port']} went away while printing "
                               f"slip {stamp['slip']}: {e}") from None
        try:
            self.check()
        except PrinterFault as e:
            if e.stopped:
                self._reprint = stamp["slip"]   # it stopped: the slip may be cut short
            else:
                # It took every byte, then went quiet: count the slip as printed
                # rather than risk it twice; the fault lamp says to look.
                self._reprint = None
                self._done(stamp)
            raise
        self._reprint = None

    def _run(self):
        retry = self.cfg["retry_s"]
        next_poll = 0.0
        while True:
            with self._cond:
                while not self._stop and not self._queue and time.monotonic() < next_poll:
                    self._cond.wait(max(0.01, next_poll - time.monotonic()))
                if self._stop:
                    return
                stamp = self._queue[0] if self._queue else None
                if stamp is not None and stamp["slip"] <= self.printed:
                    self._queue.popleft()       # already on paper (queued twice)
                    continue
            try:
                if stamp is None:
                    self.check()                      # idle: keep the fault lamp honest
                    next_poll = time.monotonic() + retry * 3
                elif stamp["what"] in self.cfg["print"]:
                    self._print_one(stamp)
                    self._done(stamp)
                else:
                    self._done(stamp)
                    continue
                self._set_fault(None)
            except Exception as e:       # the printer thread must never die
                if not isinstance(e, PrinterFault):
                    e = PrinterFault(f"printer on {self.cfg['port']}: {e}")
                self._close()
                self._set_fault(str(e))
                with self._cond:
                    if not self._stop:
                        self._cond.wait(retry)
                next_poll = 0.0

    def _done(self, stamp):
        self._save_mark(stamp["slip"])
        with self._cond:
            if self._queue and self._queue[0] is stamp:
                self._queue.popleft()
