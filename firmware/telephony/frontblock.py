"""Blocked callers refused at the front: the block list as rules in Kamailio's memory.

``switchboard-customers block`` keeps ``<data>/blocked.json``; the time clock
turns its ``block`` entries into (digits pattern, customer's line) pairs. Here
each becomes a POSIX regular expression over ``<caller's national digits>@<called
number>`` (a site-wide entry matches any called number, a customer's only the
numbers that reach that customer's line) and is put in the front's ``blocked``
htable over its JSON-RPC socket (``jsonrpcs``, a Unix datagram socket in the
front's run directory). The list changes while calls go on: only the rules
that differ are set or deleted, Kamailio is never restarted, and a front that
was restarted is given the whole list again.

The front's ``route[BLOCKED]`` (``front.py``) tries every rule on each new
call; a match is refused with ``486 Busy Here`` (or handed to a worker with
``X-Switchboard-Blocked``, which plays the announcement and hangs up) and
counted in the ``refused`` htable, which the telephony reads back for status.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time

from firmware.errors import SwitchboardError

log = logging.getLogger(__name__)

RULES = "blocked"        # htable: regex -> "pattern|customer"
COUNTS = "refused"       # htable: count, last
HEADER = "X-Switchboard-Blocked"


class RpcError(SwitchboardError, OSError):
    """The front's JSON-RPC socket did not answer, or answered an error."""


def _number_re(number: str) -> str:
    return "".join(c if c.isdigit() or c == "#" else f"[{c}]" for c in number)


def rule_regex(digits_pattern: str, called=None) -> str:
    """``415555*`` for the called numbers ``called`` (None: any) -> a POSIX ERE over
    ``<caller digits>@<called number>``."""
    body = "".join("[0-9]*" if c == "*" else "[0-9]" if c == "?" else c for c in digits_pattern)
    if called is None:
        return f"^{body}@"
    return f"^{body}@({'|'.join(_number_re(n) for n in sorted(called))})$"


def front_rules(entries, numbers: dict) -> dict[str, str]:
    """``entries``: (digits pattern, line or None, label) from the time clock;
    ``numbers``: the site's called number -> line. Returns {regex: label}."""
    out = {}
    for pattern, line, label in entries:
        called = None
        if line is not None:
            called = {n for n, ln in numbers.items() if ln == line} | {line}
        out[rule_regex(pattern, called)] = label
    return out


class FrontRpc:
    """One JSON-RPC request at a time over Kamailio's Unix datagram socket."""

    _ids = itertools.count(1)

    def __init__(self, path):
        self.path = str(path)
        self._lock = threading.Lock()

    def call(self, method: str, *params, timeout: float = 2.0):
        me = f"{self.path}.c{os.getpid()}-{threading.get_ident() % 100000}"
        n = next(self._ids)
        with self._lock, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                os.unlink(me)
            except FileNotFoundError:
                pass
            try:
                s.bind(me)
                s.settimeout(timeout)
                s.sendto(json.dumps({"jsonrpc": "2.0", "method": method,
                                     "params": [str(p) for p in params], "id": n}).encode(),
                         self.path)
                while True:
                    reply = json.loads(s.recv(65536))
                    if reply.get("id") == n:
                        break
            except (OSError, ValueError) as e:
                raise RpcError(f"the front's control socket {self.path}: {method}: {e}") from None
            finally:
                try:
                    os.unlink(me)
                except OSError:
                    pass
        if "error" in reply:
            raise RpcError(f"the front's control socket: {method}: "
                           f"{reply['error'].get('message')}")
        return reply.get("result")


class FrontBlocks:
    """What the front has been given, and what it has refused (across its restarts)."""

    def __init__(self, rpc: FrontRpc):
        self.rpc = rpc
        self.pushed: dict[str, str] | None = None   # None: the front has nothing yet
        self.base = 0              # refusals counted by fronts that were restarted since
        self.count = 0
        self.last: str | None = None
        self.last_at = 0.0
        self.error: str | None = None

    def restarted(self) -> None:
        """A new Kamailio: its htables are empty."""
        self.base += self.count
        self.count = 0
        self.pushed = None

    def sync(self, rules: dict[str, str]) -> bool:
        """Set what is new or changed, then delete what went (a block that stays is
        never missing meanwhile). Returns whether anything was sent."""
        have = self.pushed if self.pushed is not None else {}
        changed = {k: v for k, v in rules.items() if have.get(k) != v}
        gone = [k for k in have if k not in rules]
        if self.pushed is None:
            self.rpc.call("htable.flush", RULES)
        for k, v in changed.items():
            self.rpc.call("htable.sets", RULES, k, v)
        for k in gone:
            self.rpc.call("htable.delete", RULES, k)
        self.pushed = dict(rules)
        if changed or gone:
            log.info("front: %d blocked-caller rule(s) (%d set, %d removed)", len(rules),
                     len(changed), len(gone))
        return bool(changed or gone)

    def read_counts(self) -> None:
        try:
            got = self.rpc.call("htable.get", COUNTS, "count")
        except RpcError as e:
            if "doesn't exist" in str(e):
                return           # nobody refused yet
            raise
        count = int(got["item"]["value"])
        if count != self.count:
            self.last_at = time.time()
        self.count = count
        last = self.rpc.call("htable.get", COUNTS, "last")
        self.last = last["item"]["value"]

    def status(self) -> dict:
        last = None
        if self.last:
            who, _, label = self.last.partition(" ")
            caller, _, called = who.partition("@")
            pattern, _, customer = label.partition("|")
            last = {"caller": caller, "called": called, "pattern": pattern,
                    "customer": None if customer in ("", "*") else customer}
        return {"rules": len(self.pushed or {}), "loaded": self.pushed is not None,
                "count": self.base + self.count, "last": last, "last_at": self.last_at,
                "error": self.error}
