"""Balancing the board: checked against exhaustive search, and the board-file change loads."""

import itertools
import json
import random
import subprocess
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from conftest import ROOT, project_env, python_cmd
from switchboard_tools.office import balance
from firmware.config.board import Line, load_board
from firmware.errors import ConfigError
from firmware.records.recordset import call_from

DESK = load_board(ROOT / "boards" / "desk.toml")
TAS100 = ROOT / "boards" / "tas100.toml"


def small_board(n, rng):
    """A real Board with n lines (the desk board's wiring does not matter to balancing)."""
    lines = tuple(Line(number=str(300 + i), label=f"Line {300 + i}", kind="customer", half=rng.choice((1, 2)),
                       key=f"line-{300 + i}", lamp=f"line-{300 + i}", message_lamp=None) for i in range(n))
    return replace(DESK, lines=lines, line_by_number={ln.number: ln for ln in lines})


def exhaustive(board, load, kinds):
    """Every one of the 2^n assignments that keeps each kind even; the best imbalance,
    and the fewest lines moved by any assignment that reaches it."""
    names = [ln.number for ln in board.lines]
    cur = {ln.number: ln.half for ln in board.lines}
    best = None
    for halves in itertools.product((1, 2), repeat=len(names)):
        count = {}
        for nm, h in zip(names, halves):
            count.setdefault(kinds[nm], [0, 0])[h - 1] += 1
        if any(abs(a - b) > 1 for a, b in count.values()):
            continue
        d = round(abs(sum(load[nm] if h == 1 else -load[nm] for nm, h in zip(names, halves))), 9)
        moved = sum(cur[nm] != h for nm, h in zip(names, halves))
        if best is None or (d, moved) < best:
            best = (d, moved)
    return best


def random_case(seed):
    rng = random.Random(seed)
    b = small_board(rng.randrange(5, 13), rng)
    kinds = {ln.number: rng.choice(("doctor", "plumber", "tow")) for ln in b.lines}
    load = {ln.number: round(rng.uniform(0.05, 3.0), 3) for ln in b.lines}
    return b, load, kinds


def kinds_even(p):
    return all(abs(a - b) <= 1 for a, b in p.kind_split().values())


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_ok__exact_on_small_boards_matches_exhaustive_search(seed):
    b, load, kinds = random_case(seed)
    best, fewest = exhaustive(b, load, kinds)
    p = balance.propose(b, load, kinds, tolerance=0)
    assert p.exact and kinds_even(p)
    assert p.imbalance() == pytest.approx(best, abs=1e-9)
    assert len(p.moves) == fewest            # and no more lines moved than needed for it


def test_ok__heuristic_is_close_to_the_best_on_small_boards():
    """The method used on large boards, forced on small ones: never worse than
    1 % of the total load above the optimum, and optimal in most cases."""
    optimal = 0
    for seed in SEEDS:
        b, load, kinds = random_case(seed)
        best, _ = exhaustive(b, load, kinds)
        p = balance.propose(b, load, kinds, exact_limit=0, tolerance=0)
        assert not p.exact and kinds_even(p)
        assert p.imbalance() <= best + 0.01 * sum(load.values()) + 1e-9, seed
        optimal += p.imbalance() <= best + 1e-9
    assert optimal >= 0.75 * len(SEEDS)


@pytest.mark.parametrize("seed", range(10))
def test_ok__tolerance_trades_a_little_balance_for_fewer_moves(seed):
    b, load, kinds = random_case(seed)
    best, fewest_at_best = exhaustive(b, load, kinds)
    p = balance.propose(b, load, kinds, tolerance=0.05)
    assert p.imbalance() <= max(best, 0.05 * sum(load.values())) + 1e-9
    assert len(p.moves) <= fewest_at_best


def test_ok__tas100_board_file_change_loads_and_changes_only_halves(tmp_path):
    board = load_board(TAS100)
    rng = random.Random(5)
    kinds = {ln.number: "office" if ln.kind == "office" else rng.choice(("doctor", "plumber", "tow", "sales"))
             for ln in board.lines}
    load = {ln.number: rng.lognormvariate(0, 0.8) * 0.05 for ln in board.lines}
    p = balance.propose(board, load, kinds)
    assert not p.exact and kinds_even(p)
    total = sum(load.values())
    assert p.imbalance() <= 0.01 * total and p.imbalance() < p.imbalance("before")
    out = tmp_path / "tas100-balanced.toml"
    diff, new = balance.write_patched_board(TAS100, p, out)
    assert {ln.number: ln.half for ln in new.lines} == p.assignment
    old_text, new_text = TAS100.read_text().splitlines(), out.read_text().splitlines()
    changed = [(a, b) for a, b in zip(old_text, new_text) if a != b]
    assert len(old_text) == len(new_text) and len(changed) == len(p.moves) > 0
    assert all(a.startswith("half = ") and b.startswith("half = ") for a, b in changed)
    assert diff.count("\n-half = ") == diff.count("\n+half = ") == len(p.moves)


def test_ok__load_from_call_records():
    t0 = datetime(2026, 11, 3, 8, 0, tzinfo=timezone.utc)

    def rec(i, line, talk, hour=8, answered=True):
        t = t0.replace(hour=hour) + timedelta(minutes=i)
        return call_from({"id": f"L{line}-{hour}-{i}", "line": line, "direction": "in", "kind": "call",
                          "offered": t.isoformat(),
                          "answered": (t + timedelta(seconds=10)).isoformat() if answered else None,
                          "ended": (t + timedelta(seconds=10 + talk)).isoformat(), "rings": 2,
                          "position": 1, "hold_s": 0, "outcome": "answered" if answered else "abandoned"})
    calls = [rec(0, "201", 3600 - 70), rec(1, "202", 1790), rec(2, "202", 60, answered=False),
             rec(59, "203", 0)]
    # first offered 08:00, last hang-up 08:59:10+0 -> span 3550 s; 201 busy 3530 s
    load = balance.line_loads(DESK, calls)
    span = (t0 + timedelta(minutes=59, seconds=10) - t0).total_seconds()
    assert load["201"] == pytest.approx(3530 / span) and load["202"] == pytest.approx(1790 / span)
    assert load["203"] == 0 and load["901"] == 0
    assert balance.line_loads(DESK, calls, "calls") == {"201": 1, "202": 2, "203": 1, "204": 0,
                                                         "901": 0, "902": 0}
    late = calls + [rec(0, "204", 100, hour=20)]
    assert balance.line_loads(DESK, late, "calls", hours=(8, 18))["204"] == 0


def test_ok__kinds_from_customers():
    customers = [{"id": "A", "line": "201", "kind": "doctor", "contract_start": "2026-01-01", "notice_date": None},
                 {"id": "B", "line": "202", "kind": "plumber", "contract_start": "2026-01-01",
                  "notice_date": "2026-03-01"},
                 {"id": "C", "line": "202", "kind": "tow", "contract_start": "2026-04-01", "notice_date": None}]
    assert balance.line_kinds(DESK, customers) == {"201": "doctor", "202": "tow", "203": "unassigned",
                                                    "204": "unassigned", "901": "office line", "902": "office line"}


def test_fail__one_position_board():
    with pytest.raises(ConfigError, match="only a two-position board is split"):
        balance.propose(replace(DESK, positions=1), {ln.number: 1 for ln in DESK.lines},
                        {ln.number: "x" for ln in DESK.lines})


def test_fail__patch_needs_a_half_line():
    text = '[[lines]]\nnumber = "201"\nlabel = "x"\n'
    with pytest.raises(ConfigError, match="line 201 has no 'half = ' line"):
        balance.patch_board_text(text, {"201": 2})


def test_ok__host_tool(tmp_path):
    t0 = datetime(2026, 11, 3, 8, 0, tzinfo=timezone.utc)
    recs = []
    for i, (line, n) in enumerate((("201", 30), ("202", 28), ("203", 5), ("204", 4), ("901", 1))):
        for k in range(n):
            t = t0 + timedelta(minutes=7 * k + i)
            recs.append({"id": f"B{line}-{k}", "line": line, "direction": "in", "kind": "call",
                         "offered": t.isoformat(), "answered": (t + timedelta(seconds=5)).isoformat(),
                         "ended": (t + timedelta(seconds=125)).isoformat(), "rings": 1, "position": 1,
                         "hold_s": 0, "outcome": "answered"})
    (tmp_path / "calls.json").write_text(json.dumps(recs))
    (tmp_path / "customers.json").write_text(json.dumps([
        {"id": f"C{n}", "line": n, "name": n, "kind": k, "contract_start": "2026-01-01"}
        for n, k in (("201", "doctor"), ("202", "doctor"), ("203", "plumber"), ("204", "plumber"))]))
    board = tmp_path / "desk.toml"
    board.write_text((ROOT / "boards" / "desk.toml").read_text())
    r = subprocess.run(python_cmd("switchboard_tools.balance", "--board", board, "--calls", tmp_path / "calls.json",
                                  "--customers", tmp_path / "customers.json", "--out", tmp_path / "new.toml",
                                  "--json"), env=project_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # the two doctors (the busy lines) end up in different halves, as do the plumbers
    after = load_board(tmp_path / "new.toml")
    half = {ln.number: ln.half for ln in after.lines}
    assert half["201"] != half["202"] and half["203"] != half["204"]
    assert out["after"]["kinds"]["doctor"] == [1, 1]
    assert out["after"]["imbalance"] <= out["before"]["imbalance"]
    r = subprocess.run(python_cmd("switchboard_tools.balance", "--board", board, "--calls", tmp_path / "calls.json",
                                  "--hours", "18-8"), env=project_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--hours = '18-8': expected two hours" in r.stderr
