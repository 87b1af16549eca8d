"""What the reporting host tools share: finding shipped data files, and
a clear error (never a traceback) in text or JSON."""

from __future__ import annotations

import json
import logging

from firmware import logs
from firmware.errors import SwitchboardError

log = logging.getLogger("switchboard.tools")


def run(prog: str, main_body, args, errors=(SwitchboardError,)) -> int:
    """Run a tool's body with logging set up (``args.verbose``); an error of
    ``errors`` becomes one line (on stderr, or as JSON with ``args.json``) and exit 2."""
    logs.setup(prog, args.verbose)
    try:
        return main_body() or 0
    except BrokenPipeError:         # the reader (head, less) went away: nothing to say
        return 1
    except errors as e:
        if args.json:
            print(json.dumps({"ok": False, "error": str(e)}))
        else:
            log.error("%s", e)
        log.debug("details", exc_info=True)
        return 2


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
