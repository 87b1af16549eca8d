"""switchboard-messages run as a process on a real store."""

import csv
import io
import json
import subprocess

import pytest

from firmware.timeclock.customers import Customers
from firmware.timeclock.rack import Rack
from firmware.timeclock.clock import TimeClock

from conftest import project_env, python_cmd
from fakeprinter import FakePrinter
from test_customers import MARY
from settable_clock import Clock


def tool(data, *args):
    return subprocess.run(python_cmd("switchboard_tools.messages", "--data", data, *args),
                          env=project_env(), capture_output=True, text=True, timeout=60)


@pytest.fixture
def data(tmp_path):
    cs = Customers(tmp_path)
    cs.add(MARY)
    cs.close()
    clock = Clock()                                    # 2026-11-02
    tc = TimeClock(tmp_path, clock=clock)
    rack = Rack(tc)
    tc.stamp("answer", line="201", customer="marys-gloves", position=1, call="c1")   # 1
    rack.take("201", "marys-gloves", "Mrs Lee: gloves ready?", position=1)           # 2
    clock.advance(days=1)
    rack.take("202", "acme", "Leak at 5 Elm St", position=2)                         # 3
    rack.take("201", "marys-gloves", "Order of 12 pairs", position=1)                # 4
    rack.read_back(2, position=1)                                                    # 5
    rack.close()
    tc.close()
    return tmp_path


def test_ok__list_filters_and_status(data):
    r = tool(data, "list", "--customer", "marys-gloves", "--what", "message", "--json")
    got = json.loads(r.stdout)
    assert [(s["slip"], s["status"]) for s in got] == [(2, "read back, slip 5"), (4, "waiting")]
    r = tool(data, "list", "--since", "2026-11-03", "--search", "leak")
    assert r.returncode == 0 and "Leak at 5 Elm St" in r.stdout and "gloves" not in r.stdout
    r = tool(data, "waiting", "--json")
    assert [m["slip"] for m in json.loads(r.stdout)] == [3, 4]


def test_ok__print_export_counts(data, tmp_path):
    r = tool(data, "print", "marys-gloves")
    assert r.returncode == 0, r.stderr
    assert "MESSAGE  No. 2" in r.stdout and "Mary's Gloves" in r.stdout and "No. 3" not in r.stdout
    out = tmp_path / "out.csv"
    assert tool(data, "export", out, "--customer", "marys-gloves").returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["slip"] for r in rows] == ["1", "2", "4", "5"] and rows[3]["of"] == "2"
    counts = json.loads(tool(data, "counts", "2026-11", "--json").stdout)
    assert counts["marys-gloves"] == {"message": 2, "read-back": 1, "answer": 1, "stamp": 0}
    assert counts["acme"]["message"] == 1


def test_ok__print_on_a_slip_printer(data, tmp_path):
    fake = FakePrinter(tmp_path / "printer")
    try:
        r = tool(data, "print", "marys-gloves", "--waiting", "--printer", tmp_path / "printer")
        assert r.returncode == 0, r.stderr
        assert fake.wait_for(1)
        assert fake.numbers() == [4] and "Order of 12 pairs" in fake.slips[0]
    finally:
        fake.close()


def test_ok__verify_a_good_log(data):
    r = tool(data, "verify")
    assert r.returncode == 0 and r.stdout.startswith("OK: 5 stamps in 2 day journals, slips 1-5")


def test_fail__verify_finds_damage_and_gaps(data):
    day = data / "slips" / "2026-11-03.jsonl"
    lines = day.read_bytes().splitlines(keepends=True)
    # Slip 4's line is lost (as if someone edited the file), and slip 3's is damaged.
    damaged = bytearray(lines[0])
    damaged[30] ^= 0x20
    day.write_bytes(bytes(damaged) + lines[2])
    r = tool(data, "verify")
    assert r.returncode == 1
    assert f"{day}: byte 0: line fails its checksum" in r.stdout


def test_fail__verify_finds_missing_slips(data):
    day = data / "slips" / "2026-11-03.jsonl"
    lines = day.read_bytes().splitlines(keepends=True)
    day.write_bytes(lines[0] + lines[2])           # slip 4's record is gone
    r = tool(data, "verify", "--json")
    rep = json.loads(r.stdout)
    assert r.returncode == 1 and any("slips 4-4 are missing" in p for p in rep["problems"])


@pytest.mark.parametrize("args,expected", [
    (("list", "--since", "yesterday"), "--since 'yesterday': expected a date as YYYY-MM-DD"),
    (("list", "--since", "2026-12-01", "--until", "2026-11-01"), "is after --until"),
    (("counts", "Nov"), "month 'Nov': expected YYYY-MM"),
    (("print", "nobody"), "customer 'nobody': no such customer"),
])
def test_fail__bad_arguments_are_one_clear_line(data, args, expected):
    r = tool(data, *args)
    assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_fail__not_a_data_folder(tmp_path):
    r = tool(tmp_path / "nowhere", "list")
    assert r.returncode == 2 and "no time clock data here" in r.stderr
