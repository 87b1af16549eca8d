#!/usr/bin/env python3
"""The board view's figures, measured on the real daemon (simulated boards) and a
headless Chromium page, each beside a baseline taken in the same run:

1. key to lamp in the page: the page sends a key press (as its key does) and
   waits for the lamp's cadence to change in the page; baseline: the same POST
   with nothing in it, refused before it reaches the board (the HTTP round trip
   a press cannot beat); beside them, reading the whole board (/api/status).
2. the daemon's CPU share with every line of the TAS-100 ringing (115 lamps
   flashing), with the view open in a page, beside the same with no page open:
   the page runs its own interrupter, so flashing lamps cost no traffic.
3. the size of /api/status for each board.

    python benchmarks/view_latency.py [--cycles 40] [--seconds 10]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")
TICK = os.sysconf("SC_CLK_TCK")


class Daemon:
    def __init__(self, board):
        self.tmp = tempfile.TemporaryDirectory()
        self.log = open(Path(self.tmp.name) / "log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware.runtime.daemon", "--sim", "--board", board, "--web-port", "0",
             "--socket", str(Path(self.tmp.name) / "ctl.sock"),
             "--data-dir", str(Path(self.tmp.name) / "data")],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(400):
            self.log.seek(0)
            m = URL_RE.search(self.log.read())
            if m:
                self.url = m.group(1)
                return
            time.sleep(0.05)
        self.stop()
        sys.exit("the daemon did not start")

    def post(self, path, body):
        req = urllib.request.Request(self.url + "api/" + path, data=json.dumps(body).encode(),
                                     headers={"X-Switchboard-Request": "bench"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def get(self, path) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return r.read()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.tmp.cleanup()


PRESS_TO_LAMP = """async ([key, lamp, want]) => {
    const e = document.querySelector(`.lamp[data-lamp="${lamp}"]`);
    const seen = new Promise((done) => {
        const obs = new MutationObserver(() => {
            if (e.dataset.cadence === want) { obs.disconnect(); done(performance.now()); }
        });
        obs.observe(e, {attributes: true, attributeFilter: ["data-cadence"]});
    });
    const t0 = performance.now();
    fetch("api/press", {method: "POST", body: JSON.stringify({key}),
                        headers: {"X-Switchboard-Request": "bench"}});
    const t1 = await seen;
    await fetch("api/release", {method: "POST", body: JSON.stringify({key}),
                                headers: {"X-Switchboard-Request": "bench"}});
    return t1 - t0;
}"""
# The same POST with nothing in it: refused at once, before the board, so it is
# the HTTP round trip from the page that a key press cannot beat.
EMPTY_RTT = """async () => {
    const t0 = performance.now();
    await (await fetch("api/press", {method: "POST", body: "{}",
                                     headers: {"X-Switchboard-Request": "bench"}})).json();
    return performance.now() - t0;
}"""
STATUS_RTT = """async () => {
    const t0 = performance.now();
    await (await fetch("api/status")).json();
    return performance.now() - t0;
}"""


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def latency(browser, cycles):
    d = Daemon("desk")
    try:
        page = browser.new_page()
        page.goto(d.url)
        page.wait_for_selector("body:not(.offline)")
        answer, release, rtt, status = [], [], [], []
        for _ in range(cycles):
            d.post("ring", {"line": "201"})
            page.wait_for_selector('.lamp[data-lamp="line-201"][data-cadence="flash"]')
            answer.append(page.evaluate(PRESS_TO_LAMP, ["line-201", "line-201", "steady"]))
            page.wait_for_timeout(30)
            release.append(page.evaluate(PRESS_TO_LAMP, ["p1-release", "line-201", "dark"]))
            rtt.append(page.evaluate(EMPTY_RTT))
            status.append(page.evaluate(STATUS_RTT))
            page.wait_for_timeout(30)
        page.close()
    finally:
        d.stop()
    return answer, release, rtt, status


def cpu_share(browser, seconds):
    d = Daemon("tas100")
    try:
        for ln in json.loads(d.get("api/status"))["lines"]:
            d.post("ring", {"line": ln["number"]})
        time.sleep(1.0)
        out = {}
        for label, open_page in (("no page", False), ("view open", True)):
            page = None
            if open_page:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(d.url)
                page.wait_for_selector("body:not(.offline)")
                time.sleep(1.0)
            c0, t0 = d.cpu_seconds(), time.monotonic()
            time.sleep(seconds)
            out[label] = (d.cpu_seconds() - c0) / (time.monotonic() - t0) * 100
            if page:
                page.close()
        sizes = {"tas100": len(d.get("api/status"))}
    finally:
        d.stop()
    return out, sizes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            answer, release, rtt, status = latency(browser, args.cycles)
            cpu, sizes = cpu_share(browser, args.seconds)
        finally:
            browser.close()
    d = Daemon("desk")
    try:
        sizes["desk"] = len(d.get("api/status"))
    finally:
        d.stop()

    print(f"key press to lamp change in the page, desk board, {args.cycles} cycles (ms):")
    for name, xs in (("answer (line key -> steady)", answer), ("release (release key -> dark)", release),
                     ("baseline: empty POST, refused", rtt), ("GET /api/status (whole board)", status)):
        print(f"  {name:32} median {statistics.median(xs):6.1f}   p99 {pct(xs, 99):6.1f}")
    print(f"daemon CPU, TAS-100 with all 115 lines ringing, over {args.seconds:g} s:")
    for name, share in cpu.items():
        print(f"  {name:32} {share:5.1f} %")
    print("size of /api/status:")
    for name, n in sizes.items():
        print(f"  {name:32} {n / 1024:6.1f} KiB")


if __name__ == "__main__":
    main()
