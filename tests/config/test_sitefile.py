"""Site files: the shipped ones load, every bad input is refused with file, key path and value."""

import os

import pytest

from firmware.config.board import load_board, shipped_boards
from firmware.errors import ConfigError, SwitchboardError
from firmware.config.site import load_site, site_path_for

DESK = load_board("boards/desk.toml")

GOOD_REGISTER = """
[[trunks]]
name = "provider"
mode = "register"
registrar = "sip:127.0.0.1:5090"
username = "board"
password = "s3cret"
"""


def write(tmp_path, text, mode=0o600):
    p = tmp_path / "desk.site.toml"
    p.write_text(text)
    os.chmod(p, mode)
    return p


@pytest.mark.parametrize("board", shipped_boards(),
                         ids=lambda p: p.stem)
def test_ok__every_shipped_board_has_a_loading_site_file(board):
    site = load_site(site_path_for(board), load_board(board))
    lines = load_board(board).lines
    # every line is reached by its own number, and the sim accepts calls on loopback
    assert all(site.line_for(ln.number) == ln.number for ln in lines)
    assert site.listen == "127.0.0.1" and "127.0.0.1" in site.peer_addresses()


def test_ok__dids_map_to_lines_and_register_trunk(tmp_path):
    p = write(tmp_path, GOOD_REGISTER + '\n[numbers]\n"+14155550123" = "202"\n')
    site = load_site(p, DESK)
    assert site.line_for("+14155550123") == "202"
    t = site.trunks[0]
    assert (t.mode, t.username, t.password, t.peers) == ("register", "board", "s3cret", ("127.0.0.1",))
    assert "password" not in t.public()


@pytest.mark.parametrize("text, keypath, words", [
    ("[front]\nlisten = \"localhost\"\n", "front.listen", "IP address"),
    ("[front]\nport = 70000\n", "front.port", "0 to 65535"),
    ("[front]\ntransports = [\"udp\", \"sctp\"]\n", "front.transports", "udp, tcp, tls"),
    ("[front]\ntransports = [\"tls\"]\n", "front.tls_certificate", "PEM"),
    ("[front]\nlisen = \"127.0.0.1\"\n", "front.lisen", "unknown key"),
    ("[[trunks]]\nname = \"a\"\nmode = \"peer\"\n", "trunks.a.peers", "IP addresses"),
    ("[[trunks]]\nname = \"a\"\nmode = \"peer\"\npeers = [\"10.0.0.300\"]\n", "trunks.a.peers[0]",
     "IP address"),
    ("[[trunks]]\nname = \"a\"\nmode = \"both\"\n", "trunks.a.mode", "'peer' or 'register'"),
    ("[[trunks]]\nname = \"a\"\nmode = \"register\"\nregistrar = \"sip:x\"\n", "trunks.a.username",
     "missing"),
    ("[[trunks]]\nname = \"a\"\nmode = \"register\"\nregistrar = \"pbx\"\nusername = \"u\"\n"
     "password = \"p\"\n", "trunks.a.registrar", "SIP URI"),
    ("[[trunks]]\nname = \"a\"\nmode = \"peer\"\npeers = [\"127.0.0.1\"]\npassword = \"p\"\n",
     "trunks.a.password", "does not register"),
    ("[numbers]\n\"555\" = \"299\"\n", "numbers.555", "a line of board 'desk'"),
    ("[numbers]\n\"55x\" = \"201\"\n", "numbers.55x", "digits"),
    ("[numbers]\n\"202\" = \"201\"\n", "numbers.202", "own number"),
    ("[[positions]]\n[[positions]]\n[[positions]]\n", "positions", "at most 2"),
    ("[overflow]\naction = \"voicemail\"\n", "overflow.action", "'ring' or 'message'"),
    ("[limits]\nworkers = -1\n", "limits.workers", "0 to 256"),
    ("[front\n", "", "not valid TOML"),
])
def test_fail__bad_site_file_names_file_keypath_and_expectation(tmp_path, text, keypath, words):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_site(p, DESK)
    msg = str(e.value)
    assert isinstance(e.value, SwitchboardError) and isinstance(e.value, ValueError)
    assert msg.startswith(str(p)) and keypath in msg and words in msg, msg


def test_fail__secrets_in_a_file_others_can_read(tmp_path):
    p = write(tmp_path, GOOD_REGISTER, mode=0o644)
    with pytest.raises(ConfigError) as e:
        load_site(p, DESK)
    assert "readable by others" in str(e.value) and f"chmod 600 {p}" in str(e.value)
    os.chmod(p, 0o600)
    assert load_site(p, DESK).trunks[0].name == "provider"


def test_ok__no_secret_so_any_mode_will_do(tmp_path):
    p = write(tmp_path, "[[trunks]]\nname = \"gw\"\nmode = \"peer\"\npeers = [\"192.168.1.20\"]\n",
              mode=0o644)
    assert load_site(p, DESK).trunks[0].peers == ("192.168.1.20",)


def test_fail__missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read site file"):
        load_site(tmp_path / "nope.site.toml", DESK)


def test_ok__customer_phones(tmp_path):
    p = write(tmp_path, GOOD_REGISTER + '[customers]\n"201" = "sip:201@192.168.1.30"\n')
    assert load_site(p, DESK).customers == {"201": "sip:201@192.168.1.30"}


@pytest.mark.parametrize("text, keypath, words", [
    ('[customers]\n"901" = "sip:a@b"\n', "customers.901", "a customer line"),
    ('[customers]\n"201" = "tel:555"\n', "customers.201", "SIP URI"),
])
def test_fail__customer_phones(tmp_path, text, keypath, words):
    with pytest.raises(ConfigError) as e:
        load_site(write(tmp_path, text), DESK)
    assert keypath in str(e.value) and words in str(e.value)
