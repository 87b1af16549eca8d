"""Run a command as systemd would run a Type=notify service, and check what it says.

    notify_probe.py --uid U --gid G [--groups G1,G2] [--conf FILE] [--prefix DIR]
                    [--timeout S] -- COMMAND...

Binds a notify socket (in the abstract namespace, as systemd may give one),
starts COMMAND with ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` (2 s) set, as user
U, group G and the supplementary groups, with the environment of the conf file
(``KEY=value`` lines, as systemd's EnvironmentFile= reads them) and of the unit's
``Environment=``; waits for ``READY=1``, for watchdog pets, then sends SIGTERM and
waits for ``STOPPING=1`` and a clean exit. ``--prefix DIR``: the conf file's
absolute paths are read under DIR (an install made with install-pi.sh --root).
Used by scripts/check-install.sh --run. Exit status 0 when all went as it should.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time


def read_conf(path: str) -> dict:
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            words = shlex.split(value) if value else [""]
            env[key.strip()] = " ".join(words)
    return env


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uid", type=int, required=True)
    ap.add_argument("--gid", type=int, required=True)
    ap.add_argument("--groups", default="")
    ap.add_argument("--conf")
    ap.add_argument("--prefix", default="")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("command", nargs="+")
    a = ap.parse_args()

    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
           "HOME": "/var/lib/switchboard", "SWITCHBOARD_DATA": "/var/lib/switchboard"}
    if a.conf:
        conf = read_conf(a.prefix + a.conf)
        for key, value in conf.items():
            if value.startswith("/") and a.prefix and os.path.exists(a.prefix + value):
                value = a.prefix + value
            if key == "SWITCHBOARD_PRINTER" and value and not os.path.exists(value):
                print(f"notify_probe: {value} is not here: running without the printer")
                value = ""
            env[key] = value
    name = f"@switchboard-probe-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    sock.settimeout(0.5)
    env.update(NOTIFY_SOCKET=name, WATCHDOG_USEC="2000000")
    groups = [int(g) for g in a.groups.split(",") if g]

    def drop():
        os.setgroups(groups)
        os.setgid(a.gid)
        os.setuid(a.uid)

    cmd = a.command + shlex.split(env.get("SWITCHBOARD_OPTS", ""))
    proc = subprocess.Popen(cmd, env=env, preexec_fn=drop, cwd="/")
    got: list[tuple[float, str]] = []

    def receive(until, stop_when):
        while time.monotonic() < until and proc.poll() is None:
            try:
                msg = sock.recv(4096).decode()
            except socket.timeout:
                continue
            got.append((time.monotonic(), msg))
            if stop_when(msg):
                return True
        return False

    ok = True
    t0 = time.monotonic()
    try:
        if not receive(t0 + a.timeout, lambda m: "READY=1" in m.split("\n")):
            print(f"notify_probe: no READY=1 within {a.timeout:.0f} s "
                  f"(exit status {proc.poll()}); got {[m for _, m in got]}")
            return 1
        print(f"notify_probe: READY=1 after {time.monotonic() - t0:.1f} s: "
              + next(m for _, m in got if "READY=1" in m).replace("\n", " "))
        ready_at = time.monotonic()
        receive(ready_at + 3.0, lambda m: False)
        pets = [t for t, m in got if t >= ready_at and "WATCHDOG=1" in m.split("\n")]
        if len(pets) < 2:
            print(f"notify_probe: {len(pets)} watchdog pets in 3 s after READY; expected 2 or more")
            ok = False
        else:
            print(f"notify_probe: {len(pets)} watchdog pets in 3 s (WATCHDOG_USEC 2 s)")
        proc.send_signal(signal.SIGTERM)
        if not receive(time.monotonic() + 30, lambda m: "STOPPING=1" in m.split("\n")):
            print("notify_probe: no STOPPING=1 after SIGTERM")
            ok = False
        rc = proc.wait(60)
        if rc != 0:
            print(f"notify_probe: exit status {rc} after SIGTERM; expected 0")
            ok = False
        else:
            print("notify_probe: STOPPING=1, then exit status 0")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
