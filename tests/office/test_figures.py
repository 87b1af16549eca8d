"""The supervisor's figures: counted from hand-made records with known answers; plots drawn."""

import json
import subprocess
from datetime import timedelta

import numpy as np
import pytest
from PIL import Image

from conftest import project_env, python_cmd
from firmware.records import figures
from switchboard_tools.office import plots
from figures_sample import T0, UTC, call, sample, stamp  # noqa: F401


def test_ok__counts_waits_and_percentiles():
    calls, stamps, customers = sample()
    f = figures.compute(calls, stamps, customers, UTC)
    l1 = f["by_line"]["201"]
    assert (l1["offered"], l1["answered"], l1["abandoned"]) == (12, 10, 2)
    assert l1["wait_mean_s"] == 13.0                       # (2+4+...+18+40)/10
    assert l1["wait_p90_s"] == 18                          # nearest rank: 9th of 10
    assert l1["abandoned_rang_mean_s"] == 21.0 and l1["abandoned_rang_max_s"] == 30
    assert l1["hold_s"] == 10.0 and l1["hold_mean_s"] == 1.0
    assert (l1["messages"], l1["read_backs"]) == (2, 1)
    l2 = f["by_line"]["202"]
    assert (l2["offered"], l2["answered"], l2["abandoned"]) == (6, 4, 1)
    assert l2["outcomes"] == {"abandoned": 1, "answered": 4, "overflowed": 1}
    assert f["by_customer"]["C2"] == l2
    t = f["totals"]
    assert (t["offered"], t["answered"], t["abandoned"], t["messages"], t["read_backs"]) == (18, 14, 3, 3, 1)
    assert t["wait_p90_s"] == 20                           # 13th of 14 sorted waits
    assert f["by_hour"]["09"]["offered"] == 12 and f["by_hour"]["14"]["offered"] == 6
    assert f["by_hour"]["15"]["read_backs"] == 1 and f["by_hour"]["03"]["offered"] == 0
    # positions: abandoned calls were answered by nobody, stamps count where punched
    assert f["by_position"]["1"]["answered"] == 10 and f["by_position"]["2"]["answered"] == 4
    assert f["by_position"]["2"]["read_backs"] == 1 and f["by_position"]["2"]["messages"] == 1
    assert f["placed_calls"] == {"wakeup": {"no-answer": 1}}
    h = f["wait_histogram"]
    assert sum(h["answered"]) == 14 and sum(h["abandoned"]) == 3
    assert h["answered"][0] == 2 and h["answered"][WAITS_40_BIN] == 1   # 2 and 4 s; 40 s
    json.dumps(f)                                          # JSON-ready for the board's view


WAITS_40_BIN = figures.WAIT_BINS.index(50)                   # 40 s falls in 40-50


@pytest.mark.parametrize("values,q,expected", [([], 90, None), ([7], 90, 7), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9),
                                                ([5, 1, 3], 50, 3), (list(range(1, 101)), 90, 90)])
def test_ok__nearest_rank_percentile(values, q, expected):
    assert figures.percentile(values, q) == expected


def test_ok__period_bounds_and_time_zone():
    calls, stamps, customers = sample()
    f = figures.compute(calls, stamps, customers, UTC, start=T0.replace(hour=12))
    assert f["totals"]["offered"] == 6
    from zoneinfo import ZoneInfo
    f = figures.compute(calls, stamps, customers, ZoneInfo("America/New_York"))
    assert f["by_hour"]["04"]["offered"] == 12            # 09:00 UTC is 04:00 in New York in November


def _colour_pixels(path, rgb, tol=12):
    px = np.asarray(Image.open(path).convert("RGB"), dtype=int)
    return int((np.abs(px - np.array(rgb)).max(axis=2) <= tol).sum())


def test_ok__plots_are_drawn(tmp_path):
    calls, stamps, customers = sample()
    f = figures.compute(calls, stamps, customers, UTC)
    plots.plot_calls_per_hour(f, tmp_path / "h.png")
    plots.plot_wait_distribution(f, tmp_path / "w.png")
    plots.plot_lines(f, tmp_path / "l.png")
    green, red = (0x3a, 0x7d, 0x44), (0xd1, 0x49, 0x5b)
    for name in ("h.png", "w.png", "l.png"):
        img = Image.open(tmp_path / name)
        assert img.format == "PNG" and img.size == (1000, 480)
        assert _colour_pixels(tmp_path / name, green) > 200 and _colour_pixels(tmp_path / name, red) > 20
    # With no abandoned call there is no red bar: only the legend's patch is red.
    f2 = figures.compute([c for c in calls if c.outcome != "abandoned"], [], customers, UTC)
    plots.plot_lines(f2, tmp_path / "l2.png")
    legend_only = _colour_pixels(tmp_path / "l2.png", red)
    assert 0 < legend_only < 300 and _colour_pixels(tmp_path / "l.png", red) > legend_only + 300


def test_ok__host_tool_writes_pngs_and_json(tmp_path):
    calls, stamps, customers = sample()
    (tmp_path / "calls.json").write_text(json.dumps([c.raw for c in calls]))
    (tmp_path / "stamps.jsonl").write_text("\n".join(json.dumps(s.raw) for s in stamps))
    (tmp_path / "customers.json").write_text(json.dumps(
        [{**c, "name": c["id"], "contract_start": "2026-01-01"} for c in customers]))
    r = subprocess.run(python_cmd("switchboard_tools.figures", "--calls", tmp_path / "calls.json",
                                  "--stamps", tmp_path / "stamps.jsonl", "--customers", tmp_path / "customers.json",
                                  "--out", tmp_path / "fig", "--json"),
                       env=project_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["figures"]["totals"]["offered"] == 18
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [
        "busiest-lines.png", "calls-per-hour.png", "figures.json", "time-to-answer.png"]
    assert json.loads((tmp_path / "fig" / "figures.json").read_text()) == out["figures"]


def test_fail__host_tool_bad_date(tmp_path):
    (tmp_path / "calls.json").write_text("[]")
    r = subprocess.run(python_cmd("switchboard_tools.figures", "--calls", tmp_path / "calls.json",
                                  "--from", "3 Nov"), env=project_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--from = '3 Nov': expected a date" in r.stderr and "Traceback" not in r.stderr


def test_ok__figures_on_the_control_socket_for_the_boards_view(tmp_path):
    """The daemon answers ``figures`` from its own data folder."""
    import asyncio
    import threading
    from firmware.config.board import find_board, load_board
    from firmware.runtime.daemon import Daemon
    from firmware.panel.gpio import Panel
    from firmware.panel.sim import SimBoard
    calls, stamps, customers = sample()
    data = tmp_path / "var"
    data.mkdir()
    (data / "calls.jsonl").write_text("".join(json.dumps(c.raw) + "\n" for c in calls))
    board = load_board(find_board("desk"))
    sim = SimBoard(board)
    panel = Panel(board, pin_factory=sim.factory)
    daemon = Daemon(board, panel, sim=sim, data_dir=data)
    daemon.add_command(figures.command(data, UTC))
    ready = threading.Event()

    async def on_ready():
        ready.set()
    t = threading.Thread(target=lambda: asyncio.run(daemon.run(on_ready)), daemon=True)
    t.start()
    try:
        assert ready.wait(5)
        ask = lambda **a: asyncio.run_coroutine_threadsafe(daemon.request("figures", a), daemon.loop).result(10)  # noqa: E731
        f = ask(**{"from": "2026-11-03"})
        assert f["totals"]["offered"] == 18 and f["period"]["to"] == "2026-11-04"
        assert ask(**{"from": "2026-11-04"})["totals"]["offered"] == 0
        with pytest.raises(Exception, match="figures: from = 'Tuesday': expected a date"):
            ask(**{"from": "Tuesday"})
    finally:
        daemon.loop.call_soon_threadsafe(daemon.stop)
        t.join(5)
        panel.close()


def test_ok__an_average_day_is_over_the_days_asked_for():
    calls, stamps, customers = sample()
    assert figures.compute(calls, stamps, customers, UTC)["period"]["days"] == 1       # days with calls
    f = figures.compute(calls, stamps, customers, UTC, T0.replace(hour=0) - timedelta(days=6),
                        T0.replace(hour=0) + timedelta(days=1))
    assert f["period"]["days"] == 7 and f["totals"]["offered"] == 18
