"""Customer records: checks, the card, CSV in and out, and the host tool as a process."""

import datetime as dt
import json
import subprocess

import pytest

from firmware.config.board import find_board, load_board
from firmware.timeclock.customers import CustomerError, Customers, card, instruction_for, validate

from conftest import project_env, python_cmd

TZ = dt.timezone(dt.timedelta(hours=-5))

MARY = {
    "id": "marys-gloves", "name": "Mary's Gloves", "line": "201", "kind": "Shop",
    "answer": "{name}, this is {operator}",
    "instructions": [
        {"when": "holiday", "text": "Closed for the holiday: take a message"},
        {"when": "mon-fri 08:00-17:00", "text": "Put orders through to the shop"},
        {"when": "daily 17:00-08:00", "text": "After hours: message only"},
        {"when": "always", "text": "Take a message"},
    ],
    "collect": ["name", "number", "glove size"],
    "pronounce": "Siobhan: 'shi-VAWN'",
    "emergency": [{"label": "Mary at home", "number": "555-0101"}],
    "on_call": [], "alternate": [{"label": "Shop", "number": "+1 (555) 010-2000 x12"}],
    "holidays": ["2026-12-25"],
    "delivery": {"method": "text", "to": "555-0199"},
    "plan": "Basic 100", "contract_start": "2026-01-01", "notice_date": None,
    "last_month_prepaid": True,
}


def at(y, m, d, hh, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=TZ)


def test_ok__card_fills_the_answer_phrase_and_picks_instructions():
    c = validate(MARY)
    assert c["kind"] == "shop"
    tue = at(2026, 11, 24, 9)
    k = card(c, tue, operator="Becky", waiting=[{"slip": 7, "time": "t", "text": "hi"}])
    assert k["answer"] == "Mary's Gloves, this is Becky"
    assert k["instructions"] == "Put orders through to the shop"
    assert k["waiting"] == [{"slip": 7, "time": "t", "text": "hi", "recording": None}]
    assert instruction_for(c, at(2026, 11, 24, 23)) == "After hours: message only"
    assert instruction_for(c, at(2026, 11, 25, 2)) == "After hours: message only"
    assert instruction_for(c, at(2026, 11, 28, 12)) == "Take a message"       # Saturday noon
    assert instruction_for(c, at(2026, 12, 25, 9)) == "Closed for the holiday: take a message"
    assert instruction_for(c, at(2026, 7, 3, 9), site_holidays=["2026-07-03"]) == \
        "Closed for the holiday: take a message"
    assert card(c, tue)["answer"] == "Mary's Gloves, this is (your name)"


@pytest.mark.parametrize("change,keypath,expected", [
    ({"id": "Mary's"}, "id", "lower-case letters"),
    ({"line": "2o1"}, "line", "digits"),
    ({"answer": "{name}, this is {who}"}, "answer", "only {name} and {operator}"),
    ({"instructions": [{"when": "weekdays", "text": "x"}]}, "instructions[0].when",
     "mon-fri 08:00-17:00"),
    ({"instructions": [{"when": "mon 25:00-26:00", "text": "x"}]}, "instructions[0].when",
     "days and hours"),
    ({"emergency": [{"label": "Mary", "number": "call her"}]}, "emergency[0].number",
     "telephone number"),
    ({"delivery": {"method": "pigeon", "to": None}}, "delivery.method", "hold"),
    ({"delivery": {"method": "email", "to": "not-an-address"}}, "delivery.to", "e-mail"),
    ({"contract_start": "01/02/2026"}, "contract_start", "YYYY-MM-DD"),
    ({"notice_date": "2025-12-01"}, "notice_date", "not before contract_start"),
    ({"last_month_prepaid": "yes"}, "last_month_prepaid", "true or false"),
    ({"plan": ""}, "plan", "required"),
    ({"colour": "blue"}, "colour", "one of the fields"),
    ({"callout_retries": 11}, "callout_retries", "a whole number from 0 to 10: rounds of calls"),
    ({"callout_retries": True}, "callout_retries", "a whole number from 0 to 10"),
    ({"callout_retry_after": 0}, "callout_retry_after", "from 1 to 240: minutes between"),
    ({"callout_retry_after": "5"}, "callout_retry_after", "from 1 to 240"),
])
def test_fail__bad_fields_are_named(change, keypath, expected):
    rec = {**MARY, **change}
    with pytest.raises(CustomerError) as e:
        validate(rec, source="customers.csv", where_="row 2: ")
    msg = str(e.value)
    assert msg.startswith(f"customers.csv: row 2: {keypath}"), msg
    assert expected in msg


def test_ok__store_add_change_csv_round_trip(tmp_path):
    board = load_board(find_board("desk"))
    cs = Customers(tmp_path, board=board)
    cs.add(MARY)
    with pytest.raises(CustomerError, match="this customer exists"):
        cs.add(MARY)
    with pytest.raises(CustomerError, match="it is marys-gloves's"):
        cs.add({**MARY, "id": "acme"})
    with pytest.raises(CustomerError, match="a customer line of board 'desk'"):
        cs.add({**MARY, "id": "acme", "line": "901"})
    cs.change("marys-gloves", notice_date="2026-11-01")
    assert cs.by_line("201")["notice_date"] == "2026-11-01"
    text = cs.export_csv()
    cs.close()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    cs2 = Customers(fresh)
    assert [c["id"] for c in cs2.import_csv(text)] == ["marys-gloves"]
    assert cs2.get("marys-gloves") == Customers(tmp_path, readonly=True).get("marys-gloves")
    assert cs2.get("marys-gloves")["alternate"][0]["number"] == "+1 (555) 010-2000 x12"
    cs2.close()


def test_fail__csv_import_is_all_or_nothing(tmp_path):
    cs = Customers(tmp_path)
    cs.add(MARY)
    text = cs.export_csv()
    rows = text.splitlines()
    bad = rows[1].replace("marys-gloves", "second").replace(",201,", ",202,") \
        .replace("2026-01-01", "someday")
    with pytest.raises(CustomerError) as e:
        cs.import_csv("\n".join([rows[0], rows[1].replace(",201,", ",203,"), bad]),
                      source="new.csv")
    assert str(e.value).startswith("new.csv: row 3: contract_start = 'someday'")
    assert cs.get("marys-gloves")["line"] == "201"         # nothing was stored
    dup = "\n".join([rows[0], rows[1], rows[1]])
    with pytest.raises(CustomerError, match="row 3: id = 'marys-gloves'.*row 2 has it"):
        cs.import_csv(dup, source="dup.csv")
    cs.close()


def test_ok__daemon_sees_changes_the_tool_makes(tmp_path):
    Customers(tmp_path).close()
    daemon_view = Customers(tmp_path, readonly=True)
    assert daemon_view.by_line("201") is None
    tool = Customers(tmp_path)
    tool.add(MARY)
    tool.close()
    assert daemon_view.reload_if_changed()
    assert daemon_view.by_line("201")["name"] == "Mary's Gloves"
    assert not daemon_view.reload_if_changed()


def run_tool(*args, cwd=None):
    return subprocess.run(python_cmd("switchboard_tools.customers", *args),
                          env=project_env(), capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def test_ok__host_tool_add_list_show_export_import(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    r = run_tool("--data", data, "add", "--id", "acme-plumbing", "--name", "Acme Plumbing",
                 "--line", "202", "--kind", "plumber", "--plan", "Basic 100",
                 "--contract-start", "2026-03-01", "--collect", "name", "--collect", "address",
                 "--instruction", "daily 18:00-07:00=Page the on-call plumber",
                 "--on-call", "Joe=555-0142", "--board", "desk", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["line"] == "202"
    r = run_tool("--data", data, "change", "acme-plumbing", "--delivery", "call",
                 "--delivery-to", "555-0150")
    assert r.returncode == 0, r.stderr
    r = run_tool("--data", data, "change", "acme-plumbing", "--on-call", "Joe=555-0142",
                 "--on-call", "Ann=555-0143", "--callout-retries", "3",
                 "--callout-retry-after", "10", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert (got["callout_retries"], got["callout_retry_after"]) == (3, 10)
    assert [c["label"] for c in got["on_call"]] == ["Joe", "Ann"]
    r = run_tool("--data", data, "list", "--json")
    assert [c["id"] for c in json.loads(r.stdout)] == ["acme-plumbing"]
    r = run_tool("--data", data, "show", "acme-plumbing")
    assert "Acme Plumbing" in r.stdout and "Page the on-call plumber" in r.stdout \
        and "call 555-0150" in r.stdout
    assert "each on-call contact in turn, again 3 time(s) 10 min apart" in r.stdout
    out = tmp_path / "out.csv"
    assert run_tool("--data", data, "export", out).returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    r = run_tool("--data", other, "import", out, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["imported"] == ["acme-plumbing"]
    r = run_tool("--data", other, "show", "acme-plumbing", "--json")
    assert json.loads(r.stdout)["callout_retries"] == 3     # through the CSV


@pytest.mark.parametrize("args,expected", [
    (("add", "--id", "x", "--name", "X", "--line", "201", "--kind", "doctor", "--plan", "P",
      "--contract-start", "2026-13-01"), "contract_start = '2026-13-01': expected a date"),
    (("show", "nobody"), "id = 'nobody': expected the id of a customer"),
    (("add", "--id", "x", "--name", "X", "--line", "201", "--kind", "doctor", "--plan", "P",
      "--contract-start", "2026-01-01", "--on-call", "no-equals"), "NAME=NUMBER"),
    (("import", "missing.csv"), "missing.csv: cannot read"),
    (("add", "--id", "x", "--name", "X", "--line", "201", "--kind", "doctor", "--plan", "P",
      "--contract-start", "2026-01-01", "--callout-retries", "often"),
     "callout_retries = 'often': expected a whole number from 0 to 10"),
    (("add", "--id", "x", "--name", "X", "--line", "201", "--kind", "doctor", "--plan", "P",
      "--contract-start", "2026-01-01", "--callout-retry-after", "999"),
     "callout_retry_after = 999: expected a whole number from 1 to 240"),
])
def test_fail__host_tool_errors_are_one_clear_line(tmp_path, args, expected):
    r = run_tool("--data", tmp_path, *args, cwd=tmp_path)
    assert r.returncode != 0
    assert expected in r.stderr and "Traceback" not in r.stderr, r.stderr
