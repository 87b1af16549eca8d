"""The Pi smoke test: the whole board, as installed by scripts/setup.sh, on this machine.

scripts/pi-check.sh runs it inside the emulated arm64 root (it runs anywhere the README's
set-up ran). With real parts on 127.0.0.1 only: the daemon on the simulated TAS-100 with its
telephony (Kamailio front, PJSUA2 workers, the positions' endpoints), position 1's headset
on an ALSA file-plugin card (tests/alsa_fixture.py), a slip printer on a pseudo-terminal
(tests/fakeprinter.py), and then:

  a SIPp caller sending a 1 kHz tone rings line 201: its lamp flashes;
  switchboard-diag taps the line key: the lamp goes steady, the call is answered;
  the 1 kHz tone reaches position 1's earpiece;
  the stamp key stamps a slip, which comes out of the printer;
  the view answers GET /api/status (curl);
  release: the call ends, the line goes dark.

Each step's time is printed; the first failure stops it with one line saying what was
expected. Run: ``.venv/bin/python scripts/pi_smoke.py [--board tas100]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "support")]

from alsa_fixture import FakeCard, tone_level          # noqa: E402
from fakeprinter import FakePrinter                    # noqa: E402
from telephony_support import sipp, ulaw_tone          # noqa: E402

RATE = 16000
BIN = Path(sys.executable).parent


class SmokeFailed(Exception):
    pass


def wait(pred, timeout, what, every=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise SmokeFailed(f"{what}: not within {timeout} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="tas100")
    ap.add_argument("--line", default="201")
    ap.add_argument("--start-timeout", type=float, default=300.0,
                    help="seconds for the daemon and its telephony to start (emulated: slow)")
    a = ap.parse_args(argv)
    for tool in ("sipp", "sox", "curl"):
        if shutil.which(tool) is None:
            print(f"pi-smoke: {tool} is missing: run scripts/setup.sh (installs it)", file=sys.stderr)
            return 1
    from importlib import metadata
    versions = []
    for dist in ("pjsua2", "lgpio", "gpiozero"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    print(f"pi-smoke: {os.uname().machine}, Python {sys.version.split()[0]}, {', '.join(versions)}")
    tmp = Path(tempfile.mkdtemp(prefix="pi-smoke-"))
    site = tmp / f"{a.board}.site.toml"
    site.write_text('[front]\nlisten = "127.0.0.1"\nport = 0\ntransports = ["udp", "tcp"]\n'
                    '[[trunks]]\nname = "loopback"\nmode = "peer"\npeers = ["127.0.0.1"]\n'
                    'outbound = true\n[[positions]]\nheadset = "hs1"\n[[positions]]\n')
    sock = tmp / "ctl.sock"
    timings: list[tuple[str, float]] = []
    proc = out = None
    t_all = time.monotonic()

    def step(name):
        class _S:
            def __enter__(self):
                self.t = time.monotonic()
                print(f"pi-smoke: {name} ...", flush=True)

            def __exit__(self, et, ev, tb):
                if et is None:
                    dt = time.monotonic() - self.t
                    timings.append((name, dt))
                    print(f"pi-smoke:   ok, {dt:.1f} s", flush=True)
        return _S()

    def diag(*args, timeout=120):
        r = subprocess.run([str(BIN / "switchboard-diag"), "--socket", str(sock), *args, "--json"],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise SmokeFailed(f"switchboard-diag {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
        return json.loads(r.stdout)

    def lamp(name):
        return diag("status")["lamps"][name]["cadence"]

    printer = None
    try:
        printer = FakePrinter(tmp / "printer")
        with FakeCard(tmp / "home", ["hs1"], rate=RATE) as card:
            env = dict(os.environ, HOME=card.env()["HOME"], PYTHONUNBUFFERED="1")
            with step(f"daemon on the simulated {a.board} with telephony: started"):
                out = open(tmp / "daemon.out", "w+")
                proc = subprocess.Popen(
                    [str(BIN / "switchboard"), "--sim", "--board", a.board, "--site", str(site),
                     "--sip-port", "0", "--web-port", "0", "--socket", str(sock),
                     "--data-dir", str(tmp / "data"), "--printer", str(tmp / "printer"),
                     "--printer-speed", "19200", "--operator", "1=Becky"],
                    stdout=out, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp)

                polls = [0]

                def ready():
                    if proc.poll() is not None:
                        raise SmokeFailed(f"the daemon exited ({proc.returncode}): "
                                          + (tmp / "daemon.out").read_text()[-1500:])
                    m = re.search(r"telephony ready: sip:<line>@127\.0\.0\.1:(\d+)",
                                  (tmp / "daemon.out").read_text())
                    polls[0] += 1
                    if not m and polls[0] % 25 == 0 and sock.exists():   # every 5 s or so
                        tel = diag("status").get("telephony") or {}
                        if tel.get("state") == "failed":
                            raise SmokeFailed(f"the telephony failed to start: {tel.get('error')}")
                    return m
                sip_port = int(wait(ready, a.start_timeout, "telephony ready").group(1))
                text = (tmp / "daemon.out").read_text()
                m = re.search(r"https?://127\.0\.0\.1:(\d+)/", text)
                if not m:
                    raise SmokeFailed(f"the daemon printed no view address: {text[-800:]}")
                web_port = int(m.group(1))
                tel = diag("status")["telephony"]
                print(f"pi-smoke:   {len(tel['workers'])} PJSUA2 workers x {tel['calls_per_worker']} "
                      f"calls, capacity {tel['capacity']}; faults: {diag('status')['faults'] or 'none'}")
            with step(f"a SIPp call (1 kHz tone) rings line {a.line}: its lamp flashes"):
                tone = ulaw_tone(tmp / "tone.wav", 1000, 30)
                caller = sipp("answered.xml", sip_port, [a.line], tmp, hold_ms=60000, tone=tone,
                              timeout_s=240)
                wait(lambda: lamp(f"line-{a.line}") == "flash", 60, f"line-{a.line} flashing")
            with step(f"switchboard-diag taps line-{a.line}: answered, the lamp steady"):
                diag("tap", f"line-{a.line}")
                wait(lambda: lamp(f"line-{a.line}") == "steady", 60, f"line-{a.line} steady")
            with step("the caller's 1 kHz tone reaches position 1's earpiece"):
                def heard():
                    level = tone_level(card.ear("hs1", time.monotonic() - 1.0), RATE, 1000)
                    return level if level > 1000 else None      # sample units: 3 % of full scale
                level = wait(heard, 60, "1 kHz in position 1's earpiece", every=0.5)
                print(f"pi-smoke:   1 kHz at {level:.0f} (sample units; {level / 32767:.2f} of full scale)")
            with step("the stamp key stamps a slip; the printer (a pty) prints it"):
                diag("tap", "p1-stamp")
                if not printer.wait_for(1, timeout=60):
                    raise SmokeFailed("no slip came out of the printer within 60 s")
                first = printer.slips[0].strip().splitlines()
                print(f"pi-smoke:   slip: {' / '.join(x.strip() for x in first[:3] if x.strip())}")
            with step("the view answers: curl /api/status"):
                r = subprocess.run(["curl", "-sS", "--max-time", "60", "-H", "Host: 127.0.0.1",
                                    f"http://127.0.0.1:{web_port}/api/status"],
                                   capture_output=True, text=True, timeout=90)
                if r.returncode != 0:
                    raise SmokeFailed(f"curl /api/status: {r.stderr.strip()}")
                st = json.loads(r.stdout)
                state = next(ln for ln in st["lines"] if ln["number"] == a.line)["state"]
                print(f"pi-smoke:   {len(st['lines'])} lines; line {a.line} {state}")
                if state != "operator":
                    raise SmokeFailed(f"the view says line {a.line} is {state}, expected operator")
            with step("release: the call ends, the lamp dark"):
                diag("tap", "p1-release")
                wait(lambda: lamp(f"line-{a.line}") == "dark", 60, f"line-{a.line} dark")
                try:
                    caller.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    caller.kill()
                    caller.wait()
    except SmokeFailed as e:
        print(f"pi-smoke: FAILED: {e} (files in {tmp})", file=sys.stderr)
        return 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if out is not None:
            out.close()
        if printer is not None:
            printer.close()
    total = time.monotonic() - t_all
    print(f"pi-smoke: passed in {total:.1f} s on {os.uname().machine}, Python {sys.version.split()[0]}")
    for name, dt in timings:
        print(f"pi-smoke: {dt:7.1f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
