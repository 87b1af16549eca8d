"""Keeps Kamailio's process tree together: it goes when the daemon goes, all of it.

Kamailio forks its own workers; if its main process is killed they are
orphaned and go on serving (holding the SIP port), and if the daemon is
killed nothing would stop Kamailio at all. So the daemon does not start
Kamailio directly but this small guard, which

- is started by ``children.spawn`` in a session of its own (so Kamailio and
  all its forks are in the guard's process group) and is sent ``SIGTERM`` by
  the kernel when the daemon dies (``PR_SET_PDEATHSIG``);
- writes its pid (= the group's id) to ``--pidfile``, so a daemon restarted
  on the same data dir finds a stale front and ends it;
- on ``SIGTERM`` asks Kamailio to stop, waits ``GRACE_S``, then kills the
  whole group; when Kamailio's main process exits by itself (killed,
  crashed), kills what is left of the group at once, so no orphan keeps the
  port, and exits with Kamailio's status for the daemon to see.

Run: ``python -m firmware.telephony.frontguard --pidfile PATH -- kamailio ARGS...``
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time

from firmware import logs

GRACE_S = 3.0

log = logging.getLogger("switchboard.frontguard")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    logs.setup("frontguard")
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no command to guard")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    with open(a.pidfile, "w") as f:
        f.write(f"{os.getpgrp()}\n")
    child = subprocess.Popen(cmd)          # same process group as the guard
    code = None
    while code is None:
        if stop:
            child.terminate()
            deadline = time.monotonic() + GRACE_S
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            code = child.poll()
            break
        try:
            code = child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.unlink(a.pidfile)
    except OSError:
        pass
    log.warning("kamailio ended (status %s); ending its process group", code)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(os.getpgrp(), signal.SIGKILL)   # Kamailio's forks, and the guard itself
    return 1


if __name__ == "__main__":
    sys.exit(main())
