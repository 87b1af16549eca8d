"""The operator's console in a real headless Chromium against the real daemon.

The whole flow on the simulated desk board with a real SIP call: ring, the card
and message pad appear, the operator types (keyboard only), the page is
reloaded, the line is released before the message is stamped, the physical
stamp key (``switchboard-diag tap p1-stamp``) stamps it, the slip comes out of
a printer on a pseudo-terminal, the rack and the message lamp show it, the
e-mail reaches an SMTP server on loopback, the customer checks in, the
message is read back, the lamp goes dark and the slip is found in the dead box.
"""

import json
import re
import subprocess
import time

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import expect

from conftest import project_env, python_cmd
from board_support import wait_for
from fakeprinter import FakePrinter
from firmware.timeclock.customers import Customers
from mailbox_support import Inbox, free_port
from test_view import browser, start_daemon, stop_daemon  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
MARY = {
    "id": "marys-gloves", "name": "Mary's Gloves", "line": "201", "kind": "Shop",
    "answer": "{name}, this is {operator}", "instructions": [],
    "collect": ["name", "number", "glove size"], "pronounce": "", "emergency": [],
    "on_call": [], "alternate": [], "holidays": [], "delivery": {"method": "hold", "to": None},
    "plan": "Basic 100", "contract_start": "2026-01-01", "notice_date": None,
    "last_month_prepaid": False,
}
MARY_EMAIL = {**MARY, "delivery": {"method": "email", "to": "mary@example.net"}}
ACME = {**MARY, "id": "acme", "name": "Acme Plumbing", "line": "202", "kind": "plumber",
        "collect": ["name", "number"]}
BOBS = {**MARY, "id": "bobs", "name": "Bob's Bakery", "line": "203", "collect": []}


def diag(sock, *args):
    r = subprocess.run(python_cmd("switchboard_tools.diag", "--socket", sock, *args, "--json"),
                       env=project_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"diag {args}: {r.stderr}{r.stdout}"
    return json.loads(r.stdout)


def api(url, path):
    import urllib.request
    with urllib.request.urlopen(url + path, timeout=10) as r:
        return json.loads(r.read())


def customers(data, *records):
    data.mkdir(exist_ok=True)
    cs = Customers(data)
    for r in records:
        cs.add(r)
    cs.close()


@pytest.mark.telephony
def test_ok__ring_type_stamp_print_rack_mail_check_in_dead_box(browser, tmp_path):  # noqa: F811
    data = tmp_path / "var"
    customers(data, MARY_EMAIL)
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    site = tmp_path / "desk.site.toml"
    site.write_text((ROOT / "boards" / "desk.site.toml").read_text() + f'''
[delivery]
retry_min_s = 0.5
[delivery.email]
relay = "127.0.0.1"
port = {port}
security = "none"
from = "Answering Service <board@example.net>"
''')
    printer = FakePrinter(tmp_path / "printer")
    sock = tmp_path / "desk.sock"
    proc, url = start_daemon(tmp_path, "desk", "--site", site, "--sip-port", "0",
                             "--data-dir", data, "--printer", tmp_path / "printer",
                             "--printer-speed", "19200", "--operator", "1=Becky")
    ctx = browser.new_context(viewport={"width": 800, "height": 480})
    try:
        wait_for(lambda: b"telephony ready" in (tmp_path / "daemon-desk.log").read_bytes(),
                 60, "telephony ready")
        page = ctx.new_page()
        page.goto(url + "console")
        expect(page.locator(".position .idle")).to_be_visible()
        # A real SIP call rings line 201; the operator picks it up with the line key.
        r = diag(sock, "ring", "201", "--caller", "5550123")
        assert r["via"] == "sip" and r["rang"]
        diag(sock, "tap", "line-201")
        pad = page.locator('.position[data-position="1"]')
        expect(pad.locator(".card-name")).to_have_text("Mary's Gloves · line 201")
        expect(pad.locator(".card-answer")).to_have_text("“Mary's Gloves, this is Becky”")
        number = pad.locator('[data-field="number"]')
        expect(number).to_have_value("5550123")                    # caller ID, pre-filled
        # Keyboard only: the cursor is in the first field; Tab follows the card.
        expect(pad.locator('[data-field="name"]')).to_be_focused()
        page.keyboard.type("Mrs Lee")
        page.keyboard.press("Tab")
        expect(number).to_be_focused()
        page.keyboard.press("Tab")
        expect(pad.locator('[data-field="glove size"]')).to_be_focused()
        page.keyboard.type("7")
        page.keyboard.press("Tab")
        expect(pad.locator('[data-field="message"]')).to_be_focused()
        page.keyboard.type("Are the gloves ready?")
        page.keyboard.press("Tab")
        page.keyboard.press("Space")                               # urgent
        wait_for(lambda: diag(sock, "status")["timeclock"]["pads"].get("1", {}).get(
            "fields", {}).get("message") == "Are the gloves ready?", 15, "the draft kept")
        # A reload keeps it: it lives with the position, not in the page.
        page.reload()
        expect(pad.locator('[data-field="message"]')).to_have_value("Are the gloves ready?")
        expect(pad.locator('[data-field="name"]')).to_have_value("Mrs Lee")
        expect(pad.locator('[name="urgent"]')).to_be_checked()
        # The caller hangs up and the operator releases before stamping: nothing lost.
        diag(sock, "hangup", "201")
        diag(sock, "tap", "p1-release")
        expect(pad.locator(".card-warn")).to_contain_text("the line was released")
        t0 = time.monotonic()
        diag(sock, "tap", "p1-stamp")                              # the physical stamp key
        # The rack on screen, the message lamp, the printed slip, the e-mail.
        page.keyboard.press("F2")
        expect(page.locator("#view-positions")).to_be_hidden()     # one page at a time
        row = page.locator("#rack .slip").first
        expect(row).to_contain_text("Name: Mrs Lee; Number: 5550123; Glove size: 7; "
                                    "Message: Are the gloves ready?")
        print(f"stamp key to rack on screen: {time.monotonic() - t0:.3f} s")
        slip = int(row.get_attribute("data-slip"))
        assert diag(sock, "status")["lamps"]["msg-201"]["cadence"] == "steady"
        assert printer.wait_for(1, timeout=15), printer.slips
        assert any("Mrs Lee" in s and str(slip) in s for s in printer.slips), printer.slips
        wait_for(lambda: inbox.messages, 15, "the e-mail received")
        [mail] = inbox.messages
        assert mail["Message-ID"] == f"<slip-{slip}.marys-gloves@switchboard>"
        assert mail["Subject"].startswith("URGENT: Message") and "Mrs Lee" in mail["Subject"]
        expect(row.locator(".st")).to_have_text("email sent")
        # The customer checks in: each message read back, the rack empties, the lamp goes dark.
        page.locator(".pigeonhole .checkin-btn").click()
        page.locator("#checkin button.readback").first.click()
        expect(page.locator("#checkin")).to_contain_text("All read back")
        expect(page.locator("#rack")).to_contain_text("The rack is empty")
        wait_for(lambda: diag(sock, "status")["lamps"]["msg-201"]["cadence"] == "dark",
                 15, "the message lamp dark")
        # The dead box finds it, with its read-back and the call's record.
        page.keyboard.press("F3")
        # As the supervisor types, no Enter: the box searches on the dead-box index.
        page.locator("#q-search").press_sequentially("gloves ready")
        found = page.locator(f'#results .dead[data-slip="{slip}"]')
        expect(found).to_contain_text("read back slip")
        expect(found).to_contain_text("from 5550123")
        expect(found.locator(".st")).to_have_text("email sent")
        page.locator("#q-search").fill("")
        page.locator("#q-slip").fill(str(slip))
        page.keyboard.press("Enter")
        expect(page.locator("#found")).to_have_text("1 slip(s)")
    finally:
        ctx.close()
        stop_daemon(proc)
        printer.close()
        smtp.stop()


def test_ok__two_pads_when_split_and_both_screens_fit(browser, tmp_path):  # noqa: F811
    data = tmp_path / "var"
    customers(data, {**MARY, "delivery": {"method": "hold", "to": None},
                     "emergency": [{"label": "Mary at home", "number": "555-0101"}]},
              {**MARY, "id": "acme", "name": "Acme Plumbing", "line": "202", "kind": "plumber",
               "collect": ["name"], "delivery": {"method": "hold", "to": None}})
    sock = tmp_path / "desk.sock"
    proc, url = start_daemon(tmp_path, "desk", "--data-dir", data)
    try:
        for w, h in ((800, 480), (1920, 1080)):
            ctx = browser.new_context(viewport={"width": w, "height": h})
            page = ctx.new_page()
            page.goto(url + "console")
            if w == 800:
                expect(page.locator(".position")).to_have_count(1)
                diag(sock, "press", "split")
            expect(page.locator(".position")).to_have_count(2)
            diag(sock, "ring", "201", "--caller", "5550123")
            diag(sock, "ring", "202")
            halves = {ln["number"]: ln["half"] for ln in diag(sock, "status")["lines"]}
            p201, p202 = halves["201"], halves["202"]
            diag(sock, "tap", "line-201") if w == 800 else None
            diag(sock, "tap", "line-202") if w == 800 else None
            pads = page.locator(".position")
            expect(page.locator(f'.position[data-position="{p201}"] .card-name')).to_contain_text("Mary")
            expect(page.locator(f'.position[data-position="{p202}"] .card-name')).to_contain_text("Acme")
            if w == 800:
                # Mary calls in from home on an office line: check-in from her card.
                diag(sock, "ring", "901", "--caller", "555-0101")
                diag(sock, "tap", "line-901")
                pad1 = page.locator('.position[data-position="1"]')
                pad1.locator("button.checkin-card").click()
                expect(page.locator("#checkin")).to_contain_text("Check-in: Mary's Gloves")
                diag(sock, "tap", "p1-release")
                diag(sock, "hangup", "901")
                diag(sock, "tap", "line-201")
                page.keyboard.press("F1")
                # She calls again on position 2's office line: read back there, stamped there.
                diag(sock, "take-message", "201", "Ring Mary back")
                diag(sock, "ring", "902", "--caller", "555-0101")
                diag(sock, "tap", "line-902")
                page.locator('.position[data-position="2"] button.checkin-card').click()
                expect(page.locator("#checkin")).to_contain_text("1 waiting · position 2")
                page.locator("#checkin button.readback").first.click()
                expect(page.locator("#checkin")).to_contain_text("All read back")
                [slip] = api(url, "api/deadbox?search=ring+mary")["slips"]
                assert slip["read_back"]["position"] == 2, slip
                diag(sock, "tap", "p2-release")
                diag(sock, "hangup", "902")
                diag(sock, "tap", "line-202")
                page.keyboard.press("F1")
            # No sideways scrolling, and each pad's stamp button is on screen.
            assert page.evaluate("document.scrollingElement.scrollWidth") <= w
            for i in range(pads.count()):
                box = pads.nth(i).locator("button.stamp").bounding_box()
                assert box and box["x"] + box["width"] <= w and box["y"] + box["height"] <= h, box
            ctx.close()
    finally:
        stop_daemon(proc)


def test_ok__each_call_its_own_pad_ctrl_enter_stamp_button_reload_history(browser, tmp_path):  # noqa: F811
    """Another line picked up mid-message: that call's own empty pad, the first draft
    listed unfinished, then reopened and stamped under its own customer with all its
    fields; the pad's Stamp button and Ctrl+Enter stamp; keystrokes typed just before a
    reload are kept; the card's history shows this caller's messages; the dead box
    offers every customer."""
    data = tmp_path / "var"
    customers(data, MARY, ACME, BOBS)
    sock = tmp_path / "desk.sock"
    proc, url = start_daemon(tmp_path, "desk", "--data-dir", data)
    ctx = browser.new_context(viewport={"width": 800, "height": 480})
    try:
        page = ctx.new_page()
        page.goto(url + "console")
        pad = page.locator('.position[data-position="1"]')
        expect(pad.locator(".idle")).to_be_visible()
        diag(sock, "ring", "201", "--caller", "5550123")
        diag(sock, "tap", "line-201")
        expect(pad.locator(".card-name")).to_have_text("Mary's Gloves · line 201")
        expect(pad.locator('[data-field="name"]')).to_be_focused()
        page.keyboard.type("Mrs Lee")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.type("7")
        page.keyboard.press("Tab")
        page.keyboard.type("Are the gloves ready?")
        # Acme rings and the operator picks it up (Mary goes on hold): Acme's own pad.
        diag(sock, "ring", "202", "--caller", "5550999")
        diag(sock, "tap", "line-202")
        expect(pad.locator(".card-name")).to_have_text("Acme Plumbing · line 202")
        expect(pad.locator('[data-field="glove size"]')).to_have_count(0)
        expect(pad.locator('[data-field="name"]')).to_have_value("")
        expect(pad.locator('[data-field="number"]')).to_have_value("5550999")
        expect(pad.locator('[data-field="message"]')).to_have_value("")
        left = pad.locator(".unfinished-row")
        expect(left).to_have_text(re.compile(
            r"Unfinished: line 201, Mary's Gloves: Name: Mrs Lee; Number: 5550123; "
            r"Glove size: 7; Message: Are the gloves ready\?"))
        # Acme's message, stamped with the pad's Stamp button.
        expect(pad.locator('[data-field="name"]')).to_be_focused()
        page.keyboard.type("Joe")
        pad.locator('[data-field="message"]').click()
        page.keyboard.type("Leak under the sink")
        pad.locator("button.stamp").click()
        expect(pad.locator(".saved")).to_have_text(re.compile(r"stamped slip \d+"))
        [acme] = [b for b in api(url, "api/rack")["rack"] if b["customer"] == "acme"]
        assert [m["text"] for m in acme["messages"]] == [
            "Name: Joe; Number: 5550999; Message: Leak under the sink"]
        # Mary's draft reopened, finished and stamped with Ctrl+Enter, under her own card.
        left.locator("button").click()
        expect(pad.locator(".card-warn")).to_contain_text(
            "Message for Mary's Gloves · line 201, an earlier call")
        expect(pad.locator('[data-field="glove size"]')).to_have_value("7")
        pad.locator('[data-field="message"]').click()
        page.keyboard.press("End")
        page.keyboard.type(" Size 7.")
        page.keyboard.press("Control+Enter")
        expect(pad.locator(".unfinished-row")).to_have_count(0)
        expect(pad.locator(".card-warn")).to_have_count(0)          # back on Acme's call
        [mary] = [b for b in api(url, "api/rack")["rack"] if b["customer"] == "marys-gloves"]
        [m] = mary["messages"]
        assert m["text"] == ("Name: Mrs Lee; Number: 5550123; Glove size: 7; "
                             "Message: Are the gloves ready? Size 7.") and m["line"] == "201"
        # Back on Mary's held call: the card's history has her message.
        diag(sock, "tap", "p1-release")
        diag(sock, "tap", "line-201")
        expect(pad.locator(".card-name")).to_have_text("Mary's Gloves · line 201")
        expect(pad.locator(".history .caller-msg")).to_contain_text(
            f"Their slip {m['slip']}")
        # Typed, and the page reloaded at once: the last keystrokes are kept.
        pad.locator('[data-field="message"]').click()
        page.keyboard.type("Call me back")
        page.reload()
        expect(pad.locator('[data-field="message"]')).to_have_value("Call me back")
        assert api(url, "api/status")["timeclock"]["pads"]["1"]["fields"]["message"] == \
            "Call me back"
        # The dead box offers every customer, with slips or without.
        page.keyboard.press("F3")
        expect(page.locator("#q-customer option")).to_have_text(
            ["any", "Acme Plumbing (line 202)", "Bob's Bakery (line 203)",
             "Mary's Gloves (line 201)"])
        page.locator("#q-customer").select_option("marys-gloves")
        page.keyboard.press("Enter")
        expect(page.locator("#found")).to_have_text("1 slip(s)")
    finally:
        ctx.close()
        stop_daemon(proc)


def test_fail__console_api_bad_requests(tmp_path):
    proc, url = start_daemon(tmp_path, "desk", "--data-dir", tmp_path / "var")
    import urllib.error
    import urllib.request

    def call(path, body=None):
        req = urllib.request.Request(url + path, data=None if body is None else body.encode(),
                                     headers={"X-Switchboard-Request": "1"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
    try:
        assert call("api/draft", "[1]") == (400, {"error": "/api/draft: the body must be a JSON object"})
        code, r = call("api/draft", json.dumps({"position": 1, "fields": {"name": 3}}))
        assert code == 400 and r["error"] == "draft: fields.name = 3: expected text"
        code, r = call("api/draft", json.dumps({"position": 1, "colour": "red"}))
        assert code == 400 and "unknown colour" in r["error"]
        code, r = call("api/stamp", json.dumps({"position": 1}))
        assert code == 400 and "the message pad is empty" in r["error"]
        code, r = call("api/draft", json.dumps({"position": 1, "id": "201", "fields": {}}))
        assert code == 400 and "expected a draft's id" in r["error"]
        code, r = call("api/draft-open", json.dumps({"position": 1}))
        assert code == 400 and "position 1 is not on a line" in r["error"]
        code, r = call("api/draft-open", json.dumps({"position": 1, "id": "201/w0-9"}))
        assert code == 400 and "no unfinished draft 201/w0-9" in r["error"]
        assert call("api/customers") == (200, {"customers": []})
        code, r = call("api/deadbox?since=yesterday")
        assert code == 400 and "expected a date as YYYY-MM-DD" in r["error"]
        code, r = call("api/read-back", json.dumps({"slip": 99}))
        assert code == 400 and "slip 99 is not waiting in the rack" in r["error"]
        assert call("api/rack") == (200, {"rack": [], "waiting": 0, "now": call("api/rack")[1]["now"]})
    finally:
        stop_daemon(proc)


def test_ok__dead_box_plays_a_recorded_conversation(browser, tmp_path):  # noqa: F811
    """A slip taken on a recorded call: the dead box shows a player for the recording,
    which the view serves from the data folder only."""
    import wave
    data = tmp_path / "var"
    customers(data, {**MARY, "record_calls": True})
    day = data / "recordings" / "2026-11-30"
    day.mkdir(parents=True)
    wav = day / "201-101500-w0-1.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    (data / "calls.jsonl").write_text(json.dumps(
        {"id": "w0-1", "line": "201", "direction": "in", "kind": "call", "caller": "5550123",
         "callee": "201", "offered": "2026-11-30T15:15:00.000Z", "answered": None, "ended": None,
         "rings": 1, "position": 1, "hold_s": 0, "outcome": "answered",
         "recording": str(wav)}) + "\n" + json.dumps(
        {"id": "w0-2", "line": "201", "recording": "/etc/passwd"}) + "\n")
    from firmware.timeclock.clock import TimeClock
    tc = TimeClock(data)
    tc.stamp("message", line="201", customer="marys-gloves", position=1, call="w0-1",
             text="about the invoice")
    tc.close()
    proc, url = start_daemon(tmp_path, "desk", "--data-dir", data)
    try:
        import urllib.error
        import urllib.request
        with urllib.request.urlopen(url + "api/recording?call=w0-1", timeout=10) as r:
            assert r.headers["Content-Type"] == "audio/wav" and r.read()[:4] == b"RIFF"
        for call, code, why in (("w0-2", 404, "is gone"), ("w9", 400, "no call record 'w9'")):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(url + f"api/recording?call={call}", timeout=10)
            assert e.value.code == code and why in json.loads(e.value.read())["error"]
        # The slip taken on that call, in the dead box, with its player.
        page = browser.new_page()
        page.goto(url + "console")
        page.keyboard.press("F3")
        page.locator("#q-search").fill("invoice")
        page.keyboard.press("Enter")
        expect(page.locator("#found")).to_have_text("1 slip(s)")
        audio = page.locator("#results .dead audio")
        expect(audio).to_have_attribute("src", re.compile(r"api/recording\?call=w0-1"))
        duration = page.evaluate("""() => new Promise((ok) => { const a = document.querySelector(
            '#results .dead audio'); a.preload = 'auto'; a.onloadedmetadata = () => ok(a.duration);
            a.onerror = () => ok(-1); a.load(); })""")
        assert abs(duration - 1.0) < 0.05, duration           # the browser plays it
        page.close()
    finally:
        stop_daemon(proc)
