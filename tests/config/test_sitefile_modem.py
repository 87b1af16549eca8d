"""Site files with modem trunks: an analog line on a USB voice modem."""

import pytest

from firmware.config.board import load_board
from firmware.errors import ConfigError
from firmware.config.site import load_site

DESK = load_board("boards/desk.toml")
DEV = "/dev/serial/by-id/usb-Conexant_USB_Modem_24680246-if00"


def write(tmp_path, text):
    p = tmp_path / "desk.site.toml"
    p.write_text(text)
    p.chmod(0o600)
    return p


def modem(**extra):
    keys = {"name": '"pots1"', "mode": '"modem"', "device": f'"{DEV}"', "line": '"901"', **extra}
    return "[[trunks]]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None)


def test_ok__a_modem_trunk_is_a_loopback_peer_bound_to_its_line(tmp_path):
    site = load_site(write(tmp_path, modem(profile='"usr"', country='"GB"', silence_s=10)), DESK)
    t = site.trunks[0]
    assert (t.mode, t.device, t.line, t.profile, t.country, t.silence_s) == \
        ("modem", DEV, "901", "usr", "GB", 10.0)
    assert site.peer_addresses() == ["127.0.0.1"] and site.modem_trunks() == (t,)
    assert site.outbound_trunk("901") is t            # 901 dials out on its modem
    assert site.outbound_trunk("902") is None         # 902 has no way out


def test_ok__other_office_lines_keep_the_outbound_peer(tmp_path):
    site = load_site(write(tmp_path, modem() + '[[trunks]]\nname = "gw"\nmode = "peer"\n'
                           'peers = ["192.168.1.20"]\noutbound = true\n'), DESK)
    assert site.outbound_trunk("901").name == "pots1" and site.outbound_trunk("902").name == "gw"


@pytest.mark.parametrize("extra,key,words", [
    ({"device": None}, "trunks.pots1.device", "missing"),
    ({"line": None}, "trunks.pots1.line", "missing"),
    ({"device": '"ttyACM0"'}, "trunks.pots1.device", "absolute device path"),
    ({"line": '"999"'}, "trunks.pots1.line", "a line of board"),
    ({"profile": '"hayes"'}, "trunks.pots1.profile", "'conexant'"),
    ({"country": '"Narnia"'}, "trunks.pots1.country", "AT+GCI"),
    ({"silence_s": -1}, "trunks.pots1.silence_s", "a number from 0"),
    ({"peers": '["127.0.0.1"]'}, "trunks.pots1.peers", "its own gateway"),
    ({"password": '"x"'}, "trunks.pots1.password", "its own gateway"),
])
def test_fail__bad_modem_trunk(tmp_path, extra, key, words):
    with pytest.raises(ConfigError) as e:
        load_site(write(tmp_path, modem(**extra)), DESK)
    msg = str(e.value)
    assert key in msg and words in msg and "desk.site.toml" in msg and "\n" not in msg, msg


def test_fail__two_modems_on_one_line_or_device(tmp_path):
    two = modem() + modem(name='"pots2"', line='"902"')
    with pytest.raises(ConfigError, match=r"trunks.pots2.device.*pots1 has it"):
        load_site(write(tmp_path, two), DESK)
    two = modem() + modem(name='"pots2"', device='"/dev/ttyACM1"')
    with pytest.raises(ConfigError, match=r"trunks.pots2.line.*pots1 rings it"):
        load_site(write(tmp_path, two), DESK)


def test_fail__modem_keys_on_another_kind_of_trunk(tmp_path):
    text = '[[trunks]]\nname = "gw"\nmode = "peer"\npeers = ["10.0.0.2"]\ndevice = "/dev/ttyACM0"\n'
    with pytest.raises(ConfigError, match=r'trunks.gw.device: only a modem trunk has it'):
        load_site(write(tmp_path, text), DESK)
