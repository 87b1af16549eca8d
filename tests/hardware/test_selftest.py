"""The bench self-test on the simulated board, wired wrongly on purpose."""

import io
import json
import subprocess

import pytest

from conftest import ROOT, project_env, python_cmd
from firmware.config.board import load_board
from firmware.errors import ConfigError
from firmware.panel.gpio import Panel
from firmware.panel.sim import SimBoard
from switchboard_tools.hardware.selftest import (Bench, ConsoleTechnician, SelfTest, SimTechnician,
                                        apply_fault, format_report)

BOARDS = {name: load_board(ROOT / "boards" / f"{name}.toml") for name in ("desk", "tas100")}


def run_selftest(name, *faults):
    board = BOARDS[name]
    sim = SimBoard(board)
    for f in faults:
        apply_fault(sim, f)
    bench = Bench(board, pin_factory=sim.factory)
    try:
        return SelfTest(board, bench, SimTechnician(sim), key_timeout_s=0.05,
                        sleep=lambda s: None).run()
    finally:
        bench.close()


def faults_of(report):
    return sorted((f.kind, tuple(sorted(f.items))) for f in report.faults)


def in_board_order(name, a, b, *rest):
    """Faults name keys in the board file's order (positions' keys come before lines)."""
    order = list(BOARDS[name].keys)
    if order.index(a) > order.index(b):
        return (b, a) + tuple(reversed(rest))
    return (a, b) + rest


@pytest.mark.parametrize("name", ["desk", "tas100"])
def test_ok__a_board_wired_as_its_board_file_passes(name):
    report = run_selftest(name)
    board = BOARDS[name]
    assert report.ok, format_report(report)
    assert [r["key"] for r in report.keys] == list(board.keys)
    assert all(r["verdict"] == "ok" and r["seen"] == [r["expected"]] for r in report.keys)
    assert [r["lamp"] for r in report.lamps] == list(board.lamps)
    assert all(r["seen"] == [r["lamp"]] for r in report.lamps)
    assert report.stuck == []
    assert "PASS" in format_report(report)


@pytest.mark.parametrize("name, a, b, where_a, where_b", [
    ("desk", "line-201", "line-204", "GPIO4 (header pin 7)", "GPIO22 (header pin 15)"),
    ("desk", "p1-dial-1", "p2-dial-9", "keys:3 (U1 input D, DIP pin 14)",
     "keys:27 (U4 input D, DIP pin 14)"),
    ("tas100", "line-205", "line-206", "keys:4 (U1 input E, DIP pin 3)",
     "keys:5 (U1 input F, DIP pin 4)"),
    ("tas100", "line-901", "p2-stamp", "keys:100 (U13 input E, DIP pin 3)",
     "keys:138 (U18 input C, DIP pin 13)"),
])
def test_fail__two_keys_swapped_are_named_with_their_inputs(name, a, b, where_a, where_b):
    report = run_selftest(name, f"swap:{a},{b}")
    assert faults_of(report) == [("swapped", tuple(sorted((a, b))))]
    a, b, where_a, where_b = in_board_order(name, a, b, where_a, where_b)
    (fault,) = report.faults
    assert fault.text == (f"{a} and {b} are swapped: {a}'s key is wired to {where_b} "
                          f"and {b}'s to {where_a}")
    rows = {r["key"]: r for r in report.keys}
    assert rows[a]["verdict"] == f"swapped with {b}" and rows[b]["verdict"] == f"swapped with {a}"
    assert sum(r["verdict"] != "ok" for r in report.keys) == 2
    table = format_report(report)
    assert f"SWAPPED: {a} and {b} are swapped" in table


@pytest.mark.parametrize("name, key, wired_to, text", [
    # An unused chain bit, another key's bit, a free header pin.
    ("desk", "p1-hold", "keys:15", "p1-hold is wired to keys:15 [no key in the board file], "
     "the board file says keys:0 (U1 input A, DIP pin 11)"),
    ("desk", "p2-stamp", "keys:17", "p2-stamp is wired to keys:17 [p2-release], "
     "the board file says keys:18 (U3 input C, DIP pin 13)"),
    ("tas100", "p1-hold", "GPIO4", "p1-hold is wired to GPIO4 [no key in the board file], "
     "the board file says keys:120 (U16 input A, DIP pin 11)"),
    ("tas100", "line-250", "keys:119", "line-250 is wired to keys:119 [no key in the board file], "
     "the board file says keys:49 (U7 input B, DIP pin 12)"),
])
def test_fail__a_key_on_the_wrong_input_is_named_with_both_places(name, key, wired_to, text):
    report = run_selftest(name, f"rewire:{key},{wired_to}")
    assert faults_of(report) == [("wrong-input", (key,))]
    assert report.faults[0].text == text
    assert report.faults[0].action.startswith(f"move the wire from {wired_to}")
    rows = {r["key"]: r for r in report.keys}
    assert rows[key]["seen"] == [wired_to]
    assert [r["key"] for r in report.keys if r["verdict"] != "ok"] == [key]


@pytest.mark.parametrize("name, a, b", [
    ("desk", "line-202", "line-203"),            # two header pins
    ("desk", "p1-hold", "p1-release"),           # neighbouring chain inputs
    ("desk", "line-901", "p2-dial-star"),         # a header pin and a chain bit
    ("tas100", "line-250", "line-251"),
    ("tas100", "secrecy", "split"),
])
def test_fail__two_keys_shorted_together_are_named(name, a, b):
    report = run_selftest(name, f"short:{a},{b}")
    assert faults_of(report) == [("shorted", tuple(sorted((a, b))))]
    a, b = in_board_order(name, a, b)
    assert report.faults[0].text.startswith(f"{a} and {b} are shorted together: pressing either pulls")
    rows = {r["key"]: r for r in report.keys}
    assert rows[a]["verdict"] == f"shorted to {b}" and rows[b]["verdict"] == f"shorted to {a}"
    assert set(rows[a]["seen"]) == set(rows[b]["seen"]) == {rows[a]["expected"], rows[b]["expected"]}


@pytest.mark.parametrize("tail", ["high", "low"])
@pytest.mark.parametrize("name, chips, missing_keys", [
    ("desk", 3, {"p2-dial-6", "p2-dial-7", "p2-dial-8", "p2-dial-9", "p2-dial-star", "p2-dial-0",
                 "p2-dial-hash"}),
    ("tas100", 17, {f"p2-{r}" for r in ("hold", "release", "stamp")}
     | {f"p2-dial-{d}" for d in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "star", "0", "hash")}),
])
def test_fail__key_chain_shorter_than_the_board_file_says(name, chips, missing_keys, tail):
    fault = f"short-chain:keys:{chips}" + (":low" if tail == "low" else "")
    report = run_selftest(name, fault)
    board = BOARDS[name]
    total = board.chains["keys"].chips
    # One fault for the chain, not one per missing key.
    assert faults_of(report) == [("chain-short", ("keys",))]
    text = report.faults[0].text
    assert text.startswith(f"key chain 'keys' answers for {chips} of its {total} chips: "
                           f"bits {chips * 8}-{total * 8 - 1} ")
    assert ("read 'pressed' with no key touched" if tail == "low" else "never answer") in text
    assert f"set chips = {chips}" in report.faults[0].action
    bad = {r["key"] for r in report.keys if r["verdict"] != "ok"}
    assert bad == missing_keys
    assert all(r["verdict"] == "in the missing part of chain keys" for r in report.keys
               if r["key"] in bad)


def test_fail__lamp_chain_shorter_than_the_board_file_says():
    report = run_selftest("tas100", "short-chain:lamps:25")
    assert faults_of(report) == [("chain-short", ("lamps",))]
    assert report.faults[0].text.startswith(
        "lamp chain 'lamps' lights 25 of its 27 chips: no lamp on bits 200-215 lit")
    dark = [r["lamp"] for r in report.lamps if r["verdict"] != "ok"]
    assert dark == [f"msg-{n}" for n in range(286, 301)]       # bits 200-214


@pytest.mark.parametrize("name, a, b", [
    ("desk", "line-201", "msg-204"),           # two header pins
    ("tas100", "line-201", "msg-300"),         # two chain bits, chips U20 and U46
])
def test_fail__two_lamps_swapped_are_named(name, a, b):
    report = run_selftest(name, f"swap-lamps:{a},{b}")
    assert faults_of(report) == [("lamps-swapped", tuple(sorted((a, b))))]
    rows = {r["lamp"]: r for r in report.lamps}
    assert rows[a]["seen"] == [b] and rows[b]["seen"] == [a]
    assert [r["lamp"] for r in report.lamps if r["verdict"] != "ok"] == \
        [n for n in BOARDS[name].lamps if n in (a, b)]


def test_fail__every_fault_at_once_is_named_each_once():
    report = run_selftest("tas100", "swap:line-220,line-230", "short:p1-hold,p1-release",
                          "short-chain:keys:18", "short-chain:lamps:26")
    assert faults_of(report) == [("chain-short", ("keys",)), ("chain-short", ("lamps",)),
                                 ("shorted", ("p1-hold", "p1-release")),
                                 ("swapped", ("line-220", "line-230"))]


def test_ok__the_sim_faults_fool_the_daemons_panel_too():
    """The hooks rewire the simulated board, not the self-test: the daemon's Panel sees them."""
    board = BOARDS["tas100"]
    sim = SimBoard(board)
    sim.swap_keys("line-201", "line-202")
    sim.short_keys("line-203", "line-204")
    panel = Panel(board, pin_factory=sim.factory)
    seen = []

    def scan():                          # a chained key is taken when two scans agree
        panel.scan()
        panel.scan()
    panel.on_key = lambda name, down: seen.append((name, down))
    try:
        scan()
        sim.press("line-201")
        scan()
        assert seen == [("line-202", True)]
        sim.release("line-201")
        sim.press("line-203")
        scan()
        assert sorted(seen[1:]) == [("line-202", False), ("line-203", True), ("line-204", True)]
        sim.press("line-204")
        sim.release("line-203")          # still pulled through the short
        scan()
        assert len(seen) == 4
        sim.release("line-204")
        scan()
        assert sorted(seen[4:]) == [("line-203", False), ("line-204", False)]
    finally:
        panel.close()


def test_fail__bad_fault_text_is_a_clear_error():
    sim = SimBoard(BOARDS["desk"])
    with pytest.raises(ConfigError, match="expected swap:KEY,KEY, short:KEY,KEY, rewire:KEY,INPUT, "
                                          "swap-lamps:LAMP,LAMP or short-chain"):
        apply_fault(sim, "swap:line-201")
    with pytest.raises(Exception, match="no key 'line-999'"):
        apply_fault(sim, "swap:line-201,line-999")


def test_ok__cli_self_test_json_reports_the_faults():
    done = subprocess.run(python_cmd("switchboard_tools.hardware.cli", "self-test", "desk", "--sim",
                                     "--fault", "swap:line-202,line-902", "--json"),
                          env=project_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert [(f["kind"], f["items"]) for f in report["faults"]] == [
        ("swapped", ["line-202", "line-902"])]


def test_ok__cli_self_test_clean_sim_passes_with_exit_0():
    done = subprocess.run(python_cmd("switchboard_tools.hardware.cli", "self-test", "desk", "--sim"),
                          env=project_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "PASS" in done.stdout


def test_fail__cli_fault_without_sim_is_refused():
    done = subprocess.run(python_cmd("switchboard_tools.hardware.cli", "self-test", "desk",
                                     "--fault", "swap:line-201,line-202"),
                          env=project_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--fault works with --sim only" in done.stderr and "Traceback" not in done.stderr


def test_ok__console_technician_reads_lamp_answers():
    lamp = BOARDS["desk"].lamps["line-201"]
    out = io.StringIO()
    tech = ConsoleTechnician(out=out, inp=io.StringIO("\nnone\nline-202, msg-201\ns\n"))
    assert tech.ask_lamp(lamp, 1, 11) == ["line-201"]
    assert tech.ask_lamp(lamp, 1, 11) == []
    assert tech.ask_lamp(lamp, 1, 11) == ["line-202", "msg-201"]
    assert tech.ask_lamp(lamp, 1, 11) is None
    assert "lamp line-201 (GPIO18) should be the only one lit" in out.getvalue()


def test_fail__a_key_that_never_answers_is_named_dead():
    # Wired to the UART pin, which the bench leaves alone: nothing the test watches moves.
    report = run_selftest("desk", "rewire:line-202,GPIO14")
    assert faults_of(report) == [("dead-key", ("line-202",))]
    assert report.faults[0].text == "line-202 gave no response at GPIO17 (header pin 11)"
    assert {r["key"]: r["verdict"] for r in report.keys}["line-202"] == "no response"
