"""Pin names in board files are checked against the Pi's real header (gpiozero's data)."""

import pytest

from conftest import ROOT
from firmware.config.board import load_board
from firmware.errors import ConfigError, SwitchboardError

DESK = (ROOT / "boards" / "desk.toml").read_text()
LINE_201_KEY = 'key = "^!GPIO4"'       # line 201's key, header pin 7
assert DESK.count(LINE_201_KEY) == 1


def _desk_with(tmp_path, old, new):
    assert DESK.count(old) == 1, old
    path = tmp_path / "board.toml"
    path.write_text(DESK.replace(old, new))
    return path


@pytest.mark.parametrize("pin, gpio, header_pin", [
    ("GPIO4", "GPIO4", 7),
    ("BCM4", "GPIO4", 7),
    ("BOARD7", "GPIO4", 7),
    ("J8:7", "GPIO4", 7),
    ("GPIO14", "GPIO14", 8),       # a free pin on the desk board (the UART's TXD)
])
def test_ok__header_pin_names_resolve_to_the_gpio(tmp_path, pin, gpio, header_pin):
    board = load_board(_desk_with(tmp_path, LINE_201_KEY, f'key = "^!{pin}"'))
    wire = board.keys["line-201"].wire
    assert (wire.pin, wire.board_pin) == (gpio, header_pin)


@pytest.mark.parametrize("pin, expected", [
    ("GPIO28", "GPIO28 is on the Pi's chip but not on the header, which carries GPIO0 to GPIO27"),
    ("BCM40", "not on the header, which carries GPIO0 to GPIO27"),
    ("BOARD41", "a pin of the Pi's 40-pin header, such as GPIO17, BCM17, BOARD11 or J8:11; "
                "the header's pins are numbered 1 to 40"),
    ("J8:0", "the header's pins are numbered 1 to 40"),
    ("gpio4", "pin names are upper case: did you mean 'GPIO4'?"),
    ("board7", "did you mean 'BOARD7'?"),
    ("GPI04", "a pin of the Pi's 40-pin header"),            # a letter O for a zero
    ("BOARD1", "header pin 1 is 3V3, a power or ground pin"),
    ("BOARD2", "header pin 2 is 5V, a power or ground pin"),
    ("J8:6", "header pin 6 is GND, a power or ground pin"),
    ("GND", "a power or ground pin"),
    ("3V3", "a power or ground pin"),
    ("GPIO0", "kept for the HAT ID EEPROM"),
])
def test_fail__pin_the_header_does_not_offer_is_refused(tmp_path, pin, expected):
    path = _desk_with(tmp_path, LINE_201_KEY, f'key = "^!{pin}"')
    with pytest.raises(ConfigError) as e:
        load_board(path)
    msg = str(e.value)
    assert str(path) in msg and "lines[0].key" in msg and repr(pin) in msg
    assert expected in msg
    assert isinstance(e.value, SwitchboardError) and isinstance(e.value, ValueError)


@pytest.mark.parametrize("where, old, new", [
    ("a lamp", 'lamp = "GPIO18"', 'lamp = "BOARD1"'),
    ("a chain pin", 'clock = "GPIO11"', 'clock = "J8:9"'),
    ("a switch", 'secrecy = "^!GPIO8"', 'secrecy = "^!5V"'),
])
def test_fail__power_pin_is_refused_wherever_it_is_used(tmp_path, where, old, new):
    with pytest.raises(ConfigError, match="a power or ground pin"):
        load_board(_desk_with(tmp_path, old, new))


@pytest.mark.parametrize("where, old, new", [
    ("a lamp", 'lamp = "GPIO18"', 'lamp = "GPIO15"'),
    ("a chain pin", 'clock = "GPIO11"', 'clock = "GPIO14"'),
    ("a switch", 'secrecy = "^!GPIO8"', 'secrecy = "^!GPIO15"'),
])
def test_ok__free_pin_is_accepted_wherever_it_is_used(tmp_path, where, old, new):
    assert load_board(_desk_with(tmp_path, old, new)).name == "desk"


@pytest.mark.parametrize("other, named", [
    ('key = "^!GPIO17"', ""),                                 # line 202's key pin, same name
    ('key = "^!BOARD11"', ", named 'GPIO17' and 'BOARD11'"),  # the same pin by its number
    ('key = "^!J8:11"', ", named 'GPIO17' and 'J8:11'"),
    ('key = "^!BCM17"', ", named 'GPIO17' and 'BCM17'"),
])
def test_fail__one_pin_used_twice_names_both_users(tmp_path, other, named):
    path = _desk_with(tmp_path, LINE_201_KEY, other)
    with pytest.raises(ConfigError) as e:
        load_board(path)
    msg = str(e.value)
    assert f"lines[1].key and lines[0].key both use GPIO17 (header pin 11){named}: expected" in msg
    assert str(path) in msg


def test_ok__each_pin_once(tmp_path):
    board = load_board(_desk_with(tmp_path, LINE_201_KEY, 'key = "^!BOARD8"'))    # GPIO14, free
    pins = [w.pin for w in [k.wire for k in board.keys.values()] + [lamp.wire for lamp in board.lamps.values()]
            if w.pin]
    assert len(pins) == len(set(pins))


def test_fail__key_and_lamp_on_the_same_pin(tmp_path):
    with pytest.raises(ConfigError, match=r"both use GPIO18 \(header pin 12\)"):
        load_board(_desk_with(tmp_path, LINE_201_KEY, 'key = "^!GPIO18"'))


def test_fail__chain_pin_reused_by_a_key(tmp_path):
    with pytest.raises(ConfigError, match=r"lines\[0\].key and chains.keys.load both use GPIO7"):
        load_board(_desk_with(tmp_path, LINE_201_KEY, 'key = "^!GPIO7"'))


def test_fail__chain_bit_used_twice_names_chip_and_input(tmp_path):
    with pytest.raises(ConfigError, match=r"both use keys:1 \(chip 0, input B\)"):
        load_board(_desk_with(tmp_path, 'hold = "!keys:0"', 'hold = "!keys:1"'))


def test_ok__every_shipped_board_uses_real_header_pins_once():
    from gpiozero.pins.mock import MockFactory
    header = MockFactory(revision="c03114").board_info.headers["J8"]
    gpio_names = {info.name for info in header.pins.values() if "gpio" in info.interfaces}
    for path in sorted(p for p in (ROOT / "boards").glob("*.toml")
                       if not p.name.endswith(".site.toml")):   # site files are not boards
        board = load_board(path)
        pins = [i.wire.pin for i in list(board.keys.values()) + list(board.lamps.values())
                if i.wire.pin]
        pins += [p for c in board.chains.values() for p in c.pins.values()]
        assert set(pins) <= gpio_names, path
        assert len(pins) == len(set(pins)), path
