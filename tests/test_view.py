"""The board view, used as a person would: a real headless Chromium on the page
the real daemon serves (simulated desk board), clicking keys and watching lamps.

A lamp's lit state is read two ways: the page's own verdict (the ``--lit``
custom property its style gives a lamp from the cadence and the interrupter)
and the pixels of a screenshot (a lit lamp is bright amber, a dark one brown).
"""

import io
import json
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image, ImageStat
from playwright.sync_api import expect, sync_playwright

from conftest import project_env, python_cmd

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")


# -- the daemon and the browser ----------------------------------------------
def start_daemon(tmp_path, board="desk", *extra):
    """Start the real daemon on the simulated board; returns (process, view URL)."""
    log = open(tmp_path / f"daemon-{board}.log", "w+")
    proc = subprocess.Popen(
        python_cmd("firmware.daemon", "--sim", "--board", board, "--web-port", "0",
                   "--socket", tmp_path / f"{board}.sock", *extra),
        env=project_env(), stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log.seek(0)
        m = URL_RE.search(log.read())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    log.seek(0)
    pytest.fail(f"the daemon did not print its view's URL:\n{log.read()}")


def stop_daemon(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the daemon did not stop within 10 s of SIGTERM")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def desk(tmp_path):
    proc, url = start_daemon(tmp_path, "desk")
    try:
        yield url
    finally:
        stop_daemon(proc)


@pytest.fixture
def page(browser, desk):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(desk)
    expect(pg.locator("body")).not_to_have_class(re.compile(r"\boffline\b"))
    pg.url_base = desk
    yield pg
    ctx.close()
    assert errors == [], f"the page raised: {errors}"


# -- helpers: what a person sees and does --------------------------------------
def api(url, path, body=None, headers=None, method=None):
    """Call the view's API like the page does; returns (status, parsed JSON)."""
    h = {"X-Switchboard-Request": "test"} if body is not None else {}
    h.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url.split("?")[0] + path, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def status(page):
    return api(page.url_base, "api/status")[1]


def lamp(page, name):
    return page.locator(f'.lamp[data-lamp="{name}"]')


def key(page, name):
    return page.locator(f'[data-key="{name}"]')


def lit(page, *names):
    """The page's verdict on each lamp, read in one instant."""
    return page.evaluate("""(names) => names.map((n) => getComputedStyle(
        document.querySelector(`.lamp[data-lamp="${n}"]`)).getPropertyValue("--lit").trim() === "1")""",
                         list(names))


def watch(page, name, seconds=1.3):
    """Follow one lamp frame by frame for a while: [(t, lit)] on the daemon's clock."""
    return page.evaluate("""([name, seconds]) => new Promise((done) => {
        const e = document.querySelector(`.lamp[data-lamp="${name}"]`), out = [];
        const t0 = performance.now();
        const step = () => {
            out.push([window.switchboardView.daemonNow(),
                      getComputedStyle(e).getPropertyValue("--lit").trim() === "1"]);
            if (performance.now() - t0 < seconds * 1000) requestAnimationFrame(step); else done(out);
        };
        requestAnimationFrame(step);
    })""", [name, seconds])


def duty(samples):
    """Share of time lit, and the number of on/off changes, over the samples."""
    on = sum(b - a for (a, la), (b, _) in zip(samples, samples[1:]) if la)
    span = samples[-1][0] - samples[0][0]
    changes = sum(1 for (_, a), (_, b) in zip(samples, samples[1:]) if a != b)
    return on / span, changes


def brightness(png: bytes, boxes) -> list:
    """Mean brightness of the centre of each lamp's box in one screenshot."""
    img = Image.open(io.BytesIO(png)).convert("L")
    out = []
    for b in boxes:
        cx, cy, r = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, b["width"] / 5
        crop = img.crop((int(cx - r), int(cy - r), int(cx + r), int(cy + r)))
        out.append(ImageStat.Stat(crop).mean[0])
    return out


def ring(page, line, caller=None):
    """Ring a line with the page's simulator control."""
    page.select_option("#sim-line", line)
    page.fill("#sim-caller", caller or "")
    page.click("#sim-ring")


def line_state(page, number):
    return next(ln for ln in status(page)["lines"] if ln["number"] == number)


# -- the tests -------------------------------------------------------------------
def test_ok__ring_flash_answer_steady_hold_wink_release_dark(page):
    ring(page, "202", "555-0142")
    expect(lamp(page, "line-202")).to_have_attribute("data-cadence", "flash")
    expect(page.locator('.line[data-line="202"] .state span').first).to_have_text("ringing · 1 ring")
    expect(page.locator('.line[data-line="202"] .state .more')).to_have_text("from 555-0142")
    share, changes = duty(watch(page, "line-202"))
    assert 0.35 < share < 0.65 and changes >= 2, (share, changes)   # half on, half off

    key(page, "line-202").click()
    expect(lamp(page, "line-202")).to_have_attribute("data-cadence", "steady")
    share, changes = duty(watch(page, "line-202", 0.6))
    assert share == 1.0 and changes == 0
    assert line_state(page, "202")["state"] == "operator"
    expect(page.locator('.position[data-position="1"] .pos-line')).to_contain_text("on 202 Dr. Adams")

    key(page, "p1-hold").click()
    expect(lamp(page, "line-202")).to_have_attribute("data-cadence", "wink")
    share, changes = duty(watch(page, "line-202"))
    assert 0.65 < share < 0.92 and changes >= 4, (share, changes)   # on most of the time
    assert line_state(page, "202")["state"] == "held"

    key(page, "line-202").click()                  # pick it up again ...
    expect(lamp(page, "line-202")).to_have_attribute("data-cadence", "steady")
    key(page, "p1-release").click()                # ... and release it
    expect(lamp(page, "line-202")).to_have_attribute("data-cadence", "dark")
    assert lit(page, "line-202") == [False]
    assert line_state(page, "202")["state"] == "idle"
    expect(page.locator("#log")).to_contain_text("position 1 released line 202")


def test_ok__flashing_lamps_in_step(page):
    ring(page, "201")
    page.wait_for_timeout(230)                     # the second call comes in out of phase
    ring(page, "203")
    expect(lamp(page, "line-201")).to_have_attribute("data-cadence", "flash")
    expect(lamp(page, "line-203")).to_have_attribute("data-cadence", "flash")
    boxes = [lamp(page, n).bounding_box() for n in ("line-201", "line-203", "line-204")]
    seen = set()
    for i in range(9):
        # Both lamps' verdicts in one instant, and both in one screenshot.
        a, b = lit(page, "line-201", "line-203")
        assert a == b, f"sample {i}: the two flashing lamps disagree"
        shot = brightness(page.screenshot(), boxes)
        assert abs(shot[0] - shot[1]) < 12, f"sample {i}: brightness {shot}"
        seen.add(shot[0] > shot[2] + 40)           # brighter than the idle lamp 204?
        page.wait_for_timeout(137)
    assert seen == {True, False}, "the lamps never flashed on and off in the samples"


def test_ok__page_interrupter_runs_on_the_daemons_clock(page):
    """The page's clock is the daemon's (CLOCK_MONOTONIC, shared by every process here)."""
    offsets = []
    for _ in range(5):
        before = time.monotonic()
        page_now = page.evaluate("window.switchboardView.daemonNow()")
        after = time.monotonic()
        offsets.append(page_now - (before + after) / 2)
        page.wait_for_timeout(50)
    # The round trip bounds the error; on a loaded 2-core machine allow a frame or two.
    assert max(abs(o) for o in offsets) < 0.1, offsets
    ring(page, "204")
    # Sample once the page has heard the lamp flashes (the event takes a moment).
    expect(lamp(page, "line-204")).to_have_attribute("data-cadence", "flash")
    samples = watch(page, "line-204", 1.1)
    # Away from the edges, the page agrees with the daemon's interrupter.
    checked = [(t, on) for t, on in samples if 0.1 < t % 0.5 < 0.4]
    assert len(checked) > 10
    assert all(on == ((t % 1.0) < 0.5) for t, on in checked)


def test_ok__a_key_held_down_is_down(page):
    box = key(page, "p1-dial-5").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    expect(key(page, "p1-dial-5")).to_have_class(re.compile(r"\bdown\b"))
    page.wait_for_timeout(300)
    assert "p1-dial-5" in status(page)["keys_down"]
    page.mouse.up()
    expect(key(page, "p1-dial-5")).not_to_have_class(re.compile(r"\bdown\b"))
    deadline = time.monotonic() + 5
    while "p1-dial-5" in status(page)["keys_down"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "p1-dial-5" not in status(page)["keys_down"]
    expect(page.locator(".position[data-position='1'] .pos-digits")).to_have_text("5")


def test_ok__switches_latch(page):
    secrecy = key(page, "secrecy")
    secrecy.click()
    expect(secrecy).to_have_attribute("aria-checked", "true")
    assert status(page)["switches"]["secrecy"] is True
    secrecy.click()
    expect(secrecy).to_have_attribute("aria-checked", "false")
    assert status(page)["switches"]["secrecy"] is False

    p2 = page.locator('.position[data-position="2"]')
    expect(p2).to_have_class(re.compile(r"\bunstaffed\b"))
    expect(page.locator('.line[data-line="202"] .half-tab')).to_have_text("H2·P1")
    key(page, "split").click()
    expect(key(page, "split")).to_have_attribute("aria-checked", "true")
    expect(p2).not_to_have_class(re.compile(r"\bunstaffed\b"))
    expect(page.locator('.line[data-line="202"] .half-tab')).to_have_text("H2·P2")
    # Split: half 2's line is answered at position 2.
    ring(page, "202")
    expect(lamp(page, "line-202")).to_have_attribute("data-cadence", "flash")
    key(page, "line-202").click()
    expect(page.locator('.position[data-position="2"] .pos-line')).to_contain_text("on 202")
    assert line_state(page, "202")["position"] == 2


def diag(tmp_path, *args):
    """Run the diagnostic tool as a process against the test's daemon."""
    return subprocess.run(python_cmd("switchboard_tools.diag", "--socket", tmp_path / "desk.sock",
                                     *args),
                          env=project_env(), capture_output=True, text=True, timeout=30)


def test_ok__page_follows_the_diagnostic_tool(page, tmp_path):
    r = diag(tmp_path, "ring", "204", "--caller", "555-0199")
    assert r.returncode == 0, r.stderr
    expect(lamp(page, "line-204")).to_have_attribute("data-cadence", "flash")
    expect(page.locator('.line[data-line="204"] .state .more')).to_have_text("from 555-0199")
    assert diag(tmp_path, "tap", "line-204").returncode == 0
    expect(lamp(page, "line-204")).to_have_attribute("data-cadence", "steady")
    expect(key(page, "line-204")).not_to_have_class(re.compile(r"\bdown\b"))
    expect(page.locator("#log")).to_contain_text("position 1 answered line 204")


def test_ok__lamp_test_walks_the_lamps_on_the_page(page, tmp_path):
    order = list(status(page)["lamps"])
    test = subprocess.Popen(python_cmd("switchboard_tools.diag", "--socket", tmp_path / "desk.sock",
                                       "lamp-test", "--step", "0.3"),
                            env=project_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        expect(page.locator("body")).to_have_class(re.compile(r"\blamp-test\b"))
        frames = page.evaluate("""() => new Promise((done) => {
            const out = [], t0 = performance.now();
            const step = () => {
                out.push([...document.querySelectorAll(".lamp")].filter((e) =>
                    getComputedStyle(e).getPropertyValue("--lit").trim() === "1")
                    .map((e) => e.dataset.lamp));
                if (performance.now() - t0 < 2000) requestAnimationFrame(step); else done(out);
            };
            requestAnimationFrame(step);
        })""")
    finally:
        _, err = test.communicate(timeout=30)
    assert test.returncode == 0, err
    assert all(len(f) <= 1 for f in frames), "more than one lamp lit at once in a lamp test"
    walked = [f[0] for i, f in enumerate(frames) if f and (i == 0 or frames[i - 1] != f)]
    assert len(walked) >= 4, walked
    assert walked == sorted(walked, key=order.index), "the lamps did not light in the board's order"
    expect(page.locator("body")).not_to_have_class(re.compile(r"\blamp-test\b"))


def test_ok__tas100_board_in_a_compact_grid(browser, tmp_path):
    proc, url = start_daemon(tmp_path, "tas100")
    try:
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        pg = ctx.new_page()
        pg.goto(url)
        expect(pg.locator("body")).to_have_class(re.compile(r"\bcompact\b"))
        expect(pg.locator(".customer .line")).to_have_count(100)
        expect(pg.locator(".office .line")).to_have_count(15)
        expect(pg.locator(".msg-lamp")).to_have_count(100)
        assert api(url, "api/ring", {"line": "250"})[0] == 200
        expect(pg.locator('.lamp[data-lamp="line-250"]')).to_have_attribute("data-cadence", "flash")
        pg.locator('[data-key="line-250"]').click()
        expect(pg.locator('.lamp[data-lamp="line-250"]')).to_have_attribute("data-cadence", "steady")
        # Every key is on screen without scrolling sideways.
        assert pg.evaluate("document.documentElement.scrollWidth") <= 1280
        # On the Pi's 7-inch panel the whole board still fits, zoomed out, and works.
        pg.set_viewport_size({"width": 800, "height": 480})
        pg.wait_for_function("""() => document.documentElement.scrollHeight <= 480
                                && document.documentElement.scrollWidth <= 800""")
        assert api(url, "api/ring", {"line": "300"})[0] == 200
        pg.locator('[data-key="line-300"]').click()
        expect(pg.locator('.lamp[data-lamp="line-300"]')).to_have_attribute("data-cadence", "steady")
        expect(pg.locator('.lamp[data-lamp="line-250"]')).to_have_attribute("data-cadence", "wink")
        ctx.close()
    finally:
        stop_daemon(proc)


def test_ok__page_shows_a_lost_connection(browser, tmp_path):
    proc, url = start_daemon(tmp_path, "desk")
    ctx = browser.new_context()
    try:
        pg = ctx.new_page()
        pg.goto(url)
        expect(pg.locator("body")).not_to_have_class(re.compile(r"\boffline\b"))
    finally:
        stop_daemon(proc)
    expect(pg.locator("body")).to_have_class(re.compile(r"\boffline\b"))
    expect(pg.locator("#banner")).to_contain_text("Connection to the board lost")
    ctx.close()


# -- who may talk to it ------------------------------------------------------------
def test_fail__wrong_host_header_is_refused(desk):
    code, body = api(desk, "api/status", headers={"Host": "evil.example:8557"})
    assert code == 403 and "Host" in body["error"]
    code, body = api(desk, "api/press", {"key": "line-201"}, headers={"Host": "evil.example"})
    assert code == 403
    assert api(desk, "api/status")[1]["keys_down"] == []


def test_ok__loopback_host_names_are_accepted(desk):
    port = re.search(r":(\d+)/", desk).group(1)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        code, body = api(desk, "api/status", headers={"Host": host})
        assert code == 200 and body["board"] == "desk", host


def test_fail__post_without_the_request_header_is_refused(desk):
    req = urllib.request.Request(desk + "api/ring", data=b'{"line": "201"}',
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    assert "X-Switchboard-Request" in json.loads(e.value.read())["error"]
    line = next(ln for ln in api(desk, "api/status")[1]["lines"] if ln["number"] == "201")
    assert line["state"] == "idle"


def test_fail__post_from_another_origin_is_refused(desk):
    code, body = api(desk, "api/ring", {"line": "201"}, headers={"Origin": "http://evil.example"})
    assert code == 403 and "evil.example" in body["error"]


@pytest.mark.parametrize("path, body, expected", [
    ("api/press", {"key": "line-999"}, "line-999"),
    ("api/press", {}, "expected string field(s) key"),
    ("api/press", {"key": "line-201", "extra": 1}, "unknown: extra"),
    ("api/ring", {"line": "777"}, "777"),
])
def test_fail__bad_requests_get_a_clear_error(desk, path, body, expected):
    code, reply = api(desk, path, body)
    assert code == 400 and expected in reply["error"], reply


def test_fail__body_that_is_not_json(desk):
    req = urllib.request.Request(desk + "api/press", data=b"key=line-201",
                                 headers={"X-Switchboard-Request": "test"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 400 and "must be JSON" in json.loads(e.value.read())["error"]


def run_with_view(check, **web_args):
    """Run the real daemon (simulated desk board) with a view in a thread of this
    process, call ``check(url)`` here (where Playwright's loop lives), then stop both."""
    import asyncio
    import threading

    from firmware import web
    from firmware.boardfile import find_board, load_board
    from firmware.daemon import Daemon, choose_panel

    started = threading.Event()
    box = {}

    async def serve():
        board = load_board(find_board("desk"))
        panel, sim, _ = choose_panel(board, True, None)
        daemon = Daemon(board, panel, sim=sim)

        async def on_ready():
            box["runner"], box["url"] = await web.start_web(daemon, "127.0.0.1", 0, **web_args)
            box["daemon"], box["loop"] = daemon, asyncio.get_running_loop()
            started.set()
        try:
            await daemon.run(on_ready)
        finally:
            if "runner" in box:
                await box["runner"].cleanup()
            panel.close()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert started.wait(15), "the daemon did not start"
    try:
        return check(box["url"])
    finally:
        box["loop"].call_soon_threadsafe(box["daemon"].stop)
        thread.join(15)
        assert not thread.is_alive(), "the daemon did not stop"


def test_ok__token_opens_the_view(browser):
    def check(url):
        assert url.endswith("/?token=s3cret-token")
        base = url.split("?")[0]
        assert api(base, "api/status", headers={"X-Switchboard-Token": "s3cret-token"})[0] == 200
        assert api(url, "api/status?token=s3cret-token")[0] == 200
        pg = browser.new_page()
        try:
            pg.goto(url)                            # the printed address: the page works
            expect(pg.locator("body")).not_to_have_class(re.compile(r"\boffline\b"))
            pg.click("#sim-ring")
            expect(pg.locator('.lamp[data-lamp="line-201"]')).to_have_attribute("data-cadence", "flash")
        finally:
            pg.close()
        return True
    assert run_with_view(check, token="s3cret-token")


def test_fail__no_token_or_a_wrong_one_is_refused():
    def check(url):
        base = url.split("?")[0]
        out = {}
        for name, path, headers in (
                ("page", "", {}),
                ("status", "api/status", {}),
                ("events", "api/events", {}),
                ("wrong", "api/status?token=guess", {}),
                ("wrong header", "api/status", {"X-Switchboard-Token": "guess"})):
            out[name] = api(base, path, headers=headers)
        out["press"] = api(base, "api/press", {"key": "line-201"})
        req = urllib.request.Request(base + "board.js")     # the script itself is public
        with urllib.request.urlopen(req, timeout=10) as r:
            out["script"] = r.status
        return out
    out = run_with_view(check, token="s3cret-token")
    assert out.pop("script") == 200
    for name, (code, body) in out.items():
        assert code == 401 and "token" in body["error"], name


@pytest.mark.parametrize("host, ok", [
    ("127.0.0.1:8557", True), ("localhost:8557", True), ("[::1]:8557", True),
    ("192.168.1.20:8557", True), ("LOCALHOST", True),
    ("evil.example:8557", False), ("localhost.evil.example", False),
    ("127.0.0.1.nip.io:8557", False), ("", False), (None, False),
])
def test_host_header_rule(host, ok):
    from firmware.web import _Guard
    assert _Guard("127.0.0.1", None).host_ok(host) is ok


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.20", False), ("pi.local", False),
])
def test_token_needed_beyond_loopback(host, loopback):
    from firmware.web import is_loopback
    assert is_loopback(host) is loopback
