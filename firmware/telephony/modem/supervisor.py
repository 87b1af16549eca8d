"""The daemon's side of the modem trunks: one gateway process per modem, kept running.

``ModemTrunks.prepare(site)`` picks each gateway's loopback SIP port and gives its trunk
the dial URI the telephony sends an office line's calls to: the board's front
(``sip:{number}@FRONT;modem=pots1``), which relays a worker's INVITE to that gateway, so
the gateway takes calls from the front alone, as it sends its own to it (a modem trunk is
a peer at 127.0.0.1).
Once the telephony is up, ``start`` runs ``firmware.telephony.pj.modemgateway`` for each
and follows its JSON events:

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
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from firmware.core.state import Fault
from firmware.runtime.commands import LINE, Arg, Command, NotMine
from firmware.telephony.front import free_port
from firmware.telephony.children import child_env as _child_env


class GatewayProc:
    def __init__(self, trunk, port, front, on_event, log_dir):
        self.trunk = trunk
        self.port = port
        self.front = front
        self.on_event = on_event
        self.log_dir = Path(log_dir)
        self.proc: subprocess.Popen | None = None
        self.pid = None
        self._lock = threading.Lock()

    def start(self):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        t = self.trunk
        cmd = [sys.executable, "-m", "firmware.telephony.pj.modemgateway", "--name", t.name,
               "--device", t.device, "--line", t.line, "--front", self.front,
               "--port", str(self.port), "--silence-s", str(t.silence_s)]
        if t.profile:
            cmd += ["--profile", t.profile]
        if t.country:
            cmd += ["--country", t.country]
        with open(self.log_dir / f"modem-{t.name}.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True, bufsize=1, env=_child_env(),
                                         start_new_session=True)
        self.pid = self.proc.pid
        threading.Thread(target=self._read, name=f"modem-{t.name}", daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            try:
                self.on_event(self, ev)
            except Exception as e:
                print(f"modem {self.trunk.name}: event {ev!r}: {e}", file=sys.stderr)
        self.on_event(self, {"ev": "exit", "code": self.proc.wait()})

    def send(self, **cmd) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        with self._lock:
            try:
                self.proc.stdin.write(json.dumps(cmd) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                return False
        return True

    def stop(self, timeout=5.0):
        if self.proc is None:
            return
        self.send(op="quit")
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ModemTrunks:
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
                        self.telephony.run_dir / "logs")
        with self._lock:
            self.procs[t.name] = g
        g.start()

    def stop(self):
        self.stopping = True
        for g in list(self.procs.values()):
            g.send(op="quit")
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
    def _on_event(self, g: GatewayProc, ev: dict):
        name = g.trunk.name
        kind = ev.get("ev")
        info = self.info[name]
        if kind == "ready":
            info.update(state="opening", port=ev.get("port"))
        elif kind == "modem_ready":
            info.update(state="ready", profile=ev.get("profile"), identity=ev.get("i0"),
                        maker=ev.get("gmi"), error=None)
            if info.pop("faulted", False):
                self._post(Fault(f"trunk {name}", None))
        elif kind == "modem_fault":
            info.update(state="fault", error=ev.get("message"), retry_in_s=ev.get("retry_in_s"),
                        faulted=True)
            self._post(Fault(f"trunk {name}", ev.get("message")))
        elif kind == "caller_id":
            caller = ev.get("number") or ("anonymous" if ev.get("absent") == "private" else None)
            if caller and ev.get("sip_call_id") and self.telephony is not None:
                self.telephony.identify_caller(ev["sip_call_id"], caller)
        elif kind == "call_lost":
            self._fail_call(g)
        elif kind in ("offer", "answered", "voice", "released", "far_end_hangup", "ended",
                      "ring_stopped", "dialling", "dialled", "dial_failed"):
            info["last"] = {k: v for k, v in ev.items() if k not in ("trunk",)}
        elif kind in ("test_result", "status"):
            for fut in self._waiters.pop(f"{name}:{kind}", []):
                fut.append(ev)
        elif kind == "exit":
            if self.stopping:
                return
            info.update(state="exited", faulted=True)
            info["restarts"] += 1
            delay = min(self.restart[1], self.restart[0] * 2 ** min(info["restarts"] - 1, 6))
            self._post(Fault(f"trunk {name}", f"the modem gateway exited (code "
                             f"{ev.get('code')}); restarting in {delay:g} s"))
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
            g.send(op="hangup")

    # -- control commands -----------------------------------------------------------
    def _ask(self, name, op, reply, timeout, **args):
        box: list = []
        self._waiters.setdefault(f"{name}:{reply}", []).append(box)
        if not self.procs.get(name) or not self.procs[name].send(op=op, **args):
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
                None, lambda: self._ask(t.name, "test", "test_result", seconds + 10,
                                        seconds=seconds))
            if r is None:
                return {"line": line, "trunk": t.name, "ok": False,
                        "error": f"the modem gateway for {t.name} did not answer",
                        "modem": self.info[t.name]}
            r = {k: v for k, v in r.items() if k not in ("ev", "t")}
            heard = bool(r.get("dial_tone_event") or r.get("dial_tone_heard"))
            return {"line": line, **r, "dial_tone": heard,
                    "ok": bool(r.get("off_hook") and heard)}

        return [Command("test-call", test_call,
                        (Arg("line", LINE, required=True), Arg("answer_s", float, default=20.0, min=0),
                         Arg("talk_s", float, default=2.0, min=0), Arg("echo", bool, default=False)),
                        "trunk test; on a modem's line: off-hook, dial tone heard", replaces=True)]
