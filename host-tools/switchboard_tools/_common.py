"""What the reporting host tools share: finding shipped data files, and
printing a clear error (never a traceback) in text or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from firmware.errors import SwitchboardError


def shipped(relpath: str) -> Path | None:
    """A data file shipped with the project: this tree's copy, else the installed one."""
    here = Path(__file__).resolve().parent.parent.parent / relpath
    if here.exists():
        return here
    inst = Path(sys.prefix) / "share" / "switchboard" / relpath
    return inst if inst.exists() else None


def run(main_body, as_json: bool) -> int:
    """Run a tool's body; a SwitchboardError becomes one line on stderr and exit 2."""
    try:
        return main_body() or 0
    except SwitchboardError as e:
        if as_json:
            print(json.dumps({"ok": False, "error": str(e)}))
        else:
            print(f"error: {e}", file=sys.stderr)
        return 2


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
