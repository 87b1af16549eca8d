#!/usr/bin/env python3
"""Benchmark of the board daemon on gpiozero's MockFactory, each figure beside a
baseline measured in the same run.

1. Key edge to lamp change: a line rings, its key's mock pin is driven (a direct
   key on the desk board; a 74HC165 chain input read by the scanner thread on the
   TAS-100) and the time until its lamp lights (the direct lamp pin; the
   74HC595 chain's latched output) is taken through the daemon's real path:
   Panel callback -> Daemon.post -> BoardState -> SetLamp -> Panel -> pin.
   Baselines: a bare gpiozero ``Button`` whose ``when_pressed`` is ``led.on``,
   and the same with the ``led.on`` handed to an asyncio loop on another
   thread (the cheapest form of the daemon's design), on the same factory.
2. The daemon process's CPU share (``/proc/<pid>/stat`` utime+stime) on the
   TAS-100 idle, and with all 115 line lamps flashing (every line ringing).
3. Its resident memory (VmRSS) idle and flashing, beside a bare Python process
   that imports gpiozero and asyncio and builds a MockFactory.
4. One scan of the TAS-100's chains (every key bit in, every lamp bit out) on
   each driver side by side: bit-banged at the board file's clock_hz, bit-banged
   as fast as the pins go, and SPI0 (one full-duplex transfer, on SimSpiDev).

Run from the repository root: ``python benchmarks/board.py`` (about a minute).
``--presses N`` and ``--seconds S`` trade time for precision.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Measure this checkout's code, not whatever copy may be installed.
sys.path[:0] = [str(ROOT), str(ROOT / "host-tools")]

from gpiozero import LED, Button                                    # noqa: E402

from firmware.config.board import find_board, load_board               # noqa: E402
from firmware.runtime.daemon import Daemon                                   # noqa: E402
from firmware.panel.gpio import Panel                                      # noqa: E402
from firmware.panel.sim import SimBoard, WatchedPin                        # noqa: E402
from firmware.core.state import (FLASH_ON, FLASH_PERIOD, LineCleared,     # noqa: E402
                            LineRinging, LineState)
from switchboard_tools.diag import Client                           # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- helpers ---------------------------------------------------------------
class LampWatch:
    """One lamp's level as the hardware shows it, and when it last changed."""

    def __init__(self, lit=False):
        self.lit = lit
        self.when = None          # perf_counter() of the last change
        self.when_mono = None     # the daemon's clock at that change
        self.changed = threading.Event()

    def set(self, lit):
        if lit != self.lit:
            self.when = time.perf_counter()
            self.when_mono = time.monotonic()
            self.lit = lit
            self.changed.set()

    def wait_for(self, lit, timeout=2.0) -> bool:
        deadline = time.perf_counter() + timeout
        while self.lit != lit:
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self.changed.wait(left)
            self.changed.clear()
        return True


def watch_lamps(sim: SimBoard, lamps) -> dict[str, LampWatch]:
    """Hook the lamps' pins (direct) or their 74HC595's latch (chained).

    Must run before the Panel claims the pins, as SimBoard's chips do.
    """
    watches = {}
    chained: dict[str, list] = {}
    for name in lamps:
        w = sim.board.lamps[name].wire
        watch = watches[name] = LampWatch()
        if w.chain:
            chained.setdefault(w.chain, []).append((w.bit, w.active_low, watch))
        else:
            sim.factory.pin(w.pin, pin_class=WatchedPin,
                            on_change=lambda level, a=w.active_low, lw=watch: lw.set(level != a))
    for chain, bits in chained.items():
        chip = sim.out_chips[chain]
        latch = sim.factory.pin(chip.chain.pins["latch"])

        def on_latch(high, chip=chip, bits=bits):   # after the chip's own listener
            if high:
                for bit, active_low, watch in bits:
                    watch.set(chip.outputs[bit] != active_low)
        latch.listeners.append(on_latch)
    return watches


def key_driver(sim: SimBoard, key):
    """A function(down) that only drives the key's input, as SimBoard.set_key does,
    with the pin looked up beforehand: the timing starts at the edge itself."""
    w = sim.board.keys[key].wire
    if w.chain:
        inputs = sim.in_chips[w.chain].inputs
        return lambda down: inputs.__setitem__(w.bit, down != w.active_low)
    pin = sim.factory.pin(w.pin)
    return lambda down: pin.drive_high() if down != w.active_low else pin.drive_low()


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def free_pins(factory, n):
    used = {info.name for info in factory.pins}
    free = [f"GPIO{i}" for i in range(4, 28) if f"GPIO{i}" not in used]
    return free[:n]


class RunningDaemon:
    """A Daemon on its own thread (MockFactory callbacks run in the caller's thread)."""

    def __init__(self, board_name, watch):
        self.board = load_board(find_board(board_name))
        self.sim = SimBoard(self.board)
        self.watches = watch_lamps(self.sim, watch)
        self.panel = Panel(self.board, pin_factory=self.sim.factory)
        self.daemon = Daemon(self.board, self.panel, sim=self.sim)
        ready = threading.Event()

        async def on_ready():
            ready.set()
        self.thread = threading.Thread(target=asyncio.run, args=(self.daemon.run(on_ready),),
                                       name="daemon-loop", daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"the {board_name} daemon did not start")

    def call(self, fn):
        """Run fn() on the daemon's loop and return its result."""
        fut = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(fn())
            except BaseException as e:       # hand it to the caller
                fut.set_exception(e)
        self.daemon.loop.call_soon_threadsafe(run)
        return fut.result(timeout=5)

    def close(self):
        self.daemon.loop.call_soon_threadsafe(self.daemon.stop)
        self.thread.join(5)
        self.panel.close()


# -- 1. key edge to lamp change -----------------------------------------------
def daemon_latency(board_name, presses, budget_s):
    """Answer ringing lines by their keys; time each key edge to the lamp lighting.

    A ringing lamp flashes, so a press is only timed in the dark half of the
    interrupter's cycle, when answering (steady) turns the lamp from dark to lit.
    Each press comes at a random moment of the scan period, as a finger's would.
    Returns the edge-to-lamp times, the key-reported-to-lamp times (after the
    scanner has read the key: the daemon's own part), and the untimed count.
    """
    board = load_board(find_board(board_name))
    lines = [ln for ln in board.lines]
    rd = RunningDaemon(board_name, [ln.lamp for ln in lines])
    d = rd.daemon
    debounce = board.debounce_ms / 1000.0
    rng = random.Random(557)
    reported = {}
    on_key = rd.panel.on_key

    def timed_on_key(name, down):            # the Panel calls on_key for every key edge
        if down:
            reported.setdefault(name, time.perf_counter())
        on_key(name, down)
    rd.panel.on_key = timed_on_key
    try:
        def ring_all():
            for ln in lines:
                d.handle(LineRinging(ln.number, "bench"))
        rd.call(ring_all)
        ready_at = {ln.number: 0.0 for ln in lines}
        drive = {ln.number: key_driver(rd.sim, ln.key) for ln in lines}
        samples, after_read, skipped = [], [], 0
        end = time.monotonic() + budget_s
        i = 0
        while len(samples) < presses and time.monotonic() < end:
            ln = lines[i % len(lines)]
            i += 1
            # The same key again only once its last release is past the debounce.
            wait = ready_at[ln.number] - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            # Press early in the dark half: a lamp up to 0.2 s slow is still timed.
            phase = time.monotonic() % FLASH_PERIOD
            if not FLASH_ON + 0.01 <= phase < FLASH_PERIOD - 0.2:
                time.sleep((FLASH_ON + 0.01 - phase) % FLASH_PERIOD)
            watch = rd.watches[ln.lamp]
            if not watch.wait_for(False, 0.2):
                skipped += 1
                continue
            time.sleep(rng.uniform(0, board.scan_ms / 1000.0))
            watch.changed.clear()
            reported.pop(ln.key, None)
            t0 = time.perf_counter()
            m0 = time.monotonic()
            drive[ln.number](True)
            lit = watch.wait_for(True, 2.0)
            drive[ln.number](False)
            ready_at[ln.number] = time.monotonic() + 2 * debounce + 0.005

            def recycle(number=ln.number):
                before = d.state.lines[number].state
                d.handle(LineCleared(number, "bench"))
                d.handle(LineRinging(number, "bench"))
                return before
            before = rd.call(recycle)
            # Timed only if the press answered the line and no flash edge came between.
            if lit and before is LineState.OPERATOR and \
                    int(watch.when_mono // FLASH_PERIOD) == int(m0 // FLASH_PERIOD) and \
                    watch.when_mono % FLASH_PERIOD >= FLASH_ON:
                samples.append(watch.when - t0)
                after_read.append(watch.when - reported[ln.key])
            else:
                skipped += 1
    finally:
        rd.close()
    return samples, after_read, skipped


def baseline_latency(board_name, presses, hop):
    """Bare gpiozero Button -> LED on the board's own MockFactory (pins it leaves free)."""
    board = load_board(find_board(board_name))
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory)
    key_pin, lamp_pin = free_pins(sim.factory, 2)
    watch = LampWatch()
    sim.factory.pin(lamp_pin, pin_class=WatchedPin, on_change=lambda level: watch.set(bool(level)))
    button = Button(key_pin, pin_factory=sim.factory)
    led = LED(lamp_pin, pin_factory=sim.factory)
    loop = thread = None
    if hop:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        button.when_pressed = lambda: loop.call_soon_threadsafe(led.on)
        button.when_released = lambda: loop.call_soon_threadsafe(led.off)
    else:
        button.when_pressed = led.on
        button.when_released = led.off
    pin = sim.factory.pin(key_pin)
    samples = []
    try:
        for _ in range(presses):
            watch.changed.clear()
            t0 = time.perf_counter()
            pin.drive_low()                  # pressed: the pull-up is pulled to ground
            if watch.wait_for(True, 2.0):
                samples.append(watch.when - t0)
            pin.drive_high()
            watch.wait_for(False, 2.0)
    finally:
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(2)
            loop.close()
        button.close()
        led.close()
        panel.close()
    return samples


# -- 2, 3. the daemon process -------------------------------------------------
def proc_cpu_s(pid, tid=None) -> float:
    """CPU seconds (utime + stime) of a process, or of one of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_share(pid, seconds) -> tuple[float, float]:
    """Share of one core used by the process, and by its main thread (the asyncio loop)."""
    c0, m0, t0 = proc_cpu_s(pid), proc_cpu_s(pid, pid), time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    return (proc_cpu_s(pid) - c0) / wall, (proc_cpu_s(pid, pid) - m0) / wall


def wait_line(proc, word, timeout):
    """Read proc's stdout until a line contains word; give up after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = []
        reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        if not got or not got[0]:
            break
        if word in got[0]:
            return
    raise RuntimeError(f"no {word!r} line from {' '.join(map(str, proc.args))}")


def daemon_process(seconds, tmp):
    env = dict(os.environ, SWITCHBOARD_SOCKET=str(Path(tmp) / "run" / "control.sock"),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "host-tools")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware.runtime.daemon", "--sim", "--board", "tas100", "--no-web",
         "--data-dir", str(Path(tmp) / "var")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp)
    out = {}
    try:
        wait_line(proc, "ready", 20)
        client = Client(env["SWITCHBOARD_SOCKET"])
        status = client.call("status")
        lit = sum(1 for v in status["lamps"].values() if v["lit"])
        time.sleep(1.0)                       # let start-up settle
        out["rss_start"] = proc_rss_kib(proc.pid)
        out["cpu_idle"] = cpu_share(proc.pid, seconds)
        out["rss_idle"] = proc_rss_kib(proc.pid)
        out["lit_idle"] = lit
        for ln in status["lines"]:
            client.call("ring", line=ln["number"])
        status = client.call("status")
        out["flashing"] = sum(1 for v in status["lamps"].values() if v["cadence"] == "flash")
        out["lamps"] = len(status["lamps"])
        time.sleep(1.0)
        out["cpu_flash"] = cpu_share(proc.pid, seconds)
        out["rss_flash"] = proc_rss_kib(proc.pid)
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out


BARE = ("import sys, asyncio, gpiozero\n"
        "from gpiozero.pins.mock import MockFactory\n"
        "f = MockFactory(revision='c03114')\n"
        "async def main():\n"
        "    print('ready', flush=True)\n"
        "    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)\n"
        "asyncio.run(main())\n")


def bare_process(seconds):
    proc = subprocess.Popen([sys.executable, "-c", BARE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        wait_line(proc, "ready", 20)
        time.sleep(0.5)
        cpu, _ = cpu_share(proc.pid, seconds)
        return cpu, proc_rss_kib(proc.pid)
    finally:
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- 4. the chains -------------------------------------------------------------
def spi_board_file(tmp: str) -> Path:
    """The TAS-100 wired for driver = "spi" (its lamp clock moved to SCLK)."""
    text = find_board("tas100").read_text()
    text = text.replace('driver = "bitbang"', 'driver = "spi"').replace(
        'clock = "GPIO21"', 'clock = "GPIO11"')
    path = Path(tmp) / "tas100-spi.toml"
    path.write_text(text)
    return path


def no_clock_hz_file(tmp: str) -> Path:
    """The TAS-100 bit-banged as fast as the pins go (no clock_hz)."""
    text = "\n".join(ln for ln in find_board("tas100").read_text().splitlines()
                     if not ln.startswith("clock_hz"))
    path = Path(tmp) / "tas100-fast.toml"
    path.write_text(text)
    return path


def chain_times(path, n=200):
    """Median seconds of a key read, a lamp write and a whole scan (both) on one driver."""
    board = load_board(path)
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    try:
        bits = [i % 3 == 0 for i in range(board.chains["lamps"].bits)]
        for i, b in enumerate(bits):
            panel._registers["lamps"][i] = b
        reads, writes, scans = [], [], []
        for _ in range(n):
            if panel._spi is None:
                inc, outc = panel._in_chains["keys"], panel._out_chains["lamps"]
                t = time.perf_counter()
                inc.read_stream()
                t1 = time.perf_counter()
                outc.write(bits)
                t2 = time.perf_counter()
                reads.append(t1 - t)
                writes.append(t2 - t1)
                scans.append(t2 - t)
            else:
                t = time.perf_counter()
                panel._spi.transfer(bits)      # keys in, lamps out: one transfer
                scans.append(time.perf_counter() - t)
        chip = sim.out_chips["lamps"]
        assert chip.outputs == bits, "the 74HC595 chain did not latch what was written"
        def med(v):
            return statistics.median(v) if v else None
        return board, med(reads), med(writes), med(scans)
    finally:
        panel.close()


# -- the report ------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presses", type=int, default=500, help="timed key presses per board")
    ap.add_argument("--seconds", type=float, default=10.0, help="each CPU sample's length")
    args = ap.parse_args(argv)
    if not 10 <= args.presses <= 5000 or not 1 <= args.seconds <= 60:
        ap.error("--presses is 10 to 5000 and --seconds 1 to 60")

    started = time.monotonic()
    print(f"switchboard board benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          "gpiozero MockFactory", flush=True)
    print("load average before the run: %.2f %.2f %.2f (other work on the machine skews "
          "the figures)" % os.getloadavg(), flush=True)

    rows = []
    for name, kind in (("desk", "direct key pin -> direct lamp pin"),
                       ("tas100", "74HC165 scan -> 74HC595 latch")):
        samples, after_read, skipped = daemon_latency(name, args.presses, budget_s=25)
        rows.append((f"daemon, {name}: {kind}", samples, skipped))
        rows.append(("  of which: key reported by the Panel -> lamp", after_read, 0))
        rows.append((f"  baseline on the {name} factory: Button -> LED",
                     baseline_latency(name, max(args.presses, 2000), hop=False), 0))
        rows.append((f"  baseline on the {name} factory: Button -> loop thread -> LED",
                     baseline_latency(name, max(args.presses, 2000), hop=True), 0))
    print("\n1. Key edge to lamp change (answering a ringing line), milliseconds")
    print(f"   {'path':<66} {'n':>5} {'median':>8} {'p99':>8} {'max':>8}")
    for label, s, skipped in rows:
        if not s:
            print(f"   {label:<66} {0:>5}  (no samples)")
            continue
        note = f"  ({skipped} untimed)" if skipped else ""
        print(f"   {label:<66} {len(s):>5} {statistics.median(s) * 1e3:>8.3f} "
              f"{pct(s, 99) * 1e3:>8.3f} {max(s) * 1e3:>8.3f}{note}")

    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        chains = [("bit-bang, clock_hz = 50000 (the shipped file)", chain_times(find_board("tas100"))),
                  ("bit-bang, no clock_hz (as fast as the pins go)",
                   chain_times(no_clock_hz_file(tmp))),
                  ("SPI0, one full-duplex transfer (SimSpiDev)", chain_times(spi_board_file(tmp)))]
        d = daemon_process(args.seconds, tmp)
    bare_cpu, bare_rss = bare_process(min(args.seconds, 3.0))

    print(f"\n2. CPU share of the tas100 daemon process ({args.seconds:.0f} s each), "
          "% of one core")
    print(f"   {'':<52} {'process':>8} {'loop thread':>12} {'scanner':>8}")
    print(f"   {'bare python + gpiozero + asyncio, idle loop':<52} {bare_cpu * 100:>8.2f}")
    for label, (total, loop) in (
            ("daemon idle (all lamps dark)", d["cpu_idle"]),
            (f"daemon, all lines ringing ({d['flashing']} lamps flashing)", d["cpu_flash"])):
        print(f"   {label:<52} {total * 100:>8.2f} {loop * 100:>12.2f} "
              f"{(total - loop) * 100:>8.2f}")
    print("   (scanner: the chains' thread, which on MockFactory also runs the simulated "
          "74HC165/595 chips)")

    print("\n3. Resident memory (VmRSS), MiB")
    print(f"   {'bare python + gpiozero + asyncio + MockFactory':<52} {bare_rss / 1024:>6.1f}")
    print(f"   {'daemon just started':<52} {d['rss_start'] / 1024:>6.1f}")
    print(f"   {f'daemon idle, after {args.seconds:.0f} s':<52} {d['rss_idle'] / 1024:>6.1f}")
    print(f"   {f'daemon flashing, {args.seconds:.0f} s later':<52} {d['rss_flash'] / 1024:>6.1f}")

    board = chains[0][1][0]
    keys, lamps = board.chains["keys"], board.chains["lamps"]
    print(f"\n4. One scan of the tas100 chains on MockFactory with the simulated chips: "
          f"{keys.bits} key bits + {keys.marker_bits} marker bits in, {lamps.bits} lamp bits "
          "out; median of 200, milliseconds")
    print(f"   {'driver':<50} {'keys in':>8} {'lamps out':>10} {'scan':>8} "
          f"{'% of ' + str(board.scan_ms) + ' ms':>9}")
    def cell(v):
        return f"{v * 1e3:.3f}" if v is not None else "-"
    for label, (_, r, w, sc) in chains:
        print(f"   {label:<50} {cell(r):>8} {cell(w):>10} {sc * 1e3:>8.3f} "
              f"{sc * 1e3 / board.scan_ms * 100:>8.1f}%")
    wire = (keys.bits + keys.marker_bits + lamps.bits) / keys.clock_hz
    spi_bits = 8 * -(-max(keys.bits + keys.marker_bits, lamps.bits) // 8)
    print(f"   (on the wires: bit-bang at {keys.clock_hz} Hz clocks "
          f"{keys.bits + keys.marker_bits} + {lamps.bits} bits, at least {wire * 1e3:.1f} ms; "
          f"SPI clocks {spi_bits} bits once, {spi_bits / keys.clock_hz * 1e3:.1f} ms at "
          f"{keys.clock_hz} Hz, {spi_bits / 1e6 * 1e3:.2f} ms at 1 MHz. On MockFactory the "
          "SPI time is the simulated chips answering each edge, not the wire.)")
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
