#!/usr/bin/env python3
"""Take the README's pictures of the board view: the real daemon on a simulated
board, a few calls set up through the view's own API, the page in headless
Chromium (Playwright).

    python scripts/screenshot_view.py                 # both boards, into docs/
    python scripts/screenshot_view.py --board desk --out /tmp/desk.png
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "tests" / "support"))
from view_support import view_url  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SCENES = {
    # board: (viewport, [(action, args)]): a line ringing, one held, one in use.
    "desk": ((1280, 610), [
        ("ring", {"line": "203", "caller": "555-0187"}),
        ("key", "line-203"), ("key", "p1-hold"),
        ("ring", {"line": "201", "caller": "555-0110"}),
        ("key", "line-201"), ("dial", "5550123"),
        ("ring", {"line": "202", "caller": "555-0142"}),
    ]),
    "tas100": ((1280, 800), [
        ("ring", {"line": "203"}), ("key", "line-203"), ("key", "p1-hold"),
        ("ring", {"line": "241"}), ("key", "line-241"), ("key", "p1-hold"),
        ("ring", {"line": "217"}), ("ring", {"line": "266"}), ("ring", {"line": "298"}),
        ("ring", {"line": "905"}),
        ("ring", {"line": "232"}), ("key", "line-232"), ("dial", "411"),
    ]),
}


def post(url, path, body):
    req = urllib.request.Request(url + "api/" + path, data=json.dumps(body).encode(),
                                 headers={"X-Switchboard-Request": "screenshot",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def tap(url, key):
    post(url, "press", {"key": key})
    time.sleep(0.05)             # longer than the debounce
    post(url, "release", {"key": key})
    time.sleep(0.05)


def shoot(board: str, out: Path):
    (width, height), actions = SCENES[board]
    with tempfile.TemporaryDirectory() as tmp:
        logpath = Path(tmp) / "daemon.log"
        with open(logpath, "w+") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "firmware.runtime.daemon", "--sim", "--board", board,
                 "--web-port", "0", "--socket", str(Path(tmp) / "ctl.sock"),
                 "--data-dir", str(Path(tmp) / "data")],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            try:
                url = view_url(log, proc)
                if url is None:
                    log.seek(0)
                    sys.exit(f"the daemon did not start:\n{log.read()}")
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(url)
                    page.wait_for_selector("body:not(.offline)")
                    for action, arg in actions:      # after loading, so the log shows them
                        if action == "ring":
                            post(url, "ring", arg)
                        elif action == "key":
                            tap(url, arg)
                        else:
                            for d in arg:
                                tap(url, f"p1-dial-{d}")
                    time.sleep(0.5)
                    # Every flashing and winking lamp lit: early in the interrupter's second.
                    page.wait_for_function("""() => { const t = window.switchboardView.daemonNow();
                        return t % 1.0 > 0.02 && t % 1.0 < 0.12; }""", polling=5)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(out))
                    browser.close()
            finally:
                proc.terminate()
                proc.wait(10)
    print(f"{board}: {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", choices=sorted(SCENES), help="one board only")
    ap.add_argument("--out", type=Path, help="where to write it (with --board)")
    args = ap.parse_args()
    names = {"desk": "board-view.png", "tas100": "board-view-tas100.png"}
    for board in [args.board] if args.board else sorted(SCENES):
        shoot(board, args.out if args.out and args.board else ROOT / "docs" / names[board])


if __name__ == "__main__":
    main()
