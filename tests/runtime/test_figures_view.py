"""The figures in the board's view: the real daemon serves them from its own records,
and a real headless Chromium draws them."""

import json
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from figures_sample import sample
from test_view import CHROMIUM_ARGS, api, start_daemon, stop_daemon

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path):
    calls, stamps, customers = sample()
    data = tmp_path / "var"
    data.mkdir()
    (data / "calls.jsonl").write_text("".join(json.dumps(c.raw) + "\n" for c in calls))
    proc, url = start_daemon(tmp_path, "desk", "--data-dir", data)
    try:
        yield url
    finally:
        stop_daemon(proc)


def test_ok__figures_api_and_page(served, tmp_path):
    code, f = api(served, "api/figures?from=2026-11-03")
    assert code == 200 and f["totals"]["offered"] == 18 and f["by_line"]["201"]["wait_p90_s"] == 18
    code, err = api(served, "api/figures?from=yesterday")
    assert code == 400 and "from = 'yesterday': expected a date" in err["error"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1100})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(served.split("?")[0] + "figures?from=2026-11-03")
            expect(page.locator("body")).to_have_attribute("data-loaded", "yes")
            expect(page.locator("#summary")).to_contain_text("18 calls offered, 14 answered")
            # one bar per hour with calls: answered in hours 09 and 14, abandoned in both
            assert page.locator("#hours rect.answered").count() == 2
            assert page.locator("#hours rect.abandoned").count() == 2
            assert page.locator("#waits rect.answered").count() >= 3
            rows = page.locator("#by-line tr")
            assert rows.count() == 3                       # header, 201, 202
            assert re.sub(r"\s+", " ", rows.nth(1).inner_text()).startswith("201 12 10 2 13.0 s 18.0 s")
            page.screenshot(path=str(tmp_path / "figures.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()


def test_ok__a_wakeup_call_card_on_the_board_view(tmp_path):
    """The real daemon, its clock started at 06:29:57 (tests/support/daemon_at.py): an
    operator-mode wake-up call for 06:30 winks office line 902 and shows its
    card; reported done with switchboard-diag, the card goes and the lamp darkens."""
    import subprocess
    import time as _time

    from conftest import project_env, python_cmd
    from test_view import URL_RE
    log = open(tmp_path / "daemon.log", "w+")
    sock = tmp_path / "d.sock"
    proc = subprocess.Popen(python_cmd("daemon_at", "2026-11-23T06:29:57+00:00", "--sim", "--board", "desk",
                                       "--web-port", "0", "--socket", sock, "--data-dir", tmp_path / "var"),
                            env=project_env(),
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, url = _time.monotonic() + 20, None
        while url is None and _time.monotonic() < deadline:
            log.seek(0)
            m = URL_RE.search(log.read())
            url = m.group(1) if m else _time.sleep(0.05)
        assert url, "the daemon did not start"
        sched = {"id": "w1", "customer": "marys-gloves", "kind": "wakeup", "number": "5551234",
                 "message": "Good morning, it is half past six.", "time": "06:30", "date": "2026-11-23",
                 "mode": "operator", "line": "902"}
        diag = lambda *a: subprocess.run(python_cmd("switchboard_tools.diag", "--socket", sock, *a),  # noqa: E731
                                         env=project_env(), capture_output=True, text=True, timeout=30)
        r = diag("call", "schedule-add", json.dumps({"schedule": sched}))
        assert r.returncode == 0, r.stderr
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url)
                card = page.locator("#due .card")
                expect(card).to_have_count(1, timeout=15000)
                expect(card).to_contain_text("Wake-up call on line 902")
                expect(card).to_contain_text("marys-gloves: call 5551234")
                expect(card).to_contain_text("Say: Good morning, it is half past six.")
                expect(page.locator('[data-lamp="line-902"]').first).to_have_attribute("data-cadence", "wink")
                page.screenshot(path=str(tmp_path / "card.png"))
                occ = api(url, "api/status")[1]["due_calls"][0]["occurrence"]
                r = diag("call", "schedule-done", json.dumps({"occurrence": occ, "outcome": "answered"}))
                assert r.returncode == 0, r.stderr
                expect(card).to_have_count(0, timeout=10000)
                expect(page.locator('[data-lamp="line-902"]').first).to_have_attribute("data-cadence", "dark")
            finally:
                browser.close()
    finally:
        stop_daemon(proc)
