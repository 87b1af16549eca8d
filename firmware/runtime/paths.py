"""Where the daemon keeps its control socket."""

import os
from pathlib import Path


def control_socket() -> Path:
    """The control socket's path, the same for the daemon and the diagnostic tool.

    ``$SWITCHBOARD_SOCKET`` wins; a system install uses /run/switchboard (systemd's
    RuntimeDirectory=switchboard); otherwise a per-user directory.
    """
    env = os.environ.get("SWITCHBOARD_SOCKET")
    if env:
        return Path(env)
    run = Path("/run/switchboard")
    if run.is_dir() and os.access(run, os.W_OK | os.X_OK):
        return run / "control.sock"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/switchboard-{os.getuid()}"
    return Path(base) / "switchboard" / "control.sock"
