"""What the reporting host tools share: finding shipped data files, and
a clear error (never a traceback) in text or JSON."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from firmware import logs
from firmware.errors import SwitchboardError

log = logging.getLogger("switchboard.tools")


def shipped(relpath: str) -> Path | None:
    """A data file shipped with the project: this tree's copy, else the installed one."""
    here = Path(__file__).resolve().parent.parent.parent / relpath
    if here.exists():
        return here
    inst = Path(sys.prefix) / "share" / "switchboard" / relpath
    return inst if inst.exists() else None


def run(prog: str, main_body, args) -> int:
    """Run a tool's body with logging set up (``args.verbose``); a SwitchboardError
    becomes one line (on stderr, or as JSON with ``args.json``) and exit 2."""
    logs.setup(prog, args.verbose)
    try:
        return main_body() or 0
    except SwitchboardError as e:
        if args.json:
            print(json.dumps({"ok": False, "error": str(e)}))
        else:
            log.error("%s", e)
        log.debug("details", exc_info=True)
        return 2


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
