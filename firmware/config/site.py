"""Site files: how one installation of a board is connected to the telephone network.

The board file says how the board is wired; the site file, beside it
(``boards/desk.site.toml`` for ``boards/desk.toml``), says how this
installation reaches the network, and holds its secrets::

    [front]                 # the board's SIP front (Kamailio), where calls arrive
    listen = "127.0.0.1"    # nothing listens beyond loopback unless written here
    port = 5060             # 0: any free port (tests)
    transports = ["udp", "tcp"]

    [[trunks]]              # a peer: calls accepted only from these addresses
    name = "gateway"
    mode = "peer"
    peers = ["192.168.1.20"]
    outbound = true         # office lines dial out through it...
    dial = "sip:{number}@192.168.1.20:5060"   # ...to this URI

    [[trunks]]              # or registering with digest authentication
    name = "provider"
    mode = "register"
    registrar = "sip:sip.example.net"
    transport = "tls"
    username = "4155550100"
    password = "secret"     # then the file must be readable by its owner only

    [[trunks]]              # or an analog line on a USB voice modem (a gateway process)
    name = "pots1"
    mode = "modem"
    device = "/dev/serial/by-id/usb-Conexant_USB_Modem_...-if00"
    line = "901"            # the board line it rings and dials out on
    profile = "conexant"    # optional: conexant, dell, usr, multitech, generic (else from ATI0/+GMI/+GMM)
    country = "US"          # optional: AT+GCI (two letters, or the T.35 hex code)
    silence_s = 30          # optional: the far end is taken to have hung up after this
                            # long of nothing but silence (0: never)

    [numbers]               # called number (request user part, DID) -> board line
    "4155550123" = "201"    # every line is also reached by its own number

    [customers]             # a line's customer phone, rung together with the board:
    "201" = "sip:201@192.168.1.30"   # when it answers, the board learns it (secrecy)

    [[positions]]
    headset = "default"     # PyAudio device of this position's headset

    [limits]
    workers = 0             # PJSUA2 worker processes; 0: enough for every line to ring
    calls_per_worker = 0    # 0: measured at start-up (the PyPI wheel takes 4)

    [overflow]
    rings = 5
    action = "ring"         # or "message": announce and record a voice message

    [blocked]               # callers on the block list (switchboard-customers block)
    refuse = "busy"         # refused at the front with 486; or "announcement":
    announcement = "blocked.wav"   # answered, this played, hung up (never rings the board)

    [delivery.email]        # messages by e-mail and text: firmware/timeclock/delivery.py
    relay = "smtp.example.net"
    password = "secret"     # the same rule as a trunk's password

Everything is checked before the daemon starts, with the file, the key path,
the bad value and what was expected.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path

from firmware.config.board import Board
from firmware.config.toml import TableChecker, read_toml
from firmware.errors import ConfigError
from firmware.timeclock.delivery import load_delivery

TRANSPORTS = ("udp", "tcp", "tls")
TRUNK_MODES = ("peer", "register", "modem")
OVERFLOW_ACTIONS = ("ring", "message")
REFUSALS = ("busy", "announcement")    # a blocked caller (telephony/frontblock.py)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_NUMBER_RE = re.compile(r"^\+?[0-9*#]{1,20}$")
_DEVICE_RE = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
MAX_CALLS_PER_WORKER = 128   # PJSUA_MAX_CALLS of the project's pjproject build (the wheel: 4)
MAX_PEM_BYTES = 256 * 1024
_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


@dataclass(frozen=True)
class Trunk:
    name: str
    mode: str                     # "peer" or "register"
    transport: str = "udp"
    peers: tuple[str, ...] = ()   # source addresses (or a registrar's host name) accepted
    registrar: str | None = None  # register: "sip:host[:port]"
    username: str | None = None
    password: str | None = None
    realm: str = "*"
    expires: int = 300
    retry_min_s: float = 5.0      # re-registration back-off, doubling up to retry_max_s
    retry_max_s: float = 300.0
    outbound: bool = False        # the trunk carries the office lines' outgoing calls
    dial: str | None = None       # URI template for outgoing calls, "{number}" in it
    device: str | None = None     # modem: the serial device (/dev/serial/by-id/...)
    line: str | None = None       # modem: the board line the analog line rings
    profile: str | None = None    # modem: conexant, dell, usr, multitech, generic; None: identify
    country: str | None = None    # modem: AT+GCI
    silence_s: float = 30.0       # modem: silence that ends a call
    gateway_port: int | None = None   # modem: its gateway's SIP port on loopback (the daemon's)

    def public(self) -> dict:
        """What status may show: never the password."""
        d = {"name": self.name, "mode": self.mode, "transport": self.transport}
        if self.mode == "peer":
            d["peers"] = list(self.peers)
        elif self.mode == "modem":
            d.update(device=self.device, line=self.line, profile=self.profile)
        else:
            d.update(registrar=self.registrar, username=self.username)
        return d


@dataclass(frozen=True)
class PositionSite:
    number: int
    headset: str | None = None    # PyAudio device name; None: no headset (null port)
    uri: str | None = None        # SIP URI of a position endpoint started elsewhere


@dataclass(frozen=True)
class Site:
    path: Path
    listen: str = "127.0.0.1"
    port: int = 5060
    transports: tuple[str, ...] = ("udp",)
    tls_certificate: str | None = None
    tls_private_key: str | None = None
    trunks: tuple[Trunk, ...] = ()
    numbers: dict = field(default_factory=dict)   # called number -> line number
    customers: dict = field(default_factory=dict)  # line number -> customer phone URI
    positions: tuple[PositionSite, ...] = ()
    workers: int = 0
    calls_per_worker: int = 0
    max_calls: int = 0            # 0: one per board line
    overflow_rings: int = 0       # 0: never overflow
    overflow_action: str = "ring"
    announcement: str | None = None
    records: str | None = None    # call-record file; None: the daemon's data dir
    delivery: object = None       # DeliveryConfig (firmware/timeclock/delivery.py) or None
    blocked_refuse: str = "busy"  # a blocked caller at the front: "busy" or "announcement"
    blocked_announcement: str | None = None

    def line_for(self, number: str) -> str | None:
        return self.numbers.get(number)

    def modem_trunks(self) -> tuple[Trunk, ...]:
        return tuple(t for t in self.trunks if t.mode == "modem")

    def outbound_trunk(self, line: str | None = None) -> Trunk | None:
        """The trunk an office line's call goes out on: the modem that line is bound to,
        else the first outbound trunk that is not a modem."""
        for t in self.trunks:
            if t.mode == "modem" and t.line == line:
                return t
        return next((t for t in self.trunks if t.outbound and t.mode != "modem"), None)

    def peer_addresses(self) -> list[str]:
        out = []
        for t in self.trunks:
            out += [p for p in t.peers if p not in out]
        return out


def site_path_for(board_path) -> Path:
    """``boards/desk.toml`` -> ``boards/desk.site.toml``."""
    p = Path(board_path)
    return p.with_name(p.stem + ".site.toml")


def load_site(path, board: Board) -> Site:
    """Read and check a site file against its board; raise ConfigError naming what is wrong."""
    path = Path(path)
    _, data = read_toml(path, "site file")
    mode = path.stat().st_mode
    site = _Loader(path, board).load(data)
    if not site.trunks:
        raise ConfigError(path, "trunks", None, None, message=(
            f"{path}: trunks: none; expected at least one [[trunks]] table "
            "(without one the front refuses every call)"))
    secret = [f"trunks.{t.name}.password" for t in site.trunks if t.password]
    if site.delivery is not None and site.delivery.has_secret():
        secret.append(site.delivery.has_secret())
    if secret and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(path, secret[0], None, None, message=(
            f"{path}: holds a {'trunk password' if secret[0].startswith('trunks') else secret[0]} "
            "but is readable by others "
            f"(mode {stat.S_IMODE(mode):o}); expected a file only its owner can read: "
            f"run  chmod 600 {path}"))
    return site


class _Loader(TableChecker):
    def __init__(self, path: Path, board: Board):
        super().__init__(path)
        self.board = board

    def integer(self, data, key, keypath, default, lo, hi):
        v = data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.fail(f"{keypath}.{key}", v, f"a whole number from {lo} to {hi}")
        return v

    def real(self, data, key, keypath, default, lo, hi):
        v = data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            self.fail(f"{keypath}.{key}", v, f"a number from {lo} to {hi}")
        return float(v)

    def string(self, data, key, keypath, default=None, choices=None, pattern=None, what=None):
        v = data.get(key, default)
        if v is None:
            return None
        if not isinstance(v, str) or (choices and v not in choices) or \
                (pattern and not pattern.fullmatch(v)) or (not choices and not pattern and not v):
            self.fail(f"{keypath}.{key}", v,
                      what or (" or ".join(repr(c) for c in choices) if choices else "a string"))
        return v

    def pem(self, f, key):
        """A PEM file named in [front], relative to the site file, that must exist."""
        v = self.string(f, key, "front")
        if v is None:
            return None
        p = Path(v) if Path(v).is_absolute() else self.path.parent / v
        if not p.is_file():
            self.fail(f"front.{key}", v, "an existing PEM file (a path relative to the site file "
                      "or absolute)")
        try:
            head = p.read_bytes()[:MAX_PEM_BYTES]
        except OSError as e:
            self.fail(f"front.{key}", v, f"a readable PEM file ({e.strerror})")
        kind = "CERTIFICATE" if key == "tls_certificate" else "PRIVATE KEY"
        if not re.search(rb"-----BEGIN [A-Z ]*" + kind.encode() + rb"-----", head):
            self.fail(f"front.{key}", v, f"a PEM file holding a {kind.lower()} "
                      f"(\"-----BEGIN {kind}-----\")")
        return str(p)

    def tls_pair(self, cert, key):
        """The certificate and key must load together, as Kamailio will load them."""
        import ssl
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        except (ssl.SSLError, OSError, ValueError) as e:
            self.fail("front.tls_certificate", cert, "a PEM certificate that goes with "
                      f"front.tls_private_key ({getattr(e, 'reason', None) or e})")

    def wav(self, data, key, keypath):
        """A WAV file, relative to the site file, that exists and reads as a WAV."""
        v = self.string(data, key, keypath)
        if v is None:
            return None
        p = Path(v) if Path(v).is_absolute() else self.path.parent / v
        import wave
        try:
            if not p.is_file():
                raise OSError("no such file")
            with wave.open(str(p), "rb") as w:
                w.getnframes()
        except (OSError, EOFError, wave.Error) as e:
            self.fail(f"{keypath}.{key}", v, f"an existing WAV file, a path relative to the "
                      f"site file or absolute ({e})")
        return str(p.resolve())

    def bindable(self, address, keypath):
        """The front must be able to listen there: an address this machine has."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.bind((address, 0))
        except OSError as e:
            self.fail(keypath, address, f"an address of this machine to listen on "
                      f"({e.strerror}), e.g. 127.0.0.1 or 0.0.0.0")

    def address(self, value, keypath):
        try:
            return str(ipaddress.ip_address(value))
        except (ValueError, TypeError):
            self.fail(keypath, value, "an IP address such as 192.168.1.20")

    # -- sections ------------------------------------------------------
    def load(self, data) -> Site:
        d = self.table(data, "", ("front", "trunks", "numbers", "customers", "positions",
                                  "limits", "overflow", "records", "delivery", "blocked"))
        f = self.table(d.get("front", {}), "front",
                       ("listen", "port", "transports", "tls_certificate", "tls_private_key"))
        listen = self.address(f.get("listen", "127.0.0.1"), "front.listen")
        self.bindable(listen, "front.listen")
        port = self.integer(f, "port", "front", 5060, 0, 65535)
        transports = f.get("transports", ["udp"])
        if not isinstance(transports, list) or not transports or \
                any(t not in TRANSPORTS for t in transports) or len(set(transports)) != len(transports):
            self.fail("front.transports", transports,
                      "a list of distinct transports from: " + ", ".join(TRANSPORTS))
        cert = self.pem(f, "tls_certificate")
        key = self.pem(f, "tls_private_key")
        if "tls" in transports and not (cert and key):
            raise ConfigError(self.path, "front.tls_certificate", None, None, message=(
                f"{self.path}: front.transports has \"tls\": expected front.tls_certificate "
                "and front.tls_private_key (PEM file paths)"))
        if cert and key:
            self.tls_pair(cert, key)
        trunks = self.load_trunks(d.get("trunks", []))
        numbers = self.load_numbers(d.get("numbers", {}))
        customers = self.load_customers(d.get("customers", {}))
        positions = self.load_positions(d.get("positions", []))
        lim = self.table(d.get("limits", {}), "limits", ("workers", "calls_per_worker", "max_calls"))
        ov = self.table(d.get("overflow", {}), "overflow", ("rings", "action", "announcement"))
        bl = self.table(d.get("blocked", {}), "blocked", ("refuse", "announcement"))
        refuse = self.string(bl, "refuse", "blocked", "busy", REFUSALS)
        blocked_wav = self.wav(bl, "announcement", "blocked")
        if refuse == "announcement" and blocked_wav is None:
            raise ConfigError(self.path, "blocked.announcement", None, None, message=(
                f"{self.path}: blocked.announcement: missing; refuse = \"announcement\" needs "
                "the WAV file to play to a blocked caller"))
        delivery = load_delivery(self, d.get("delivery"))
        text = delivery.text if delivery is not None else None
        if text is not None and text.via == "sip":
            t = next((t for t in trunks if t.name == text.trunk), None)
            if t is None or t.mode == "modem":
                self.fail("delivery.text.trunk", text.trunk, "the name of a peer or registering "
                          "[[trunks]] table: " + (", ".join(x.name for x in trunks
                                                           if x.mode != "modem") or "none"))
        records = d.get("records")
        if records is not None and (not isinstance(records, str) or not records):
            self.fail("records", records, "a file path for the call records")
        return Site(
            path=self.path, listen=listen, port=port, transports=tuple(transports),
            tls_certificate=cert, tls_private_key=key, trunks=trunks, numbers=numbers,
            customers=customers,
            positions=positions,
            workers=self.integer(lim, "workers", "limits", 0, 0, 256),
            calls_per_worker=self.integer(lim, "calls_per_worker", "limits", 0, 0,
                                          MAX_CALLS_PER_WORKER),
            max_calls=self.integer(lim, "max_calls", "limits", 0, 0, 4096),
            overflow_rings=self.integer(ov, "rings", "overflow", 0, 0, 100),
            overflow_action=self.string(ov, "action", "overflow", "ring", OVERFLOW_ACTIONS),
            announcement=self.wav(ov, "announcement", "overflow"),
            records=records, delivery=delivery,
            blocked_refuse=refuse, blocked_announcement=blocked_wav)

    def load_trunks(self, trunks):
        if not isinstance(trunks, list):
            self.fail("trunks", trunks, "a list of [[trunks]] tables")
        out, names = [], set()
        for i, t in enumerate(trunks):
            kp = f"trunks[{i}]"
            self.table(t, kp, ("name", "mode", "transport", "peers", "registrar", "username",
                               "password", "realm", "expires", "retry_min_s", "retry_max_s",
                               "outbound", "dial", "device", "line", "profile", "country",
                               "silence_s"), required=("name", "mode"))
            name = self.string(t, "name", kp, pattern=_NAME_RE,
                               what="a name of letters, digits, _ . - (up to 32)")
            if name in names:
                self.fail(f"{kp}.name", name, "a name no other trunk has")
            names.add(name)
            kp = f"trunks.{name}"
            mode = self.string(t, "mode", kp, choices=TRUNK_MODES)
            transport = self.string(t, "transport", kp, "udp", TRANSPORTS)
            outbound = t.get("outbound", False)
            if not isinstance(outbound, bool):
                self.fail(f"{kp}.outbound", outbound, "true or false")
            dial = self.string(t, "dial", kp, pattern=re.compile(r"^sips?:.*\{number\}.*$"),
                               what="a SIP URI with {number} in it, e.g. sip:{number}@192.168.1.20")
            modem_keys = [k for k in ("device", "line", "profile", "country", "silence_s") if k in t]
            if mode != "modem" and modem_keys:
                raise ConfigError(self.path, f"{kp}.{modem_keys[0]}", None, None, message=(
                    f"{self.path}: {kp}.{modem_keys[0]}: only a modem trunk has it; expected "
                    f"mode = \"modem\" or no {modem_keys[0]}"))
            if mode == "modem":
                out.append(self.modem_trunk(t, name, kp, out))
                continue
            if mode == "peer":
                for k in ("registrar", "username", "password"):
                    if k in t:
                        raise ConfigError(self.path, f"{kp}.{k}", None, None, message=(
                            f"{self.path}: {kp}.{k}: a peer trunk does not register; "
                            "expected mode = \"register\" or no " + k))
                peers = t.get("peers")
                if not isinstance(peers, list) or not peers:
                    self.fail(f"{kp}.peers", peers, "a list of the gateway's IP addresses")
                peers = tuple(self.address(p, f"{kp}.peers[{j}]") for j, p in enumerate(peers))
                out.append(Trunk(name=name, mode=mode, transport=transport, peers=peers,
                                 outbound=outbound, dial=dial))
                continue
            for k in ("registrar", "username", "password"):
                if k not in t:
                    raise ConfigError(self.path, f"{kp}.{k}", None, None,
                                      message=f"{self.path}: {kp}.{k}: missing; a registering "
                                      "trunk needs registrar, username and password")
            registrar = self.string(t, "registrar", kp, pattern=re.compile(
                r"^sips?:[A-Za-z0-9.\-\[\]:]+$"), what="a SIP URI such as sip:pbx.example.net:5060")
            host = registrar.split(":", 1)[1].rsplit(":", 1)[0].strip("[]")
            try:
                peers = (str(ipaddress.ip_address(host)),)
            except ValueError:
                # A name: the front lets in requests from any address it resolves to
                # when they arrive (so a provider may move).
                if not _HOST_RE.fullmatch(host):
                    self.fail(f"{kp}.registrar", registrar, "a SIP URI whose host is an IP "
                              "address or a host name, e.g. sip:pbx.example.net:5060")
                peers = (host.lower(),)
            rmin = self.real(t, "retry_min_s", kp, 5, 1, 3600)
            rmax = self.real(t, "retry_max_s", kp, 300, 1, 86400)
            if rmax < rmin:
                self.fail(f"{kp}.retry_max_s", rmax, f"at least retry_min_s ({rmin:g})")
            out.append(Trunk(
                name=name, mode=mode, transport=transport, peers=peers, registrar=registrar,
                username=self.string(t, "username", kp), password=self.string(t, "password", kp),
                realm=self.string(t, "realm", kp, "*"),
                expires=self.integer(t, "expires", kp, 300, 10, 86400),
                retry_min_s=rmin, retry_max_s=rmax, outbound=outbound, dial=dial))
        return tuple(out)

    def modem_trunk(self, t, name, kp, earlier) -> Trunk:
        """An analog line on a USB voice modem: a gateway process on loopback, a peer of
        the front; it rings its board line and carries that line's calls out."""
        from firmware.telephony.modem.driver import COUNTRIES, PROFILES
        for k in ("registrar", "username", "password", "peers", "dial", "transport"):
            if k in t:
                raise ConfigError(self.path, f"{kp}.{k}", None, None, message=(
                    f"{self.path}: {kp}.{k}: a modem trunk is its own gateway on loopback; "
                    f"expected no {k} (device and line say where it is)"))
        for k in ("device", "line"):
            if k not in t:
                raise ConfigError(self.path, f"{kp}.{k}", None, None, message=(
                    f"{self.path}: {kp}.{k}: missing; a modem trunk needs device (e.g. "
                    "\"/dev/serial/by-id/usb-Conexant_...-if00\") and line (the board line it rings)"))
        device = self.string(t, "device", kp, pattern=re.compile(r"^/\S+$"),
                             what="an absolute device path such as /dev/serial/by-id/usb-...-if00")
        line = t["line"]
        if not isinstance(line, str) or line not in self.board.line_by_number:
            self.fail(f"{kp}.line", line, f"a line of board {self.board.name!r} "
                      f"({self.board.lines[0].number}..{self.board.lines[-1].number})")
        for other in earlier:
            if other.mode == "modem" and other.device == device:
                self.fail(f"{kp}.device", device, f"a modem no other trunk uses ({other.name} has it)")
            if other.mode == "modem" and other.line == line:
                self.fail(f"{kp}.line", line, f"a line no other modem rings ({other.name} rings it)")
        profile = self.string(t, "profile", kp, choices=tuple(PROFILES))
        country = self.string(t, "country", kp, pattern=re.compile(r"^[A-Za-z]{2}$|^[0-9A-Fa-f]{2}$"),
                              what="a country for AT+GCI: " + ", ".join(sorted(COUNTRIES))
                              + ", or its T.35 code in hex")
        if country and country.isalpha() and country.upper() not in COUNTRIES and \
                not all(c in "0123456789ABCDEFabcdef" for c in country):
            self.fail(f"{kp}.country", country, "one of " + ", ".join(sorted(COUNTRIES))
                      + ", or a T.35 code in hex")
        silence = self.real(t, "silence_s", kp, 30, 0, 3600)
        outbound = t.get("outbound", True)
        if not isinstance(outbound, bool):
            self.fail(f"{kp}.outbound", outbound, "true or false")
        return Trunk(name=name, mode="modem", peers=("127.0.0.1",), outbound=outbound,
                     device=device, line=line, profile=profile, country=country,
                     silence_s=silence)

    def load_numbers(self, numbers):
        if not isinstance(numbers, dict):
            self.fail("numbers", numbers, "a table of \"called number\" = \"line number\"")
        out = {ln.number: ln.number for ln in self.board.lines}
        for number, line in numbers.items():
            kp = f"numbers.{number}"
            if not _NUMBER_RE.fullmatch(number):
                self.fail(kp, number, "a called number of digits (a leading + allowed)")
            if not isinstance(line, str) or line not in self.board.line_by_number:
                self.fail(kp, line, f"a line of board {self.board.name!r} "
                          f"({self.board.lines[0].number}..{self.board.lines[-1].number})")
            if number in out and number in self.board.line_by_number and out[number] != line:
                self.fail(kp, line, f"line {number} itself: {number} is a line's own number")
            out[number] = line
        return out

    def load_customers(self, customers):
        if not isinstance(customers, dict):
            self.fail("customers", customers, "a table of \"line\" = \"sip:customer's phone\"")
        out = {}
        for line, uri in customers.items():
            kp = f"customers.{line}"
            spec = self.board.line_by_number.get(line)
            if spec is None or spec.kind != "customer":
                self.fail(kp, line, f"a customer line of board {self.board.name!r}")
            if not isinstance(uri, str) or not re.fullmatch(r"sips?:\S+@\S+", uri):
                self.fail(kp, uri, "the SIP URI of the customer's phone, e.g. sip:201@192.168.1.30")
            out[line] = uri
        return out

    def load_positions(self, positions):
        if not isinstance(positions, list):
            self.fail("positions", positions, "a list of [[positions]] tables")
        if len(positions) > self.board.positions:
            self.fail("positions", len(positions),
                      f"at most {self.board.positions} positions (the board has that many)")
        out = []
        for i, p in enumerate(positions):
            kp = f"positions[{i}]"
            self.table(p, kp, ("headset", "uri"))
            uri = self.string(p, "uri", kp, pattern=re.compile(r"^sips?:\S+$"),
                              what="a SIP URI of a position endpoint")
            headset = self.string(p, "headset", kp, pattern=_DEVICE_RE,
                                  what="a sound device's name (printable, up to 128 characters)")
            out.append(PositionSite(number=i + 1, headset=headset, uri=uri))
        return tuple(out)
