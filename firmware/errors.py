"""The switchboard's exceptions: one root, each also the matching builtin."""


class SwitchboardError(Exception):
    """Root of every error the switchboard raises on purpose."""


def _short(value, limit=80) -> str:
    """A value as written in the file, cut short: an error stays one line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class ConfigError(SwitchboardError, ValueError):
    """A board file or site file is wrong.

    The message names the file, the key path, the bad value and what was
    expected, so the daemon can print it and exit instead of a traceback.
    """

    def __init__(self, path, keypath, value=None, expected=None, *, message=None):
        self.path = str(path)
        self.keypath = keypath
        self.value = value
        self.expected = expected
        if message is None:
            where = f"{self.path}: {keypath}" if keypath else self.path
            shown = f" = {_short(value)}" if value is not None else ""
            message = f"{where}{shown}: expected {expected}"
        # One line whatever the file holds: control characters are shown escaped.
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


class ControlError(SwitchboardError, RuntimeError):
    """A request over the control socket could not be carried out."""
