"""The board view: a page served by the daemon that shows the board live.

``start_web(daemon)`` serves ``firmware/web/`` (the page, its script and
style) and a small API over the daemon:

    GET  /api/status    the daemon's snapshot, as JSON
    GET  /api/events    Server-Sent Events: a "snapshot" first, then every event
    GET  /api/clock     the daemon's clock, for the page's interrupter
    POST /api/press     {"key": "line-201"}      a key goes down
    POST /api/release   {"key": "line-201"}      ... and comes back up
    POST /api/ring      {"line": "201"}          simulated board: a call comes in
    POST /api/hangup    {"line": "201"}          simulated board: the caller hangs up

The operator's console (the time clock's commands, see firmware/timeclock/adapter.py):

    POST /api/draft       {"position": 1, "id": "201/c-7", "fields": {...}, "urgent": false}
                                                 keep a draft (id: the call it is for; default
                                                 the one on the pad)
    POST /api/draft-clear {"position": 1, "id": ...}  throw a draft away
    POST /api/draft-open  {"position": 1, "id": ...}  put an unfinished draft on the pad (no
                                                 id: the draft of the line the position is on)
    POST /api/stamp       {"position": 1, "id": ...}  stamp a draft (as the stamp key does)
    GET  /api/rack                               every customer's waiting messages
    GET  /api/customers                          every customer's id, name and line
    POST /api/check-in    {"customer": "..."}    open a customer's messages (or line, caller)
    POST /api/read-back   {"slip": 12, "position": 1}  stamp one read back
    GET  /api/deadbox?customer=&since=&until=&search=&slip=   past slips
    GET  /api/history?customer=&caller=          the card's history
    GET  /api/recording?call=                    a call's recorded conversation (WAV)

A change to a draft made through the view is told to every open view as a
``{"type": "pad", "position": 1}`` event, so another screen, or the page that
was reloaded while its last keystrokes were on their way, shows it at once.

Who may talk to it: it listens on 127.0.0.1 unless told otherwise. Every
request must carry a Host header naming this machine (a loopback name, an IP
address, the machine's own name, or one of ``allowed_hosts``), so a page on
another site whose name was rebound to 127.0.0.1 is refused. Every POST must
carry the ``X-Switchboard-Request`` header, which a cross-site form cannot send
and a cross-site script cannot send without a CORS preflight this server never
grants. Bound beyond loopback, every request for the page or the API must also
carry the access token (``?token=`` or the ``X-Switchboard-Token`` header);
``start_web`` returns the address to open, token included, for the daemon to print.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import secrets
import socket
from pathlib import Path

from aiohttp import web

from firmware.errors import ControlError, SwitchboardError

WEB_DIR = Path(__file__).resolve().parent / "static"
REQUEST_HEADER = "X-Switchboard-Request"
TOKEN_HEADER = "X-Switchboard-Token"
KEEPALIVE_S = 15.0
LAMP_TEST_POLL_S = 0.2
MAX_EVENT_STREAMS = 32    # open views (event streams) at once: a kiosk and a few browsers

_ASSETS = {
    "/": ("index.html", "text/html"),
    "/index.html": ("index.html", "text/html"),
    "/board.js": ("board.js", "text/javascript"),
    "/board.css": ("board.css", "text/css"),
    "/figures": ("figures.html", "text/html"),
    "/figures.js": ("figures.js", "text/javascript"),
    "/figures.css": ("figures.css", "text/css"),
    "/console": ("console.html", "text/html"),
    "/console.js": ("console.js", "text/javascript"),
    "/console.css": ("console.css", "text/css"),
}
# The page is plain files from this server, nothing else: no inline script,
# no other origin, never inside someone else's frame.
_SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src 'self' data:; media-src 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The name part of a Host header: ``[::1]:8557`` -> ``::1``, ``pi:80`` -> ``pi``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class WebView(web.AppRunner):
    """The view's runner: an aiohttp ``AppRunner`` that also knows its own address."""

    host: str = "127.0.0.1"
    token: str | None = None

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def url(self) -> str:
        """The address to open, with the token when one is needed."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        url = f"http://{host}:{self.port}/"
        return url + f"?token={self.token}" if self.token else url


class _Guard:
    """Decides who may talk to the view (see the module docstring)."""

    def __init__(self, host: str, token: str | None, allowed_hosts=()):
        self.token = token
        names = {"localhost", host.lower()}
        hostname = socket.gethostname().lower()
        names |= {hostname, hostname + ".local"}   # not getfqdn(): it may wait on DNS
        names |= {h.lower() for h in allowed_hosts}
        self.names = names

    def host_ok(self, header: str | None) -> bool:
        if not header:
            return False
        name = _host_name(header)
        if name in self.names:
            return True
        try:
            ipaddress.ip_address(name)   # a literal address cannot be rebound
            return True
        except ValueError:
            return False

    def token_ok(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        given = request.headers.get(TOKEN_HEADER) or request.query.get("token") or ""
        return hmac.compare_digest(given.encode(), self.token.encode())


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=_SECURITY_HEADERS)


async def start_web(daemon, host: str = "127.0.0.1", port: int = 8557,
                    token: str | None = None, allowed_hosts=()) -> tuple[WebView, str]:
    """Serve the board view for ``daemon`` on ``host:port``.

    Returns the started runner (an aiohttp ``AppRunner``) and the address to
    print. ``port=0`` picks a free port (``runner.port``). Bound beyond
    loopback without a token, a random one is made and the address carries it.
    ``await runner.cleanup()`` stops it, closing open event streams.
    """
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(18)
    guard = _Guard(host, token, allowed_hosts)
    streams: set[asyncio.Task] = set()
    hub = _EventHub(daemon)

    @web.middleware
    async def check_caller(request: web.Request, handler):
        if not guard.host_ok(request.headers.get("Host")):
            return _error(403, "this board view answers only to this machine's own name "
                               "(Host header refused)")
        asset = request.path in ("/board.js", "/board.css", "/figures.js", "/figures.css",
                                 "/console.js", "/console.css")
        if not asset and not guard.token_ok(request):
            return _error(401, "this board view needs its access token: open the address "
                               "the daemon printed (…/?token=…)")
        if request.method == "POST":
            if request.headers.get(REQUEST_HEADER) is None:
                return _error(403, f"POST needs the {REQUEST_HEADER} header "
                                   "(cross-site requests are refused)")
            origin = request.headers.get("Origin")
            if origin and origin.split("://", 1)[-1].lower() != request.host.lower():
                return _error(403, f"requests from {origin} are refused")
        return await handler(request)

    async def asset(request: web.Request):
        name, ctype = _ASSETS[request.path]
        try:
            body = (WEB_DIR / name).read_bytes()
        except OSError as e:
            return _error(500, f"the view's file {WEB_DIR / name} is missing ({e.strerror}): "
                               "reinstall the package")
        return web.Response(body=body, content_type=ctype, charset="utf-8",
                            headers=_SECURITY_HEADERS)

    async def status(request: web.Request):
        return web.json_response(daemon.snapshot(), headers=_SECURITY_HEADERS,
                                 dumps=_dumps)

    async def read_clock(request: web.Request):
        # Tiny and quick, so the page can time the round trip and set its
        # interrupter by the daemon's clock.
        now = daemon.clock()
        return web.json_response({"now": now}, headers=_SECURITY_HEADERS)

    async def events(request: web.Request):
        if len(hub.clients) >= MAX_EVENT_STREAMS:
            return _error(503, f"/api/events: {MAX_EVENT_STREAMS} views are already open, "
                               "the most this board serves; close one and reload")
        resp = web.StreamResponse(headers={
            **_SECURITY_HEADERS,
            "Content-Type": "text/event-stream",
            "X-Accel-Buffering": "no",
        })
        queue = hub.add()
        task = asyncio.current_task()
        streams.add(task)
        try:
            await resp.prepare(request)
            # The snapshot comes after joining the hub, so nothing falls in between.
            # Reconnect a second after losing the daemon (a restart), then read it all again.
            await resp.write(b"retry: 1000\n\n" + _sse(daemon.snapshot(), "snapshot"))
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    data = b": keepalive\n\n"      # also finds gone clients
                if data is None:                   # fell too far behind: the page reconnects
                    break
                await resp.write(data)
        except (ConnectionError, asyncio.CancelledError):
            pass    # the page went away, or the daemon is stopping: end the stream
        finally:
            streams.discard(task)
            hub.remove(queue)
        return resp

    async def answer(name: str, args: dict):
        """Run a control command for the page: its result as JSON, a refusal a 400 naming it."""
        try:
            result = await daemon.request(name, args)
        except (ControlError, SwitchboardError, KeyError, ValueError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            return _error(400, f"{name}: {msg}")
        return web.json_response(result if result is not None else {"ok": True},
                                 headers=_SECURITY_HEADERS, dumps=_dumps)

    def action(name: str, fields: tuple[str, ...], optional: tuple[str, ...] = ()):
        async def handler(request: web.Request):
            try:
                args = await request.json()
            except (ValueError, UnicodeDecodeError, RecursionError):
                return _error(400, f"{request.path}: the body must be JSON, e.g. "
                                   + json.dumps({f: "..." for f in fields}))
            if not isinstance(args, dict):
                return _error(400, f"{request.path}: the body must be a JSON object")
            unknown = sorted(set(args) - set(fields) - set(optional))
            bad = [f for f in fields if not isinstance(args.get(f), str) or not args[f]]
            bad += [f for f in optional if args.get(f) is not None and not isinstance(args[f], str)]
            if bad or unknown:
                shape = ", ".join([f'"{f}": "..."' for f in fields] +
                                  [f'"{f}": "..." (optional)' for f in optional])
                why = "; ".join(([f"missing or not a string: {', '.join(bad)}"] if bad else []) +
                                ([f"unknown: {', '.join(unknown)}"] if unknown else []))
                return _error(400, f"{request.path}: expected {{{shape}}}; {why}")
            return await answer(name, args)
        return handler

    async def figures(request: web.Request):
        """The supervisor's figures (the ``figures`` control command) for the figures page."""
        args = {k: request.query[k] for k in ("from", "to") if request.query.get(k)}
        try:
            result = await daemon.request("figures", args)
        except (ControlError, SwitchboardError, ValueError) as e:
            return _error(400, f"figures: {e}")
        return web.json_response(result, headers=_SECURITY_HEADERS, dumps=_dumps)

    def passthrough(name: str, allowed: tuple[str, ...], tell_pad=False):
        """A console command: a JSON object with only ``allowed`` keys, checked by the
        command. ``tell_pad``: once it is done, every view hears that the pad changed."""
        async def handler(request: web.Request):
            if request.method == "GET":
                args = {k: v for k, v in request.query.items() if k != "token" and v != ""}
            else:
                try:
                    args = await request.json()
                except (ValueError, UnicodeDecodeError):
                    return _error(400, f"{request.path}: the body must be a JSON object, e.g. "
                                       + json.dumps({f: "..." for f in allowed[:2]}))
                if not isinstance(args, dict):
                    return _error(400, f"{request.path}: the body must be a JSON object")
            unknown = sorted(set(args) - set(allowed))
            if unknown:
                return _error(400, f"{request.path}: unknown {', '.join(unknown)}; expected "
                                   + ", ".join(allowed))
            resp = await answer(name, args)
            if tell_pad and resp.status == 200:
                hub.tell({"type": "pad", "position": args.get("position")})
            return resp
        return handler

    async def on_shutdown(app):
        hub.stop()
        for task in list(streams):
            task.cancel()

    app = web.Application(middlewares=[check_caller])
    app.on_shutdown.append(on_shutdown)
    for path in _ASSETS:
        app.router.add_get(path, asset)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/clock", read_clock)
    app.router.add_get("/api/figures", figures)
    app.router.add_post("/api/press", action("press", ("key",)))
    app.router.add_post("/api/release", action("release", ("key",)))
    app.router.add_post("/api/ring", action("ring", ("line",), ("caller",)))
    app.router.add_post("/api/hangup", action("hangup", ("line",)))
    for path, cmd, allowed in (
            ("/api/draft", "draft", ("position", "fields", "urgent", "line", "id")),
            ("/api/draft-clear", "draft-clear", ("position", "id")),
            ("/api/draft-open", "draft-open", ("position", "id")),
            ("/api/stamp", "pad-stamp", ("position", "id"))):
        app.router.add_post(path, passthrough(cmd, allowed, tell_pad=True))
    for path, cmd, allowed in (
            ("/api/check-in", "check-in", ("customer", "line", "caller")),
            ("/api/read-back", "read-back", ("slip", "position"))):
        app.router.add_post(path, passthrough(cmd, allowed))
    app.router.add_get("/api/rack", passthrough("rack", ()))
    app.router.add_get("/api/customers", passthrough("customers", ()))
    app.router.add_get("/api/deadbox", passthrough(
        "deadbox", ("customer", "since", "until", "search", "slip")))
    app.router.add_get("/api/history", passthrough("history", ("customer", "caller")))

    async def recording(request: web.Request):
        """A call's recorded conversation (WAV), to play in the dead box."""
        try:
            r = await daemon.request("recording", {"call": request.query.get("call")})
        except (ControlError, SwitchboardError, ValueError) as e:
            return _error(404 if "not recorded" in str(e) or "gone" in str(e) else 400,
                          f"recording: {e}")
        return web.FileResponse(r["path"], headers={**_SECURITY_HEADERS,
                                                    "Content-Type": "audio/wav"})
    app.router.add_get("/api/recording", recording)

    runner = WebView(app, access_log=None, shutdown_timeout=2.0)
    runner.host, runner.token = host, token
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        await runner.cleanup()
        why = os.strerror(e.errno) if e.errno else str(e)
        raise ControlError(f"board view: cannot listen on {host}:{port}: {why}; "
                           "choose another port (--web-port) or stop what uses it") from e
    return runner, runner.url


class _EventHub:
    """One reader of the daemon's events for every open view.

    Each event is encoded once and the same bytes are queued to every stream,
    and one timer (not one per view) watches for a lamp test starting or
    ending. A view that falls ``MAX_BEHIND`` events behind is closed (its page
    reconnects and reads the whole board again) rather than held in memory.
    """

    MAX_BEHIND = 2000

    def __init__(self, daemon):
        self.daemon = daemon
        self.clients: set[asyncio.Queue] = set()
        self.source: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.testing = _lamp_test_running(daemon)

    def add(self) -> asyncio.Queue:
        if self.source is None:
            self.source = self.daemon.subscribe()
            self.task = asyncio.get_running_loop().create_task(self._pump())
        else:
            self._fan_out_pending()     # what came before this view joined is not its news
        q: asyncio.Queue = asyncio.Queue()
        self.clients.add(q)
        return q

    def remove(self, q):
        self.clients.discard(q)

    def stop(self):
        if self.task is not None:
            self.task.cancel()
        if self.source is not None:
            self.daemon.unsubscribe(self.source)
        self.source = self.task = None

    def tell(self, obj: dict):
        """An event of the view's own (not the board's) to every open view."""
        self._send(_sse(obj))

    def _send(self, data: bytes):
        for q in list(self.clients):
            if q.qsize() >= self.MAX_BEHIND:
                self.clients.discard(q)
                q.put_nowait(None)
            else:
                q.put_nowait(data)

    def _fan_out_pending(self):
        while self.source is not None and not self.source.empty():
            self._send(_sse(self.source.get_nowait()))

    async def _pump(self):
        while True:
            try:
                event = await asyncio.wait_for(self.source.get(), LAMP_TEST_POLL_S)
            except asyncio.TimeoutError:
                # A lamp test lights lamps without any event: tell the pages when
                # one starts, so they read the lamps' levels meanwhile.
                now_testing = _lamp_test_running(self.daemon)
                if now_testing != self.testing:
                    self.testing = now_testing
                    self._send(_sse({"type": "lamp-test", "on": now_testing}))
                continue
            self._send(_sse(event))


def _lamp_test_running(daemon) -> bool:
    return daemon.state.lamp_test is not None


def _dumps(obj) -> str:
    return json.dumps(obj, default=_plain)


def _plain(obj):
    """Enums and other plain values in events become their value or name."""
    value = getattr(obj, "value", None)
    if value is not None:
        return value
    return str(obj)


def _sse(obj, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + _dumps(obj) + "\n\n").encode()
