"""Blocked and nuisance callers: the list, switchboard-customers, the card's warning and
the refusal the telephony asks the time clock for."""

import json
import subprocess

import pytest

from conftest import project_env, python_cmd
from firmware.core.state import LineRinging
from firmware.timeclock.adapter import TimeClockAdapter
from firmware.records.journal import StoreError
from firmware.timeclock.blocklist import BlockError, BlockList
from firmware.timeclock.customers import Customers

from test_customers import MARY
from test_timeclock_adapter import MiniDaemon, settle


@pytest.mark.parametrize("pattern, caller, hit", [
    ("5550199", "555-0199", True),
    ("5550199", "+1 (415) 555-0199", False),
    ("4155550199", "+1 415 555 0199", True),
    ("415555*", "4155550123", True),
    ("415555*", "4165550123", False),
    ("555-01??", "5550142", True),
    ("555-01??", "55501423", False),
])
def test_ok__patterns(tmp_path, pattern, caller, hit):
    bl = BlockList(tmp_path)
    bl.add(pattern)
    assert (bl.match(caller) is not None) == hit


def test_ok__per_customer_and_block_wins(tmp_path):
    bl = BlockList(tmp_path)
    bl.add("555*", action="nuisance", note="calls every hour")
    bl.add("5550199", customer="marys-gloves")
    assert bl.match("5550199", "acme")["action"] == "nuisance"
    assert bl.match("5550199", "marys-gloves")["action"] == "block"
    bl.remove("5550199", customer="marys-gloves")
    assert BlockList(tmp_path).match("5550199", "marys-gloves")["action"] == "nuisance"


@pytest.mark.parametrize("pattern, action, expected", [
    ("hello", "block", "expected a number"),
    ("***", "block", "expected a number"),
    ("5550199", "ban", "expected block or nuisance"),
])
def test_fail__bad_entries(tmp_path, pattern, action, expected):
    with pytest.raises(BlockError, match=expected):
        BlockList(tmp_path).add(pattern, action=action)


def test_fail__unblock_what_is_not_there(tmp_path):
    with pytest.raises(BlockError, match="is not in the block list"):
        BlockList(tmp_path).remove("5550199")


def test_ok__card_warns_and_screen_refuses_and_counts(tmp_path):
    cs = Customers(tmp_path)
    cs.add(MARY)
    cs.close()
    d = MiniDaemon()
    a = TimeClockAdapter(tmp_path)
    d.add_adapter(a)
    try:
        bl = BlockList(tmp_path)                 # as switchboard-customers would, meanwhile
        bl.add("5550111", action="nuisance", note="hangs up and calls again")
        bl.add("5550199", customer="marys-gloves", note="abusive")
        d.feed(LineRinging("201", caller="555-0111", call="c1"))
        settle(a)
        assert a.status()["offered"]["201"]["warning"] == \
            "Nuisance caller (5550111): hangs up and calls again"
        assert a.screen("201", "555-0111") is None            # a nuisance still rings
        assert a.screen("202", "5550199") is None             # blocked for Mary's line only
        assert a.screen("201", "5550199")["note"] == "abusive"
        blocked = a.status()["blocked"]
        assert blocked["count"] == 1 and blocked["in_worker"] == 1 and blocked["at_front"] == 0
        assert {k: v for k, v in blocked["last"].items() if k != "at"} == {
            "line": "201", "caller": "5550199", "pattern": "5550199", "customer": "marys-gloves"}
        # What the front is given: block entries only, a customer's with their line.
        bl.add("+1 415 555*", note="robocalls")
        assert a.block_rules() == [("5550199", "201", "5550199|marys-gloves"),
                                   ("1415555*", None, "+1 415 555*|*")]
        # The front's refusals are added in (the telephony's count, app.py wires it).
        a.refused_at_front = lambda: {"count": 2, "rules": 2, "error": None, "last_at": 9e9,
                                      "last": {"caller": "4155550100", "line": "202"}}
        blocked = a.status()["blocked"]
        assert blocked["count"] == 3 and blocked["at_front"] == 2 and blocked["front_rules"] == 2
        assert blocked["last"]["caller"] == "4155550100"
        # A damaged list is no empty one: the front keeps the rules it has.
        (tmp_path / "blocked.json").write_text("[{not json")
        with pytest.raises(StoreError, match="cannot read the block list"):
            a.block_rules()
    finally:
        a.stop()


def test_ok__switchboard_customers_block_unblock_blocked(tmp_path):
    cs = Customers(tmp_path)
    cs.add(MARY)
    cs.close()

    def tool(*args):
        return subprocess.run(python_cmd("switchboard_tools.customers", "--data", tmp_path, *args),
                              env=project_env(), capture_output=True, text=True, timeout=30)
    r = tool("block", "415555*", "--customer", "marys-gloves", "--nuisance", "--note", "sales")
    assert r.returncode == 0, r.stderr
    assert tool("block", "5550199").returncode == 0
    r = tool("blocked", "--json")
    assert [(e["pattern"], e["action"], e["customer"]) for e in json.loads(r.stdout)] == \
        [("415555*", "nuisance", "marys-gloves"), ("5550199", "block", None)]
    r = tool("blocked")
    assert "block     5550199          (whole site)" in r.stdout
    r = tool("block", "5550199", "--customer", "nobody")
    assert r.returncode == 2 and "nobody" in r.stderr
    r = tool("unblock", "1234")
    assert r.returncode == 2 and "pattern '1234' (site-wide) is not in the block list" in r.stderr
    assert tool("unblock", "5550199").returncode == 0
    assert len(BlockList(tmp_path).entries) == 1
