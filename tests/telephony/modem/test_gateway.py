"""The modem gateway as a process on its own: who may call it, and dialling out with it."""

import queue

import pytest

from conftest import project_env
from telephony_support import Uac, wait_for

from firmware.telephony import protocol as msg
from firmware.telephony.children import ChildProcess
from firmware.telephony.modem.sim import SimModem

pytestmark = pytest.mark.telephony


class Gateway:
    """The gateway run as the daemon runs it: a ``ChildProcess`` speaking the protocol."""

    def __init__(self, tmp, sim, *args):
        self.events = queue.Queue()
        self.seen = []
        self.child = ChildProcess(
            "modem pots1", "firmware.telephony.pj.modemgateway",
            ["--name", "pots1", "--device", sim.path, "--line", "901", "--front", "127.0.0.1:9",
             *args],
            events=msg.GATEWAY_EVENTS, on_message=self._message, log_path=tmp / "gw.log",
            env=project_env())
        self.child.start()
        self.ready = self.next(msg.GatewayReady)
        self.next(msg.ModemReady)

    def _message(self, m):
        self.seen.append(m)
        self.events.put(m)

    def next(self, kind, timeout=20):
        while True:
            try:
                ev = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {kind.wire}; saw {self.seen}") from None
            if isinstance(ev, kind):
                return ev

    def send(self, cmd):
        assert self.child.send(cmd)

    def stop(self):
        assert self.child.stop(msg.GatewayQuit(), timeout=15) == 0


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
        cid, _, _ = uac.invite("5550100", "127.0.0.1", gw.ready.port)
        final = uac.wait(cid, lambda c: c >= 200)
        assert final is not None and msg.Reply(final.code, final.reason) == msg.GATEWAY_NOT_ALLOWED
        assert gw.next(msg.GatewayRejected).code == 403
        assert sim.dialled == []                 # nothing reached the line
    finally:
        gw.stop()


@pytest.mark.parametrize("result,reply", [("BUSY", msg.FAR_END_BUSY), ("NO DIALTONE", msg.NO_DIAL_TONE),
                                          ("NO ANSWER", msg.NO_ANSWER)])
def test_fail__a_call_out_that_fails_on_the_line_gets_its_sip_code(tmp_path, sim, result, reply):
    sim.dial_result = result
    gw = Gateway(tmp_path, sim, "--allow", "127.0.0.1/32")     # our caller stands in for the front
    try:
        uac = Uac()
        cid, _, _ = uac.invite("5550100", "127.0.0.1", gw.ready.port)
        assert uac.wait(cid, lambda c: c == 180) is not None       # ringing while it dials
        final = uac.wait(cid, lambda c: c >= 200, timeout=10)
        assert final is not None and msg.Reply(final.code, final.reason) == reply, final
        assert reply.code == {"BUSY": 486, "NO DIALTONE": 503, "NO ANSWER": 480}[result]
        assert sim.dialled == ["5550100"]
        wait_for(lambda: not sim.off_hook, 5, "the line back on-hook")
    finally:
        gw.stop()


def test_fail__a_line_that_is_no_command_is_answered_with_an_error_naming_it(tmp_path, sim):
    gw = Gateway(tmp_path, sim)
    try:
        with gw.child._lock:                     # a line the protocol has no message for
            gw.child.proc.stdin.write('{"cmd": "test", "seconds": "four"}\n{"op": "status"}\n')
            gw.child.proc.stdin.flush()
        errors = [gw.next(msg.GatewayError).message, gw.next(msg.GatewayError).message]
        assert errors == ["gateway command 'test': field 'seconds' = 'four': expected float",
                          "gateway command {\"op\": \"status\"}: expected a 'cmd' string naming "
                          "the message"]
        gw.send(msg.GatewayStatusRequest(seq=7))              # and it carries on
        status = gw.next(msg.GatewayStatus)
        assert (status.seq, status.line, status.call) == (7, "idle", None)
        assert status.modem["state"] == "ready" and status.modem["profile"] == "conexant"
    finally:
        gw.stop()
    # its diagnostics go through logging, one line each, named after the trunk
    lines = (tmp_path / "gw.log").read_text().splitlines()
    assert any(ln.startswith('modem pots1: {"event": "modem_ready"') for ln in lines), lines
    assert any(ln.startswith("modem pots1: modem ready: {'i0'") for ln in lines), lines
