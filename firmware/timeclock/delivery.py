"""Delivering messages the way each customer wants them: e-mail, or text through a GSM
modem or by SIP MESSAGE through a trunk.

A message for a customer with ``delivery = "email"`` (or ``"text"``) goes
into the **outbox** as it is stamped, after the stamp is on disk. The outbox
(``<data>/outbox.jsonl``, the checksummed journal, fsynced on every write)
keeps each message until it is sent, across daemon restarts and relay or
modem outages. One sender thread works through it, oldest slip first; a
message that cannot be sent is tried again after ``retry_min_s``, doubling up
to ``retry_max_s``, and is marked ``failed`` after ``max_tries`` tries (at
once for a permanent refusal, an SMTP 5xx or a modem's ``+CMS ERROR``). Each
entry's status is ``queued``, ``sent`` or ``failed`` with its tries and last
error; the rack, the dead box and ``status`` show it.

Never twice: the e-mail's ``Message-ID`` is made from the slip
(``<slip-1042.marys-gloves@board>``), so if the daemon dies between the
relay accepting a message and the outbox noting it, the copy sent again
carries the same id and mail software drops the duplicate; within one run a
sent entry is never picked again.

The site file's ``[delivery]`` section (``load_delivery``)::

    [delivery]
    max_tries = 8               # then "failed"
    retry_min_s = 30            # back-off, doubling
    retry_max_s = 3600

    [delivery.email]
    relay = "smtp.example.net"
    port = 587
    security = "starttls"       # "tls" (SMTPS, usually port 465) or "none" (a relay on loopback only)
    username = "board@example.net"
    password = "secret"         # then the site file must be readable by its owner only
    from = "Answering Service <board@example.net>"
    ca_file = "relay-ca.pem"    # optional: the CA(s) that signed the relay's certificate, instead
                                # of the system's (relative to the site file)

    [delivery.text]
    modem = "/dev/ttyUSB2"      # the GSM/LTE modem's AT-command port
    speed = 115200
    pin = "1234"                # the SIM's PIN, if it asks for one (same password rule)

    [delivery.text]             # or, where the trunk's provider takes texts:
    via = "sip"                 # SIP MESSAGE, sent by a worker through the front
    trunk = "provider"          # the [[trunks]] it goes out on (its login if challenged)
    uri = "sip:{number}@sms.example.net"   # optional: else the trunk's dial template
    from = "sip:4155550100@sip.example.net"  # optional: else the trunk's login, or the board
    timeout_s = 40              # no final answer by then: tried again later

The relay's certificate is always checked (its chain and its name against
``relay``), against ``ca_file`` when given, else the system's CAs; a relay
whose certificate is not accepted, or that offers no STARTTLS, is never sent
anything (tried again later, the reason in the status). A login the relay
refuses for good (5xx, a wrong password) fails the message at once, as any
5xx; a "try later" (454) is tried again.

A text by SIP is sent by the telephony (``sip_sender``: ``TextSender.send`` in
``firmware/telephony/texts.py``); the trunk's 2xx is "sent", a 408/480/5xx or no
answer is tried again, any other 4xx-6xx fails it at once with the trunk's reason.
"""

from __future__ import annotations

import email.message
import re
import email.utils
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tinydb import TinyDB
from tinydb.table import Document

from firmware.errors import SwitchboardError
from firmware.records.journal import JournalStorage

SECURITY = ("starttls", "tls", "none")
STATUSES = ("queued", "sent", "failed")


@dataclass(frozen=True)
class EmailConfig:
    relay: str
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = "switchboard@localhost"
    timeout_s: float = 30.0
    ca_file: str | None = None    # PEM CA(s) to check the relay's certificate; None: the system's

    def public(self) -> dict:
        return {"relay": self.relay, "port": self.port, "security": self.security,
                "username": self.username, "from": self.sender, "ca_file": self.ca_file}


TEXT_VIAS = ("modem", "sip")
RETRY_CODES = (0, 408, 480, 500, 503, 504)   # a SIP answer worth trying again later


@dataclass(frozen=True)
class TextConfig:
    modem: str | None = None
    speed: int = 115200
    pin: str | None = None
    timeout_s: float = 30.0
    via: str = "modem"            # or "sip": SIP MESSAGE through ``trunk``
    trunk: str | None = None
    uri: str | None = None        # "sip:{number}@host"; None: the trunk's dial template
    sender: str | None = None     # the From URI; None: the trunk's login or the board

    def public(self) -> dict:
        if self.via == "sip":
            return {"via": "sip", "trunk": self.trunk, "uri": self.uri}
        return {"modem": self.modem, "speed": self.speed}


@dataclass(frozen=True)
class DeliveryConfig:
    email: EmailConfig | None = None
    text: TextConfig | None = None
    max_tries: int = 8
    retry_min_s: float = 30.0
    retry_max_s: float = 3600.0

    def has_secret(self) -> str | None:
        if self.email and self.email.password:
            return "delivery.email.password"
        if self.text and self.text.pin:
            return "delivery.text.pin"
        return None


def load_delivery(checker, data) -> DeliveryConfig | None:
    """The site file's ``[delivery]`` table, checked with the site loader's ``checker``."""
    if data is None:
        return None
    d = checker.table(data, "delivery", ("email", "text", "max_tries", "retry_min_s",
                                         "retry_max_s"))
    em = tx = None
    if "email" in d:
        e = checker.table(d["email"], "delivery.email",
                          ("relay", "port", "security", "username", "password", "from",
                           "timeout_s", "ca_file"), required=("relay", "from"))
        security = checker.string(e, "security", "delivery.email", "starttls", SECURITY)
        relay = checker.string(e, "relay", "delivery.email", what="the SMTP relay's host name")
        if security == "none" and relay not in ("127.0.0.1", "::1", "localhost"):
            checker.fail("delivery.email.security", security,
                         '"starttls" or "tls": "none" sends in clear and is allowed only to a '
                         "relay on this machine (127.0.0.1)")
        user = checker.string(e, "username", "delivery.email")
        pw = checker.string(e, "password", "delivery.email")
        if bool(user) != bool(pw):
            checker.fail("delivery.email.username", user,
                         "both username and password for a relay that wants a login, or neither")
        sender = checker.string(e, "from", "delivery.email", what="the sender's address")
        if "@" not in email.utils.parseaddr(sender)[1]:
            checker.fail("delivery.email.from", sender, 'an address such as '
                         '"Answering Service <board@example.net>"')
        em = EmailConfig(relay=relay, port=checker.integer(e, "port", "delivery.email",
                                                           465 if security == "tls" else 587,
                                                           1, 65535),
                         security=security, username=user, password=pw, sender=sender,
                         timeout_s=checker.real(e, "timeout_s", "delivery.email", 30.0, 1, 300),
                         ca_file=_ca_file(checker, e, security))
    if "text" in d:
        t = checker.table(d["text"], "delivery.text", ("modem", "speed", "pin", "timeout_s",
                                                       "via", "trunk", "uri", "from"))
        via = checker.string(t, "via", "delivery.text", "modem", TEXT_VIAS)
        if via == "sip":
            tx = _sip_text(checker, t)
        elif "modem" not in t:
            checker.fail("delivery.text.modem", None, 'the modem\'s serial port, e.g. '
                         '"/dev/ttyUSB2" (or via = "sip" to send texts through a trunk)')
        else:
            tx = _modem_text(checker, t)
    lo = checker.real(d, "retry_min_s", "delivery", 30.0, 0.01, 86400)
    hi = checker.real(d, "retry_max_s", "delivery", 3600.0, 0.01, 7 * 86400)
    if hi < lo:
        checker.fail("delivery.retry_max_s", hi, f"at least retry_min_s ({lo})")
    return DeliveryConfig(email=em, text=tx, max_tries=checker.integer(d, "max_tries", "delivery",
                                                                       8, 1, 1000),
                          retry_min_s=lo, retry_max_s=hi)


def _ca_file(checker, e, security) -> str | None:
    """``ca_file``: PEM CA certificate(s), relative to the site file, that load as the
    client's trust store (as ``send_email`` will load them)."""
    v = checker.string(e, "ca_file", "delivery.email")
    if v is None:
        return None
    if security == "none":
        checker.fail("delivery.email.ca_file", v, 'nothing: security = "none" uses no TLS '
                     '(or security = "starttls" or "tls")')
    p = Path(v) if Path(v).is_absolute() else Path(checker.path).parent / v
    try:
        ssl.create_default_context(cafile=str(p))
    except (OSError, ValueError) as err:      # ssl.SSLError is an OSError
        why = getattr(err, "strerror", None) or getattr(err, "reason", None) or err
        checker.fail("delivery.email.ca_file", v, "a PEM file of the CA certificate(s) that "
                     "signed the relay's certificate, a path relative to the site file or "
                     f"absolute ({why})")
    return str(p.resolve())


def _modem_text(checker, t) -> TextConfig:
    for k in ("trunk", "uri", "from"):
        if k in t:
            checker.fail(f"delivery.text.{k}", t[k], 'nothing: only via = "sip" has it')
    pin = checker.string(t, "pin", "delivery.text")
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 8):
        checker.fail("delivery.text.pin", "****", "the SIM's PIN: 4 to 8 digits")
    return TextConfig(modem=checker.string(t, "modem", "delivery.text",
                                           what="the modem's serial port, e.g. /dev/ttyUSB2"),
                      speed=checker.integer(t, "speed", "delivery.text", 115200, 300, 4000000),
                      pin=pin, timeout_s=checker.real(t, "timeout_s", "delivery.text", 30.0, 1, 300))


def _sip_text(checker, t) -> TextConfig:
    """``[delivery.text]`` with ``via = "sip"`` (the trunk's name is checked against the
    site's trunks by the site loader)."""
    for k in ("modem", "speed", "pin"):
        if k in t:
            checker.fail(f"delivery.text.{k}", t[k], 'nothing: a text by SIP needs no modem '
                         '(or via = "modem")')
    uri = checker.string(t, "uri", "delivery.text")
    if uri is not None and not re.fullmatch(r"sips?:[^\s]*\{number\}[^\s]*", uri):
        checker.fail("delivery.text.uri", uri, "a SIP URI with {number} in it, e.g. "
                     "sip:{number}@sms.example.net")
    sender = checker.string(t, "from", "delivery.text")
    if sender is not None and not re.fullmatch(r"sips?:[^\s@]+@[^\s]+", sender):
        checker.fail("delivery.text.from", sender, "a SIP URI such as sip:4155550100@sip.example.net")
    text = TextConfig(via="sip", trunk=checker.string(t, "trunk", "delivery.text",
                                                      what="the name of a [[trunks]] table"),
                      uri=uri, sender=sender,
                      timeout_s=checker.real(t, "timeout_s", "delivery.text", 40.0, 0.5, 300))
    if text.trunk is None:
        checker.fail("delivery.text.trunk", None, 'the name of the [[trunks]] the texts go out '
                     'on (via = "sip")')
    return text


class SendError(SwitchboardError):
    """A message could not be sent; ``permanent`` when trying again cannot help."""

    def __init__(self, message, permanent=False):
        super().__init__(message)
        self.permanent = permanent


# -- e-mail ---------------------------------------------------------------------
def message_id(stamp: dict) -> str:
    return f"<slip-{stamp['slip']}.{stamp.get('customer') or 'board'}@switchboard>"


def make_email(cfg: EmailConfig, stamp: dict, to: str, customer_name: str | None) -> bytes:
    m = email.message.EmailMessage()
    m["From"] = cfg.sender
    m["To"] = to
    urgent = "URGENT: " if stamp.get("urgent") else ""
    who = (stamp.get("fields") or {}).get("name")
    m["Subject"] = f"{urgent}Message {stamp['slip']}" + (f" from {who}" if who else "") + \
        (f" for {customer_name}" if customer_name else "")
    m["Message-ID"] = message_id(stamp)
    m["Date"] = email.utils.format_datetime(
        __import__("datetime").datetime.fromisoformat(stamp["time"]))
    if stamp.get("urgent"):
        m["Importance"] = "high"
        m["X-Priority"] = "1"
    lines = [f"Slip {stamp['slip']}, taken {stamp['time']} on line {stamp.get('line')}"
             f" at position {stamp.get('position')}.", ""]
    fields = stamp.get("fields") or {}
    if fields:
        lines += [f"{k[0].upper()}{k[1:]}: {v}" for k, v in fields.items() if v]
    else:
        lines.append(stamp.get("text") or "(a recording of the call is kept at the service)")
    m.set_content("\n".join(lines) + "\n")
    return bytes(m)


def tls_context(cfg: EmailConfig) -> ssl.SSLContext:
    """The relay's certificate is always checked, chain and name: against ``ca_file``
    when given (only those CAs), else the system's."""
    try:
        return ssl.create_default_context(cafile=cfg.ca_file)
    except OSError as e:     # the file went after the site file was checked
        raise SendError(f"[delivery.email] ca_file {cfg.ca_file}: cannot load it "
                        f"({e.strerror or e}); nothing was sent") from None


def send_email(cfg: EmailConfig, to: str, body: bytes) -> None:
    """Hand one message to the relay; SendError says what went wrong."""
    where = f"relay {cfg.relay}:{cfg.port}"
    try:
        if cfg.security == "tls":
            s = smtplib.SMTP_SSL(cfg.relay, cfg.port, timeout=cfg.timeout_s,
                                 context=tls_context(cfg))
        else:
            s = smtplib.SMTP(cfg.relay, cfg.port, timeout=cfg.timeout_s)
        try:
            if cfg.security == "starttls":
                s.starttls(context=tls_context(cfg))   # no STARTTLS offered: raises, never clear
            if cfg.username:
                s.login(cfg.username, cfg.password)
            sender = email.utils.parseaddr(cfg.sender)[1]
            s.sendmail(sender, [to], body)
        finally:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()
    except smtplib.SMTPRecipientsRefused as e:
        code, msg = next(iter(e.recipients.values()))
        raise SendError(f"relay refused {to}: {code} {msg.decode(errors='replace')}",
                        permanent=code >= 500) from None
    except smtplib.SMTPAuthenticationError as e:
        # 535: the relay will never take this login (5xx fails at once); 454: try later.
        hint = "; check [delivery.email] username and password" if e.smtp_code >= 500 else ""
        raise SendError(f"{where} refused the login {cfg.username!r}: {e.smtp_code} "
                        f"{_said(e.smtp_error)}{hint}", permanent=e.smtp_code >= 500) from None
    except smtplib.SMTPResponseException as e:
        raise SendError(f"{where} answered {e.smtp_code} {_said(e.smtp_error)}",
                        permanent=e.smtp_code >= 500) from None
    except ssl.SSLCertVerificationError as e:
        raise SendError(f"{where}: its certificate was not accepted "
                        f"({e.verify_message or e.reason}); nothing was sent. A relay with a "
                        "certificate of its own CA needs [delivery.email] ca_file") from None
    except smtplib.SMTPNotSupportedError as e:
        raise SendError(f"{where}: {e} Nothing was sent.") from None
    except (smtplib.SMTPException, OSError, socket.timeout) as e:
        raise SendError(f"{where}: {e or type(e).__name__}") from None


def _said(text) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


# -- text messages through a GSM modem ------------------------------------------
GSM_SAFE = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
               "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
TEXT_MODE_OK = set(chr(c) for c in range(32, 127)) - {"@", "$", "`", "^", "{", "}", "[", "]",
                                                       "\\", "~", "|"}


def sms_text(stamp: dict, customer_name: str | None) -> str:
    urgent = "URGENT " if stamp.get("urgent") else ""
    return f"{urgent}Msg {stamp['slip']}" + (f" for {customer_name}" if customer_name else "") \
        + f": {stamp.get('text') or '(recording at the service)'}"


def split_parts(text: str, size: int) -> list[str]:
    """Split a long text into numbered parts that each fit one SMS."""
    if len(text) <= size:
        return [text]
    room = size - 6                     # "(1/3) "
    parts = [text[i:i + room] for i in range(0, len(text), room)]
    return [f"({i}/{len(parts)}) {p}" for i, p in enumerate(parts, 1)]


def _semi_octets(digits: str) -> str:
    if len(digits) % 2:
        digits += "F"
    return "".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2))


def submit_pdu(number: str, text: str) -> tuple[str, int]:
    """An SMS-SUBMIT PDU in UCS-2 (any script), for ``AT+CMGF=0``; returns (hex, TPDU length)."""
    intl = number.startswith("+")
    digits = "".join(c for c in number if c.isdigit())
    ud = text.encode("utf-16-be")
    if len(ud) > 140:
        raise SendError(f"text part of {len(text)} characters is too long for one SMS")
    tpdu = ("11" "00" + f"{len(digits):02X}" + ("91" if intl else "81") + _semi_octets(digits)
            + "00" "08" "AA" + f"{len(ud):02X}" + ud.hex().upper())
    return "00" + tpdu, len(tpdu) // 2


class Modem:
    """A GSM/LTE modem's AT port (pyserial). Opened per batch, closed after."""

    def __init__(self, cfg: TextConfig):
        self.cfg = cfg
        self.port = None

    def __enter__(self):
        import serial
        try:
            self.port = serial.Serial(self.cfg.modem, self.cfg.speed, timeout=0.2,
                                      write_timeout=5)
        except (serial.SerialException, OSError) as e:
            raise SendError(f"modem {self.cfg.modem}: cannot open it ({e})") from None
        self.port.reset_input_buffer()
        self.command("ATE0")
        if self.cfg.pin:
            state = self.command("AT+CPIN?")
            if "SIM PIN" in state:
                self.command(f"AT+CPIN={self.cfg.pin}", secret=True)
        return self

    def __exit__(self, *exc):
        if self.port is not None:
            self.port.close()
            self.port = None

    def _read_until(self, done, timeout) -> str:
        got = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            chunk = self.port.read(256)
            if chunk:
                got += chunk
                text = got.decode(errors="replace")
                if done(text):
                    return text
        raise SendError(f"modem {self.cfg.modem}: no answer within {timeout:.0f} s "
                        f"(got {got.decode(errors='replace').strip()!r})")

    def command(self, cmd: str, timeout=None, secret=False) -> str:
        import serial
        try:
            self.port.write(cmd.encode() + b"\r")
            text = self._read_until(_final, timeout or self.cfg.timeout_s)
        except serial.SerialException as e:
            raise SendError(f"modem {self.cfg.modem}: {e}") from None
        if "ERROR" in text:
            shown = cmd.split("=")[0] + "=****" if secret else cmd
            raise SendError(f"modem {self.cfg.modem}: {shown} answered {text.strip()!r}",
                            permanent="+CMS ERROR" in text)
        return text

    def send(self, number: str, text: str) -> list[int]:
        """Send ``text`` (split into parts if long); returns the modem's message references."""
        import serial
        ascii_ok = all(c in TEXT_MODE_OK for c in text)
        refs = []
        self.command("AT+CMGF=1" if ascii_ok else "AT+CMGF=0")
        for part in split_parts(text, 160 if ascii_ok else 70):
            try:
                if ascii_ok:
                    self.port.write(f'AT+CMGS="{number}"\r'.encode())
                    self._read_until(lambda t: ">" in t or "ERROR" in t, self.cfg.timeout_s)
                    self.port.write(part.encode("ascii") + b"\x1a")
                else:
                    pdu, n = submit_pdu(number, part)
                    self.port.write(f"AT+CMGS={n}\r".encode())
                    self._read_until(lambda t: ">" in t or "ERROR" in t, self.cfg.timeout_s)
                    self.port.write(pdu.encode() + b"\x1a")
                answer = self._read_until(_final, max(self.cfg.timeout_s, 60))
            except serial.SerialException as e:
                raise SendError(f"modem {self.cfg.modem}: {e}") from None
            if "ERROR" in answer:
                raise SendError(f"modem {self.cfg.modem}: sending to {number} answered "
                                f"{answer.strip()!r}", permanent="+CMS ERROR" in answer)
            for ln in answer.splitlines():
                if ln.startswith("+CMGS:"):
                    refs.append(int(ln.split(":")[1]))
        return refs


def _final(text: str) -> bool:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return bool(lines) and (lines[-1] == "OK" or "ERROR" in lines[-1])


# -- the outbox -----------------------------------------------------------------
class Outbox:
    """Messages to send, on disk; one sender thread; ``enqueue`` from any thread."""

    def __init__(self, data_dir, cfg: DeliveryConfig, clock=time.time, names=lambda cid: None,
                 on_change=lambda entry: None, sip_sender=None):
        self.cfg = cfg
        # (id, TextConfig, number, text) -> (code, reason), blocking: the telephony's
        # TextSender.send; None without telephony (texts by SIP wait, queued).
        self.sip_sender = sip_sender
        self.clock = clock
        self.names = names
        self.on_change = on_change
        self.db = TinyDB(Path(data_dir) / "outbox.jsonl", storage=JournalStorage)
        self.table = self.db.table("outbox")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread = None
        self.sent = self.failed = 0

    # -- from the time clock ------------------------------------------------
    def enqueue(self, stamp: dict, method: str, to: str) -> dict:
        """Queue one message; on disk when this returns. Queuing a slip twice is a no-op."""
        if method == "email" and self.cfg.email is None:
            raise SendError("no [delivery.email] in the site file: cannot send e-mail")
        if method == "text" and self.cfg.text is None:
            raise SendError("no [delivery.text] in the site file: cannot send texts")
        entry = {"slip": stamp["slip"], "method": method, "to": to,
                 "customer": stamp.get("customer"), "stamp": stamp, "status": "queued",
                 "tries": 0, "next_at": self.clock(), "last_error": None, "sent_at": None}
        with self._lock:
            if self.table.contains(doc_id=stamp["slip"]):
                return dict(self.table.get(doc_id=stamp["slip"]))
            self.table.insert(Document(entry, doc_id=stamp["slip"]))
        self._wake.set()
        return entry

    def get(self, slip: int) -> dict | None:
        with self._lock:
            d = self.table.get(doc_id=slip)
        return _public(d) if d else None

    def statuses(self, slips) -> dict[int, dict]:
        with self._lock:
            out = {}
            for s in slips:
                d = self.table.get(doc_id=s)
                if d:
                    out[s] = _public(d)
            return out

    def summary(self) -> dict:
        with self._lock:
            docs = self.table.all()
        counts = {k: 0 for k in STATUSES}
        for d in docs:
            counts[d["status"]] += 1
        return {**counts, "email": self.cfg.email.public() if self.cfg.email else None,
                "text": self.cfg.text.public() if self.cfg.text else None,
                "last_error": next((d["last_error"] for d in sorted(
                    docs, key=lambda d: -d["slip"]) if d["status"] != "sent"
                    and d["last_error"]), None)}

    # -- the sender ----------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.cfg.email.timeout_s + 5 if self.cfg.email else 35)
        with self._lock:
            self.db.close()

    def _send_sip(self, d, text):
        """One SIP MESSAGE through the trunk; the same message id every try, so a text
        whose answer is still awaited is not sent again (pj/texts.py)."""
        if self.sip_sender is None:
            raise SendError("texts go by SIP (delivery.text.via) but the telephony is not "
                            "running (start the daemon with --site)")
        code, reason = self.sip_sender(f"slip-{d['slip']}", self.cfg.text, d["to"], text)
        if 200 <= code < 300:
            return
        why = f"trunk {self.cfg.text.trunk} answered {code} {reason}" if code else \
            f"trunk {self.cfg.text.trunk}: {reason}"
        raise SendError(why, permanent=code not in RETRY_CODES)

    def _due(self):
        now = self.clock()
        with self._lock:
            docs = [d for d in self.table.all() if d["status"] == "queued"]
        due = sorted((d for d in docs if d["next_at"] <= now), key=lambda d: d["slip"])
        nxt = min((d["next_at"] for d in docs), default=None)
        return due, nxt

    def _run(self):
        while not self._stop:
            due, nxt = self._due()
            for d in due:
                if self._stop:
                    return
                self._send_one(dict(d))
            if due:
                continue
            wait = 3600.0 if nxt is None else max(0.01, min(3600.0, nxt - self.clock()))
            self._wake.wait(wait)
            self._wake.clear()

    def _send_one(self, d):
        stamp = d["stamp"]
        name = self.names(d.get("customer"))
        try:
            if d["method"] == "email":
                send_email(self.cfg.email, d["to"], make_email(self.cfg.email, stamp, d["to"], name))
            elif d["method"] == "text" and self.cfg.text.via == "sip":
                self._send_sip(d, sms_text(stamp, name))
            elif d["method"] == "text":
                with Modem(self.cfg.text) as m:
                    m.send(d["to"], sms_text(stamp, name))
            else:
                raise SendError(f"cannot deliver by {d['method']!r}", permanent=True)
        except SendError as e:
            d["tries"] += 1
            d["last_error"] = str(e)
            if e.permanent or d["tries"] >= self.cfg.max_tries:
                d["status"] = "failed"
                self.failed += 1
            else:
                back = min(self.cfg.retry_max_s, self.cfg.retry_min_s * 2 ** (d["tries"] - 1))
                d["next_at"] = self.clock() + back
        else:
            d["tries"] += 1
            d["status"] = "sent"
            d["sent_at"] = self.clock()
            self.sent += 1
        with self._lock:
            self.table.update(d, doc_ids=[d["slip"]])
        self.on_change(_public(d))


def _public(d) -> dict:
    return {"slip": d["slip"], "method": d["method"], "to": d["to"], "status": d["status"],
            "tries": d["tries"], "last_error": d["last_error"],
            "sent_at": d["sent_at"], "next_at": d["next_at"]}
