"""The telephony's processes die, are killed and collide, and the board says so and recovers.

Issue 10, findings 5, 7, 8 and 13 (log modes), each caused for real on loopback:
Kamailio killed under a running board, the daemon SIGKILLed, a stale front of
the same data dir, a SIP port someone else holds, calls a worker lost without
a word, and workers' log files created while the umask is narrowed.
"""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.core.state import Fault, LineCleared, LineState
from firmware.records.calls import JsonLinesRecords
from firmware.telephony import protocol as msg
from firmware.telephony.front import free_port
from firmware.telephony.pool import WorkerProc
from firmware.telephony.supervisor import RECONCILE_S

from conftest import project_env, python_cmd
from telephony_support import BoardLoop, board_with_positions, have_tools, wait_for
from procs import stop

pytestmark = pytest.mark.telephony

DESK = load_board("boards/desk.toml")
DESK_SITE = load_site("boards/desk.site.toml", DESK)


@pytest.fixture
def desk(tmp_path):
    have_tools()
    with board_with_positions(DESK, DESK_SITE, tmp_path, record=False, port=0,
                              workers=2) as (board, adapter, _):
        yield board, adapter


from firmware.telephony.adapter import TelephonyAdapter  # noqa: E402


def _alive(pid) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _running(needle: str) -> list[int]:
    """Pids of live processes whose command line contains ``needle``."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if needle.encode() in f.read() and _alive(int(d)):
                        out.append(int(d))
            except OSError:
                pass
    return out


# -- finding 7: Kamailio killed --------------------------------------------------------
def test_fail__kamailio_killed_lights_the_fault_says_so_and_is_restarted(desk):
    board, adapter = desk
    front = adapter.front
    kam = int((front.run_dir / "kamailio.pid").read_text())
    tree = _running(str(front.config_path))
    assert kam in tree and len(tree) > 2           # the guard, Kamailio and its forks
    states = []
    os.kill(kam, signal.SIGKILL)                    # Kamailio's main process, as a crash would
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = adapter.status()
        states.append((st["state"], st["free"], st["front_up"]))
        if st["front_restarts"] >= 1 and st["front_up"]:
            break
        time.sleep(0.05)
    assert ("front down", 0, False) in states, states[:20]      # never "running" meanwhile
    assert all(s != "running" for s, _, up in states if not up)
    assert adapter.status()["front_restarts"] == 1 and adapter.status()["state"] == "running"
    faults = [e for e in board.events if isinstance(e, Fault) and e.source == "front"]
    assert faults[0].message and "Kamailio" in faults[0].message
    wait_for(lambda: board.faults() == {}, 10, "the front's fault cleared")
    # Not one process of the old front is left (its forks did not go on serving) ...
    assert not [p for p in tree if _alive(p)], tree
    # ... and the new one takes calls on the same port.
    assert adapter.front.answers_options()
    adapter.ring("201")
    wait_for(lambda: board.line("201") is LineState.RINGING, 10, "201 rings through the new front")
    adapter.hang_up_test("201")


def test_fail__front_guard_killed_the_front_comes_back_despite_a_stale_pid_file(desk, caplog):
    """The soak's case: the guard SIGKILLed, Kamailio's pid file naming a pid that still
    looks alive (a zombie, a reused pid). Kamailio would refuse to start ("running
    process found in the pid file"); the restart must not let it."""
    board, adapter = desk
    front = adapter.front
    guard = front.proc.pid
    tree = _running(str(front.config_path))
    (front.run_dir / "kamailio.pid").write_text(f"{os.getpid()}\n")   # alive, and not Kamailio
    os.kill(guard, signal.SIGKILL)
    wait_for(lambda: adapter.status()["front_restarts"] >= 1 and adapter.status()["front_up"],
             30, "the front restarted")
    assert adapter.status()["state"] == "running"
    # at the first try: no start-up refused for the stale pid file, no port still held
    assert not [r for r in caplog.records if "restarting the front" in r.getMessage()], \
        [r.getMessage() for r in caplog.records]
    wait_for(lambda: not [p for p in tree if _alive(p)], 10, "the old front's processes gone")
    assert adapter.front.answers_options()
    adapter.ring("202")
    wait_for(lambda: board.line("202") is LineState.RINGING, 10, "202 rings through the new front")
    adapter.hang_up_test("202")


def test_fail__a_call_placed_while_a_worker_restarts_goes_to_a_live_one(desk):
    """The soak's rings that never rang: the dead worker, listed until its replacement is
    up and holding no call any more, looked the least loaded and was given the call."""
    board, adapter = desk
    dead = adapter.workers[0]
    os.kill(dead.pid, signal.SIGKILL)
    wait_for(lambda: "worker 0" in board.faults(), 10, "worker 0's death noticed")
    assert dead in adapter.workers and not dead.alive()     # its replacement is not up yet
    t = adapter.ring("203")
    assert t["worker"] is not dead
    wait_for(lambda: board.line("203") is LineState.RINGING, 10, "203 rings")
    adapter.hang_up_test("203")
    wait_for(lambda: board.faults() == {}, 60, "worker 0 back")


def test_fail__ring_refused_while_the_front_is_down(desk, tmp_path):
    """While the front is down a test call cannot ring anything: say so, do not pretend."""
    board, adapter = desk
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        kam = int((adapter.front.run_dir / "kamailio.pid").read_text())
        os.kill(kam, signal.SIGKILL)
        # Hold the front's port so that it cannot come back while we look.
        wait_for(lambda: not adapter.front.alive(), 10, "the front gone")
        wait_for(lambda: _try_bind(holder, adapter.front.port), 10, "the port free")
        wait_for(lambda: adapter.status()["state"] == "front down", 10, "status: front down")
        with pytest.raises(RuntimeError, match="front down"):
            adapter.ring("201")
        assert adapter.status()["free"] == 0
    # Port released: the front comes back.
    wait_for(lambda: adapter.status()["state"] == "running", 20, "the front back")


def _answered_then_front_killed(board, adapter):
    """A test call rings 201, the operator answers, Kamailio is SIGKILLed and comes back."""
    t = adapter.ring("201")
    wait_for(lambda: board.line("201") is LineState.RINGING, 10, "201 rings")
    board.press("line-201")
    c = adapter.book.on_line("201")
    wait_for(lambda: c.connected, 10, "201 answered")
    wait_for(lambda: t["answered_t"] is not None, 10, "the caller answered")
    # The front writes its dialogs to disk within DUMP_INTERVAL_MS of a change.
    wait_for(lambda: c.sip_call_id in (adapter.front.dialog_db / "dialog").read_text(), 2,
             "the call's dialog on disk")
    os.kill(int((adapter.front.run_dir / "kamailio.pid").read_text()), signal.SIGKILL)
    wait_for(lambda: adapter.status()["state"] == "front down", 15, "the front down")
    wait_for(lambda: adapter.status()["state"] == "running", 30, "the front back")
    return t, c


def test_fail__a_call_set_up_before_a_front_restart_holds_resumes_and_the_callers_bye_ends_it(desk):
    """A new front knew none of the calls set up before it: every in-dialog request got
    481, so a caller's BYE never reached the board (its side stayed until the operator
    released it). The front keeps its dialogs (and what it needs of each) on disk, so the
    new one relays them as the old one did. (Hold and resume are the board's alone, no
    re-INVITE; a caller's re-INVITE through a restarted front: test_front_topology.py.)"""
    board, adapter = desk
    t, c = _answered_then_front_killed(board, adapter)
    board.press("p1-hold")                                # the call goes on through the new front
    wait_for(lambda: board.line("201") is LineState.HELD, 10, "201 held")
    board.press("line-201")
    wait_for(lambda: board.line("201") is LineState.OPERATOR, 10, "201 resumed")
    time.sleep(1.0)                                       # and it still stands a moment later
    assert adapter.book.on_line("201") is c and c.connected
    assert c.id in _listed(adapter, c.worker)
    assert t["ended_t"] is None
    adapter.hang_up_test("201")                           # the caller's BYE reaches the worker
    wait_for(lambda: board.line("201") is LineState.IDLE, 10, "201 cleared by the caller's BYE")
    wait_for(lambda: t["id"] not in adapter.tests, 10, "the caller gone")
    wait_for(lambda: adapter.status()["in_use"] == 0, 10, "nothing left in use")
    wait_for(lambda: c.id not in _listed(adapter, c.worker), 10, "the call gone from its worker")
    _takes_a_new_call(board, adapter, "201")


def test_fail__the_boards_bye_reaches_a_caller_whose_call_a_front_restart_did_not_see_set_up(desk):
    """The board's BYE to a caller of a call set up before a front restart got 481: the
    caller was never told the call had ended."""
    board, adapter = desk
    t, c = _answered_then_front_killed(board, adapter)
    board.press("p1-release")
    wait_for(lambda: board.line("201") is LineState.IDLE, 10, "201 cleared")
    wait_for(lambda: t["ended_t"] is not None, 10, "the caller told the call has ended")
    assert t["code"] == 200, t                            # by a BYE, not a timeout or error
    assert adapter.status()["in_use"] == 0


def test_fail__a_call_whose_callers_bye_a_front_restart_lost_is_hung_up_for_real(desk):
    """A new front that knows none of the calls set up before it (its dialog tables lost:
    started afresh here) answers a caller's BYE 481 and the board's side stays. Hanging the
    line up then only cleared the board: the call stayed in the book and every new call to
    the line got 486 (the soak's "rings that never reached a line")."""
    import asyncio
    board, adapter = desk
    t = adapter.ring("201")
    wait_for(lambda: board.line("201") is LineState.RINGING, 10, "201 rings")
    board.press("line-201")
    c = adapter.book.on_line("201")
    wait_for(lambda: c.connected, 10, "201 answered")
    adapter.front._started = False                        # its restart: new, empty tables
    os.kill(int((adapter.front.run_dir / "kamailio.pid").read_text()), signal.SIGKILL)
    wait_for(lambda: adapter.status()["state"] == "front down", 15, "the front down")
    wait_for(lambda: adapter.status()["state"] == "running", 30, "the front back")
    adapter.hang_up_test("201")                           # the caller's BYE: 481
    wait_for(lambda: t["id"] not in adapter.tests, 10, "the caller gone")
    assert adapter.book.on_line("201") is c and board.line("201") is LineState.OPERATOR
    hangup = next(x for x in adapter.commands() if x.name == "hangup")
    asyncio.run(hangup.handler({"line": "201"}))
    wait_for(lambda: board.line("201") is LineState.IDLE, 10, "201 cleared")
    st = adapter.status()
    assert st["in_use"] == 0 and st["free"] == st["capacity"]
    _takes_a_new_call(board, adapter, "201")


def _try_bind(sock, port) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False


# -- finding 6: a worker killed mid-call ----------------------------------------------------
def test_fail__callers_of_a_worker_that_dies_hear_the_call_end(desk, tmp_path):
    """An answered caller gets a BYE and a ringing caller a final answer (480) when the
    worker holding their calls is killed; before, both stayed on a dead line."""
    from telephony_support import finish, sipp
    board, adapter = desk
    talking = sipp("caller_waits_for_bye.xml", adapter.front.port, ["201"], tmp_path,
                   timeout_s=40)
    wait_for(lambda: board.line("201") is LineState.RINGING, 10, "201 ringing")
    board.press("line-201")                                  # the operator answers
    wait_for(lambda: (c := adapter.book.on_line("201")) is not None and c.connected, 10,
             "201 answered")
    ringing = sipp("caller_waits_for_final.xml", adapter.front.port, ["202"], tmp_path,
                   timeout_s=40)
    wait_for(lambda: board.line("202") is LineState.RINGING, 10, "202 ringing")
    calls = [adapter.book.on_line(n) for n in ("201", "202")]
    assert all(c.dialog is not None for c in calls)          # the workers reported them
    for w in {c.worker for c in calls}:
        w.proc.kill()                                        # as an abort in PJSUA2 would
    assert finish(talking, 30) == 0, "the answered caller got no BYE"
    assert finish(ringing, 30) == 0, "the ringing caller got no final answer"
    wait_for(lambda: board.line("201") is LineState.IDLE and board.line("202") is LineState.IDLE,
             10, "both lines cleared")


def test_fail__a_test_callers_call_ends_when_its_worker_dies(desk):
    """The soak's stuck lines: a test caller on one worker rings a line held by the other;
    its worker is killed; the board's call had nobody on the far end and stayed for ever
    (the line busy to every new caller, ``in_use`` one short)."""
    board, adapter = desk
    for line in ("201", "202", "203", "204"):
        t = adapter.ring(line)
        wait_for(lambda: t["board_call"] is not None, 10, f"{line} rings")
        c = adapter.book.get(t["board_call"])
        if c.worker is not t["worker"]:
            break
        adapter.hang_up_test(line)
        wait_for(lambda: board.line(line) is LineState.IDLE, 10, f"{line} cleared")
    else:
        pytest.fail("every test caller landed on the worker holding its call")
    board.press(f"line-{line}")                               # the operator answers
    wait_for(lambda: c.connected, 10, f"{line} answered")
    t["worker"].proc.kill()
    wait_for(lambda: board.line(line) is LineState.IDLE, 10, f"{line} cleared")
    wait_for(lambda: adapter.status()["in_use"] == 0, 10, "nothing left in use")
    cleared = [e for e in board.events if isinstance(e, LineCleared) and e.line == line]
    assert cleared and cleared[-1].reason == "test caller lost"
    # The worker that held the board's side let it go too.
    wait_for(lambda: c.id not in _listed(adapter, c.worker), 10, "the call gone from its worker")
    wait_for(lambda: board.faults() == {}, 60, "the worker back")
    _takes_a_new_call(board, adapter, line)


def _takes_a_new_call(board, adapter, line):
    """A real call rings ``line`` again (no "486 Line Busy" for ever), then hangs up."""
    t = adapter.ring(line)
    wait_for(lambda: board.line(line) is LineState.RINGING, 10, f"a new call rings {line}")
    assert t["code"] is None
    adapter.hang_up_test(line)


def _listed(adapter, w) -> set:
    """The calls worker ``w`` says it holds."""
    seq = 10 ** 6 + int(time.time() * 1000) % 10 ** 6
    got = []
    orig = adapter._call_list

    def spy(worker, m):
        if m.seq == seq:
            got.append(set(m.calls))
        else:
            orig(worker, m)
    adapter._call_list = spy
    try:
        w.send(msg.ListCalls(seq=seq))
        wait_for(lambda: got, 5, "the worker's call list")
    finally:
        adapter._call_list = orig
    return got[0]


# -- a position endpoint killed -------------------------------------------------------------
def test_fail__a_position_that_dies_is_restarted_and_the_fault_clears(tmp_path):
    have_tools()
    board = BoardLoop(DESK, tmp_path / "data")
    adapter = TelephonyAdapter(DESK, DESK_SITE, run_dir=tmp_path / "tel", port=0, workers=1,
                               records=JsonLinesRecords(tmp_path / "calls.jsonl"))
    board.add_adapter(adapter)
    board.start()
    try:
        assert adapter.wait_ready(60), adapter.error
        old = adapter.position_procs[1]
        old_uri = adapter.position_uris[1]
        old.proc.kill()
        wait_for(lambda: adapter.status()["position_restarts"] == 1, 30, "position 1 restarted")
        assert any(isinstance(e, Fault) and e.source == "position p1" and e.message
                   for e in board.events)
        wait_for(lambda: board.faults() == {}, 10, "the fault cleared")
        new = adapter.position_procs[1]
        assert new is not old and new.alive() and adapter.position_uris[1] == new.uri != old_uri
    finally:
        board.stop()


# -- finding 5: calls a worker lost without a word ------------------------------------------
def test_fail__a_line_whose_call_the_worker_no_longer_has_is_cleared_and_recorded(desk, tmp_path):
    board, adapter = desk
    w = adapter.workers[0]
    # The worker reports a call, and then its end is lost (what a ring-then-CANCEL flood did):
    ghost = msg.Incoming(call="w0-1-999", user="203", caller="5550000", remote="<sip:x@y>",
                         src="127.0.0.1:5060", sip_call_id="ghost", t=time.time())
    adapter._on_event(w, ghost)
    wait_for(lambda: board.line("203") is LineState.RINGING, 5, "the ghost rings")
    wait_for(lambda: board.line("203") is LineState.IDLE, 3 * RECONCILE_S + 5,
             "the board reconciled the line with its worker")
    cleared = [e for e in board.events if isinstance(e, LineCleared) and e.line == "203"]
    assert cleared and "gone from its worker" in cleared[-1].reason
    recs = JsonLinesRecords(tmp_path / "calls.jsonl").read()
    assert [r["id"] for r in recs if r["line"] == "203"] == ["w0-1-999"]
    st = adapter.status()
    assert st["in_use"] == 0 and st["free"] == st["capacity"]
    _takes_a_new_call(board, adapter, "203")


def test_ok__ring_then_cancel_floods_leave_no_ghost_call(desk, tmp_path):
    """Six floods of INVITE-then-CANCEL, cancelled at once, after 50 ms and at random
    points while ringing, on every line; then every line is idle, nothing is in use, each
    call that rang has exactly one record, and every line takes a new call."""
    import random

    from sip_socket import RawSip
    board, adapter = desk
    sip = RawSip()
    target = ("127.0.0.1", adapter.front.port)
    rnd = random.Random(10)
    lines = ["201", "202", "203", "204", "901", "902"]
    sent = []
    try:
        for delay in ([0.0, 0.05, None, 0.05, 0.0, None]):
            batch = []
            for number in lines:
                cid, branch = sip.invite(number, target)
                batch.append((number, cid, branch))
            for number, cid, branch in batch:
                wait = rnd.uniform(0.0, 0.6) if delay is None else delay
                time.sleep(wait)
                sip.cancel(number, target, cid, branch)
            for number, cid, branch in batch:
                sent.append((number, cid, sip.finish(number, target, cid, branch)))
        assert all(code is not None for _, _, code in sent), sent
        try:
            wait_for(lambda: board.count(LineState.IDLE) == len(board.state.lines), 15,
                     "every line idle after the floods")
        except AssertionError:
            raise AssertionError(("lines not idle after the floods",
                                  board.call(lambda: {n: ln.state.value for n, ln in
                                                      board.state.lines.items()}),
                                  adapter.status()["calls"], sent[-12:])) from None
        st = adapter.status()
        assert st["in_use"] == 0 and st["free"] == st["capacity"], st
        recs = JsonLinesRecords(tmp_path / "calls.jsonl").read()
        ids = [r["id"] for r in recs]
        assert len(ids) == len(set(ids)), "a call recorded twice"
        rang = sum(1 for e in board.events if type(e).__name__ == "LineRinging")
        assert len(recs) == rang, (len(recs), rang)
        # Every line takes a call again: no "486 Line Busy" left behind.
        for number in lines:
            cid, branch = sip.invite(number, target)
            assert sip.wait(cid, lambda c: c == 180 or c >= 300, 5)[0] == 180, number
            assert sip.finish(number, target, cid, branch) == 487
    finally:
        sip.close()


def test_fail__an_end_reported_before_the_call_opens_nothing(desk):
    """'ended' before 'incoming' for the same call: the call ended; no line rings for it."""
    board, adapter = desk
    w = adapter.workers[0]
    adapter._on_event(w, msg.Ended(call="w0-1-998", code=487, reason="Request Terminated"))
    adapter._on_event(w, msg.Incoming(call="w0-1-998", user="204", caller="1", remote="<sip:1@x>",
                                      src="127.0.0.1:1", sip_call_id="late", t=time.time()))
    time.sleep(0.3)
    assert board.line("204") is LineState.IDLE and adapter.status()["in_use"] == 0


# -- finding 13: log file modes -------------------------------------------------------
@pytest.mark.parametrize("umask", [0o077, 0o002, 0o117])
def test_ok__workers_log_files_have_one_mode_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        w = WorkerProc(3, lambda *a: None, log_dir=tmp_path / "logs", limit=2)
        w.start()
    finally:
        os.umask(old)
    try:
        assert (tmp_path / "logs" / "worker3.log").stat().st_mode & 0o777 == 0o640
    finally:
        w.stop()


# -- finding 8: the daemon SIGKILLed, a stale front, a port taken ---------------------------
def _daemon(tmp_path, port, name="daemon"):
    out = open(tmp_path / f"{name}.out", "wb")
    proc = subprocess.Popen(python_cmd("firmware.runtime.daemon", "--sim", "--board", "desk",
                                       "--site", "boards/desk.site.toml", "--sip-port", port,
                                       "--socket", tmp_path / f"{name}.sock", "--no-web",
                                       "--data-dir", tmp_path / "var"),
                            stdout=out, stderr=subprocess.STDOUT, env=project_env())
    return proc, tmp_path / f"{name}.out"


def _ready(proc, out):
    wait_for(lambda: b"telephony ready" in out.read_bytes() or proc.poll() is not None, 90,
             "telephony ready")
    assert proc.poll() is None, out.read_text()


def _stop(proc):
    if proc.poll() is None:
        stop(proc, 20)


def test_fail__daemon_sigkilled_takes_every_child_with_it_and_a_restart_ends_a_stale_front(tmp_path):
    have_tools()
    port = free_port()
    var = str(tmp_path / "var")
    proc, out = _daemon(tmp_path, port)
    try:
        _ready(proc, out)
        children = _running(var)
        assert len(children) >= 5, children     # 2 workers, 2 positions, the front's tree
        proc.kill()                             # SIGKILL: no clean-up of its own
        proc.wait()
        wait_for(lambda: not _running(var), 15,
                 "every worker, position and Kamailio process gone with the daemon")
        # A front of this data dir left running anyway (by an older daemon, say): started
        # by hand, in a session of its own, from the config the daemon left behind.
        cfg = tmp_path / "var" / "telephony" / "front" / "kamailio.cfg"
        stale = subprocess.Popen(["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(cfg.parent)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        wait_for(lambda: len(_running(str(cfg))) > 1, 10, "the stale front up")
        stale_pids = _running(str(cfg))
        proc, out = _daemon(tmp_path, port, "second")
        _ready(proc, out)
        assert not [p for p in stale_pids if _alive(p)], "the stale front was left running"
        stale.wait(timeout=5)
        rc = subprocess.run(python_cmd("switchboard_tools.diag", "ring", "201", "--socket",
                                       tmp_path / "second.sock", "--json"),
                            capture_output=True, text=True, env=project_env(), timeout=60)
        assert rc.returncode == 0 and json.loads(rc.stdout)["rang"], rc.stdout + rc.stderr
    finally:
        _stop(proc)
    wait_for(lambda: not _running(var), 15, "everything stopped with the daemon")


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_fail__a_sip_port_someone_holds_is_a_clear_startup_error(tmp_path, kind):
    have_tools()
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            holder.listen()
        port = holder.getsockname()[1]
        proc, out = _daemon(tmp_path, port)
        try:
            assert proc.wait(timeout=60) == 2
        finally:
            _stop(proc)
    text = out.read_text()
    proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
    assert f"switchboard: the SIP front cannot listen on {proto}:127.0.0.1:{port}: " \
           "Address already in use" in text, text
    assert "Traceback" not in text and "telephony ready" not in text
    assert not _running(str(tmp_path / "var"))
