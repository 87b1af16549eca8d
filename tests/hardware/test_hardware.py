"""switchboard-hardware: tables, pictures and BOMs drawn from every shipped board file."""

import csv
import json
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, project_env, python_cmd
from firmware.config.board import load_board, shipped_boards
from firmware.errors import ConfigError
from switchboard_tools.hardware import bom, cli, drawings, tables

BOARDS = {p.stem: p for p in shipped_boards()}
HARDWARE = ROOT / "hardware"


def test_ok__the_shipped_boards_are_found():
    assert {"desk", "tas100"} <= set(BOARDS)


# -- pin table ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BOARDS))
def test_ok__pin_table_names_every_header_wire_of_the_board(name):
    board = load_board(BOARDS[name])
    rows = {r["pin"]: r for r in tables.pin_table(board)}
    assert sorted(rows) == list(range(1, 41))
    expected = {}
    for item in list(board.keys.values()) + list(board.lamps.values()):
        if item.wire.pin:
            expected[item.wire.board_pin] = (item.wire.pin, item.name)
    for chain in board.chains.values():
        for role, pin in chain.pins.items():
            number = next(n for n, r in rows.items() if r["name"] == pin)
            expected[number] = (pin, f"{chain.name}.{role}")
    if board.oe:        # the 74HC595s' output enable, on a PWM-capable pin
        number = next(n for n, r in rows.items() if r["name"] == board.oe)
        expected[number] = (board.oe, "lamps.oe")
    assert expected, "a board wires something to the header"
    for number, (pin, what) in expected.items():
        assert rows[number]["name"] == pin
        assert rows[number]["gpio"] == int(pin[4:])
        assert rows[number]["what"] == what
    # Nothing else claims to be wired: every other GPIO row is free or reserved.
    for number, r in rows.items():
        if number not in expected and r["gpio"] is not None:
            assert r["kind"] in ("free", "reserved"), r
    # Power and ground rows are where the Pi has them.
    assert [n for n, r in rows.items() if r["name"] == "GND"] == [6, 9, 14, 20, 25, 30, 34, 39]
    assert {rows[n]["kind"] for n in (1, 2, 4, 17)} == {"power"}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_ok__chain_map_has_every_chained_key_and_lamp_once_at_its_bit(name):
    board = load_board(BOARDS[name])
    rows = tables.chain_map(board)
    assert len(rows) == sum(c.bits for c in board.chains.values())
    at = {(r["chain"], r["bit"]): r for r in rows}
    chained = [i for i in list(board.keys.values()) + list(board.lamps.values()) if i.wire.chain]
    for item in chained:
        r = at[(item.wire.chain, item.wire.bit)]
        assert r["what"] == item.name
        assert r["chip"] == item.wire.bit // 8
        assert r["chip_pin"].endswith("ABCDEFGH"[item.wire.bit % 8])
    assert sum(1 for r in rows if r["what"]) == len(chained)
    if name == "tas100":
        r = at[("keys", 99)]
        assert (r["what"], r["ref"], r["chip_pin"], r["chip_pin_number"]) == ("line-300", "U13", "D", 14)
        r = at[("lamps", 115)]
        assert (r["what"], r["ref"], r["chip_pin"], r["chip_pin_number"], r["driver_out_pin"]) == \
            ("msg-201", "U34", "QD", 3, 15)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_ok__wiring_picture_is_drawn_with_graphviz_and_names_the_wires(name, tmp_path):
    board = load_board(BOARDS[name])
    svg = drawings.render_dot(drawings.wiring_dot(board), tmp_path / "w.svg")
    root = ET.fromstring(svg.read_text())   # well-formed SVG
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for item in list(board.keys.values()) + list(board.lamps.values()):
        if item.wire.pin:
            assert item.name in texts, item.name
            assert item.wire.pin in texts
    refs = {r["ref"] for r in tables.chain_map(board)}
    assert refs <= set(texts)     # every chip is in the picture
    for chain in board.chains.values():
        assert any(f"{chain.chips} chips" in (t or "") for t in texts)
    png = drawings.render_dot(drawings.wiring_dot(board), tmp_path / "w.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ok__tas100_wiring_is_drawn_as_built():
    """The interface board between the Pi and the ribbons: the chains' 3V3 from the LM1117 on
    header pin 2 (5 V), every chain signal through the 74LVC244, OE wired with its pull-up."""
    board = load_board(BOARDS["tas100"])
    dot = drawings.wiring_dot(board)
    rows = {r["name"]: r["pin"] for r in tables.pin_table(board) if r["gpio"] is not None}
    assert "header:p2:e -> reg:in:w" in dot and "LM1117-3.3" in dot
    for chain in board.chains:
        assert f"reg:out:e -> ribbon_{chain}:p9_l:w" in dot
    # The Pi's 3V3 (pin 1) feeds the buffer, and no chain board or ribbon.
    from_3v3 = [line for line in dot.splitlines() if line.strip().startswith("header:p1:")]
    assert from_3v3 == ['  header:p1:e -> lvc:vcc:w [label="3V3", color="#c62828"];']
    # Every chain pin and OE goes to the buffer, none straight to a chain.
    for chain in board.chains.values():
        for role, pin in chain.pins.items():
            assert f"header:p{rows[pin]}:e -> lvc:pi_{chain.name}_{role}:w" in dot, (chain.name, role)
    assert f"header:p{rows[board.oe]}:e -> lvc:pi_oe:w" in dot
    oe_row = next(line for line in dot.split("<tr>") if 'port="pi_oe"' in line)
    assert "10 kΩ to 3V3: dark" in oe_row and "2A2 (13)" in oe_row and "lamps ribbon pin 8" in oe_row
    # Every board, ribbon and link, and the 24 V distribution with its star point.
    names = [f"K{i}" for i in (1, 2, 3)] + [f"L{i}" for i in range(1, 8)]
    for name in names:
        assert f"board_{name} [label=" in dot and f"<b>{name}: " in dot
    assert dot.count("20 cm") == 8 and dot.count(' 1 m"') == 2
    # Each lamp board's pair leaves the load side of its own fuse terminal at the
    # distribution point (TB1-TB7, a T2A each), not the unfused + row.
    assert "dist24:plus:e -> board_L" not in dot
    for i in range(1, 8):
        assert f"dist24:f{i - 1}:e -> board_L{i}:v24:w" in dot, i
        assert f"TB{i}: F{i + 3} T2A to L{i}" in dot, i
    assert "dist24:star:e -> lgnd:e" in dot and "74LVC244" in dot and "UM1" in dot


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_ok__committed_tables_and_pictures_are_up_to_date(name, tmp_path):
    """hardware/ holds what the tool makes now: the drawings cannot drift from the board file."""
    board = load_board(BOARDS[name])
    written = cli.generate(board, tmp_path, pictures=())
    assert written
    for path in written:
        committed = HARDWARE / path.name
        assert committed.exists(), f"run switchboard-hardware generate: {committed} missing"
        assert committed.read_text() == path.read_text(), \
            f"{committed} is stale: run switchboard-hardware generate"
    assert (HARDWARE / f"{name}-wiring.svg").exists()


def test_ok__generated_csv_pin_table_reads_back_as_the_board(tmp_path):
    board = load_board(BOARDS["desk"])
    cli.generate(board, tmp_path, pictures=())
    with open(tmp_path / "desk-pins.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_what = {(r["kind"], r["what"]): r for r in rows if r["what"]}
    for key in board.keys.values():
        if key.wire.pin:
            kind = "switch" if key.latching else "key"
            assert by_what[(kind, key.name)]["pin"] == str(key.wire.board_pin)
    for lamp in board.lamps.values():
        assert by_what[("lamp", lamp.name)]["pin"] == str(lamp.wire.board_pin)


# -- bill of materials --------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BOARDS))
def test_ok__shipped_bom_has_what_the_board_needs(name):
    board = load_board(BOARDS[name])
    result = bom.check_bom(board, bom.read_bom(bom.bom_path(board)))
    wrong = [r for r in result if not r["ok"]]
    assert not wrong, wrong
    tags = {r["covers"] for r in result}
    assert {"pi", "key-momentary", "key-latching", "usb-audio", "headset", "header-cable"} <= tags


def test_ok__bom_needs_count_the_board_independently():
    """Counted here from the board's structure, not from bom_needs."""
    for name in BOARDS:
        board = load_board(BOARDS[name])
        needs = bom.bom_needs(board)
        lines = len(board.lines)
        position_keys = board.positions * (3 + 12)
        assert needs["key-momentary"] == lines + position_keys
        customer = sum(ln.kind == "customer" for ln in board.lines)
        assert needs["lamp-led"] + needs.get("lamp-24v", 0) == lines + customer + 1
        chips = {c.type: c.chips + (1 if c.marker_bits else 0) for c in board.chains.values()}
        assert needs.get("chip:74HC165", 0) == chips.get("74HC165", 0)   # the marker chip too
        assert needs.get("uln2803", 0) == chips.get("74HC595", 0)
        assert needs["usb-audio"] == needs["headset"] == board.positions


def _bom_with(tmp_path, name, edit):
    rows = list(csv.DictReader(open(bom.bom_path(load_board(BOARDS[name])), newline="")))
    rows = edit(rows)
    path = tmp_path / "bom.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=bom.BOM_FIELDS)
        w.writeheader()
        w.writerows(rows)
    return path


#: What BUILD-tas100.md tells the builder to use, by BOM tag, with a phrase of the guide's
#: that names it. Each must be on the BOM, in the quantity the board needs, by the refs the
#: guide gives.
TAS100_GUIDE_PARTS = {
    "dist-24v": "0 V block",
    "wire-star-ground": "Star ground",
    "wire-24v-branch": "20 AWG",
    "cable-key-field": "25-pair",
    "cable-lamp-field": "lamp cable",
    "loopback-pair": "loop-back pair",
    "conn-loopback": "loop-back pair",
    "conn-interface-field": "2-pole screw terminals",
    "conn-key-field": "key field header",
    "conn-lamp-field": "lamp field header",
    "conn-field-housing": "KK housing",
    "conn-24v": "screw terminal",
    "fuse-branch": "T2A",
    "fuseholder-dist": "fuse terminal",
    "dist-bridge": "bridge",
}


def test_ok__the_tas100_guide_parts_are_on_the_bom_by_the_refs_it_names():
    board = load_board(BOARDS["tas100"])
    rows = {r["covers"]: r for r in bom.read_bom(bom.bom_path(board)) if r["covers"]}
    needs = bom.bom_needs(board)
    text = (HARDWARE / "BUILD-tas100.md").read_text()
    for tag, phrase in TAS100_GUIDE_PARTS.items():
        assert phrase in text, (tag, phrase)
        assert tag in rows, f"bom-tas100.csv has no {tag} (the guide's {phrase!r})"
        assert rows[tag]["qty"] == needs[tag], tag
        if tag not in ("conn-24v", "fuse-branch", "wire-24v-branch"):
            ref = rows[tag]["ref"]      # "J35-J53", or each of "J30", "J31"
            first, _, last = ref.partition("-")
            assert ref in text or (first in text and last in text), (tag, ref)
    # Counted here from the build, not from field_needs: a 10-way connector per chip with
    # field wiring (19 key chips, 27 lamp chips), 25-pair cables for 10 conductors a chip
    # (K1 7 chips: 2, K2: 2, K3 5: 1; a lamp board's 4: 1 each), secrecy, split and fault.
    assert (needs["conn-key-field"], needs["conn-lamp-field"]) == (19, 27)
    assert (needs["cable-key-field"], needs["cable-lamp-field"]) == (5, 7)
    assert needs["conn-field-crimp"] == 10 * needs["conn-field-housing"] == 460
    assert (needs["conn-interface-field"], needs["loopback-pair"], needs["conn-loopback"]) == (3, 1, 2)
    assert (needs["dist-24v"], needs["wire-star-ground"]) == (1, 1)
    # A fuse terminal per lamp board at the distribution point, their feeds bridged.
    assert (needs["fuse-branch"], needs["fuseholder-dist"], needs["dist-bridge"]) == (7, 7, 1)
    # The desk board has no interface board or 24 V: none of these.
    desk = bom.bom_needs(load_board(BOARDS["desk"]))
    assert not set(TAS100_GUIDE_PARTS) & set(desk)


def test_fail__bom_missing_a_part_names_it(tmp_path):
    path = _bom_with(tmp_path, "tas100", lambda rows: [r for r in rows if r["covers"] != "uln2803"])
    result = bom.check_bom(load_board(BOARDS["tas100"]), bom.read_bom(path))
    assert [r for r in result if not r["ok"]] == [
        {"covers": "uln2803", "needed": 27, "on_bom": 0, "ok": False}]


def test_fail__bom_with_too_few_keys_names_the_count(tmp_path):
    def edit(rows):
        for r in rows:
            if r["covers"] == "key-momentary":
                r["qty"], r["ref"] = "35", "S1-S35"
        return rows
    path = _bom_with(tmp_path, "desk", edit)
    result = bom.check_bom(load_board(BOARDS["desk"]), bom.read_bom(path))
    assert [r for r in result if not r["ok"]] == [
        {"covers": "key-momentary", "needed": 36, "on_bom": 35, "ok": False}]


def test_fail__bom_ref_range_disagreeing_with_qty_is_refused(tmp_path):
    def edit(rows):
        for r in rows:
            if r["covers"] == "pullup-10k":
                r["qty"] = "31"
        return rows
    path = _bom_with(tmp_path, "desk", edit)
    with pytest.raises(ConfigError, match=r"bom.csv: line \d+\.ref = 'R20-R51': expected 31"):
        bom.read_bom(path)


def test_fail__bom_cli_exits_1_and_says_which_part(tmp_path):
    path = _bom_with(tmp_path, "desk", lambda rows: [r for r in rows if r["covers"] != "headset"])
    done = subprocess.run(python_cmd("switchboard_tools.hardware.cli", "bom", "desk", "--csv", path,
                                     "--json"), env=project_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert [r["covers"] for r in report["check"] if not r["ok"]] == ["headset"]


# -- command line -------------------------------------------------------------
def test_ok__cli_pins_json(tmp_path):
    done = subprocess.run(python_cmd("switchboard_tools.hardware.cli", "pins", "desk", "--json"),
                          env=project_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["pins"]
    assert next(r for r in rows if r["pin"] == 7)["what"] == "line-201"


def test_ok__cli_chains_table_for_tas100():
    done = subprocess.run(python_cmd("switchboard_tools.hardware.cli", "chains", "tas100"),
                          env=project_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 + (19 + 27) * 8
    assert any(line.split()[:5] == ["keys", "120", "U16", "A", "11"] for line in lines)


def test_fail__cli_unknown_board_is_a_clear_error_not_a_traceback():
    done = subprocess.run(python_cmd("switchboard_tools.hardware.cli", "pins", "nosuchboard"),
                          env=project_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no board named 'nosuchboard'" in done.stderr and "desk" in done.stderr
    assert "Traceback" not in done.stderr


# -- building-block schematics --------------------------------------------------
def test_ok__schematics_are_drawn_by_schemdraw(tmp_path):
    from switchboard_tools.hardware.schematics import BLOCKS, draw_all
    written = draw_all(tmp_path)
    assert [p.stem for p in written] == list(BLOCKS)
    texts = {p.stem: p.read_text() for p in written}
    for stem, text in texts.items():
        ET.fromstring(text)
        committed = HARDWARE / "blocks" / f"{stem}.svg"
        assert committed.read_text() == text, \
            f"{committed} is stale: run switchboard-hardware schematics"
    assert "ULN2803A" in texts["lamp-24v"] and "MAX3232" in texts["printer"]
    assert "GPIO9 data" in texts["chain-165"]
    # The figures issue 13 found wrong or missing: 74HC595 GND (pin 8), OE pulled up and
    # driven by PWM, the loop-back; the MAX3232's charge pump; the H11AA1's two LEDs; line
    # protection; the RTC and the TTL printer; the ribbon's buffers.
    for text in ("GND", ">8<", "GPIO12 OE", "10k pull-up", "GPIO25"):
        assert text in texts["chain-595"], text
    for pin in ("C1+", "C1-", "C2+", "C2-", "V+", "V-", ">1<", ">3<", ">4<", ">5<", ">2<", ">6<"):
        assert pin in texts["printer"], pin
    assert "two LEDs back to back" in texts["loop-detect"]
    for stem in ("ring-detect", "loop-detect"):
        assert "PTC" in texts[stem] and "sidactor" in texts[stem] and "8 mm" in texts[stem]
    assert "dtoverlay=i2c-rtc,ds3231" in texts["rtc"]
    assert "74AHCT125" in texts["printer-ttl"] and "74LVC244" in texts["ribbon"]
    assert "keep-alive" in texts["lamp-24v"] and "T2A" in texts["lamp-24v"]
    assert "distribution point" in texts["lamp-24v"] and "fuse terminal" in texts["power"]
    # Every block is explained in BLOCKS.md and shown there.
    doc = (HARDWARE / "BLOCKS.md").read_text()
    for stem in BLOCKS:
        assert f"blocks/{stem}.svg" in doc, stem


# -- the build guide ------------------------------------------------------------
def _build_guide_rows():
    """The BUILD.md rows "| line-201, 202 | GPIO18, 23 | 12, 16 |", expanded."""
    import re
    rows = []
    for line in (HARDWARE / "BUILD.md").read_text().splitlines():
        m = re.match(r"^\| ([a-z0-9, -]+?)(?: \(.*\))? \| (GPIO[0-9, ]+) \| ([0-9, ]+) \|$", line)
        if not m:
            continue
        names, gpios, pins = ([x.strip() for x in g.split(",")] for g in m.groups())
        prefix = names[0].rsplit("-", 1)[0] + "-" if "-" in names[0] else ""
        names = [names[0]] + [n if "-" in n else prefix + n for n in names[1:]]
        gpios = [g if g.startswith("GPIO") else "GPIO" + g for g in gpios]
        assert len(names) == len(gpios) == len(pins), line
        rows += list(zip(names, gpios, map(int, pins)))
    return rows


def test_ok__build_guide_tables_agree_with_the_desk_board_file():
    board = load_board(BOARDS["desk"])
    aliases = {"secrecy switch": "secrecy", "position-split key": "split"}
    rows = _build_guide_rows()
    seen = set()
    for name, gpio, pin in rows:
        name = aliases.get(name, name)
        # A row names a key or a lamp (line-201 is both: the table says which).
        candidates = [i for i in (board.keys.get(name), board.lamps.get(name)) if i is not None]
        assert any((i.wire.pin, i.wire.board_pin) == (gpio, pin) for i in candidates), \
            (name, gpio, pin)
        seen.update((i.name, i.wire.pin) for i in candidates if i.wire.pin == gpio)
    # Every key and lamp on a header pin is in the guide.
    direct = {(i.name, i.wire.pin) for i in list(board.keys.values()) + list(board.lamps.values())
              if i.wire.pin}
    assert direct == seen
    text = (HARDWARE / "BUILD.md").read_text()
    for step in ("switchboard-hardware self-test desk", "switchboard-diag lamp-test",
                 "switchboard-diag key-test", "desk-wiring.svg", "blocks/chain-165.svg"):
        assert step in text


def test_ok__a_board_without_chains_gets_pins_and_picture_but_no_chain_map(tmp_path):
    pins = iter(["GPIO4", "GPIO17", "GPIO27", "GPIO22", "GPIO5", "GPIO6", "GPIO13", "GPIO19",
                 "GPIO26", "GPIO18", "GPIO23", "GPIO24", "GPIO25", "GPIO12", "GPIO16"])
    dial = "\n".join(f'"{d}" = "^!{next(pins)}"' for d in
                     ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"))
    path = tmp_path / "tiny.toml"
    path.write_text(f"""# One line, one position, no chains.
[board]
name = "tiny"
positions = 1
[switches]
secrecy = "^!GPIO2"
[lamps]
fault = "GPIO20"
[[positions]]
hold = "^!{next(pins)}"
release = "^!{next(pins)}"
stamp = "^!{next(pins)}"
[positions.dial]
{dial}
[[lines]]
number = "201"
kind = "office"
key = "^!GPIO3"
lamp = "GPIO21"
""")
    board = load_board(path)
    assert tables.chain_map(board) == []
    written = {p.name for p in cli.generate(board, tmp_path / "out")}
    assert written == {"tiny-pins.md", "tiny-pins.csv", "tiny-wiring.dot", "tiny-wiring.svg"}
    rows = {r["name"]: r for r in tables.pin_table(board)}
    assert rows["3V3"]["wiring"] == "3.3 V (not needed by this board)"
    assert bom.bom_needs(board).get("chip:74HC165") is None


def test_ok__tas100_build_guide_pins_agree_with_the_header_and_the_board_file():
    """BUILD-tas100.md's "| what | GPIOn | header pin |" rows: right pins, every used GPIO."""
    import re
    board = load_board(BOARDS["tas100"])
    rows = {r["name"]: r for r in tables.pin_table(board)}
    text = (HARDWARE / "BUILD-tas100.md").read_text()
    named = set()
    for line in text.splitlines():
        m = re.match(r"^\| [^|]+ \| (GPIO[0-9]+(?:, GPIO[0-9]+)*) \| ([0-9]+(?:, [0-9]+)*) \|$", line)
        if not m:
            continue
        gpios, pins = m.group(1).split(", "), [int(p) for p in m.group(2).split(", ")]
        assert len(gpios) == len(pins), line
        for gpio, pin in zip(gpios, pins):
            assert rows[gpio]["pin"] == pin, line
            named.add(gpio)
    used = {name for name, r in rows.items() if r["kind"] in ("key", "switch", "lamp", "chain")}
    assert used <= named, used - named
    for step in ("switchboard-hardware check tas100", "switchboard-hardware self-test tas100",
                 "switchboard-diag lamp-test", "switchboard-diag key-test", "tas100-chains.md",
                 "blocks/power.svg", "Continuity", "Power-up with no Pi"):
        assert step in text, step


def _section(text: str, heading: str) -> str:
    """A markdown section's text, from its heading to the next heading of the same level."""
    start = text.index(heading + "\n")
    end = text.find(f"\n{heading.split(' ')[0]} ", start + len(heading))
    return text[start:end if end >= 0 else None]


def test_ok__headset_card_names_are_the_ones_the_udev_rule_writes():
    """install-pi.sh names the two USB cards headset1 and headset2 by port; the drawing,
    BLOCKS.md, BUILD.md and README's Headsets section say so, and README shows the rule."""
    script = (ROOT / "scripts" / "install-pi.sh").read_text()
    assert 'ATTR{id}=\\"headset$n\\"' in script and "--headset-usb" in script
    readme = _section((ROOT / "README.md").read_text(), "## Headsets")
    blocks = _section((HARDWARE / "BLOCKS.md").read_text(),
                      "## Headsets: one USB audio adapter per position")
    texts = {"headsets.svg": (HARDWARE / "blocks" / "headsets.svg").read_text(),
             "BLOCKS.md": blocks, "README.md": readme,
             "BUILD.md": (HARDWARE / "BUILD.md").read_text(),
             "BUILD-tas100.md": (HARDWARE / "BUILD-tas100.md").read_text()}
    for where, text in texts.items():
        assert "headset1" in text and "headset2" in text, where
        assert "pos1" not in text and "pos2" not in text, where
    for what in ("install-pi.sh --headset-usb", "70-switchboard.rules", "--list-usb",
                 'KERNELS=="1-1.3", ATTR{id}="headset1"', "60-switchboard.conf",
                 'headset = "headset1"'):
        assert what in readme, what
