"""How long the hardware tools take, beside a baseline measured in the same run.

    python benchmarks/hardware_bench.py

- the bench self-test's raw read of every input of the TAS-100 (152 chain bits and the
  free header pins), against the daemon's own chain scan (``Panel.scan``) on the same
  simulated board: the self-test polls at this rate while it waits for a key;
- a whole bench self-test of the simulated TAS-100 (216 lamps, 147 keys);
- ``switchboard-hardware generate`` for both shipped boards (tables, Graphviz picture),
  against loading the two board files alone.

Figures are from gpiozero's MockFactory with simulated chips, so they measure the code,
not a Pi's pins; on a Pi the pins' own speed adds to both sides.
"""

import tempfile
import time
from pathlib import Path

from firmware.config.board import load_board
from firmware.panel.gpio import Panel
from firmware.panel.sim import SimBoard
from switchboard_tools.hardware import cli
from switchboard_tools.hardware.selftest import Bench, SelfTest, SimTechnician

ROOT = Path(__file__).resolve().parent.parent


def per_call(fn, n):
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main():
    tas = load_board(ROOT / "boards" / "tas100.toml")
    sim = SimBoard(tas)
    panel = Panel(tas, pin_factory=sim.factory)
    panel.on_key = lambda *a: None
    try:
        base = per_call(panel.scan, 200)
    finally:
        panel.close()
    bench = Bench(tas, pin_factory=sim.factory)
    try:
        raw = per_call(bench.inputs, 200)
    finally:
        bench.close()
    print(f"{'TAS-100 raw read of every input (self-test)':<52} {raw * 1e3:8.2f} ms")
    print(f"{'  baseline: the daemon chain scan (Panel.scan)':<52} {base * 1e3:8.2f} ms")

    sim = SimBoard(tas)
    bench = Bench(tas, pin_factory=sim.factory)
    try:
        t = time.perf_counter()
        report = SelfTest(tas, bench, SimTechnician(sim), key_timeout_s=0.05,
                          sleep=lambda s: None).run()
        whole = time.perf_counter() - t
    finally:
        bench.close()
    assert report.ok
    print(f"{'TAS-100 whole bench self-test, simulated':<52} {whole:8.2f} s "
          f"({len(report.lamps)} lamps, {len(report.keys)} keys)")

    paths = [ROOT / "boards" / f"{n}.toml" for n in ("desk", "tas100")]
    t = time.perf_counter()
    boards = [load_board(p) for p in paths]
    load = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        for b in boards:
            cli.generate(b, Path(d))
        gen = time.perf_counter() - t
    print(f"{'generate tables + wiring SVG, desk and tas100':<52} {gen:8.2f} s")
    print(f"{'  baseline: loading both board files':<52} {load:8.2f} s")


if __name__ == "__main__":
    main()
