"""End to end on gpiozero's MockFactory: key pins in, lamp pins and chains out."""

import time

import pytest

from firmware.config.board import find_board, load_board
from firmware.panel.gpio import Panel
from firmware.panel.sim import SimBoard
from firmware.core.state import FLASH_ON

from board_support import request, running, wait_until
from chain_boards import DRIVERS, tas100_path


@pytest.fixture(params=DRIVERS)
def tas100(request, tmp_path):
    """(board, path): the TAS-100 on each chain driver in turn."""
    path = tas100_path(request.param, tmp_path)
    return load_board(path), path


def test_ok__direct_key_pin_to_lamp_pin_on_the_desk_board():
    with running("desk") as (daemon, sim):
        lamp = sim.lamp_pin("line-201")
        request(daemon, "ring", line="201")
        time.sleep(2.3)
        # The lamp flashes at 60 a minute: half a second on, half off.
        # It lights at once (or at the next edge) and its first period may be short;
        # after that it changes every half second, in step with the interrupter.
        # (gpiozero's assert_states_and_times allows 50 ms; a loaded 2-core CI box
        # can be later than that waking up, so the times get 120 ms here.)
        states = list(lamp.states)
        assert len(states) >= 5, states
        lamp.assert_states([False] + [i % 2 == 1 for i in range(1, len(states))])
        for s in states[3:]:
            assert abs(s.timestamp - FLASH_ON) < 0.12, states
        # A finger on the key while the lamp is dark: the pin goes low, the call is
        # answered and the lamp lights at once and stays lit (steady).
        assert wait_until(lambda: not sim.lamp_lit("line-201"))
        lamp.clear_states()
        key_pin = sim.factory.pin("GPIO4")
        t0 = time.monotonic()
        key_pin.drive_low()
        assert wait_until(lambda: daemon.state.lines["201"].state.value == "operator")
        time.sleep(1.2)
        assert sim.lamp_lit("line-201")
        lamp.assert_states_and_times([(0.0, False), (0.0, True)])
        assert len(lamp.states) == 2, lamp.states            # steady: no more flashing
        key_pin.drive_high()
        assert time.monotonic() - t0 < 2


def test_ok__chained_key_and_lamp_on_the_tas100_board(tas100):
    board, path = tas100
    with running(str(path)) as (daemon, sim):
        out = sim.out_chips["lamps"]
        bit = daemon.board.lamps["line-300"].wire.bit
        request(daemon, "ring", line="300")
        assert wait_until(lambda: sim.lamp_lit("line-300"))    # flashing: lit first half
        assert wait_until(lambda: not sim.lamp_lit("line-300"))  # ... and dark the other half
        sim.press("line-300")                                # through the 74HC165 chain
        assert wait_until(lambda: daemon.state.lines["300"].state.value == "operator")
        sim.release("line-300")
        time.sleep(1.1)
        assert out.outputs[bit] and sim.lamp_lit("line-300")
        # No other lamp is lit: the shift sequence put the bit in the right place.
        assert [i for i, v in enumerate(out.outputs) if v] == [bit]
        assert daemon.state.faults == {}


def _rising(pin):
    return sum(1 for a, b in zip(pin.states, pin.states[1:]) if b.state and not a.state)


def test_ok__74hc595_shift_and_latch_sequence(tas100):
    board, _ = tas100
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    try:
        chip = sim.out_chips["lamps"]
        clock = sim.factory.pin(board.chains["lamps"].pins["clock"])
        latch = sim.factory.pin(board.chains["lamps"].pins["latch"])
        clock.clear_states()
        latch.clear_states()
        latches = chip.latches
        panel.set_lamp("msg-201", True)
        panel.set_lamp("line-215", True)
        panel.flush()
        # One clock per bit (SPI: whole bytes, the lamps' bits last), one latch pulse after.
        assert _rising(clock) == (board.chains["lamps"].bits if board.driver == "bitbang"
                                  else 8 * -(-board.chains["lamps"].bits // 8))
        assert _rising(latch) == 1                           # RCLK (SPI: CE0 rising at the end)
        assert latch.states[-1].state == (board.driver == "spi")   # CE0 idles high, RCLK low
        assert chip.latches == latches + 1
        lit = {i for i, v in enumerate(chip.outputs) if v}
        assert lit == {board.lamps["msg-201"].wire.bit, board.lamps["line-215"].wire.bit}
        panel.flush()                                        # nothing changed: nothing shifted
        assert chip.latches == latches + 1
    finally:
        panel.close()


def test_ok__74hc165_load_then_shift_sequence(tas100):
    board, _ = tas100
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory, spi=sim.spi)
    try:
        chain = board.chains["keys"]
        load = sim.factory.pin(chain.pins["load"])
        clock = sim.factory.pin(chain.pins["clock"])
        seen = []
        panel.on_key = lambda name, down: seen.append((name, down))
        panel.scan()
        panel.scan()
        load.clear_states()
        clock.clear_states()
        sim.press("p2-dial-hash")
        sim.press("line-201")
        panel.scan()
        assert [bool(s.state) for s in load.states] == [True, False, True]   # one parallel load
        # Every key bit and the marker chip's 8 (SPI: the transfer is the longer chain's).
        assert _rising(clock) == (chain.bits + 8 if board.driver == "bitbang" else 216)
        assert seen == []                       # one scan is not enough to believe a key
        panel.scan()
        assert sorted(seen) == [("line-201", True), ("p2-dial-hash", True)]
    finally:
        panel.close()


@pytest.mark.parametrize("wire,pressed_level", [("^!GPIO4", False), ("~GPIO4", True),
                                                ("!GPIO4", False), ("GPIO4", True)])
def test_ok__pull_and_active_level_as_the_board_file_says(tmp_path, wire, pressed_level):
    text = (find_board("desk").read_text()
            .replace('key = "^!GPIO4"', f'key = "{wire}"'))
    path = tmp_path / "b.toml"
    path.write_text(text)
    board = load_board(path)
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory)
    try:
        seen = []
        panel.on_key = lambda name, down: seen.append((name, down))
        pin = sim.factory.pin("GPIO4")
        if wire[0] in "^~":
            assert pin.pull == ("up" if wire[0] == "^" else "down")
        (pin.drive_low if not pressed_level else pin.drive_high)()
        assert seen[-1] == ("line-201", True)
    finally:
        panel.close()
