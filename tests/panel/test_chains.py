"""The chains' checks on the simulated board, each fault caused on purpose.

Every test here runs on both chain drivers (``driver`` fixture): the bit-banged
pins and SPI0 through ``SimSpiDev``, which drives the same simulated chips.
"""

import sys
import time

import pytest

from firmware.config.board import find_board, load_board
from firmware.panel.gpio import (Panel, PanelError, ShiftInChain, decode_keys, marker_fault)
from firmware.panel.sim import SimBoard

from board_support import request, running, wait_until
from chain_boards import DRIVERS, tas100_path


@pytest.fixture(params=DRIVERS)
def tas100(request, tmp_path):
    """(board, path): the TAS-100 on each chain driver in turn."""
    path = tas100_path(request.param, tmp_path)
    return load_board(path), path


@pytest.fixture
def tas100_spi(tmp_path):
    """The TAS-100 wired for SPI0."""
    return load_board(tas100_path("spi", tmp_path))


class Recorder:
    """on_key and on_fault for a Panel: what it reported, in order."""

    def __init__(self):
        self.keys = []
        self.faults = []

    def key(self, name, down):
        self.keys.append((name, down))

    def fault(self, source, message):
        self.faults.append((source, message))

    @property
    def fault_now(self):
        return self.faults[-1][1] if self.faults else None


@pytest.fixture
def bench(tas100):
    """(board, sim, panel, recorder): a TAS-100 panel scanned by hand (no thread)."""
    board, _ = tas100
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    rec = Recorder()
    panel.on_key, panel.on_fault = rec.key, rec.fault
    try:
        yield board, sim, panel, rec
    finally:
        panel.close()


def scans(panel, n):
    for _ in range(n):
        panel.scan()


# -- OE: dark at power-up, until the first full write, lit after, dark after close ----

def test_ok__oe_keeps_the_lamps_dark_until_the_first_full_write_and_after_close(tas100):
    board, _ = tas100
    sim = SimBoard(board)
    chip = sim.out_chips["lamps"]
    # Power-up: the registers woke with random bits, but OE's pull-up keeps them dark.
    assert any(chip.outputs)
    assert not sim.lamps_enabled and not any(sim.lamp_lit(n) for n in board.lamps)
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    try:
        # The Panel has written a dark pattern with OE still high: nothing is enabled.
        assert not any(chip.outputs) and chip.latches >= 1
        assert sim.oe_pin.function == "output" and sim.oe_duty == 0.0
        panel.set_lamp("line-201", True)
        assert not sim.lamp_lit("line-201")          # not written, and OE still high
        latches = chip.latches
        panel.start(lambda *a: None)
        # start() writes the whole pattern before it lets OE ramp up.
        assert chip.latches > latches and chip.outputs[board.lamps["line-201"].wire.bit]
        assert wait_until(lambda: sim.oe_duty == pytest.approx(board.brightness), 5)
        assert sim.lamp_lit("line-201")
        assert not sim.lamp_lit("line-202")
    finally:
        panel.close()
    # Closed: the outputs still hold line 201's bit, but OE is back to its pull-up.
    assert chip.outputs[board.lamps["line-201"].wire.bit]
    assert sim.oe_pin.function == "input"
    assert not sim.lamps_enabled and not sim.lamp_lit("line-201")


def test_ok__oe_soft_start_ramps_to_the_brightness(tmp_path):
    text = find_board("tas100").read_text().replace("brightness = 1.0", "brightness = 0.4")
    path = tmp_path / "dim.toml"
    path.write_text(text.replace("soft_start_ms = 250", "soft_start_ms = 400"))
    board = load_board(path)
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory)
    try:
        sim.oe_pin.clear_states()
        t0 = time.monotonic()
        panel.start(lambda *a: None)
        assert wait_until(lambda: sim.oe_duty == pytest.approx(0.4), 5)
        took = time.monotonic() - t0
        # OE is active low: the pin's duty is 1 - the lamps' duty, stepping down.
        duties = [1.0 - float(s.state) for s in sim.oe_pin.states]
        assert duties[-1] == pytest.approx(0.4)
        assert all(b >= a - 1e-9 for a, b in zip(duties, duties[1:]))   # only ever up
        assert len([d for d in duties if 0 < d < 0.4]) >= 3           # in steps, not at once
        assert took >= 0.4 * 0.9                                       # over soft_start_ms
        assert max(duties) == pytest.approx(0.4)                       # never past brightness
    finally:
        panel.close()
    assert sim.oe_duty == 0.0


# -- marker bits ---------------------------------------------------------------------

def test_ok__marker_read_on_every_scan(bench):
    board, sim, panel, rec = bench
    chain = board.chains["keys"]
    scans(panel, 3)
    assert panel._in_chains["keys"].marker == chain.marker == 0xA5
    assert rec.faults == [] and panel.faults == {}


@pytest.mark.parametrize("fault,expected", [
    (lambda sim: sim.unplug_chain("keys"), "marker read 0xFF, expected 0xA5: cable unplugged"),
    (lambda sim: sim.unplug_chain("keys", data_level=False), "marker read 0x00"),
    (lambda sim: sim.stick_data("keys", True), "marker read 0xFF"),
    (lambda sim: sim.stick_data("keys", False), "data line stuck low"),
    (lambda sim: sim.double_clock("keys", times=10**6), "shifted by one bit"),
    (lambda sim: sim.short_chain("keys", 12), "marker read 0xFF"),
])
def test_fail__key_chain_fault_lights_the_fault_naming_the_chain_and_presses_nothing(
        bench, fault, expected):
    board, sim, panel, rec = bench
    scans(panel, 2)
    sim.press("line-250")                    # a key really down while the chain fails
    fault(sim)
    scans(panel, 5)
    assert rec.faults[-1][0] == "panel"
    assert rec.fault_now.startswith("key chain 'keys': ") and expected in rec.fault_now
    assert rec.keys == []                    # nothing from a bad scan is believed
    assert panel.bad_scans >= 5
    # Fixed: the fault clears, and the key that was down all along is reported once.
    sim.repair_chain("keys")
    sim.short_chain("keys", board.chains["keys"].chips)
    scans(panel, 2)
    assert rec.fault_now is None and panel.faults == {}
    assert rec.keys == [("line-250", True)]


def test_fail__one_doubled_clock_edge_throws_that_scan_away(bench):
    board, sim, panel, rec = bench
    scans(panel, 2)
    sim.press("p1-hold")
    sim.double_clock("keys", times=1)         # one ringing edge in the next scan only
    panel.scan()
    assert "shifted by one bit" in rec.fault_now and rec.keys == []
    panel.scan()                              # a good scan, but only one: not believed yet
    assert rec.fault_now is None and rec.keys == []
    panel.scan()
    assert rec.keys == [("p1-hold", True)]


def test_ok__marker_fault_words():
    chain = load_board(find_board("tas100")).chains["keys"]
    assert marker_fault(chain, 0xA5) is None
    assert "0x4A" in marker_fault(chain, 0x4A) and "shifted" in marker_fault(chain, 0x4A)
    assert "shifted" in marker_fault(chain, 0x52)          # a lost edge
    assert "a chip missing" in marker_fault(chain, 0x12)
    bits, marker = decode_keys(chain, [True] * chain.bits + [True, False, True, False,
                                                             False, True, False, True])
    assert marker == 0xA5 and bits == [True] * chain.bits


# -- two-scan agreement --------------------------------------------------------------

def test_ok__a_single_noisy_scan_neither_answers_nor_releases(bench):
    board, sim, panel, rec = bench
    scans(panel, 2)
    bit = board.keys["line-201"].wire.bit
    chip = sim.in_chips["keys"]
    # A glitch in one scan: the input reads pressed, then released again.
    chip.inputs[bit] = False
    panel.scan()
    chip.inputs[bit] = True
    scans(panel, 3)
    assert rec.keys == []
    # Held for two scans: pressed.
    sim.press("line-201")
    panel.scan()
    assert rec.keys == []
    panel.scan()
    assert rec.keys == [("line-201", True)]
    # A one-scan drop-out while held does not release it.
    chip.inputs[bit] = True
    panel.scan()
    chip.inputs[bit] = False
    scans(panel, 3)
    assert rec.keys == [("line-201", True)]
    sim.release("line-201")
    scans(panel, 2)
    assert rec.keys == [("line-201", True), ("line-201", False)]


def test_ok__a_key_down_at_start_is_read_from_two_agreeing_scans(tas100):
    board, _ = tas100
    sim = SimBoard(board)
    sim.press("p2-release")
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    try:
        assert panel.keys_down() == {"p2-release"}
    finally:
        panel.close()


# -- the lamp chain's loop-back ------------------------------------------------------

@pytest.mark.parametrize("fault,expected", [
    (lambda sim: sim.unplug_chain("lamps"), "reads high"),
    (lambda sim: sim.stick_data("lamps", False), "reads low"),
    (lambda sim: sim.stick_data("lamps", True), "reads high"),
    (lambda sim: sim.double_clock("lamps", times=10**6), ""),
    (lambda sim: sim.short_chain("lamps", 20), "reads high"),
])
def test_fail__lamp_chain_fault_is_found_by_the_loop_back(tas100, fault, expected):
    """The scanner checks the chain within a second, without a lamp changing."""
    board, _ = tas100
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    rec = Recorder()
    try:
        panel.set_lamp("line-210", True)
        panel.start(rec.key, rec.fault)
        assert wait_until(lambda: sim.lamp_lit("line-210"), 5)
        time.sleep(1.5)
        assert rec.faults == [], rec.faults
        fault(sim)
        # (A fault that strikes in the middle of a write first shows as some bits wrong;
        # the next check, a second later, names it.)
        assert wait_until(lambda: rec.fault_now is not None and expected in rec.fault_now, 8), \
            rec.faults
        assert rec.faults[-1][0] == "panel"
        assert rec.fault_now.startswith("lamp chain 'lamps': loop-back") and expected in rec.fault_now
        sim.repair_chain("lamps")
        sim.short_chain("lamps", board.chains["lamps"].chips)
        assert wait_until(lambda: rec.fault_now is None, 8), rec.faults
        assert sim.lamp_lit("line-210") and not sim.lamp_lit("line-211")
        assert rec.keys == []
    finally:
        panel.close()


def test_ok__verifying_the_lamp_chain_never_changes_a_lamp(tas100):
    """The check runs with the lamps lit: their outputs stay as they were throughout."""
    board, _ = tas100
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    chip = sim.out_chips["lamps"]
    try:
        for name in ("line-201", "msg-201", "line-915"):
            panel.set_lamp(name, True)
        panel.start(lambda *a: None, lambda *a: None)
        assert wait_until(lambda: sim.lamp_lit("msg-201"), 5)
        expected = list(chip.outputs)
        changes = []
        latch = sim.factory.pin(board.chains["lamps"].pins["latch"])
        old = list(latch.listeners)
        latch.listeners.append(lambda high: changes.append(chip.outputs != expected))
        try:
            time.sleep(2.5)                 # at least two checks
        finally:
            latch.listeners[:] = old
        assert changes and not any(changes)
        assert chip.outputs == expected and panel.faults == {}
    finally:
        panel.close()


def test_ok__bitbang_loop_back_checks_every_bit_of_the_previous_pattern():
    """A wrong bit in the registers anywhere along the chain is found at the next write."""
    board = load_board(find_board("tas100"))
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory)
    rec = Recorder()
    panel.on_fault = rec.fault
    try:
        chip = sim.out_chips["lamps"]
        chip.shift[137] = not chip.shift[137]       # one stage upset (noise on the chain)
        panel.set_lamp("line-201", True)
        panel.flush()
        assert "1 of 216 bits wrong" in rec.fault_now
        panel.set_lamp("line-201", False)
        panel.flush()
        assert rec.fault_now is None
    finally:
        panel.close()


# -- clock_hz ------------------------------------------------------------------------

def test_ok__bitbang_holds_each_half_clock_period(tmp_path):
    text = find_board("tas100").read_text().replace("clock_hz = 50000", "clock_hz = 5000", 1)
    path = tmp_path / "slow.toml"
    path.write_text(text)
    board = load_board(path)
    chain = board.chains["keys"]
    assert chain.clock_hz == 5000
    sim = SimBoard(board)
    reader = ShiftInChain(chain, sim.factory)
    try:
        clock = sim.factory.pin(chain.pins["clock"])
        clock.clear_states()
        t0 = time.perf_counter()
        bits = reader.read()
        took = time.perf_counter() - t0
        assert bits == [True] * chain.bits and reader.marker == 0xA5
        # 160 bits at 5 kHz cannot take less than 32 ms; a busy machine only makes it longer.
        assert took >= 160 / 5000
        gaps = [s.timestamp for s in list(clock.states)[2:]]
        assert len(gaps) >= 2 * 160 - 2
        assert min(gaps) >= 0.5 / 5000 * 0.95        # no half period shorter than 100 us
    finally:
        reader.close()


# -- the SPI driver ------------------------------------------------------------------

def test_ok__spi_one_transfer_per_scan_writes_lamps_and_reads_keys(tas100_spi):
    board = tas100_spi
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    try:
        assert sim.spi.max_speed_hz == 50000 and sim.spi.mode == 0
        rec = Recorder()
        panel.on_key = rec.key
        scans(panel, 2)
        before = sim.spi.transfers
        panel.set_lamp("line-300", True)
        sim.press("p1-stamp")
        scans(panel, 2)
        assert sim.spi.transfers == before + 2                    # one transfer per scan
        assert sim.out_chips["lamps"].outputs[board.lamps["line-300"].wire.bit]
        assert rec.keys == [("p1-stamp", True)]
    finally:
        panel.close()
    assert not sim.spi.is_open


def test_fail__spi_without_spidev_says_what_to_install(tas100_spi, monkeypatch):
    board = tas100_spi
    sim = SimBoard(board)
    monkeypatch.setitem(sys.modules, "spidev", None)      # as on a machine without it
    with pytest.raises(PanelError, match=r'driver = "spi" needs the spidev package: '
                                         r'pip install spidev'):
        Panel(board, pin_factory=sim.factory)
    # Nothing was left claimed: the same pins can be taken again.
    Panel(board, pin_factory=sim.factory, spi=sim.spi).close()


# -- the daemon: the fault lamp ------------------------------------------------------

def test_fail__daemon_lights_the_fault_lamp_naming_the_chain_and_answers_nothing(tas100):
    board, path = tas100
    with running(str(path)) as (daemon, sim):
        request(daemon, "ring", line="233")
        assert wait_until(lambda: daemon.panel.scans > 5, 5)
        assert not sim.lamp_lit("fault")
        sim.unplug_chain("keys")
        sim.press("line-233")               # pressed, but the chain cannot be read
        assert wait_until(lambda: "panel" in daemon.state.faults, 5)
        assert daemon.state.faults["panel"].startswith("key chain 'keys': marker read 0xFF")
        assert wait_until(lambda: sim.lamp_lit("fault"), 5)
        status = request(daemon, "status")
        assert "key chain 'keys'" in status["faults"]["panel"]
        time.sleep(0.3)
        assert daemon.state.lines["233"].state.value == "ringing"   # not answered
        sim.release("line-233")
        sim.repair_chain("keys")
        assert wait_until(lambda: "panel" not in daemon.state.faults, 5)
        assert wait_until(lambda: not sim.lamp_lit("fault"), 5)
        assert daemon.state.lines["233"].state.value == "ringing"
