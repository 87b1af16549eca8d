"""A worker fed what scanners and broken gateways send: it stays up and answers every INVITE.

Issue 10, finding 4: an INVITE without SDP reaching a full worker aborted the
whole process (``pjsip_rx_data_free_cloned: Assertion 'rdata' failed``), and
every call on it was lost. The worker here is a real PJSUA2 worker process;
the INVITEs go straight to it on loopback, with every kind of body (good SDP,
late offer, SDP without audio, bad SDP, an impossible address, a body that
is not SDP), with the worker full or not, cancelled at once, after a while,
or left to ring. After each example the worker must still be the same
process, answer a ping, and have given every INVITE a final response.
"""

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from firmware.telephony import protocol as msg
from firmware.telephony.pool import WorkerProc
from sip_socket import BODIES, RawSip
from telephony_support import wait_for

pytestmark = pytest.mark.telephony


class Worker:
    """A real worker with its events collected."""

    def __init__(self, log_dir):
        self.events = []
        self.proc = WorkerProc(0, lambda w, m: self.events.append(m), log_dir=log_dir)
        self.proc.start()
        self.pid = self.proc.pid
        self.seq = 0

    def ping(self, timeout=5.0) -> bool:
        self.seq += 1
        seq = self.seq
        self.proc.send(msg.Ping(seq=seq))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(isinstance(e, msg.Pong) and e.seq == seq for e in list(self.events)):
                return True
            time.sleep(0.02)
        return False

    def incoming(self):
        return [e for e in list(self.events) if isinstance(e, msg.Incoming)]


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = Worker(tmp_path_factory.mktemp("worker-invites"))
    sip = RawSip()
    yield w, sip
    sip.close()
    w.proc.stop()


def _log(w):
    return (w.proc.log_dir / "worker0.log").read_text(errors="replace")[-3000:]


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(full=st.booleans(),
       bodies=st.lists(st.sampled_from(sorted(BODIES)), min_size=1, max_size=4),
       cancel_after=st.sampled_from([0.0, 0.05, 0.4, None]))
@example(full=True, bodies=["late-offer"], cancel_after=None)     # the abort found by the issue
@example(full=True, bodies=["late-offer", "late-offer", "sdp"], cancel_after=0.0)
@example(full=False, bodies=["late-offer", "no-audio", "bad-sdp", "not-sdp"], cancel_after=0.05)
def test_ok__worker_survives_and_answers_every_invite(worker, full, bodies, cancel_after):
    w, sip = worker
    target = ("127.0.0.1", w.proc.port)
    w.proc.send(msg.Limits(maxload=1 if full else 3))
    held = None
    if full:                                   # one good caller takes the only slot
        held = sip.invite("201", target, "sdp")
        assert sip.wait(held[0], lambda c: c == 180, 15), \
            f"the good caller did not ring: {sip.codes(held[0])} {_log(w)}"
    sent = []
    for kind in bodies:
        cid, branch = sip.invite("201", target, kind)
        sent.append((kind, cid, branch))
        if cancel_after is not None:
            time.sleep(cancel_after)
            sip.cancel("201", target, cid, branch)
    finals = {cid: sip.finish("201", target, cid, branch) for _, cid, branch in sent}
    if held is not None:
        finals[held[0]] = sip.finish("201", target, *held)
    assert w.proc.alive() and w.proc.pid == w.pid, f"the worker died: {_log(w)}"
    assert w.ping(), "the worker does not answer a ping"
    assert all(code is not None for code in finals.values()), (finals, sent)
    for kind, cid, _ in sent:
        code = finals[cid]
        if kind in ("no-audio", "not-sdp", "bad-sdp"):
            assert code in (400, 415, 488), (kind, code)   # refused, never rung on the board
        elif full:
            assert code in (486, 487), (kind, code)        # full: the front tries the next
    # The board's side of every call the worker took has ended too.
    for inc in w.incoming():
        w.proc.send(msg.ReleaseCall(call=inc.call))
    wait_for(lambda: w.ping() and all(
        any(isinstance(e, msg.Ended) and e.call == inc.call for e in list(w.events))
        for inc in w.incoming()), 10, "every call the worker reported has ended")
    assert "Assertion" not in _log(w)
