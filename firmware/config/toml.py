"""The checks board files and site files share: every message names the file and key path."""

from __future__ import annotations

import tomllib
from pathlib import Path

from firmware.errors import ConfigError


def read_toml(path: Path, what: str) -> tuple[str, dict]:
    """The text and data of a TOML file, or a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(path, "", None, None,
                          message=f"{path}: cannot read {what}: {e.strerror}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "", None, None,
                          message=f"{path}: not valid TOML: {e}") from None


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
