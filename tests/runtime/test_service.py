"""The daemon as a systemd service: sd_notify against a real notify socket, the journal's
format, the unit checked by systemd-analyze, the installer run into a throwaway root.

The notify socket is a real datagram socket the test binds, as systemd's is; the daemon is
the real one, started as a process on the simulated board (with the telephony where the
test says so). No systemd is running on this machine: what it would do with the messages
is systemd's part; what the daemon sends, and when, is checked here.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ROOT, project_env, python_cmd
from board_support import wait_for
from firmware.runtime import systemd
from firmware.runtime.adapter import Adapter

INSTALL = ROOT / "scripts" / "install-pi.sh"
CHECK = ROOT / "scripts" / "check-install.sh"
UNIT = ROOT / "scripts" / "service" / "switchboard.service"
DESKTOP = ROOT / "scripts" / "service" / "switchboard-kiosk.desktop"


class NotifySocket:
    """A datagram socket standing in for systemd's: every message with when it came."""

    def __init__(self, path: Path | None = None, abstract: str | None = None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.sock.bind("\0" + abstract)
            self.name = "@" + abstract
        else:
            self.sock.bind(str(path))
            self.name = str(path)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, list[str]]] = []

    def pump(self, seconds: float = 0.0):
        """Read what has come (and keep reading for ``seconds``)."""
        end = time.monotonic() + seconds
        while True:
            try:
                data = self.sock.recv(65536)
                self.messages.append((time.monotonic(), data.decode().split("\n")))
                continue
            except socket.timeout:
                pass
            if time.monotonic() >= end:
                return

    def first(self, field: str):
        return next(((t, m) for t, m in self.messages if field in m), None)

    def times(self, field: str) -> list[float]:
        return [t for t, m in self.messages if field in m]

    def statuses(self) -> list[str]:
        return [f[len("STATUS="):] for _, m in self.messages for f in m if f.startswith("STATUS=")]

    def close(self):
        self.sock.close()


class Output:
    """A process's stdout and stderr, each line with when it came."""

    def __init__(self, proc):
        self.lines: list[tuple[float, str]] = []
        self._threads = [threading.Thread(target=self._read, args=(s,), daemon=True)
                         for s in (proc.stdout, proc.stderr)]
        for t in self._threads:
            t.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def when(self, text: str):
        return next((t for t, ln in list(self.lines) if text in ln), None)

    def text(self) -> str:
        return "\n".join(ln for _, ln in self.lines)


def start_daemon(tmp_path, notify: NotifySocket, watchdog_usec: int | None, *extra):
    env = project_env(NOTIFY_SOCKET=notify.name)
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    proc = subprocess.Popen(
        python_cmd("firmware.runtime.daemon", "--sim", "--board", "desk", "--no-web",
                   "--socket", tmp_path / "run" / "control.sock",
                   "--data-dir", tmp_path / "var", *extra),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, Output(proc)


def stop(proc, timeout=20):
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# -- the protocol itself ----------------------------------------------------------
@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ok__notifier_sends_fields_in_one_datagram(tmp_path, abstract):
    ns = NotifySocket(tmp_path / "notify", abstract=f"tas-test-{os.getpid()}" if abstract else None)
    try:
        env = {"NOTIFY_SOCKET": ns.name, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}
        n = systemd.Notifier.from_env(env)
        assert env == {}                         # the daemon's children do not inherit them
        assert n.enabled and n.watchdog_interval == 1.5
        assert n.ready("ready: board desk") and n.watchdog() and n.stopping("bye")
        ns.pump(0.2)
        assert [m for _, m in ns.messages] == [["READY=1", "STATUS=ready: board desk"],
                                                ["WATCHDOG=1"], ["STOPPING=1", "STATUS=bye"]]
        n.close()
    finally:
        ns.close()


def test_ok__no_notify_socket_means_nothing_is_sent():
    n = systemd.Notifier.from_env({})
    assert not n.enabled and n.watchdog_interval is None
    assert n.ready() is False and n.watchdog() is False


def test_ok__watchdog_meant_for_another_pid_is_ignored(tmp_path):
    ns = NotifySocket(tmp_path / "notify")
    try:
        n = systemd.Notifier.from_env({"NOTIFY_SOCKET": ns.name, "WATCHDOG_USEC": "1000000",
                                       "WATCHDOG_PID": str(os.getpid() + 1)})
        assert n.enabled and n.watchdog_interval is None
    finally:
        ns.close()


def test_fail__notify_socket_gone_is_one_message_not_a_crash(tmp_path, caplog):
    n = systemd.Notifier(str(tmp_path / "nobody-listens"))
    with caplog.at_level("WARNING"):
        assert n.ready() is False and n.watchdog() is False
    said = [r.getMessage() for r in caplog.records]
    assert sum("systemd notify socket" in m for m in said) == 1, said
    assert not any(r.exc_info for r in caplog.records)


def test_ok__journal_format_has_priorities_and_no_timestamp():
    record = logging.LogRecord("switchboard.telephony", logging.WARNING, __file__, 1,
                               "trunk %s: 403 Forbidden\nretrying in %d s", ("provider", 30), None)
    out = systemd.JournalFormatter().format(record)
    assert out == ("<4>switchboard.telephony: trunk provider: 403 Forbidden\n"
                   "<4>retrying in 30 s")
    assert [systemd.priority(lv) for lv in (logging.CRITICAL, logging.ERROR, logging.WARNING,
                                             logging.INFO, logging.DEBUG)] == [2, 3, 4, 6, 7]


def test_ok__a_logger_on_the_journal_writes_one_prefixed_line_per_line(tmp_path):
    stream = io.StringIO()
    log = logging.getLogger("switchboard.test-journal")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(systemd.journal_formatter())
    log.addHandler(handler)
    log.propagate = False
    try:
        log.setLevel(logging.DEBUG)
        log.info("ready: board desk")
        log.error("printer: no paper")
        log.debug("scan took 1 ms")
    finally:
        log.removeHandler(handler)
    assert stream.getvalue() == "<6>ready: board desk\n<3>printer: no paper\n<7>scan took 1 ms\n"


def test_ok__journal_stream_is_recognised_by_device_and_inode(tmp_path):
    f = open(tmp_path / "stream", "w")
    other = open(tmp_path / "other", "w")
    try:
        st = os.fstat(f.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert systemd.journal_stream(f, env)
        assert not systemd.journal_stream(other, env)       # stderr redirected elsewhere
        assert not systemd.journal_stream(f, {})
        assert not systemd.journal_stream(io.StringIO(), env)
    finally:
        f.close()
        other.close()


# -- the real daemon, as systemd starts it -----------------------------------------
def test_ok__daemon_says_ready_pets_the_watchdog_and_says_stopping(tmp_path):
    ns = NotifySocket(tmp_path / "notify")
    proc, out = start_daemon(tmp_path, ns, 400_000)       # a pet every 0.2 s
    try:
        wait_for(lambda: ns.pump() or ns.first("READY=1") or proc.poll() is not None, 30,
                 "READY=1")
        assert proc.poll() is None, out.text()
        t_ready, ready = ns.first("READY=1")
        assert out.when("switchboard: ready:") is not None, out.text()
        assert any(f.startswith("STATUS=ready: board desk (simulated)") for f in ready), ready
        ns.pump(2.0)
        pets = [t for t in ns.times("WATCHDOG=1") if t >= t_ready]
        gaps = sorted(b - a for a, b in zip(pets, pets[1:]))
        assert len(pets) >= 7, pets                     # 2 s at one every 0.2 s
        assert 0.1 <= gaps[len(gaps) // 2] <= 0.35, gaps
        proc.terminate()
        assert proc.wait(20) == 0, out.text()
        ns.pump()
        assert ns.first("STOPPING=1") is not None
        assert ns.first("STOPPING=1")[0] >= pets[-1]
    finally:
        stop(proc)
        ns.close()


def test_fail__a_stopped_daemon_stops_petting_and_a_resumed_one_starts_again(tmp_path):
    ns = NotifySocket(tmp_path / "notify")
    proc, out = start_daemon(tmp_path, ns, 400_000)
    try:
        wait_for(lambda: ns.pump() or ns.first("READY=1") or proc.poll() is not None, 30,
                 "READY=1")
        ns.pump(0.5)
        proc.send_signal(signal.SIGSTOP)               # frozen as a hung process would be
        ns.pump(0.1)                                   # what was already on its way
        t_stop = time.monotonic()
        ns.pump(1.5)
        assert [t for t in ns.times("WATCHDOG=1") if t > t_stop] == []
        proc.send_signal(signal.SIGCONT)
        t_cont = time.monotonic()
        ns.pump(1.0)
        assert len([t for t in ns.times("WATCHDOG=1") if t > t_cont]) >= 3
    finally:
        stop(proc)
        ns.close()


@contextmanager
def service_in_process(ns: NotifySocket, watchdog_usec: int | None = None, adapters=()):
    """The real daemon on the simulated desk board with ``adapters``, its loop in a thread,
    telling ``ns`` (closed after) as it would systemd; yields (loop, thread, [when its loop
    started])."""
    from firmware.config.board import find_board, load_board
    from firmware.app import choose_panel
    from firmware.runtime.daemon import Daemon

    board = load_board(find_board("desk"))
    panel, sim, _ = choose_panel(board, True, None)
    daemon = Daemon(board, panel, sim=sim)
    for adapter in adapters:
        daemon.add_adapter(adapter)
    service = systemd.ServiceNotifier(systemd.Notifier(ns.name, watchdog_usec), daemon)
    loop = asyncio.new_event_loop()
    started = []

    async def ready():
        started.append(time.monotonic())
        service.start()

    thread = threading.Thread(target=lambda: loop.run_until_complete(daemon.run(ready)), daemon=True)
    thread.start()
    try:
        yield loop, thread, started
    finally:
        loop.call_soon_threadsafe(lambda: (service.stopping(), daemon.stop()))
        thread.join(10)
        loop.close()
        panel.close()
        ns.close()


def test_fail__a_stuck_event_loop_stops_the_pets_while_its_threads_run_on(tmp_path):
    """The pets come from the daemon's asyncio loop, not from a thread of their own: a
    callback that blocks the loop stops them (so systemd would restart the daemon)."""
    ns = NotifySocket(tmp_path / "notify")
    with service_in_process(ns, 200_000) as (loop, thread, _):
        wait_for(lambda: ns.pump() or ns.first("READY=1"), 10, "READY=1")
        ns.pump(0.5)
        assert len(ns.times("WATCHDOG=1")) >= 4
        loop.call_soon_threadsafe(time.sleep, 1.5)     # the loop is stuck for 1.5 s
        ns.pump(0.15)
        t_stuck = time.monotonic()
        ns.pump(1.0)
        assert [t for t in ns.times("WATCHDOG=1") if t > t_stuck] == []
        assert thread.is_alive()
        ns.pump(1.0)                                   # the loop runs again: so do the pets
        assert len([t for t in ns.times("WATCHDOG=1") if t > t_stuck + 1.0]) >= 3


class Quick(Adapter):
    """An adapter that is ready once ``start`` returns: the protocol's defaults."""

    name = "quick"

    def commands(self):
        return []

    def start(self, context):
        pass

    def handle(self, command):
        pass

    def status(self):
        return {}

    def stop(self):
        pass


class SlowStart(Quick):
    """An adapter that starts in the background, as the telephony does (without its processes)."""

    name = "slow"

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.state = "stopped"
        self.done = threading.Event()

    def start(self, context):
        self.state = "starting"
        threading.Timer(self.seconds, self._started).start()

    def _started(self):
        self.state = "running"
        self.done.set()

    def phase(self):
        return self.state

    def wait_ready(self, timeout):
        self.done.wait(timeout)
        return self.state == "running"


def test_ok__ready_waits_for_an_adapter_still_starting(tmp_path):
    """READY=1 waits for each adapter whose phase is "starting" (by its wait_ready), and the
    status line names the adapters that report a phase; those with the defaults are ready
    at once and not named."""
    ns = NotifySocket(tmp_path / "notify")
    with service_in_process(ns, adapters=(Quick(), SlowStart(1.0))) as (_, _, started):
        wait_for(lambda: ns.pump() or ns.first("READY=1"), 10, "READY=1")
        t_ready, fields = ns.first("READY=1")
        assert t_ready - started[0] >= 0.9                 # not before the slow one ran
        assert ns.statuses()[0] == "starting: waiting for the slow"
        assert "waiting for the quick" not in " ".join(ns.statuses())
        status = next(f for f in fields if f.startswith("STATUS="))
        assert status.startswith("STATUS=ready: board desk (simulated), slow running, faults: "), status


@pytest.mark.telephony
def test_ok__ready_only_after_the_telephony_is_up(tmp_path):
    from telephony_support import have_tools
    have_tools()
    ns = NotifySocket(tmp_path / "notify")
    proc, out = start_daemon(tmp_path, ns, 2_000_000, "--site", "boards/desk.site.toml",
                             "--sip-port", "0")
    try:
        wait_for(lambda: ns.pump() or ns.first("READY=1") or proc.poll() is not None, 90,
                 "READY=1")
        assert proc.poll() is None, out.text()
        t_ready, ready = ns.first("READY=1")
        t_board = out.when("switchboard: ready:")
        t_tel = out.when("telephony ready")
        assert t_board is not None and t_tel is not None, out.text()
        assert t_board < t_tel < t_ready                # the panel first, then SIP, then READY
        assert "starting: waiting for the telephony" in ns.statuses()
        assert any("telephony running" in f for f in ready), ready
        status = ns.first("STATUS=starting: waiting for the telephony")
        assert status is not None and status[0] < t_ready
    finally:
        stop(proc, 30)
        ns.close()


# -- the unit ---------------------------------------------------------------------
def systemd_root(path: Path) -> Path:
    """A root holding systemd's own units (from this machine), for systemd-analyze --root."""
    units = Path("/lib/systemd/system")
    assert (units / "sysinit.target").is_file(), "systemd's units are not installed (scripts/setup.sh)"
    (path / "usr" / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree(units, path / "usr" / "lib" / "systemd" / "system", symlinks=True)
    for d in ("etc", "tmp"):
        (path / d).mkdir(exist_ok=True)
    (path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (path / "etc" / "group").write_text("root:x:0:\n")
    for f in ("shadow", "gshadow"):
        (path / "etc" / f).write_text("root:*:19000:0:99999:7:::\n" if f == "shadow" else "root:*::\n")
        (path / "etc" / f).chmod(0o640)
    return path


def verify(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}",
                           "/etc/systemd/system/switchboard.service"],
                          capture_output=True, text=True, timeout=60)


def install(root: Path, *args, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("SUDO_USER", None)
    r = subprocess.run(["bash", str(INSTALL), "--root", str(root), *map(str, args)],
                       capture_output=True, text=True, timeout=300, env=env)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def check_install(root: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CHECK), "--root", str(root), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """One install into a throwaway root: the desk board, its site file, printer and
    headset ports, the kiosk."""
    root = systemd_root(tmp_path_factory.mktemp("pi") / "root")
    r = install(root, "--board", "desk", "--site", ROOT / "boards" / "desk.site.toml",
                "--printer-usb", "1-1.2", "--headset-usb", "1=1-1.3", "--headset-usb", "2=1-1.4",
                "--kiosk")
    yield root, r.stdout
    shutil.rmtree(root.parent, ignore_errors=True)


def test_ok__the_unit_passes_systemd_analyze_verify(installed):
    root, _ = installed
    r = verify(root)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_fail__systemd_analyze_names_a_broken_unit(installed, tmp_path):
    root, _ = installed
    broken = tmp_path / "root"
    shutil.copytree(root / "usr" / "lib" / "systemd", broken / "usr" / "lib" / "systemd", symlinks=True)
    shutil.copytree(root / "etc", broken / "etc", symlinks=True)
    (broken / "opt" / "switchboard" / "venv" / "bin").mkdir(parents=True)
    shutil.copy2(root / "opt" / "switchboard" / "venv" / "bin" / "switchboard",
                 broken / "opt" / "switchboard" / "venv" / "bin" / "switchboard")
    unit = broken / "etc" / "systemd" / "system" / "switchboard.service"
    unit.write_text(unit.read_text().replace("Type=notify", "Type=notfy")
                    .replace("ProtectHome=yes", "ProtectHome=maybe"))
    out = verify(broken)
    assert "Failed to parse service type" in out.stderr and "protect home" in out.stderr, out.stderr


def test_ok__unit_is_a_sandboxed_notify_service():
    text = UNIT.read_text()
    lines = {ln.split("=", 1)[0]: ln.split("=", 1)[1] for ln in text.splitlines()
             if "=" in ln and not ln.startswith("#")}
    assert lines["Type"] == "notify" and lines["NotifyAccess"] == "main"
    assert int(lines["WatchdogSec"]) >= 10 and lines["Restart"] == "on-failure"
    assert lines["RuntimeDirectory"] == "switchboard" and lines["StateDirectory"] == "switchboard"
    assert lines["User"] == "switchboard" and lines["SupplementaryGroups"] == "gpio dialout audio"
    for key, value in (("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("NoNewPrivileges", "yes")):
        assert lines[key] == value
    # Device access stays by group: these would hide /dev/gpiochip*, the ttys, the sound cards.
    for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"):
        assert key not in lines
    # The daemon's own default for the control socket is the RuntimeDirectory's.
    assert "SWITCHBOARD_SOCKET" not in text and "/var/lib/switchboard" in lines["Environment"]


def test_ok__the_unit_blanks_the_lamps_after_the_daemon_however_it_ended(installed, tmp_path):
    """ExecStopPost= runs after the main process is gone, whatever ended it (systemd also runs
    it after SIGKILL and watchdog kills); the installed helper blanks the conf's board."""
    text = UNIT.read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("ExecStopPost=")]
    assert lines == ["ExecStopPost=-/opt/switchboard/venv/bin/switchboard-blank"], lines
    root, _ = installed
    conf = (root / "etc" / "switchboard" / "switchboard.conf").read_text()
    board = next(ln.split("=", 1)[1] for ln in conf.splitlines()
                 if ln.startswith("SWITCHBOARD_BOARD="))
    assert board, conf
    venv = root / "opt" / "switchboard" / "venv"
    r = subprocess.run(
        [str(venv / "bin" / "python"), str(venv / "bin" / "switchboard-blank")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "GPIOZERO_PIN_FACTORY": "mock",
             "PYTHONPATH": str(root / "opt" / "switchboard" / "src"),
             "SWITCHBOARD_BOARD": str(root) + board if board.startswith("/") else board,
             "LG_WD": "/run/switchboard"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.startswith("switchboard-blank: lamps dark: lamp fault on GPIO26, "), r.stderr


# -- the installer ----------------------------------------------------------------
def test_ok__installer_leaves_users_groups_files_owners_and_modes_right(installed):
    root, stdout = installed
    r = check_install(root, "--kiosk")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout and r.stdout.count("ok: ") >= 40, r.stdout
    assert "systemd is not running here" in stdout and "starts at the next boot" in stdout
    passwd = (root / "etc" / "passwd").read_text()
    assert "switchboard:x:" in passwd and ":/var/lib/switchboard:/usr/sbin/nologin" in passwd
    rules = (root / "etc" / "udev" / "rules.d" / "70-switchboard.rules").read_text()
    assert 'KERNELS=="1-1.4", ATTR{id}="headset2"' in rules
    conf = (root / "etc" / "switchboard" / "switchboard.conf").read_text()
    assert "SWITCHBOARD_PRINTER=/dev/switchboard-printer" in conf


@pytest.mark.telephony
def test_ok__the_installed_copy_runs_as_a_notify_service(installed, tmp_path):
    """The copy under /opt, started with the installed conf's environment and a notify
    socket, says READY=1 (telephony up), pets the watchdog and says STOPPING=1.
    It runs as root here: this machine's Python lives under /root, which the switchboard
    user may not enter; on a Pi and in the emulated root, check-install.sh --run runs it
    as the switchboard user."""
    from telephony_support import have_tools
    have_tools()
    root, _ = installed
    py = root / "opt" / "switchboard" / "venv" / "bin" / "python"
    r = subprocess.run(
        [str(py), str(ROOT / "scripts" / "service" / "notify_probe.py"), "--uid", "0", "--gid", "0",
         "--conf", "/etc/switchboard/switchboard.conf", "--prefix", str(root), "--timeout", "90",
         "--", str(py), "-m", "firmware", "--sim", "--web-port", "0",
         "--socket", str(tmp_path / "control.sock"), "--data-dir", str(tmp_path / "data"),
         "--sip-port", "0"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "READY=1 STATUS=ready: board desk (simulated), telephony running" in r.stdout, r.stdout
    assert "STOPPING=1, then exit status 0" in r.stdout


def test_ok__installer_again_keeps_settings_then_uninstall_and_purge(tmp_path):
    root = systemd_root(tmp_path / "root")
    site = tmp_path / "my.site.toml"
    site.write_text((ROOT / "boards" / "desk.site.toml").read_text())
    install(root, "--site", site)
    conf = root / "etc" / "switchboard" / "switchboard.conf"
    conf.write_text(conf.read_text().replace("SWITCHBOARD_OPTS=", "SWITCHBOARD_OPTS=\"--operator 1=Becky\""))
    (root / "etc" / "switchboard" / "my.site.toml").chmod(0o644)       # loosened by hand
    (root / "var" / "lib" / "switchboard" / "slips.json").write_text("{}")
    passwd = (root / "etc" / "passwd").read_text()
    again = install(root)
    assert "created" not in again.stdout                                   # nothing new
    assert (root / "etc" / "passwd").read_text() == passwd
    assert 'SWITCHBOARD_OPTS="--operator 1=Becky"' in conf.read_text()
    assert "SWITCHBOARD_SITE=/etc/switchboard/my.site.toml" in conf.read_text()
    r = check_install(root)
    assert r.returncode == 0, r.stdout                                     # 0600 again
    assert not (root / "etc" / "xdg" / "autostart" / "switchboard-kiosk.desktop").exists()

    install(root, "--uninstall")
    r = check_install(root, "--uninstalled")
    assert r.returncode == 0, r.stdout
    assert (root / "var" / "lib" / "switchboard" / "slips.json").exists()
    install(root)                                                          # back again
    assert check_install(root).returncode == 0
    install(root, "--uninstall", "--purge")
    r = check_install(root, "--purged")
    assert r.returncode == 0, r.stdout
    assert "gpio:" in (root / "etc" / "group").read_text()
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("args, message", [
    (["--board", "nosuch"], "--board nosuch: no such file"),
    (["--site", "/nonexistent.site.toml"], "--site /nonexistent.site.toml: no such file"),
    (["--headset-usb", "3=1-1.2"], "expected POSITION=PORT with position 1 or 2"),
    (["--printer-usb", "usb0"], "SWITCHBOARD_PRINTER_USB=usb0: expected a USB port such as 1-1.2"),
    (["--purge"], "--purge goes with --uninstall"),
    (["--frobnicate"], "unknown option --frobnicate"),
])
def test_fail__installer_says_what_is_wrong_in_one_line(tmp_path, args, message):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    r = install(root, *args, check=False)
    assert r.returncode != 0
    assert message in r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert os.listdir(root) == ["etc"] and os.listdir(root / "etc") == []  # nothing changed


# -- the kiosk ----------------------------------------------------------------------
def test_ok__kiosk_autostart_entry_is_valid_and_opens_the_view(tmp_path):
    r = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    entry = DESKTOP.read_text()
    assert "Exec=/opt/switchboard/bin/switchboard-kiosk" in entry
    # The launcher waits for the real daemon's view, then runs the browser full screen on it.
    # There is no display here: a "chromium" on PATH records how it was called.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "chromium").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/chromium.args\n")
    (bindir / "chromium").chmod(0o755)
    proc = subprocess.Popen(
        python_cmd("firmware.runtime.daemon", "--sim", "--web-port", "0", "--socket",
                   tmp_path / "control.sock", "--data-dir", tmp_path / "var"),
        env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split("view ", 1)[1].strip()
        env = {"PATH": f"{bindir}:/usr/bin:/bin", "SWITCHBOARD_KIOSK_URL": url}
        r = subprocess.run(["sh", str(ROOT / "scripts" / "service" / "switchboard-kiosk")],
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        args = (tmp_path / "chromium.args").read_text().split()
        assert args[0] == "--kiosk" and args[-1] == url and "--noerrdialogs" in args
    finally:
        stop(proc)
