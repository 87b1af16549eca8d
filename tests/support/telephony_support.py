"""Real peers for the telephony tests: a board loop, SIPp callers, PJSUA2 endpoints, Kamailio.

``BoardLoop`` is the daemon's contract in miniature (``post`` from any thread,
commands from ``BoardState`` handed to every adapter on one asyncio thread),
so the telephony adapter is driven exactly as the daemon drives it.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import struct
import subprocess
import threading
import time
import wave
from contextlib import contextmanager
from pathlib import Path

from firmware.core.state import BoardState, KeyChanged, LineState
from firmware.runtime.adapter import Context
from firmware.telephony.front import free_port

from conftest import ROOT
from board_support import wait_for  # noqa: F401 (tests import it from here too)
from peers import PeerProc  # noqa: F401 (tests import it from here too)
from sip_socket import Reply, SipSocket

SIPP_DIR = ROOT / "tests" / "support" / "sipp"


class BoardLoop:
    def __init__(self, board, data_dir):
        self.board = board
        self.data_dir = Path(data_dir)
        self.sim = True
        self.adapters = []
        self.events = []                      # every event posted, in order
        self.commands = []
        self.loop = asyncio.new_event_loop()
        self.state = BoardState(board, time.monotonic())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ticker = None

    def add_adapter(self, a):
        self.adapters.append(a)

    def context(self) -> Context:
        """What the daemon gives an adapter (``firmware.runtime.adapter``)."""
        return Context(self.board, self.data_dir, self.post, loop=self.loop, state=self.state)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self):
        self._thread.start()
        self.call(lambda: self._apply(self.state.start(time.monotonic())))
        for a in self.adapters:
            self.call(lambda a=a: a.start(self.context()))
        self._ticker = self.loop.call_soon_threadsafe(self._tick)

    def _tick(self):
        self._apply(self.state.tick(time.monotonic()))
        self._ticker = self.loop.call_later(0.05, self._tick)

    def _apply(self, cmds):
        self.commands += cmds
        for c in cmds:
            for a in self.adapters:
                a.handle(c)

    def post(self, event):
        self.loop.call_soon_threadsafe(self._handle, event)

    def _handle(self, event):
        self.events.append(event)
        self._apply(self.state.handle(event, time.monotonic()))

    def call(self, fn, timeout=10.0):
        """Run ``fn`` on the loop's thread and return its result."""
        done, box = threading.Event(), {}

        def run():
            try:
                box["v"] = fn()
            except Exception as e:
                box["e"] = e
            done.set()
        self.loop.call_soon_threadsafe(run)
        assert done.wait(timeout), "the board loop is stuck"
        if "e" in box:
            raise box["e"]
        return box.get("v")

    def press(self, key):
        self.post(KeyChanged(key, True))
        time.sleep(0.03)
        self.post(KeyChanged(key, False))
        time.sleep(0.03)

    def line(self, number):
        return self.call(lambda: self.state.lines[number].state)

    def count(self, state: LineState):
        return self.call(lambda: sum(1 for ln in self.state.lines.values() if ln.state is state))

    def faults(self):
        return self.call(lambda: dict(self.state.faults))

    def stop(self):
        for a in reversed(self.adapters):
            a.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


def telephony_board(board_file, site, tmp_path, position_uris, *, ready_s=60, **adapter_args):
    """A ``BoardLoop`` with the telephony adapter on it (run dir ``tmp_path/tel``, call records
    in ``tmp_path/calls.jsonl``), started and ready; stopped again if it does not get ready."""
    from firmware.records.calls import JsonLinesRecords
    from firmware.telephony.adapter import TelephonyAdapter
    board = BoardLoop(board_file, tmp_path / "data")
    adapter = TelephonyAdapter(board_file, site, run_dir=tmp_path / "tel", position_uris=position_uris,
                               records=JsonLinesRecords(tmp_path / "calls.jsonl"), **adapter_args)
    board.add_adapter(adapter)
    board.start()
    if not adapter.wait_ready(ready_s):
        board.stop()
        raise AssertionError(f"the telephony did not get ready: {adapter.error}")
    return board, adapter


@contextmanager
def board_with_positions(board_file, site, tmp_path, *, count=2, record=True, **adapter_args):
    """``count`` positions (PJSUA2 peers ``position1``...) and the telephony on a ``BoardLoop``
    (``telephony_board``); yields (board, adapter, positions), stops them all after."""
    positions = [PeerProc(tmp_path, f"position{i}", record=record) for i in range(1, count + 1)]
    try:
        board, adapter = telephony_board(board_file, site, tmp_path,
                                         {i: p.uri for i, p in enumerate(positions, 1)},
                                         **adapter_args)
    except BaseException:
        for p in positions:
            p.stop()
        raise
    try:
        yield board, adapter, positions
    finally:
        board.stop()
        for p in positions:
            p.stop()


# -- SIPp ----------------------------------------------------------------
def sipp(scenario, target_port, numbers, tmp_path, *, calls=None, rate=50, hold_ms=3000,
         limit=None, timeout_s=60, tone=None, transport="u1", tls=None):
    """Start SIPp as a caller; returns the Popen (the caller waits on it)."""
    csv = tmp_path / f"numbers-{time.time_ns()}.csv"
    csv.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
    sf = SIPP_DIR / scenario
    if "@TONE@" in sf.read_text():
        text = sf.read_text().replace("@TONE@", str(tone or SIPP_DIR / "silence.wav"))
        sf = tmp_path / f"{time.time_ns()}-{scenario}"
        sf.write_text(text)
    calls = calls or len(numbers)
    cmd = ["sipp", "-sf", str(sf), "-inf", str(csv), "-i", "127.0.0.1",
           "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port()),
           "-m", str(calls), "-l", str(limit or calls), "-r", str(rate), "-d", str(hold_ms),
           "-t", transport, "-timeout", f"{timeout_s}s", "-timeout_error",
           "-trace_err", "-error_file", str(tmp_path / "sipp-errors.log"),
           "-trace_stat", "-stf", str(tmp_path / "sipp-stat.csv"),
           "-nostdin", f"127.0.0.1:{target_port}"]
    if tls:
        cmd[-1:-1] = ["-tls_cert", str(tls[0]), "-tls_key", str(tls[1])]
    log = open(tmp_path / f"sipp-{time.time_ns()}.out", "wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)


class SippWorker:
    """SIPp standing in for a worker behind the front: answers every INVITE (ring, 200,
    wait for BYE) and writes every message it gets to ``log``, for tests to read."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.log = tmp_path / f"worker-{self.port}-messages.log"
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(SIPP_DIR / "uas_worker.xml"), "-i", "127.0.0.1", "-p",
             str(self.port), "-mi", "127.0.0.1", "-mp", str(free_port()), "-nostdin",
             "-trace_msg", "-message_file", str(self.log), "-timeout", "120s"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)

    def text(self) -> str:
        """Every message it has got so far."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=5)


def finish(proc, timeout: float = 30) -> int:
    """SIPp's exit code once it is done; killed and a failure if not within ``timeout`` s."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("SIPp did not finish in time") from None


def ulaw_wav(path, seconds: float = 4, hz: int = 1000, vol: float = 1.0) -> Path:
    """An 8 kHz u-law WAV of a tone (vol 0: digital silence), as SIPp's rtp_stream wants."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(path),
                    "synth", str(seconds), "sine", str(hz), "vol", str(vol)], check=True)
    return path


def ulaw_tone(path, hz=1000, seconds=4):
    return ulaw_wav(path, seconds, hz)


# -- PJSUA2 endpoints (positions, customers' phones): peers.PeerProc ----------


def tone_energy(wav_path, hz=1000):
    """(energy at ``hz``, total RMS) of a 16-bit mono WAV, by a Goertzel filter.

    The endpoint finishes the WAV just after it reports the call ended: wait for that."""
    deadline = time.time() + 5
    while True:
        try:
            with wave.open(str(wav_path)) as w:
                rate, n = w.getframerate(), w.getnframes()
                data = w.readframes(n)
            break
        except (wave.Error, EOFError, FileNotFoundError):
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    if not samples:
        return 0.0, 0.0
    k = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = (s1 * s1 + s2 * s2 - k * s1 * s2) / len(samples) ** 2
    rms = math.sqrt(sum(x * x for x in samples) / len(samples))
    return math.sqrt(power) * 2, rms


def have_tools():
    missing = [t for t in ("sipp", "kamailio", "sox") if shutil.which(t) is None and
               not os.path.exists(f"/usr/sbin/{t}")]
    assert not missing, f"missing {missing}: run scripts/setup.sh (installs them)"


def self_signed(folder):
    """A throw-away certificate and key for 127.0.0.1 (PEM files in ``folder``)."""
    cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


# -- Kamailio as a registrar with digest authentication --------------------
class Registrar:
    """A Kamailio registrar on 127.0.0.1 (UDP and TCP): users in a db_text file, digest auth,
    and INVITEs to a registered user relayed to its contact (as a provider would)."""

    def __init__(self, tmp_path, users: dict, port=None):
        from firmware.telephony.front import load_modules
        self.dir = Path(tmp_path) / f"registrar-{time.time_ns()}"
        db = self.dir / "db"
        db.mkdir(parents=True)
        cert, key = self_signed(self.dir)
        (self.dir / "tls.cfg").write_text(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
            f"require_certificate = no\ncertificate = {cert}\nprivate_key = {key}\n")
        (db / "version").write_text("table_name(string) table_version(int)\nsubscriber:7\n")
        rows = "".join(f"{i}:{u}:127.0.0.1:{p}\n" for i, (u, p) in enumerate(users.items(), 1))
        (db / "subscriber").write_text(
            "id(int,auto) username(string) domain(string) password(string)\n" + rows)
        self.port = port or free_port()
        self.tls_port = free_port()
        self.cfg = self.dir / "kamailio.cfg"
        self.cfg.write_text(f"""#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{self.port}
listen=tcp:127.0.0.1:{self.port}
listen=tls:127.0.0.1:{self.tls_port}
enable_tls=yes
{load_modules("tls", "tm", "sl", "rr", "pv", "maxfwd", "textops", "siputils", "xlog", "usrloc",
              "registrar", "db_text", "auth", "auth_db")}
modparam("tls", "config", "{self.dir / 'tls.cfg'}")
modparam("auth_db", "db_url", "text://{db}")
modparam("auth_db", "calculate_ha1", yes)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "load_credentials", "")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 5)
request_route {{
    if (is_method("REGISTER")) {{
        if (!auth_check("$fd", "subscriber", "1")) {{
            auth_challenge("$fd", "0");
            exit;
        }}
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not Here");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (is_method("INVITE")) {{
        if (!lookup("location")) {{
            sl_send_reply("404", "Not Registered");
            exit;
        }}
        record_route();
        t_relay();
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
""")
        self.proc = None

    def start(self, timeout=30.0):
        from firmware.telephony.front import kamailio_exe, options_reply
        self.log = open(self.dir / "kamailio.log", "ab")
        self.proc = subprocess.Popen([kamailio_exe(), "-DD", "-E", "-f", str(self.cfg), "-Y",
                                      str(self.dir), "-P", str(self.dir / "pid"), "-m", "32", "-M", "8"],
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        # up when it answers (its script turns OPTIONS away with 405: an answer all the same)
        wait_for(lambda: self.proc.poll() is not None or options_reply("127.0.0.1", self.port, 0.2),
                 timeout, "the registrar to answer")
        assert self.proc.poll() is None, (self.dir / "kamailio.log").read_text()[-2000:]
        return self

    def stop(self):
        import signal
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


# -- a minimal SIP caller for bursts and timing ------------------------------
class Uac(SipSocket):
    """A minimal SIP caller on one UDP socket: INVITE, wait for a reply, CANCEL."""

    user = "bench"

    def _msg(self, method, number, host, port, cid, branch, to_tag=None):
        sdp = ""
        if method == "INVITE":
            sdp = (f"v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                   f"m=audio {self.port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
        return self.request(method, number, host, port, cid, branch, body=sdp,
                            ctype="application/sdp" if sdp else None, to_tag=to_tag)

    def invite(self, number, host, port):
        cid, branch = self.new_call()
        t0 = time.perf_counter()
        self.sock.sendto(self._msg("INVITE", number, host, port, cid, branch), (host, port))
        return cid, branch, t0

    def wait(self, cid, pred, timeout=5.0) -> Reply | None:
        """The first reply on ``cid`` whose code ``pred`` takes: (t, code, headers, reason)."""
        return self.reply(cid, pred, timeout)

    def cancel(self, number, host, port, cid, branch):
        self.sock.sendto(self._msg("CANCEL", number, host, port, cid, branch), (host, port))
        final = self.wait(cid, lambda c: c >= 300)
        if final is not None:
            tag = final[2].get("to", "").partition("tag=")[2].split(";")[0] or None
            self.sock.sendto(self._msg("ACK", number, host, port, cid, branch, tag), (host, port))


