"""Durable files: the one way a file is replaced whole, and made to stay after a power cut.

``atomic_write`` writes a new file beside the old one, fsyncs it, renames it
over the old one and fsyncs the directory: after a crash at any point there
is the old file or the new one, whole, never a mix. The schedule, call
retention's counts, call records' rewrite and the printer's mark all use it;
the time clock's journals append (``firmware.records.journal``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def fsync_dir(path) -> None:
    """Make a file's creation, rename or removal in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: new file, fsync, rename, fsync the directory."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        tmp.unlink(missing_ok=True)     # a full disk keeps the old file, and no half a new one
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_json(path, obj, mode: int = 0o600) -> None:
    """``atomic_write`` of ``obj`` as indented JSON with sorted keys (readable, diffable)."""
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True).encode(), mode)
