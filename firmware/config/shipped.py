"""Files shipped with the project (board files, plans, hardware tables): where they are.

From a clone, the tree's own folders; once installed, the copies setup.cfg puts
in ``<prefix>/share/switchboard/`` (``data_files``). The one place that knows both.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The source tree's root (the folder holding boards/, plans/, hardware/).
TREE = Path(__file__).resolve().parents[2]
#: Where an installed package's shipped files are.
INSTALLED = Path(sys.prefix) / "share" / "switchboard"


def shipped_dir(name: str) -> Path:
    """A shipped folder (``boards``, ``plans``, ``hardware``): the tree's, else the installed one."""
    here = TREE / name
    return here if here.is_dir() else INSTALLED / name


def shipped(relpath: str) -> Path | None:
    """A shipped file: the tree's copy, else the installed one; None when neither exists."""
    for base in (TREE, INSTALLED):
        if (base / relpath).exists():
            return base / relpath
    return None
