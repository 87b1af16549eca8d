"""The checks board files and site files share: every message names the file and key path."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from firmware.errors import ConfigError


MAX_BYTES = 1024 * 1024   # a board file of 100 lines is ~30 KB; a site file ~2 KB


def read_toml(path: Path, what: str) -> tuple[str, dict]:
    """The text and data of a TOML file, or a ConfigError naming the file.

    Only a regular file of at most ``MAX_BYTES`` is read (a FIFO, /dev/zero or a
    50 MB file is refused at once, never waited on), it must be UTF-8, and its
    nesting may not exhaust the parser."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise ConfigError(path, "", None, None,
                          message=f"{path}: cannot read {what}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(path, "", None, None, message=(
                f"{path}: cannot read {what}: not a regular file "
                f"({_kind(st.st_mode)}); expected a TOML file"))
        if st.st_size > MAX_BYTES:
            raise ConfigError(path, "", None, None, message=(
                f"{path}: cannot read {what}: {st.st_size} bytes; expected a TOML file "
                f"of at most {MAX_BYTES} bytes"))
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ConfigError(path, "", None, None,
                          message=f"{path}: cannot read {what}: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise ConfigError(path, "", None, None, message=(
            f"{path}: cannot read {what}: more than {MAX_BYTES} bytes; expected a TOML file"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", None, None, message=(
            f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            f"expected a TOML file in UTF-8")) from None
    if "\x00" in text:
        raise ConfigError(path, "", None, None, message=(
            f"{path}: holds a NUL byte at offset {text.index(chr(0))}; "
            "expected a TOML text file"))
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "", None, None,
                          message=f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(path, "", None, None, message=(
            f"{path}: not valid TOML: nested too deeply; expected tables and arrays "
            "a few levels deep")) from None


def _kind(mode) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


class TableChecker:
    """Base of a strict TOML loader: unknown keys refused, missing ones named."""

    def __init__(self, path):
        self.path = path

    def fail(self, keypath, value, expected):
        raise ConfigError(self.path, keypath, value, expected)

    def table(self, data, keypath, allowed, required=()):
        if not isinstance(data, dict):
            self.fail(keypath, data, "a table")
        for k in data:
            if k not in allowed:
                where = f"{keypath}.{k}" if keypath else k
                raise ConfigError(self.path, where, None, None, message=(
                    f"{self.path}: {where}: unknown key; expected one of: " + ", ".join(allowed)))
        for k in required:
            if k not in data:
                where = f"{keypath}.{k}" if keypath else k
                raise ConfigError(self.path, where, None, None,
                                  message=f"{self.path}: {where}: missing; this key is required")
        return data
