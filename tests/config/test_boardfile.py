"""Board files: every shipped one loads; every bad one is refused with a clear message."""

import re

import pytest

from firmware.config.board import find_board, load_board, shipped_boards
from firmware.errors import ConfigError

SHIPPED = shipped_boards()


def test_ok__boards_are_shipped():
    names = {p.stem for p in SHIPPED}
    assert {"desk", "tas100"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_ok__shipped_board_loads(path):
    board = load_board(path)
    assert board.description, "every board file starts with a prose header"
    assert board.lines and board.keys and board.lamps
    for line in board.lines:
        assert board.keys[line.key].role == "line"
        assert board.lamps[line.lamp].role == "line"
        if line.kind == "customer":
            assert board.lamps[line.message_lamp].role == "message"
    for p in range(1, board.positions + 1):
        for role in ("hold", "release", "stamp"):
            assert f"p{p}-{role}" in board.keys
        assert sum(1 for k in board.keys.values() if k.role == "dial" and k.position == p) == 12
    assert "fault" in board.lamps and "secrecy" in board.keys


def test_ok__desk_board_is_direct_gpio_on_a_40_pin_header():
    b = load_board(find_board("desk"))
    customers = [ln for ln in b.lines if ln.kind == "customer"]
    offices = [ln for ln in b.lines if ln.kind == "office"]
    assert len(customers) >= 4 and len(offices) >= 1
    for ln in b.lines:
        for wire in (b.keys[ln.key].wire, b.lamps[ln.lamp].wire):
            assert wire.pin and 1 <= wire.board_pin <= 40
    assert b.keys["line-201"].wire.pull == "up" and b.keys["line-201"].wire.active_low


def test_ok__tas100_has_100_lines_15_office_two_positions_on_chains():
    b = load_board(find_board("tas100"))
    assert sum(ln.kind == "customer" for ln in b.lines) == 100
    assert sum(ln.kind == "office" for ln in b.lines) == 15
    assert b.positions == 2
    assert {c.type for c in b.chains.values()} == {"74HC165", "74HC595"}
    assert b.keys["line-300"].wire.chain == "keys"
    assert b.lamps["msg-300"].wire.chain == "lamps"
    # Halves are balanced to start with.
    halves = [ln.half for ln in b.lines]
    assert abs(halves.count(1) - halves.count(2)) <= 1


GOOD = '''
[board]
name = "t"
positions = 1

[switches]
secrecy = "^!GPIO2"

[lamps]
fault = "GPIO26"

[[positions]]
hold = "^!GPIO5"
release = "^!GPIO6"
stamp = "^!GPIO13"
[positions.dial]
"1" = "!keys:0"
"2" = "!keys:1"
"3" = "!keys:2"
"4" = "!keys:3"
"5" = "!keys:4"
"6" = "!keys:5"
"7" = "!keys:6"
"8" = "!keys:7"
"9" = "!keys:8"
"*" = "!keys:9"
"0" = "!keys:10"
"#" = "!keys:11"

[chains.keys]
type = "74HC165"
load = "GPIO7"
clock = "GPIO11"
data = "GPIO9"
chips = 2

[[lines]]
number = "201"
kind = "customer"
key = "^!GPIO4"
lamp = "GPIO18"
message_lamp = "GPIO16"
'''


def write(tmp_path, text):
    p = tmp_path / "board.toml"
    p.write_text(text)
    return p


def test_ok__minimal_board(tmp_path):
    b = load_board(write(tmp_path, GOOD))
    assert b.keys["p1-dial-star"].wire.bit == 9
    assert b.lines[0].label == "Line 201"


# (what to change, a pattern the message must match)
BAD = {
    "unknown_key": (('kind = "customer"', 'kind = "customer"\ncolour = "red"'),
                    r"lines\[0\]\.colour: unknown key; expected one of: number"),
    "pin_used_twice": (('lamp = "GPIO18"', 'lamp = "GPIO4"'),
                       r"lines\[0\]\.lamp and lines\[0\]\.key both use GPIO4 \(header pin 7\)"),
    "pin_not_on_header": (('lamp = "GPIO18"', 'lamp = "GPIO40"'),
                          r"lines\[0\]\.lamp = 'GPIO40': expected a pin of the Pi's 40-pin header"),
    "power_pin": (('lamp = "GPIO18"', 'lamp = "BOARD2"'),
                  r"header pin 2 is 5V, a power or ground pin"),
    "ground_pin": (('lamp = "GPIO18"', 'lamp = "J8:6"'), r"header pin 6 is GND"),
    "id_eeprom_pin": (('lamp = "GPIO18"', 'lamp = "GPIO0"'), r"HAT ID EEPROM"),
    "pull_up_not_active_low": (('key = "^!GPIO4"', 'key = "^GPIO4"'),
                               r"lines\[0\]\.key = '\^GPIO4'.*active low \(add !\)"),
    "pull_on_lamp": (('lamp = "GPIO18"', 'lamp = "^!GPIO18"'), r"without \^ or ~"),
    "pull_down_on_fixed_pull_up": (('secrecy = "^!GPIO2"', 'secrecy = "~GPIO2"'),
                                   r"fixed 1\.8k pull-up"),
    "chain_bit_out_of_range": (('"#" = "!keys:11"', '"#" = "!keys:16"'),
                               r'positions\[0\]\.dial\."#" = \'!keys:16\': expected a bit from 0 to 15'),
    "chain_bit_used_twice": (('"#" = "!keys:11"', '"#" = "!keys:0"'),
                             r'both use keys:0 \(chip 0, input A\)'),
    "unknown_chain": (('"#" = "!keys:11"', '"#" = "!pad:11"'), r"a chain defined under \[chains\]: keys"),
    "lamp_on_key_chain": (('lamp = "GPIO18"', 'lamp = "keys:14"'), r"a chain of lamps; keys is a 74HC165"),
    "pull_on_chain_bit": (('"#" = "!keys:11"', '"#" = "^!keys:11"'), r"no internal pull"),
    "missing_dial_key": (('"#" = "!keys:11"\n', ''), r'positions\[0\]\.dial\.#: missing'),
    "bad_number": (('number = "201"', 'number = 201'), r"lines\[0\]\.number = 201: expected the line's number"),
    "bad_kind": (('kind = "customer"', 'kind = "client"'), r'"customer" or "office"'),
    "missing_message_lamp": (('message_lamp = "GPIO16"\n', ''), r"message_lamp: missing"),
    "positions_mismatch": (('positions = 1', 'positions = 2'), r"2 \[\[positions\]\] entries"),
    "bad_chain_type": (('type = "74HC165"', 'type = "74HC164"'), r"74HC165 \(keys\) or 74HC595 \(lamps\)"),
    "bad_debounce": (('positions = 1', 'positions = 1\ndebounce_ms = -3'),
                     r"board\.debounce_ms = -3: expected a number from 0 to 500"),
    "not_toml": (('[board]', '[board'), r"not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_fail__bad_board_file(tmp_path, case):
    (old, new), pattern = BAD[case]
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_board(path)
    message = str(exc.value)
    assert message.startswith(str(path)), message
    assert re.search(pattern, message), message


# A board with a lamp chain too: the 74HC595s' OE, brightness and loop-back.
LAMPS = GOOD.replace("chips = 2\n", """chips = 2

[chains.lamps]
type = "74HC595"
data = "GPIO10"
clock = "GPIO21"
latch = "GPIO8"
loopback = "GPIO25"
chips = 1
""", 1).replace('fault = "GPIO26"', 'fault = "GPIO26"\noe = "GPIO12"\nbrightness = 0.8\n'
                'soft_start_ms = 250', 1)


def test_ok__chain_timing_marker_loopback_and_output_enable(tmp_path):
    b = load_board(write(tmp_path, LAMPS.replace("chips = 2\n", "chips = 2\nclock_hz = 50000\n"
                                                 "marker_bits = 8\nmarker = 0x5A\n", 1)))
    keys, lamps = b.chains["keys"], b.chains["lamps"]
    assert (keys.clock_hz, keys.marker_bits, keys.marker, keys.bits) == (50000, 8, 0x5A, 16)
    assert lamps.pins["loopback"] == "GPIO25" and lamps.clock_hz is None
    assert (b.driver, b.oe, b.brightness, b.soft_start_ms) == ("bitbang", "GPIO12", 0.8, 250)
    plain = load_board(write(tmp_path, GOOD))
    assert (plain.oe, plain.brightness, plain.soft_start_ms, plain.driver) == (None, 1.0, 0, "bitbang")
    assert plain.chains["keys"].marker_bits == 0 and plain.chains["keys"].boards == 1
    split = load_board(write(tmp_path, GOOD.replace("chips = 2\n", "chips = 2\nmarker_bits = 8\n"
                                                    "chips_per_board = 2\n", 1)))
    assert split.chains["keys"].boards == 2        # two key chips and the marker chip


def test_ok__spi_driver_shares_sclk_between_the_chains(tmp_path):
    text = LAMPS.replace('clock = "GPIO21"', 'clock = "GPIO11"').replace(
        "positions = 1", 'positions = 1\ndriver = "spi"', 1)
    b = load_board(write(tmp_path, text))
    assert b.driver == "spi"
    assert b.chains["keys"].pins["clock"] == b.chains["lamps"].pins["clock"] == "GPIO11"
    # Without the SPI driver the shared clock pin is refused as before.
    with pytest.raises(ConfigError, match=r"both use GPIO11"):
        load_board(write(tmp_path, text.replace('driver = "spi"', 'driver = "bitbang"')))


# (board text, what to change, a pattern the message must match)
BAD_LAMPS = {
    "oe_not_pwm": (LAMPS, ('oe = "GPIO12"', 'oe = "GPIO20"'),
                   r"lamps\.oe = 'GPIO20': expected a PWM-capable pin: GPIO12 \(PWM0\)"),
    "oe_without_lamp_chain": (GOOD, ('fault = "GPIO26"', 'fault = "GPIO26"\noe = "GPIO12"'),
                              r"lamps\.oe = 'GPIO12': expected no oe on a board without a 74HC595"),
    "oe_used_twice": (LAMPS, ('oe = "GPIO12"', 'oe = "GPIO18"'),
                      r"lines\[0\]\.lamp and lamps\.oe both use GPIO18"),
    "brightness_without_oe": (GOOD, ('fault = "GPIO26"', 'fault = "GPIO26"\nbrightness = 0.5'),
                              r"lamps\.brightness = 0\.5: expected no value without lamps\.oe"),
    "brightness_range": (LAMPS, ("brightness = 0.8", "brightness = 1.5"),
                         r"lamps\.brightness = 1\.5: expected a number from 0\.05 to 1\.0"),
    "soft_start_range": (LAMPS, ("soft_start_ms = 250", "soft_start_ms = 9000"),
                         r"lamps\.soft_start_ms = 9000: expected a whole number from 0 to 5000"),
    "marker_bits_not_a_chip": (GOOD, ("chips = 2\n", "chips = 2\nmarker_bits = 4\n"),
                               r"chains\.keys\.marker_bits = 4: expected 0 or 8"),
    "marker_all_ones": (GOOD, ("chips = 2\n", "chips = 2\nmarker_bits = 8\nmarker = 255\n"),
                        r"chains\.keys\.marker = 255: expected a pattern from 1 to 254"),
    "marker_without_bits": (GOOD, ("chips = 2\n", "chips = 2\nmarker = 0x5A\n"),
                            r"chains\.keys\.marker = 90: expected no marker without marker_bits"),
    "marker_on_lamp_chain": (LAMPS, ("chips = 1\n", "chips = 1\nmarker_bits = 8\n"),
                             r"chains\.lamps\.marker_bits: unknown key"),
    "loopback_on_key_chain": (GOOD, ("chips = 2\n", 'chips = 2\nloopback = "GPIO25"\n'),
                              r"chains\.keys\.loopback: unknown key"),
    "loopback_used_twice": (LAMPS, ('loopback = "GPIO25"', 'loopback = "GPIO26"'),
                            r"lamps\.fault and chains\.lamps\.loopback both use GPIO26|"
                            r"chains\.lamps\.loopback and lamps\.fault both use GPIO26"),
    "clock_hz_range": (GOOD, ("chips = 2\n", "chips = 2\nclock_hz = 10\n"),
                       r"chains\.keys\.clock_hz = 10: expected a whole number from 1000 to 10000000"),
    "chips_per_board_range": (GOOD, ("chips = 2\n", "chips = 2\nchips_per_board = 0\n"),
                              r"chains\.keys\.chips_per_board = 0: expected a whole number from 1"),
    "bad_driver": (GOOD, ("positions = 1", 'positions = 1\ndriver = "i2c"'),
                   r'board\.driver = \'i2c\': expected "bitbang" or "spi"'),
    "spi_driver_lamp_clock_off_sclk": (LAMPS, ("positions = 1", 'positions = 1\ndriver = "spi"'),
                                       r"chains\.lamps\.clock = 'GPIO21': expected GPIO11: with "
                                       r'board\.driver = "spi"'),
    "spi_driver_ce0_used": (GOOD, ('fault = "GPIO26"', 'fault = "GPIO8"'),
                            r"lamps\.fault = 'GPIO8': expected a pin other than GPIO8: with "
                            r'board\.driver = "spi" GPIO8 is SPI0\'s CE0'),
}


@pytest.mark.parametrize("case", sorted(BAD_LAMPS))
def test_fail__bad_chain_or_output_enable(tmp_path, case):
    text, (old, new), pattern = BAD_LAMPS[case]
    if case == "spi_driver_ce0_used":
        text = text.replace("positions = 1", 'positions = 1\ndriver = "spi"', 1)
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_board(path)
    message = str(exc.value)
    assert message.startswith(str(path)), message
    assert re.search(pattern, message), message


def test_fail__unknown_board_name():
    with pytest.raises(ConfigError, match=r"no board named 'nope'.*desk.*tas100"):
        find_board("nope")


def test_fail__missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read board file"):
        load_board(tmp_path / "missing.toml")
