"""A GSM modem at the far end of a pseudo-terminal, for tests.

It answers the AT commands the outbox sends (``ATE0``, ``AT+CPIN?``,
``AT+CMGF=0|1``, ``AT+CMGS``), keeps each text it was given (text mode as
typed, PDU mode decoded from UCS-2), and can be told to refuse the next
sends with ``+CMS ERROR`` or to say nothing at all (a hung modem).
"""

import os
import select
import threading


def decode_submit_pdu(pdu: str) -> tuple[str, str]:
    """(number, text) of an SMS-SUBMIT PDU with DCS 08 (UCS-2), as the outbox makes them."""
    b = bytes.fromhex(pdu)
    i = 1 + b[0]                          # skip the SMSC part
    i += 2                                # first octet, message reference
    n_digits, toa = b[i], b[i + 1]
    i += 2
    octets = (n_digits + 1) // 2
    sem = b[i:i + octets].hex().upper()
    digits = "".join(sem[j + 1] + sem[j] for j in range(0, len(sem), 2)).rstrip("F")
    i += octets
    dcs, udl = b[i + 1], b[i + 3]     # of PID, DCS, validity period, user-data length
    assert dcs == 0x08, f"DCS {dcs:02x}: expected UCS-2"
    text = b[i + 4:i + 4 + udl].decode("utf-16-be")
    return ("+" if toa == 0x91 else "") + digits, text


class FakeModem:
    def __init__(self, link):
        self.link = str(link)
        self.texts: list[tuple[str, str, str]] = []     # (mode, number, text)
        self.refuse = 0           # refuse this many sends with +CMS ERROR
        self.silent = False
        self.mode = "1"
        self.master, self.slave = os.openpty()
        import tty
        tty.setraw(self.slave)
        if os.path.lexists(self.link):
            os.unlink(self.link)
        os.symlink(os.ttyname(self.slave), self.link)
        self._stop = False
        self._ref = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self):
        self._stop = True
        self._thread.join(2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if os.path.lexists(self.link):
            os.unlink(self.link)

    def _write(self, s: str):
        os.write(self.master, s.encode())

    def _run(self):
        buf = b""
        pending = None            # the number (or PDU length) an AT+CMGS waits with
        while not self._stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                buf += os.read(self.master, 1024)
            except OSError:
                return
            while True:
                if pending is not None:
                    if b"\x1a" not in buf:
                        break
                    body, buf = buf.split(b"\x1a", 1)
                    self._sent(pending, body.decode())
                    pending = None
                    continue
                if b"\r" not in buf:
                    break
                line, buf = buf.split(b"\r", 1)
                cmd = line.decode().strip()
                if not cmd or self.silent:
                    continue
                if cmd.startswith("AT+CMGS"):
                    pending = cmd.split("=", 1)[1].strip('"')
                    self._write("\r\n> ")
                elif cmd.startswith("AT+CMGF="):
                    self.mode = cmd[-1]
                    self._write("\r\nOK\r\n")
                elif cmd == "AT+CPIN?":
                    self._write("\r\n+CPIN: READY\r\n\r\nOK\r\n")
                elif cmd.startswith("AT"):
                    self._write("\r\nOK\r\n")
                else:
                    self._write("\r\nERROR\r\n")

    def _sent(self, pending, body):
        if self.refuse:
            self.refuse -= 1
            self._write("\r\n+CMS ERROR: 500\r\n")
            return
        if self.mode == "1":
            self.texts.append(("text", pending, body))
        else:
            number, text = decode_submit_pdu(body)
            self.texts.append(("pdu", number, text))
        self._ref += 1
        self._write(f"\r\n+CMGS: {self._ref}\r\n\r\nOK\r\n")
