"""The control socket: a Unix socket speaking JSON lines.

A request is one line, ``{"cmd": "press", "args": {"key": "line-201"}}``; the
answer is ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "..."}``.
Following commands (``events``, ``key-test``, ``lamp-test`` with ``follow``)
answer with ``{"event": {...}}`` lines until the client hangs up or the
``seconds``/``count`` limit is reached, then ``{"ok": true, "done": true}``.

The socket is mode 0660 in a directory only its owner can write, and each
connection's peer credentials are checked: the daemon's own user, root, or a
member of the daemon's group.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import struct
from pathlib import Path

from firmware.errors import SwitchboardError

log = logging.getLogger("switchboard.control")
MAX_LINE = 64 * 1024


def _peer_allowed(sock) -> bool:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, gid = struct.unpack("3i", creds)
    return uid in (0, os.getuid()) or gid == os.getgid() or os.getgid() in _groups_of(uid)


def _groups_of(uid) -> set:
    try:
        import grp
        import pwd
        name = pwd.getpwuid(uid).pw_name
        return {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
    except (KeyError, ImportError):
        return set()


def _prepare_dir(path: Path):
    d = path.parent
    if not d.exists():
        d.mkdir(mode=0o750, parents=True)
    st = d.stat()
    if st.st_uid != os.getuid() and st.st_uid != 0:
        raise SwitchboardError(f"control socket directory {d} belongs to uid {st.st_uid}, "
                               "not to the daemon's user: refusing to use it")
    if st.st_mode & stat.S_IWOTH:
        raise SwitchboardError(f"control socket directory {d} is writable by anyone: "
                               "refusing to use it")


def remove_socket(path: Path):
    try:
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    except FileNotFoundError:
        pass


async def serve(daemon, path: Path) -> asyncio.AbstractServer:
    path = Path(path)
    _prepare_dir(path)
    if path.exists():
        # A socket left by a daemon that died: take it over, unless one still answers.
        try:
            r, w = await asyncio.open_unix_connection(str(path))
            w.close()
            raise SwitchboardError(f"another switchboard daemon is already serving {path}")
        except (ConnectionRefusedError, FileNotFoundError):
            remove_socket(path)
    old = os.umask(0o117)
    try:
        server = await asyncio.start_unix_server(
            lambda r, w: _client(daemon, r, w), path=str(path), limit=MAX_LINE)
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    return server


def _short(v, limit=120) -> str:
    text = v if isinstance(v, str) else repr(v)
    return text if len(text) <= limit else text[:limit - 3] + "..."


async def _send(writer, obj):
    writer.write((json.dumps(obj, default=str) + "\n").encode())
    await writer.drain()


async def _client(daemon, reader, writer):
    sock = writer.get_extra_info("socket")
    try:
        if not _peer_allowed(sock):
            await _send(writer, {"ok": False, "error": "not allowed: the control socket "
                                 "answers the daemon's user and group only"})
            return
        while True:
            try:
                line = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                await _send(writer, {"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
                return
            if not line:
                return
            try:
                req = json.loads(line)
                if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                    raise ValueError
                args = req.get("args") or {}
                if not isinstance(args, dict):
                    raise ValueError
            except (ValueError, RecursionError):   # RecursionError: JSON nested too deep
                await _send(writer, {"ok": False, "error": 'expected one JSON object a line: '
                                     '{"cmd": "status", "args": {}}'})
                continue
            name = req["cmd"]
            try:
                cmd = daemon.commands.find(name)
                if cmd.stream is not None and cmd.streams(args):
                    args = daemon.commands.check(cmd, args)
                    await cmd.stream(args, lambda obj: _send(writer, obj))
                else:
                    result = await daemon.request(name, args)
                    await _send(writer, {"ok": True, "result": result})
            except SwitchboardError as e:    # ControlError, or a part's own (a bad schedule)
                await _send(writer, {"ok": False, "error": str(e)})
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception as e:   # a bug: the client still gets an answer, the daemon goes on
                log.error("control: %s %s: %s: %s", _short(name), _short(args),
                          type(e).__name__, e, exc_info=log.isEnabledFor(logging.DEBUG))
                await _send(writer, {"ok": False, "error": (
                    f"{_short(name)}: could not be carried out ({type(e).__name__}: "
                    f"{_short(str(e))}); the daemon carries on")})
    except (ConnectionError, BrokenPipeError):
        pass
    finally:
        writer.close()


async def _stream(daemon, send, seconds, count, want=lambda ev: True, stop=lambda ev: False):
    q = daemon.subscribe()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds if seconds else None
    sent = 0
    try:
        while count is None or sent < count:
            timeout = None if deadline is None else deadline - loop.time()
            if timeout is not None and timeout <= 0:
                break
            try:
                ev = await asyncio.wait_for(q.get(), timeout)
            except asyncio.TimeoutError:
                break
            if want(ev):
                await send({"event": ev})
                sent += 1
            if stop(ev):
                break
    finally:
        daemon.unsubscribe(q)
    await send({"ok": True, "done": True, "count": sent})


# -- the following commands' streams (registered with their commands by the daemon) ----
async def events_stream(daemon, args, send):
    """``events``: every event on the board until ``seconds`` or ``count``."""
    await send({"ok": True, "following": daemon.board.name})
    await _stream(daemon, send, args.get("seconds"), args.get("count"))


async def key_test_stream(daemon, args, send):
    """``key-test``: report each key as a technician presses it; the keys do nothing else meanwhile."""
    await daemon.request("key-test", {"on": True})
    try:
        await send({"ok": True, "key_test": True, "keys": list(daemon.board.keys)})
        await _stream(daemon, send, args.get("seconds"), args.get("count"),
                      want=lambda ev: ev["type"] == "key")
    finally:
        await daemon.request("key-test", {"on": False})


async def lamp_test_stream(daemon, args, send):
    """``lamp-test`` with ``follow``: each lamp as it is lit."""
    result = await daemon.request("lamp-test", args)
    await send({"ok": True, "result": result})
    order = result["lamps"]
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, lamp in enumerate(order):
        await asyncio.sleep(max(0.0, start + i * result["step_s"] - loop.time()))
        await send({"event": {"type": "lamp-test", "lamp": lamp, "index": i + 1, "of": len(order)}})
    await asyncio.sleep(result["step_s"])
    await send({"ok": True, "done": True, "count": len(order)})
