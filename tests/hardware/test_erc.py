"""switchboard-hardware check: the electrical rules check, from the board file and its BOM."""

import csv
import json
import subprocess

import pytest

from conftest import ROOT, project_env, python_cmd
from firmware.config.board import load_board, shipped_boards
from switchboard_tools.hardware import erc
from switchboard_tools.hardware import bom as hw

BOARDS = {p.stem: p for p in shipped_boards()}


def _check(*args):
    return subprocess.run(python_cmd("switchboard_tools.hardware.cli", "check", *map(str, args)),
                          env=project_env(), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_ok__every_shipped_board_passes_the_check(name):
    board = load_board(BOARDS[name])
    results = erc.check(board, hw.read_bom(hw.bom_path(board)))
    assert [r.reason for r in results if not r.ok] == []
    groups = {r.group for r in results}
    assert {"keys", "pins", "3V3", "signals"} <= groups
    if any(c.type == "74HC595" for c in board.chains.values()):
        assert {"24 V", "fuses"} <= groups
    done = _check(name, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["failures"] == []
    table = _check(name)
    assert table.returncode == 0 and table.stdout.rstrip().endswith("PASS")


def test_ok__the_figures_are_the_arithmetic_of_the_files():
    board = load_board(BOARDS["tas100"])
    by_part = {r.part: r for r in erc.check(board, hw.read_bom(hw.bom_path(board)))}
    hot = next(r for p, r in by_part.items() if p.startswith("215 lamps lit"))
    assert hot.value == "8.60 A"                       # 215 x 40 mA
    cold = next(r for p, r in by_part.items() if p.startswith("cold switch-on"))
    assert cold.value == "86 A without soft start"     # 10 x hot
    surge = next(r for p, r in by_part.items() if p.startswith("flash surge"))
    assert surge.value == "17.8 A"                     # 115 x 40 mA x 3 + 100 x 40 mA
    secrecy = next(r for p, r in by_part.items() if p.startswith("secrecy on GPIO5"))
    assert secrecy.value == "closed 0.10 V, open 2.57 V"   # 1.05 k against 33 k; 3.3 V - 10 uA x 73 k


def _desk_copy(tmp_path, old, new):
    text = BOARDS["desk"].read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "desk.toml"
    path.write_text(text.replace(old, new))
    return path


def test_fail__a_switch_on_gpio2_through_1k_fails_with_the_reason(tmp_path):
    """The issue's defect: 1 kOhm in series against GPIO2's fixed 1.8 kOhm pull-up."""
    path = _desk_copy(tmp_path, 'secrecy = "^!GPIO8"', 'secrecy = "^!GPIO2"')
    done = _check(path)
    assert done.returncode == 1, done.stdout + done.stderr
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL ")]
    assert fails == [
        "FAIL desk: secrecy on GPIO2 (header pin 3), R12-R19 1 kΩ in series, the Pi's fixed "
        "1.8 kΩ pull-up: a closed key reads (series resistor at +5%) 1.22 V, outside the limit "
        "0.8 V (BCM2711 V_IL max)"]
    report = json.loads(_check(path, "--json").stdout)
    assert report["ok"] is False and len(report["failures"]) == 1
    assert "GPIO2" in report["failures"][0] and "1.22 V" in report["failures"][0]


def _bom_with(tmp_path, name, tag, value):
    path = hw.bom_path(load_board(BOARDS[name]))
    rows = list(csv.DictReader(open(path, newline="")))
    for r in rows:
        if r["covers"] == tag:
            r["value"] = value
    out = tmp_path / "bom.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=hw.BOM_FIELDS)
        w.writeheader()
        w.writerows(rows)
    return out


@pytest.mark.parametrize("name, tag, value, reason", [
    # 330 ohm LEDs draw 5.5 mA: over the Pi 4's default drive.
    ("desk", "lamp-resistor", "ohms=330 tol=5",
     "desk: GPIO12 → line-901: LED (D1, V_F ≥ 1.6 V) through 330 Ω (R1-R11): GPIO12 drives 5.42 mA, "
     "outside the limit 4 mA (the Pi 4's default drive strength)"),
    # A 10 A branch fuse upstream of a lamp board's 20 AWG pair.
    ("tas100", "fuse-branch", "amps=10",
     "tas100: pair from the distribution point to a lamp board W13, 20 AWG: nearest fuse "
     "upstream F4-F10 10 A (branch fuse): the nearest fuse upstream (F4-F10, branch fuse) is "
     "10 A, outside the limit 5 A (what 20 AWG may carry in the cabinet)"),
    # 26 AWG lamp wires: a T2A fuse does not protect them.
    ("tas100", "cable-lamp-field", "awg=26",
     "tas100: lamp field cable W20-W26, 26 AWG: nearest fuse upstream F4-F10 2 A (branch fuse): "
     "the nearest fuse upstream (F4-F10, branch fuse) is 2 A, outside the limit 1 A "
     "(what 26 AWG may carry in the cabinet)"),
    # A distribution block whose feed is rated below the main fuse.
    ("tas100", "dist-24v", "amps=16 branch_amps=10",
     "tas100: distribution block's feed TB8, rated 16 A: nearest fuse upstream F2 20 A (main "
     "fuse): the nearest fuse upstream (F2, main fuse) is 20 A, outside the limit 16 A "
     "(the rating of the distribution block's feed)"),
    # A bridge across the fuse terminals rated below the main fuse.
    ("tas100", "dist-bridge", "amps=16",
     "tas100: bridge across the fuse terminals' feeds BR1, rated 16 A: nearest fuse upstream "
     "F2 20 A (main fuse): the nearest fuse upstream (F2, main fuse) is 20 A, outside the limit "
     "16 A (the rating of the bridge across the fuse terminals' feeds)"),
    # A branch fuse bigger than its fuse terminal takes.
    ("tas100", "fuseholder-dist", "amps=1.6",
     "tas100: branch fuse F4-F10 2 A in its holder TB1-TB7 (at the distribution point): the "
     "branch fuse is 2 A, outside the limit 1.6 A (the holder's rating)"),
    # Series termination out of the 33-47 ohm range.
    ("desk", "series-33r", "ohms=220", "desk: series resistors R52-R54: series termination 220 Ω, "
     "outside the limit 33-47 Ω"),
])
def test_fail__a_part_value_outside_its_limit_names_board_part_value_and_limit(
        tmp_path, name, tag, value, reason):
    done = _check(name, "--csv", _bom_with(tmp_path, name, tag, value), "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert reason in json.loads(done.stdout)["failures"]


def test_fail__no_soft_start_on_bulbs_fails_the_cold_switch_on(tmp_path):
    text = BOARDS["tas100"].read_text().replace("soft_start_ms = 250", "soft_start_ms = 0")
    path = tmp_path / "tas100.toml"
    path.write_text(text)
    report = json.loads(_check(path, "--json").stdout)
    assert report["failures"] == [
        "tas100: cold switch-on of every lamp at once (10 x hot): soft start 0 ms on OE: 215 cold "
        "filaments switched on together draw 86 A and the soft start is 0 ms, outside the limit "
        "100 ms ([lamps] oe and soft_start_ms in the board file)"]


def test_fail__a_bom_without_a_value_is_a_clear_error_not_a_traceback(tmp_path):
    done = _check("desk", "--csv", _bom_with(tmp_path, "desk", "key-series-1k", ""))
    assert done.returncode == 2
    assert "R12-R19 (key-series-1k) has no ohms= in its value column" in done.stderr
    assert "Traceback" not in done.stderr
    done = _check("desk", "--csv", _bom_with(tmp_path, "desk", "key-series-1k", "ohms=lots"))
    assert done.returncode == 2 and "expected name=number pairs" in done.stderr


def test_ok__the_build_layout_counts_boards_and_lines():
    lay = erc.layout(load_board(BOARDS["tas100"]))
    assert (lay["key_boards"], lay["lamp_boards"]) == (3, 7)      # 20 chips by 7; 27 by 4
    assert lay["series"] == 6 + 3 + 7          # at the 74LVC244; each key board; each lamp board
    assert lay["pullup_ser"] == 3 + 7 + 1      # key data inputs; each lamp board's SER; loop-back
    desk = erc.layout(load_board(BOARDS["desk"]))
    assert (desk["key_boards"], desk["lamp_boards"], desk["series"]) == (1, 0, 3)


def test_ok__readme_documents_the_check():
    text = (ROOT / "README.md").read_text()
    assert "switchboard-hardware check tas100" in text


def _rows(name):
    return hw.read_bom(hw.bom_path(load_board(BOARDS[name])))


def _fuse_on_the_board(rows):
    """The old TAS-100 arrangement: the T2A in a PCB holder on each lamp board, so its 20 AWG
    feed and the distribution block's outputs have only the 20 A main fuse upstream."""
    out = []
    for row in rows:
        if row["covers"] == "dist-bridge":
            continue
        row = dict(row)
        if row["covers"] == "fuseholder-dist":
            row.update(covers="fuseholder-board", part="PCB fuse holder 5x20 mm with cover",
                       part_number="Littelfuse 01000056Z", value="amps=6.3")
        out.append(row)
    return out


def test_ok__each_conductor_is_checked_against_the_nearest_fuse_upstream():
    board = load_board(BOARDS["tas100"])
    parts = erc.Parts(board, _rows("tas100"), "bom-tas100.csv")
    by_tag = {(c.tag, c.key): f.tag for c, f in erc.protection(erc.path_24v(parts))}
    assert by_tag == {
        ("wire-24v-main", "awg"): "fuse-main",          # W12 12 AWG
        ("dist-24v", "amps"): "fuse-main",              # TB8's feed
        ("dist-bridge", "amps"): "fuse-main",           # BR1 across TB1-TB7's feeds
        ("dist-24v", "branch_amps"): "fuse-branch",     # TB8's outputs: a branch's return
        ("wire-24v-branch", "awg"): "fuse-branch",      # W13 20 AWG
        ("conn-24v", "amps"): "fuse-branch",
        ("wire-star-ground", "awg"): "fuse-branch",
        ("cable-lamp-field", "awg"): "fuse-branch",
    }
    old = erc.Parts(board, _fuse_on_the_board(_rows("tas100")), "old.csv")
    by_tag = {(c.tag, c.key): f.tag for c, f in erc.protection(erc.path_24v(old))}
    assert by_tag[("wire-24v-branch", "awg")] == "fuse-main"
    assert by_tag[("cable-lamp-field", "awg")] == "fuse-branch"
    assert erc.protection([erc.Conductor("w", "awg", "w"), erc.Fuse("f", "f")]) == [
        (erc.Conductor("w", "awg", "w"), None)]


def test_fail__a_branch_fuse_on_the_lamp_board_leaves_its_20_awg_feed_on_the_main_fuse():
    """The defect: a fuse protects only the wire downstream of it. With the T2A on the lamp
    board, the 20 AWG pair from the distribution point, the block's 1.5 mm2 outputs, the
    board's terminal and the star ground have only the 20 A main fuse upstream."""
    board = load_board(BOARDS["tas100"])
    results = erc.check(board, _fuse_on_the_board(_rows("tas100")), "old.csv")
    assert [r.reason for r in results if not r.ok] == [
        "tas100: distribution block's branch outputs TB8, rated 17.5 A: nearest fuse upstream "
        "F2 20 A (main fuse): the nearest fuse upstream (F2, main fuse) is 20 A, outside the "
        "limit 17.5 A (the rating of the distribution block's branch outputs)",
        "tas100: pair from the distribution point to a lamp board W13, 20 AWG: nearest fuse "
        "upstream F2 20 A (main fuse): the nearest fuse upstream (F2, main fuse) is 20 A, "
        "outside the limit 5 A (what 20 AWG may carry in the cabinet)",
        "tas100: lamp board's 24 V terminal J23-J29, rated 15 A: nearest fuse upstream F2 20 A "
        "(main fuse): the nearest fuse upstream (F2, main fuse) is 20 A, outside the limit 15 A "
        "(the rating of the lamp board's 24 V terminal)",
        "tas100: star ground (a lamp board's +24 V shorted to its logic ground returns through "
        "it) W14, 18 AWG: nearest fuse upstream F2 20 A (main fuse): the nearest fuse upstream "
        "(F2, main fuse) is 20 A, outside the limit 7 A (what 18 AWG may carry in the cabinet)"]
    # The shipped arrangement, the fuse at the distribution point: every row within limits.
    assert all(r.ok for r in erc.check(board, _rows("tas100"), "bom-tas100.csv"))


def test_fail__a_bom_with_no_branch_fuse_holder_or_both_is_a_clear_error():
    board = load_board(BOARDS["tas100"])
    rows = [r for r in _rows("tas100") if r["covers"] != "fuseholder-dist"]
    with pytest.raises(erc.CheckError, match="the branch fuses need one holder row"):
        erc.check(board, rows, "bom.csv")
    both = _rows("tas100") + [dict(r, covers="fuseholder-board") for r in _rows("tas100")
                              if r["covers"] == "fuseholder-dist"]
    with pytest.raises(erc.CheckError, match="found fuseholder-dist, fuseholder-board"):
        erc.check(board, both, "bom.csv")
