"""The daemon's side of the modem trunks: one gateway process per modem, kept running.

``ModemTrunks.prepare(site)`` picks each gateway's loopback SIP port and gives its trunk
the dial URI the telephony sends an office line's calls to: the board's front
(``sip:{number}@FRONT;modem=pots1``), which relays a worker's INVITE to that gateway, so
the gateway takes calls from the front alone, as it sends its own to it (a modem trunk is
a peer at 127.0.0.1).
Once the telephony is up, ``start`` runs ``firmware.telephony.pj.modemgateway`` for each
and follows its events (the gateway messages of ``firmware.telephony.protocol``):

- the caller ID that follows the first ring (``caller_id``) is put on the board's call,
  found by its SIP Call-ID: the card and the call record get the number;
- a modem unplugged or not answering lights the fault lamp as ``trunk <name>`` (the
  gateway reopens it with back-off) and clears it when the modem answers again;
- a call in progress on a modem that vanished is marked failed in its call record, then
  hung up;
- a gateway process that exits is restarted with back-off (fault lit meanwhile);
- ``switchboard-diag test-call <line>`` on a modem's line takes the line off-hook and
  reports whether dial tone was heard (``DLE d``, or the tone itself).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from pathlib import Path

from firmware.core.state import Fault
from firmware.runtime.adapter import Adapter
from firmware.runtime.commands import LINE, Arg, Command, NotMine
from firmware.telephony import protocol as msg
from firmware.telephony.children import ChildProcess
from firmware.telephony.front import free_port

log = logging.getLogger("switchboard.modems")


class GatewayProc:
    """The daemon's handle on one gateway process (a ``ChildProcess``: it dies with the
    daemon). ``on_event(gateway, message)`` gets each of its events; ``on_exit(gateway,
    code)`` is called once when it is gone."""

    def __init__(self, trunk, port, front, on_event, on_exit, log_dir):
        self.trunk = trunk
        self.port = port
        self.front = front
        self.on_event = on_event
        self.on_exit = on_exit
        t = trunk
        args = ["--name", t.name, "--device", t.device, "--line", t.line, "--front", front,
                "--port", port, "--silence-s", t.silence_s]
        if t.profile:
            args += ["--profile", t.profile]
        if t.country:
            args += ["--country", t.country]
        self.child = ChildProcess(f"modem {t.name}", "firmware.telephony.pj.modemgateway", args,
                                  events=msg.GATEWAY_EVENTS,
                                  on_message=lambda m: self.on_event(self, m),
                                  on_exit=lambda: self.on_exit(self, self.child.proc.wait()),
                                  log_path=Path(log_dir) / f"modem-{t.name}.log")

    @property
    def pid(self) -> int | None:
        return self.child.pid

    def start(self):
        self.child.start()

    def send(self, cmd: msg.Message) -> bool:
        return self.child.send(cmd)

    def stop(self, timeout=5.0):
        self.child.stop(msg.GatewayQuit(), timeout)


class ModemTrunks(Adapter):
    """An adapter for the daemon: the modem trunks' gateway processes."""

    name = "modems"
    def __init__(self, site, telephony=None, *, restart_min_s=1.0, restart_max_s=60.0):
        self.trunks = {t.name: t for t in site.modem_trunks()}
        self.telephony = telephony
        self.ports: dict[str, int] = {}
        self.procs: dict[str, GatewayProc] = {}
        self.info: dict[str, dict] = {t: {"state": "starting", "restarts": 0}
                                      for t in self.trunks}
        self.restart = (restart_min_s, restart_max_s)
        self.ctx = None                  # what the daemon gave start()
        self.stopping = False
        self._waiters: dict[str, list] = {}
        self._lock = threading.RLock()

    def prepare(self, site):
        """The site with each modem trunk's gateway port, and its dial URI through the front
        (``{front}``: the telephony puts the front's address in once it has one), which
        relays a worker's INVITE carrying ``;modem=<name>`` to that gateway."""
        trunks = []
        for t in site.trunks:
            if t.mode == "modem":
                self.ports[t.name] = free_port()
                t = dataclasses.replace(t, gateway_port=self.ports[t.name],
                                        dial=f"sip:{{number}}@{{front}};modem={t.name}")
            trunks.append(t)
        return dataclasses.replace(site, trunks=tuple(trunks))

    # -- the adapter contract ----------------------------------------------------
    def start(self, ctx):
        self.ctx = ctx
        threading.Thread(target=self._start, name="modems-start", daemon=True).start()

    def _start(self):
        tel = self.telephony
        if tel is None or not tel.wait_ready(180):
            for name in self.trunks:
                self._post(Fault(f"trunk {name}", "the telephony did not start: no modem gateway"))
            return
        front = f"{tel.front.host}:{tel.front.port}"
        for t in self.trunks.values():
            self._spawn(t, front)

    def _spawn(self, t, front):
        g = GatewayProc(t, self.ports.get(t.name) or free_port(), front, self._on_event,
                        self._on_exit, self.telephony.run_dir / "logs")
        with self._lock:
            self.procs[t.name] = g
        g.start()

    def stop(self):
        self.stopping = True
        for g in list(self.procs.values()):
            g.send(msg.GatewayQuit())           # all of them at once, then wait for each
        for g in list(self.procs.values()):
            g.stop()

    def handle(self, command):
        pass                     # the board's commands reach the gateways as SIP, through the workers

    def status(self) -> dict:
        with self._lock:
            return {name: {**self.info[name], "device": t.device, "line": t.line,
                           "pid": self.procs[name].pid if name in self.procs else None}
                    for name, t in self.trunks.items()}

    def _post(self, event):
        if self.ctx is not None and not self.stopping:
            self.ctx.post(event)

    # -- the gateways' events -------------------------------------------------------
    #: Events kept as the trunk's ``last`` in the status: what the line last did.
    LAST = (msg.LineOffer, msg.GatewayAnswered, msg.LineVoice, msg.LineReleased,
            msg.LineFarEndHangup, msg.GatewayEnded, msg.LineRingStopped, msg.GatewayDialling,
            msg.LineDialled, msg.LineDialFailed)

    def _on_event(self, g: GatewayProc, ev: msg.Message):
        name = g.trunk.name
        info = self.info[name]
        if isinstance(ev, msg.GatewayReady):
            info.update(state="opening", port=ev.port)
        elif isinstance(ev, msg.ModemReady):
            info.update(state="ready", profile=ev.profile, identity=ev.i0, maker=ev.gmi,
                        error=None)
            if info.pop("faulted", False):
                self._post(Fault(f"trunk {name}", None))
        elif isinstance(ev, msg.ModemFault):
            info.update(state="fault", error=ev.message, retry_in_s=ev.retry_in_s, faulted=True)
            self._post(Fault(f"trunk {name}", ev.message))
        elif isinstance(ev, msg.LineCallerId):
            caller = ev.number or ("anonymous" if ev.absent == "private" else None)
            if caller and ev.sip_call_id and self.telephony is not None:
                self.telephony.identify_caller(ev.sip_call_id, caller)
        elif isinstance(ev, msg.GatewayCallLost):
            self._fail_call(g)
        elif isinstance(ev, self.LAST):
            info["last"] = {"ev": ev.wire, "t": time.time(), **msg.fields(ev)}
        elif isinstance(ev, (msg.LineTestResult, msg.GatewayStatus)):
            for box in self._waiters.pop(f"{name}:{ev.wire}", []):
                box.append(ev)
        elif isinstance(ev, msg.GatewayError):
            log.error("modem %s: %s", name, ev.message)

    def _on_exit(self, g: GatewayProc, code):
        if self.stopping:
            return
        name = g.trunk.name
        info = self.info[name]
        info.update(state="exited", faulted=True)
        info["restarts"] += 1
        delay = min(self.restart[1], self.restart[0] * 2 ** min(info["restarts"] - 1, 6))
        self._post(Fault(f"trunk {name}", f"the modem gateway exited (code "
                         f"{code}); restarting in {delay:g} s"))
        self._fail_call(g, gone=True)

        def again():
            time.sleep(delay)
            if not self.stopping:
                self._spawn(g.trunk, g.front)
        threading.Thread(target=again, daemon=True).start()

    def _fail_call(self, g: GatewayProc, gone=False):
        """The modem (or its gateway) went away with a call on it: its record says failed;
        then it ends: the gateway hangs it up, or, the gateway being gone, the worker."""
        if self.telephony is not None:
            self.telephony.fail_line_call(g.trunk.line, end=gone)
        if not gone:
            g.send(msg.GatewayHangup())

    # -- control commands -----------------------------------------------------------
    def _ask(self, name, cmd: msg.Message, reply: type, timeout):
        """Send ``cmd`` to a gateway and wait for its ``reply`` event (None: no answer)."""
        box: list = []
        self._waiters.setdefault(f"{name}:{reply.wire}", []).append(box)
        if not self.procs.get(name) or not self.procs[name].send(cmd):
            return None
        deadline = time.time() + timeout
        while not box and time.time() < deadline:
            time.sleep(0.02)
        return box[0] if box else None

    def trunk_for_line(self, line):
        return next((t for t in self.trunks.values() if t.line == line), None)

    def commands(self):
        """``test-call`` on a modem's line: off-hook, dial tone heard? (other lines: the
        telephony's own test call)."""

        async def test_call(args):
            line = args["line"]
            t = self.trunk_for_line(line)
            if t is None:
                raise NotMine
            seconds = args["talk_s"] + 1
            loop = asyncio.get_running_loop()
            r = await loop.run_in_executor(
                None, lambda: self._ask(t.name, msg.GatewayTest(seconds=seconds),
                                        msg.LineTestResult, seconds + 10))
            if r is None:
                return {"line": line, "trunk": t.name, "ok": False,
                        "error": f"the modem gateway for {t.name} did not answer",
                        "modem": self.info[t.name]}
            heard = r.dial_tone_event or r.dial_tone_heard
            result = {k: v for k, v in msg.fields(r).items() if v is not None or k == "dial_tone_ms"}
            return {"line": line, "trunk": t.name, **result, "dial_tone": heard,
                    "ok": r.error is None and r.off_hook and heard}

        return [Command("test-call", test_call,
                        (Arg("line", LINE, required=True), Arg("answer_s", float, default=20.0, min=0),
                         Arg("talk_s", float, default=2.0, min=0), Arg("echo", bool, default=False)),
                        "trunk test; on a modem's line: off-hook, dial tone heard", replaces=True)]
