"""A slip printer at the far end of a pseudo-terminal, for tests.

It decodes the ESC/POS bytes it is sent into slips (text up to each cut),
answers DLE EOT status queries as a real printer does, and can run out of
paper, be switched off, or be unplugged and plugged back in (a new
pseudo-terminal, behind the same symlink, as udev's /dev/serial/by-id links do).
"""

import os
import re
import select
import threading
import time


class FakePrinter:
    def __init__(self, link, unplug_after_cuts=None, unplug_on="query"):
        self.link = str(link)
        self.slips: list[str] = []
        self.paper = True
        self.on = True
        self.unplug_after_cuts = unplug_after_cuts   # unplug itself after this many slips:
        self.unplug_on = unplug_on    # "query": at the next status query; "cut": at once
        self.queries = 0
        self._lock = threading.Lock()
        self._buf = b""
        self._text = b""
        self.master = self.slave = None
        self._thread = None
        self.plug_in()

    # -- the cable -------------------------------------------------------
    def plug_in(self):
        self.master, self.slave = os.openpty()
        name = os.ttyname(self.slave)
        if os.path.lexists(self.link):
            os.unlink(self.link)
        os.symlink(name, self.link)
        self._buf, self._text = b"", b""
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def unplug(self):
        self._stop = True
        if self._thread is not threading.current_thread():
            self._thread.join(2)
        if os.path.lexists(self.link):
            os.unlink(self.link)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._text = b""                      # a half-printed slip is torn off

    def close(self):
        self.unplug()

    # -- the printer -------------------------------------------------------
    def _run(self):
        while not self._stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                time.sleep(0.02)
                continue
            if not self.on:
                continue                      # switched off: bytes go nowhere
            self._buf += data
            self._decode()

    def _answer(self, n):
        if self._due("query"):
            return
        self.queries += 1
        b = 0x12
        if n == 1 and not self.paper:
            b |= 0x08                         # offline
        elif n == 2 and not self.paper:
            b |= 0x20                         # stopped: paper end
        elif n == 4 and not self.paper:
            b |= 0x60                         # roll paper end sensor
        os.write(self.master, bytes([b]))

    def _decode(self):
        buf = self._buf
        i = 0
        while i < len(buf):
            c = buf[i]
            need = 0
            if c == 0x1B:                     # ESC @ / ESC a n / ESC E n / ESC d n
                if i + 1 >= len(buf):
                    break
                need = 2 if buf[i + 1] == ord("@") else 3
                if i + need > len(buf):
                    break
                if buf[i + 1] == ord("d") and self.paper:
                    self._text += b"\n" * buf[i + 2]
            elif c == 0x1D:                   # GS V m [n]
                if i + 2 >= len(buf):
                    break
                need = 4 if buf[i + 2] in (65, 66) else 3
                if i + need > len(buf):
                    break
                if self.paper:
                    self._cut()
            elif c == 0x10:                   # DLE EOT n
                if i + 2 >= len(buf):
                    break
                need = 3
                self._answer(buf[i + 2])
            else:
                need = 1
                if self.paper:
                    self._text += bytes([c])
            i += need
            if self._stop:
                break
        self._buf = buf[i:]

    def _cut(self):
        with self._lock:
            self.slips.append(self._text.decode("cp437"))
        self._text = b""
        self._due("cut")

    def _due(self, when) -> bool:
        """Unplug now if the test asked for it at this point."""
        if self.unplug_on == when and self.unplug_after_cuts is not None \
                and len(self.slips) >= self.unplug_after_cuts:
            self.unplug_after_cuts = None
            self.unplug()
            return True
        return False

    # -- for the test's assertions ------------------------------------------
    def numbers(self) -> list[int]:
        with self._lock:
            return [int(re.search(r"No\. (\d+)", s).group(1)) for s in self.slips]

    def wait_for(self, count, timeout=10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if len(self.slips) >= count:
                    return True
            time.sleep(0.02)
        return False
