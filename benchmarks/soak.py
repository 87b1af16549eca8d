"""Soak: mixed calls at the board's capacity while its processes are killed at random.

    python benchmarks/soak.py                 # 30 minutes; --minutes 2 for a short run
    python benchmarks/soak.py --minutes 5 --seed 7 --json

The real daemon (simulated desk board, ``boards/desk.site.toml``, the front on a
free loopback port) takes calls from its own test callers (``switchboard-diag
ring``: a real SIP call from a worker through the front) while this script,
as an operator would, answers, holds, resumes, transfers and releases them,
callers hang up while ringing (CANCEL) or while talking (BYE from their side),
and now and then a worker, the front (Kamailio) or the whole daemon is killed
with SIGKILL (the daemon is started again on the same data dir).

At the end, once the board has had time to settle, it prints: calls offered,
calls recorded (``calls.jsonl``), calls lost (offered without a record: only
calls on a killed process may be), ghost calls (lines still ringing or in use
with no call behind them), the lamps that are not dark, the board's ``free``
against its capacity, faults, and restarts. CI never runs it (it is bounded by
``--minutes`` and writes only under a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Daemon:
    def __init__(self, folder: Path):
        self.folder = folder
        self.sock = folder / "control.sock"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self):
        env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'host-tools'}")
        self.log = open(self.folder / "daemon.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware.runtime.daemon", "--sim", "--board", "desk",
             "--site", str(ROOT / "boards" / "desk.site.toml"), "--sip-port", "0", "--no-web",
             "--socket", str(self.sock), "--data-dir", str(self.folder / "var")],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.starts += 1
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                tel = self.ask("status").get("result", {}).get("telephony") or {}
                if tel.get("state") == "running":
                    return True
            except OSError:
                pass
            if self.proc.poll() is not None:
                return False
            time.sleep(0.5)
        return False

    def ours(self) -> list[int]:
        """Every process still running from this soak's folder (orphans included)."""
        out = []
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if str(self.folder).encode() in cmd:
                    out.append(int(pid))
        return out

    def clean_up(self):
        self.stop()
        for pid in self.ours():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def ask(self, cmd, **args) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(str(self.sock))
            s.sendall((json.dumps({"cmd": cmd, "args": args}) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf) if buf else {"ok": False, "error": "no reply"}

    def children(self) -> dict[str, list[int]]:
        """The daemon's child processes by kind: worker, position, kamailio."""
        out: dict[str, list[int]] = {"worker": [], "position": [], "kamailio": []}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != self.proc.pid and not (str(self.folder) in cmd and "kamailio" in cmd):
                continue
            if "kamailio" in cmd:
                out["kamailio"].append(int(pid))
            elif "pj.worker" in cmd:
                out["worker"].append(int(pid))
            elif "pj.position" in cmd:
                out["position"].append(int(pid))
        return out

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def rang(d: Daemon, line: str, timeout: float) -> bool:
    """Whether ``line`` leaves idle (its call has reached the board) within ``timeout``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if line_states(d)[0][line]["state"] != "idle":
                return True
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.1)
    return False


def line_states(d: Daemon) -> dict:
    st = d.ask("status")["result"]
    return {ln["number"]: ln for ln in st["lines"]}, st


def soak(minutes: float, seed: int, kill_every_s: float) -> dict:
    rnd = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    d = Daemon(folder)
    if not d.start():
        d.clean_up()
        raise SystemExit(f"soak: the daemon's telephony did not start; see {folder}/daemon.log")
    orphans: list[int] = []
    stopped_early = None
    offered = killed_calls = never_rang = 0
    never_why: dict[str, int] = {}
    never_seen: list[dict] = []
    last_kill = [time.time(), None]
    kills = {"worker": 0, "kamailio": 0, "daemon": 0}
    actions: dict[str, int] = {}
    errors: list[str] = []
    deadline = time.time() + minutes * 60
    next_kill = time.time() + rnd.uniform(0.5, 1.5) * kill_every_s

    def act(name, cmd, **args):
        actions[name] = actions.get(name, 0) + 1
        try:
            r = d.ask(cmd, **args)
        except OSError as e:
            r = {"ok": False, "error": str(e)}
        if not r.get("ok") and len(errors) < 50:
            errors.append(f"{name}: {r.get('error')}")
        return r

    while time.time() < deadline:
        if time.time() >= next_kill:
            lines, st = line_states(d)
            busy = sum(1 for ln in lines.values() if ln["state"] != "idle")
            kind = rnd.choice(["worker", "worker", "kamailio", "daemon"])
            kids = d.children()
            if kind == "daemon":
                d.kill()
                killed_calls += busy
                time.sleep(1)
                orphans.append(len(d.ours()))       # what outlived the daemon
                if not d.start():
                    stopped_early = ("the daemon started again but its telephony did not "
                                     f"come back within 120 s (see {folder}/daemon.log)")
                    kills[kind] += 1
                    break
            elif kids[kind]:
                os.kill(rnd.choice(kids[kind]) if kind == "worker" else min(kids[kind]),
                        signal.SIGKILL)
                killed_calls += busy if kind == "kamailio" else (busy + 1) // 2
            kills[kind] += 1
            last_kill[:] = [time.time(), kind]
            next_kill = time.time() + rnd.uniform(0.5, 1.5) * kill_every_s
            time.sleep(2)
            continue
        try:
            lines, st = line_states(d)
        except OSError:
            time.sleep(1)
            continue
        idle = [n for n, ln in lines.items() if ln["state"] == "idle"]
        ringing = [n for n, ln in lines.items() if ln["state"] == "ringing"]
        talking = [n for n, ln in lines.items() if ln["state"] in ("operator", "customer")]
        held = [n for n, ln in lines.items() if ln["state"] == "held"]
        choice = rnd.random()
        if idle and (choice < 0.35 or not (ringing or talking or held)):
            n = rnd.choice(idle)
            r = act("ring", "ring", line=n, caller=str(rnd.randint(5550000, 5559999)))
            if r.get("ok"):
                # Offered once the board shows it: a ring that never arrives is no call
                # (counted apart, by the SIP code that turned it away), and the loop would
                # only ring the idle line again.
                if rang(d, n, 5.0):
                    offered += 1
                else:
                    never_rang += 1
                    why = str(r["result"].get("code") or "no answer within 5 s")
                    never_why[why] = never_why.get(why, 0) + 1
                    if len(never_seen) < 20:
                        # What the board held on that line then, and how long after a kill.
                        try:
                            _, st2 = line_states(d)
                        except OSError:
                            st2 = {}
                        held = [c for c in (st2.get("telephony") or {}).get("calls", [])
                                if c["line"] == n]
                        never_seen.append({"line": n, "why": why, "after_kill": last_kill[1],
                                           "s_after_kill": round(time.time() - last_kill[0], 1),
                                           "book": held})
        elif ringing and choice < 0.5:
            n = rnd.choice(ringing)
            if rnd.random() < 0.3:
                act("cancel", "hangup", line=n)                     # caller gives up: CANCEL
            else:
                act("answer", "tap", key=f"line-{n}")
        elif talking and choice < 0.65:
            act("hold", "tap", key="p1-hold")
        elif held and choice < 0.75:
            act("resume", "tap", key=f"line-{rnd.choice(held)}")
        elif talking and choice < 0.82:
            act("transfer", "transfer", line=rnd.choice(talking), to="4155559999")
        elif talking and choice < 0.92:
            act("caller-bye", "hangup", line=rnd.choice(talking))  # BYE from the caller
        elif talking or held:
            act("release", "tap", key="p1-release")                # BYE from the board
        time.sleep(rnd.uniform(0.05, 0.4))

    # Settle: every caller still on a line hangs up (BYE, or CANCEL while ringing), and
    # the board is given up to 30 s to clear, then looked at.
    lines, st, tel = {}, {"lamps": {}}, {}
    try:
        lines, st = line_states(d)
        for n, ln in lines.items():
            if ln["state"] != "idle":
                d.ask("hangup", line=n)
        for key in ("p1-release", "p2-release"):
            d.ask("tap", key=key)
        deadline = time.time() + 30
        while time.time() < deadline:
            lines, st = line_states(d)
            if all(ln["state"] == "idle" for ln in lines.values()):
                break
            time.sleep(0.5)
        time.sleep(2)                 # the last call records are written as calls end
        lines, st = line_states(d)
        tel = st.get("telephony") or {}
    except OSError as e:
        stopped_early = stopped_early or f"the daemon did not answer at the end: {e}"
    ghosts = [n for n, ln in lines.items() if ln["state"] != "idle"]
    lit = {k: v for k, v in st["lamps"].items() if v["cadence"] != "dark"}
    records = []
    try:
        for line in (folder / "var" / "calls.jsonl").read_text().splitlines():
            body = line[9:] if len(line) > 9 and line[8] == " " else line
            try:
                records.append(json.loads(body))
            except ValueError:
                pass
    except OSError:
        pass
    d.clean_up()
    return {
        "stopped_early": stopped_early,
        "processes_left_after_daemon_kills": orphans,
        "minutes": minutes, "seed": seed, "folder": str(folder),
        "offered": offered, "rings_that_never_rang": never_rang,
        "never_rang_why": never_why, "never_rang_seen": never_seen, "recorded": len(records),
        "lost": max(0, offered - len(records)),
        "lost_on_killed_processes_at_most": killed_calls,
        "ghost_calls": ghosts, "lamps_not_dark": lit,
        "free": tel.get("free"), "capacity": tel.get("capacity"), "in_use": tel.get("in_use"),
        "calls_left": tel.get("calls") or [],
        "faults": st.get("faults"), "kills": kills, "daemon_starts": d.starts,
        "worker_restarts": tel.get("worker_restarts"), "actions": actions,
        "errors": errors[:10],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--kill-every-s", type=float, default=90.0,
                    help="a process is killed about this often (default 90 s)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    if args.minutes <= 0:
        ap.error("--minutes must be more than 0")
    r = soak(args.minutes, args.seed, args.kill_every_s)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"soak: {r['minutes']:g} min, seed {r['seed']}, data in {r['folder']}")
    print(f"  calls offered {r['offered']}, recorded {r['recorded']}, lost {r['lost']} "
          f"(at most {r['lost_on_killed_processes_at_most']} were on killed processes)")
    print(f"  rings accepted that never reached a line: {r['rings_that_never_rang']} "
          f"{r['never_rang_why'] or ''}")
    print(f"  kills: {r['kills']}; daemon starts {r['daemon_starts']}, "
          f"worker restarts {r['worker_restarts']}")
    print(f"  ghost calls: {len(r['ghost_calls'])} {r['ghost_calls'] or ''}")
    print(f"  lamps not dark: {sorted(r['lamps_not_dark']) or 'none'}")
    print(f"  free {r['free']} of {r['capacity']} (in use {r['in_use']}); faults: "
          f"{r['faults'] or 'none'}")
    for x in r["never_rang_seen"]:
        print(f"  a ring that never reached a line: {x}")
    for c in r["calls_left"]:
        print(f"  still in the board's book: {c}")
    print(f"  actions: {r['actions']}")
    if r["processes_left_after_daemon_kills"]:
        print(f"  processes still running after each daemon kill: "
              f"{r['processes_left_after_daemon_kills']}")
    if r["stopped_early"]:
        print(f"  stopped early: {r['stopped_early']}")
    if r["errors"]:
        print("  some refused actions (expected when a line changed meanwhile):")
        for e in r["errors"][:5]:
            print(f"    {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
