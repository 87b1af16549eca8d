"""Blocked callers refused over real SIP: a caller on the block list hears busy from the
front (Kamailio) and no worker hears of it, the line never rings; a nuisance caller rings
with a warning on the card; the block list is changed with switchboard-customers while the
daemon runs and reaches the front within seconds."""

import subprocess

import pytest

from conftest import project_env, python_cmd
from firmware.timeclock.customers import Customers
from telephony_support import wait_for
from test_telephony_daemon import diag, site_daemon

pytestmark = pytest.mark.telephony

MARY = {"id": "marys-gloves", "name": "Mary's Gloves", "line": "201", "kind": "Shop",
        "answer": "{name}, this is {operator}", "instructions": [], "collect": ["name"],
        "pronounce": "", "emergency": [], "on_call": [], "alternate": [], "holidays": [],
        "delivery": {"method": "hold", "to": None}, "plan": "Basic 100",
        "contract_start": "2026-01-01", "notice_date": None, "last_month_prepaid": False}


def customers_tool(data, *args):
    r = subprocess.run(python_cmd("switchboard_tools.customers", "--data", data, *args),
                       env=project_env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r


def test_ok__blocked_caller_refused_nuisance_rings_with_a_warning(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    cs = Customers(data)
    cs.add(MARY)
    cs.close()
    with site_daemon(tmp_path, b"telephony ready", "--data-dir", data) as sock:
        customers_tool(data, "block", "5550199", "--note", "abusive")
        customers_tool(data, "block", "555011*", "--customer", "marys-gloves", "--nuisance",
                       "--note", "calls every hour")
        # The front has the block (not the nuisance entry: that one rings).
        wait_for(lambda: diag(sock, "status")[1]["timeclock"]["blocked"].get("front_rules") == 1,
                 30, "the block list at the front")
        rc, r, err = diag(sock, "ring", "201", "--caller", "5550199")
        assert rc == 0, err
        assert r["via"] == "sip" and not r["rang"] and r["state"] == "idle"
        rc, st, _ = diag(sock, "status")
        wait_for(lambda: diag(sock, "status")[1]["timeclock"]["blocked"]["count"] == 1, 30,
                 "the front's refusal counted")
        rc, st, _ = diag(sock, "status")
        blocked = st["timeclock"]["blocked"]
        assert blocked["at_front"] == 1 and blocked["in_worker"] == 0, blocked
        assert blocked["last"]["caller"] == "5550199" and blocked["last"]["line"] == "201"
        assert st["telephony"]["blocked_at_front"]["error"] is None
        assert st["lamps"]["line-201"]["cadence"] == "dark"
        # A nuisance caller rings, and the card says so.
        rc, r, err = diag(sock, "ring", "201", "--caller", "5550112")
        assert rc == 0 and r["rang"] and r["state"] == "ringing", (r, err)
        rc, st, _ = diag(sock, "status")
        assert st["timeclock"]["offered"]["201"]["warning"] == \
            "Nuisance caller (555011*): calls every hour"
        diag(sock, "hangup", "201")
        # Unblocked while the daemon runs: the caller gets through.
        customers_tool(data, "unblock", "5550199")
        wait_for(lambda: diag(sock, "status")[1]["timeclock"]["blocked"].get("front_rules") == 0,
                 30, "the unblock at the front")
        rc, r, err = diag(sock, "ring", "201", "--caller", "5550199")
        assert rc == 0 and r["rang"], (r, err)
        diag(sock, "hangup", "201")
        assert diag(sock, "status")[1]["timeclock"]["blocked"]["count"] == 1
