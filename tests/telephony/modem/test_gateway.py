"""The modem gateway as a process on its own: who may call it, and dialling out with it."""

import json
import queue
import subprocess
import threading

import pytest

from conftest import project_env, python_cmd
from telephony_support import Uac, wait_for

from firmware.telephony.modem.sim import SimModem

pytestmark = pytest.mark.telephony


class Gateway:
    def __init__(self, tmp, sim, *args):
        self.events = queue.Queue()
        self.seen = []
        self.proc = subprocess.Popen(
            python_cmd("firmware.telephony.pj.modemgateway", "--name", "pots1", "--device",
                       sim.path, "--line", "901", "--front", "127.0.0.1:9", *args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp / "gw.log", "wb"),
            text=True, env=project_env())
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.next("ready")
        self.next("modem_ready")

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            self.seen.append(ev)
            self.events.put(ev)

    def next(self, kind, timeout=20):
        while True:
            try:
                ev = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {kind}; saw {self.seen}") from None
            if ev["ev"] == kind:
                return ev

    def stop(self):
        self.proc.stdin.write('{"op": "quit"}\n')
        self.proc.stdin.flush()
        self.proc.wait(timeout=15)


@pytest.fixture
def sim():
    s = SimModem("conexant")
    yield s
    s.stop()


@pytest.mark.parametrize("args", [(), ("--allow", "127.0.0.2/32")])
def test_fail__invites_from_anywhere_but_the_front_or_the_allowed_addresses_get_403(
        tmp_path, sim, args):
    gw = Gateway(tmp_path, sim, *args)      # (): the front alone, 127.0.0.1:9, may call it
    try:
        uac = Uac()
        cid, _, _ = uac.invite("5550100", "127.0.0.1", gw.ready["port"])
        final = uac.wait(cid, lambda c: c >= 200)
        assert final is not None and final[1] == 403
        assert gw.next("rejected")["code"] == 403
        assert sim.dialled == []                 # nothing reached the line
    finally:
        gw.stop()


@pytest.mark.parametrize("result,code", [("BUSY", 486), ("NO DIALTONE", 503), ("NO ANSWER", 480)])
def test_fail__a_call_out_that_fails_on_the_line_gets_its_sip_code(tmp_path, sim, result, code):
    sim.dial_result = result
    gw = Gateway(tmp_path, sim, "--allow", "127.0.0.1/32")     # our caller stands in for the front
    try:
        uac = Uac()
        cid, _, _ = uac.invite("5550100", "127.0.0.1", gw.ready["port"])
        assert uac.wait(cid, lambda c: c == 180) is not None       # ringing while it dials
        final = uac.wait(cid, lambda c: c >= 200, timeout=10)
        assert final is not None and final[1] == code, final
        assert sim.dialled == ["5550100"]
        wait_for(lambda: not sim.off_hook, 5, "the line back on-hook")
    finally:
        gw.stop()
