"""The udev rule that keeps ModemManager off the modems and gives them to dialout."""

import re
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[3] / "linux" / "60-switchboard-modems.rules"
MODEMS = {("0572", "1340"): "conexant", ("0572", "1329"): "conexant", ("0baf", "0303"): "usr",
          ("06e0", "f114"): "multitech"}


def rules():
    out = []
    for line in RULES.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(dict(re.findall(r'([A-Z]+(?:\{[A-Za-z_]+\})?)\s*[!=+:]?=\s*"([^"]*)"', line)))
    return out


@pytest.mark.parametrize("ids,profile", MODEMS.items())
def test_ok__every_listed_modem_is_ignored_by_modemmanager(ids, profile):
    match = [r for r in rules() if (r.get("ATTRS{idVendor}"), r.get("ATTRS{idProduct}")) == ids]
    assert len(match) == 1, ids
    assert match[0]["ENV{ID_MM_DEVICE_IGNORE}"] == "1"
    assert match[0]["ENV{SWITCHBOARD_MODEM}"] == profile


def test_ok__ports_go_to_dialout_and_the_rule_runs_before_modemmanager():
    tty = [r for r in rules() if r.get("SUBSYSTEM") == "tty"]
    assert tty and tty[0]["GROUP"] == "dialout" and tty[0]["MODE"] == "0660"
    assert int(RULES.name.split("-")[0]) < 80        # ModemManager's 80-mm-candidate.rules
    text = RULES.read_text()
    # every GOTO has its LABEL, and every line is one udev rule (no stray continuation)
    assert set(re.findall(r'GOTO="(\w+)"', text)) == set(re.findall(r'LABEL="(\w+)"', text))
    assert "\\\n" not in text
