"""The checks board files and site files share: every message names the file and key path."""

from __future__ import annotations

from .errors import ConfigError


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
