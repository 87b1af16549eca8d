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

import board_support
import procs
from conftest import project_env, python_cmd
from procs import add_customer

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")


# -- the daemon and the browser ----------------------------------------------
def start_daemon(tmp_path, board="desk", *extra):
    """Start the real daemon on the simulated board; returns (process, view URL)."""
    log = open(tmp_path / f"daemon-{board}.log", "w+")
    proc = subprocess.Popen(
        python_cmd("firmware.runtime.daemon", "--sim", "--board", board, "--web-port", "0",
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
    if not procs.stop(proc, 10):
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


@pytest.fixture(scope="module")
def desk_http(tmp_path_factory):
    """One daemon for the tests that only send requests that must change nothing."""
    proc, url = start_daemon(tmp_path_factory.mktemp("http"), "desk")
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


def watch(page, name, seconds):
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


def wait_for(cond, what, seconds=5.0):
    board_support.wait_for(cond, seconds, what)


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
    share, changes = duty(watch(page, "line-202", 1.6))
    assert 0.35 < share < 0.65 and changes >= 3, (share, changes)   # half on, half off

    key(page, "line-202").click()
    expect(lamp(page, "line-202")).to_have_attribute("data-cadence", "steady")
    share, changes = duty(watch(page, "line-202", 0.6))
    assert share == 1.0 and changes == 0
    assert line_state(page, "202")["state"] == "operator"
    expect(page.locator('.position[data-position="1"] .pos-line')).to_contain_text("on 202 Dr. Adams")

    key(page, "p1-hold").click()
    expect(lamp(page, "line-202")).to_have_attribute("data-cadence", "wink")
    share, changes = duty(watch(page, "line-202", 1.6))
    # On most of the time, with short dark blinks (flash: half; steady: all).
    assert 0.62 < share < 0.95 and changes >= 2, (share, changes)
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
    # The first reading comes untimed with the event stream; a timed one follows.
    page.wait_for_function("() => window.switchboardView.timed()")
    for _ in range(5):
        before = time.monotonic()
        page_now = page.evaluate("window.switchboardView.daemonNow()")
        after = time.monotonic()
        # The page's reading lies between before and after (the round trip bounds
        # the error), give or take 50 ms for a loaded 2-core machine.
        assert before - 0.05 < page_now < after + 0.05, (before, page_now, after)
        page.wait_for_timeout(50)
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
    wait_for(lambda: "p1-dial-5" in status(page)["keys_down"], "the key to go down")
    page.wait_for_timeout(300)                     # held: still down
    assert "p1-dial-5" in status(page)["keys_down"]
    page.mouse.up()
    expect(key(page, "p1-dial-5")).not_to_have_class(re.compile(r"\bdown\b"))
    wait_for(lambda: "p1-dial-5" not in status(page)["keys_down"], "the key to come up")
    expect(page.locator(".position[data-position='1'] .pos-digits")).to_have_text("5")


def test_ok__a_key_held_down_by_a_finger_is_down(browser, desk):
    """On a touch screen (the Pi's panel): a finger on a key holds it down until lifted."""
    ctx = browser.new_context(viewport={"width": 800, "height": 480}, has_touch=True)
    try:
        pg = ctx.new_page()
        pg.goto(desk)
        expect(pg.locator("body")).not_to_have_class(re.compile(r"\boffline\b"))
        pg.url_base = desk
        box = key(pg, "p1-dial-9").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        cdp = ctx.new_cdp_session(pg)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        wait_for(lambda: "p1-dial-9" in status(pg)["keys_down"], "the finger to hold the key down")
        pg.wait_for_timeout(400)                       # held: still down
        assert "p1-dial-9" in status(pg)["keys_down"]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        wait_for(lambda: "p1-dial-9" not in status(pg)["keys_down"], "the key to come up")
        api(desk, "api/ring", {"line": "201"})
        expect(lamp(pg, "line-201")).to_have_attribute("data-cadence", "flash")
        key(pg, "line-201").tap()
        expect(lamp(pg, "line-201")).to_have_attribute("data-cadence", "steady")
    finally:
        ctx.close()


def test_ok__keys_work_from_the_keyboard(page):
    key(page, "p1-dial-7").focus()
    page.keyboard.down(" ")
    wait_for(lambda: "p1-dial-7" in status(page)["keys_down"], "Space to hold the key down")
    page.keyboard.up(" ")
    wait_for(lambda: "p1-dial-7" not in status(page)["keys_down"], "the key to come up")
    expect(page.locator(".position[data-position='1'] .pos-digits")).to_have_text("7")
    key(page, "secrecy").focus()
    page.keyboard.press("Enter")
    expect(key(page, "secrecy")).to_have_attribute("aria-checked", "true")


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
    expect(page.locator('.line[data-line="202"] .half-tab')).to_have_text("half 2 → P1")
    key(page, "split").click()
    expect(key(page, "split")).to_have_attribute("aria-checked", "true")
    expect(p2).not_to_have_class(re.compile(r"\bunstaffed\b"))
    expect(page.locator('.line[data-line="202"] .half-tab')).to_have_text("half 2 → P2")
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
def test_fail__wrong_host_header_is_refused(desk_http):
    code, body = api(desk_http, "api/status", headers={"Host": "evil.example:8557"})
    assert code == 403 and "Host" in body["error"]
    code, body = api(desk_http, "api/press", {"key": "line-201"}, headers={"Host": "evil.example"})
    assert code == 403
    assert api(desk_http, "api/status")[1]["keys_down"] == []


def test_ok__loopback_host_names_are_accepted(desk_http):
    port = re.search(r":(\d+)/", desk_http).group(1)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        code, body = api(desk_http, "api/status", headers={"Host": host})
        assert code == 200 and body["board"] == "desk", host


def test_fail__post_without_the_request_header_is_refused(desk_http):
    req = urllib.request.Request(desk_http + "api/ring", data=b'{"line": "201"}',
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    assert "X-Switchboard-Request" in json.loads(e.value.read())["error"]
    line = next(ln for ln in api(desk_http, "api/status")[1]["lines"] if ln["number"] == "201")
    assert line["state"] == "idle"


def test_fail__post_from_another_origin_is_refused(desk_http):
    code, body = api(desk_http, "api/ring", {"line": "201"}, headers={"Origin": "http://evil.example"})
    assert code == 403 and "evil.example" in body["error"]


@pytest.mark.parametrize("path, body, expected", [
    ("api/press", {"key": "line-999"}, "line-999"),
    ("api/press", {}, 'expected {"key": "..."}; missing or not a string: key'),
    ("api/press", {"key": "line-201", "extra": 1}, "unknown: extra"),
    ("api/ring", {"line": "777"}, "777"),
    ("api/ring", {"line": "201", "caller": 5551234}, "missing or not a string: caller"),
])
def test_fail__bad_requests_get_a_clear_error(desk_http, path, body, expected):
    code, reply = api(desk_http, path, body)
    assert code == 400 and expected in reply["error"], reply


def test_fail__body_that_is_not_json(desk_http):
    req = urllib.request.Request(desk_http + "api/press", data=b"key=line-201",
                                 headers={"X-Switchboard-Request": "test"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 400 and "must be JSON" in json.loads(e.value.read())["error"]


class InProcess:
    """The real daemon (simulated desk board) with its view, on a thread of this
    process, so a test can reach inside: restart the view, press keys by hand.

    ``real=True``: the daemon drives the board as a real one (no simulator
    commands); the board's outside world is still simulated (``world``), and
    the test presses its keys by hand. Playwright's own loop stays on the
    test's thread."""

    def __init__(self, real=False, **web_args):
        import asyncio
        import threading

        from firmware.runtime import web
        from firmware.config.board import find_board, load_board
        from firmware.app import choose_panel
        from firmware.runtime.daemon import Daemon

        self.web_args = web_args
        started = threading.Event()

        async def serve():
            board = load_board(find_board("desk"))
            panel, self.world, _ = choose_panel(board, True, None)
            self.daemon = Daemon(board, panel, sim=None if real else self.world)

            async def on_ready():
                self.loop = asyncio.get_running_loop()
                await self._start_view(0)
                started.set()
            try:
                await self.daemon.run(on_ready)
            finally:
                if self.runner is not None:
                    await self.runner.cleanup()
                panel.close()

        self.runner = None
        self._web = web
        self.thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        self.thread.start()
        if not started.wait(15):
            pytest.fail("the daemon did not start")

    async def _start_view(self, port):
        self.runner, self.url = await self._web.start_web(self.daemon, "127.0.0.1", port,
                                                          **self.web_args)

    def _run(self, coro):
        import asyncio
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(15)

    def stop_view(self):
        self._run(self.runner.cleanup())
        self.runner = None

    def start_view(self, port):
        self._run(self._start_view(port))

    def call(self, name, **args):
        return self._run(self.daemon.request(name, args))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.daemon.stop)
        self.thread.join(15)
        assert not self.thread.is_alive(), "the daemon did not stop"


def run_with_view(check, real=False, **web_args):
    """Call ``check(url)`` (``check(url, world)`` for a real board) against an in-process daemon."""
    with InProcess(real, **web_args) as d:
        return check(d.url, d.world) if real else check(d.url)


def test_ok__page_reconnects_and_reads_the_board_again(browser):
    with InProcess() as d:
        pg = browser.new_page()
        try:
            pg.goto(d.url)
            expect(pg.locator("body")).not_to_have_class(re.compile(r"\boffline\b"))
            port = d.runner.port
            d.stop_view()                            # the view goes away (a restart) ...
            expect(pg.locator("body")).to_have_class(re.compile(r"\boffline\b"))
            d.call("ring", line="203")                 # ... the board changes meanwhile ...
            d.start_view(port)                         # ... and the view is back
            expect(pg.locator("body")).not_to_have_class(re.compile(r"\boffline\b"), timeout=10000)
            expect(pg.locator('.lamp[data-lamp="line-203"]')).to_have_attribute("data-cadence", "flash")
            d.call("hangup", line="203")               # and it follows the board again
            expect(pg.locator('.lamp[data-lamp="line-203"]')).to_have_attribute("data-cadence", "dark")
        finally:
            pg.close()


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
                ("clock", "api/clock", {}),
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
    from firmware.runtime.web import _Guard
    assert _Guard("127.0.0.1", None).host_ok(host) is ok


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.20", False), ("pi.local", False),
])
def test_token_needed_beyond_loopback(host, loopback):
    from firmware.runtime.web import is_loopback
    assert is_loopback(host) is loopback


def test_ok__real_board_view_follows_the_keys(browser):
    """On a real board the view shows what hands do on the board, and says so if clicked."""
    def check(url, world):
        pg = browser.new_page()
        try:
            pg.goto(url)
            expect(pg.locator("body")).to_have_class(re.compile(r"\breal\b"))
            expect(pg.locator("#sim")).to_be_hidden()
            world.press("line-201")                 # a finger on the board's key: seize the line
            expect(pg.locator('[data-key="line-201"]')).to_have_class(re.compile(r"\bdown\b"))
            expect(pg.locator('.lamp[data-lamp="line-201"]')).to_have_attribute("data-cadence", "steady")
            world.release("line-201")
            expect(pg.locator('[data-key="line-201"]')).not_to_have_class(re.compile(r"\bdown\b"))
            pg.locator('[data-key="p1-release"]').click()   # the view does not press it
            expect(pg.locator("#log")).to_contain_text("press its keys by hand")
            pg.wait_for_timeout(300)
            assert api(url, "api/status")[1]["lines"][0]["state"] == "operator"
            world.press("p1-release")
            expect(pg.locator('.lamp[data-lamp="line-201"]')).to_have_attribute("data-cadence", "dark")
            world.release("p1-release")
        finally:
            pg.close()
        return True
    assert run_with_view(check, real=True)


def test_fail__port_in_use_gets_a_clear_error(tmp_path):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(python_cmd("firmware.runtime.daemon", "--sim", "--web-port", port,
                                      "--socket", tmp_path / "ctl.sock"),
                           env=project_env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert f"board view: cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "ctl.sock").exists()


def test_ok__message_waiting_and_fault_lamps(browser):
    from firmware.core.state import Fault, MessageWaiting
    with InProcess() as d:
        pg = browser.new_page()
        try:
            pg.goto(d.url)
            expect(pg.locator("body")).not_to_have_class(re.compile(r"\boffline\b"))
            d.daemon.post(MessageWaiting("203", 2))
            expect(pg.locator('.lamp[data-lamp="msg-203"]')).to_have_attribute("data-cadence", "steady")
            expect(pg.locator('.line[data-line="203"] .state .more')).to_have_text("2 messages")
            d.daemon.post(Fault("printer", "paper out"))
            expect(pg.locator("#lamp-fault")).to_have_attribute("data-cadence", "steady")
            expect(pg.locator("#log")).to_contain_text("fault: printer: paper out")
            expect(pg.locator("#lamp-fault")).to_have_attribute("title", "printer: paper out")
            assert lit(pg, "fault", "msg-203", "msg-201") == [True, True, False]
            d.daemon.post(Fault("printer", None))       # cleared: only the lamp says so
            expect(pg.locator("#lamp-fault")).to_have_attribute("data-cadence", "dark")
            expect(pg.locator("#lamp-fault")).to_have_attribute("title", "no faults")
        finally:
            pg.close()


def test_ok__the_customers_card_shows_as_the_line_rings_and_while_answered(browser, tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    add_customer(data, "--instruction", "always=Ask for the glove size",
                 "--collect", "name", "--collect", "size", "--emergency", "Mary=555-0101")
    proc, url = start_daemon(tmp_path, "desk", "--data-dir", data, "--operator", "1=Becky")
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        pg = ctx.new_page()
        pg.goto(url)
        card = pg.locator(".position[data-position='1'] .pos-card")
        expect(card).to_be_hidden()
        ring(pg, "201")
        expect(card).to_be_visible()                       # as the line rings
        expect(card).to_contain_text("Mary's Gloves, this is Becky")
        expect(card).to_contain_text("Ask for the glove size")
        expect(card).to_contain_text("name, size")
        expect(card).to_contain_text("Mary 555-0101")
        expect(card).to_contain_text("no messages waiting")
        key(pg, "line-201").click()                        # picked up: the card stays
        expect(lamp(pg, "line-201")).to_have_attribute("data-cadence", "steady")
        expect(card).to_contain_text("Mary's Gloves, this is Becky")
        key(pg, "p1-release").click()
        expect(card).to_be_hidden()
    finally:
        ctx.close()
        stop_daemon(proc)
