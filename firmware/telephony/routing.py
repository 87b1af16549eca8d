"""Where an outgoing call goes: one rule for office lines, placed calls and transfers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


class NoRoute(Exception):
    """No trunk in the site file can carry this call (the message says why)."""


@dataclass(frozen=True)
class Route:
    uri: str
    trunk: str | None        # the registering trunk's account to send it from, if any
    via_registrar: bool      # True: only the worker holding the registration can send it


def outbound(site, number: str, line: str | None = None) -> Route:
    """The URI for ``number`` over the trunk ``line`` goes out on (a modem bound to that
    office line, else the first outbound trunk): its ``dial`` template, else its registrar
    (a registering trunk) or its first peer (a gateway)."""
    if number.startswith(("sip:", "sips:")):
        return Route(number, None, False)
    trunk = site.outbound_trunk(line)
    if trunk is None:
        raise NoRoute("no outbound trunk in the site file")
    register = trunk.mode == "register"
    if trunk.dial:
        uri = trunk.dial.replace("{number}", number)
    elif register:
        host = trunk.registrar.split(":", 1)[1]
        uri = f"sip:{number}@{host};transport={trunk.transport}"
    else:
        uri = f"sip:{number}@{trunk.peers[0]}"
    return Route(uri, trunk.name if register else None, register)


def transfer(site, number: str) -> str:
    """A transfer's far end: the outbound trunk's ``dial`` template (the board stays in the
    media path and calls out itself)."""
    # Not a modem: it has one line, and the caller is already on it.
    trunk = next((t for t in site.trunks if t.outbound and t.dial and t.mode != "modem"), None)
    if trunk is None:
        raise NoRoute("no outbound trunk with a dial URI in the site file")
    return trunk.dial.replace("{number}", number)


def with_front(site, front: str):
    """The site with ``{front}`` in trunks' dial templates made the front's ``host:port``
    (a modem's calls out go through the front to its gateway)."""
    trunks = tuple(dataclasses.replace(t, dial=t.dial.replace("{front}", front))
                   if t.dial and "{front}" in t.dial else t for t in site.trunks)
    return dataclasses.replace(site, trunks=trunks)
