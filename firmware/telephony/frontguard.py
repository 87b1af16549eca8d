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
  crashed), kills what is left of the group at once, itself included, so no
  orphan keeps the port (Kamailio's status is in the last line it logs).

Run: ``python -S path/to/frontguard.py --pidfile PATH -- kamailio ARGS...``

It is a process of its own for as long as the front runs, so it imports nothing
beyond ``os``, ``signal``, ``sys`` and ``time`` and runs without ``site``
(``-S``): 4.5 MB of the machine by Pss instead of 12.5 (README, Benchmarks).
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_S = 3.0
USAGE = "usage: frontguard.py --pidfile PATH -- COMMAND [ARGS...]"


def say(text: str) -> None:
    """One diagnostic line, as the project's tools write them (``prog: message``)."""
    sys.stderr.write(f"frontguard: {text}\n")
    sys.stderr.flush()


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] != "--pidfile":
        say(USAGE)
        return 2
    pidfile, cmd = argv[1], argv[2:]
    cmd = cmd[1:] if cmd[:1] == ["--"] else cmd
    if not cmd:
        say(f"no command to guard; {USAGE}")
        return 2
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    with open(pidfile, "w") as f:
        f.write(f"{os.getpgrp()}\n")
    pid = os.fork()                        # same process group as the guard
    if pid == 0:
        try:
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores them: Kamailio must not
                signal.signal(sig, signal.SIG_DFL)
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    code = None
    while code is None:
        if stop:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_S
            while code is None and time.monotonic() < deadline:
                code = _reaped(pid)
                time.sleep(0.05)
            break
        code = _reaped(pid)
        if code is None:
            time.sleep(0.2)
    try:
        os.unlink(pidfile)
    except OSError:
        pass
    say(f"kamailio ended (status {code}); ending its process group")
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(os.getpgrp(), signal.SIGKILL)   # Kamailio's forks, and the guard itself
    return 1


def _reaped(pid: int):
    """The child's exit status once it has ended (negative: the signal), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1
    if not done:
        return None
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
