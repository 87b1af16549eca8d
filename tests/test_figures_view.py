"""The figures in the board's view: the real daemon serves them from its own records,
and a real headless Chromium draws them."""

import json
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from test_figures import sample
from test_view import CHROMIUM_ARGS, api, start_daemon, stop_daemon


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
