"""Real calls on the board: SIPp callers through Kamailio to PJSUA2 workers, keys acting on them."""

import socket
import time

import pytest

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.core.state import KeyChanged, LineCleared, LineRinging, LineState
from firmware.records.calls import JsonLinesRecords
from firmware.telephony.front import setups_per_worker_s

from telephony_support import (Uac, board_with_positions, finish, have_tools, sipp,
                               tone_energy, ulaw_tone, wait_for)

pytestmark = pytest.mark.telephony

DESK = load_board("boards/desk.toml")
DESK_SITE = load_site("boards/desk.site.toml", DESK)


@pytest.fixture
def desk(tmp_path):
    have_tools()
    with board_with_positions(DESK, DESK_SITE, tmp_path, port=0, workers=2) as desk:
        yield desk


def test_ok__a_call_rings_is_answered_carries_audio_and_is_recorded(desk, tmp_path):
    board, adapter, (pos1, pos2) = desk
    tone = ulaw_tone(tmp_path / "tone.wav", 1000, 4)
    caller = sipp("answered.xml", adapter.front.port, ["201"], tmp_path, hold_ms=2500, tone=tone)
    wait_for(lambda: board.line("201") is LineState.RINGING, 10, "line 201 ringing")
    ring = next(e for e in board.events if isinstance(e, LineRinging))
    assert ring.line == "201" and ring.caller.startswith("41555502") and ring.call
    assert adapter.status()["in_use"] == 1
    board.press("line-201")
    assert board.line("201") is LineState.OPERATOR
    pos1.next("confirmed", 10)          # the position's leg was set up
    assert finish(caller, 30) == 0      # SIPp got 180, 200, talked, hung up
    wait_for(lambda: board.line("201") is LineState.IDLE, 10, "line 201 idle after hang-up")
    assert any(isinstance(e, LineCleared) and e.line == "201" for e in board.events)
    pos1.next("ended", 10)
    energy, rms = tone_energy(pos1.dir / "call1.wav", 1000)
    assert energy > 1000, f"the caller's tone did not reach position 1 ({energy:.0f})"
    assert not (pos2.dir / "call1.wav").exists(), "position 2 was joined to a call it did not take"
    rec = wait_for(lambda: JsonLinesRecords(tmp_path / "calls.jsonl").read(), 5, "a call record")
    r = rec[0]
    assert set(r) == {"id", "line", "direction", "kind", "caller", "callee", "offered",
                      "answered", "ended", "rings", "position", "hold_s", "outcome"}
    assert (r["line"], r["direction"], r["kind"], r["position"], r["outcome"]) == \
        ("201", "in", "call", 1, "answered")
    assert r["offered"] <= r["answered"] <= r["ended"] and r["offered"].endswith("Z")
    assert adapter.status()["in_use"] == 0


def heard_max(adapter, t, seconds):
    """The loudest level the test caller heard over ``seconds`` (sampled)."""
    top, end = 0, time.time() + seconds
    while time.time() < end:
        lv = adapter.levels(t["worker"], t["id"])
        top = max(top, (lv or {}).get("heard") or 0)
        time.sleep(0.1)
    return top


def test_ok__hold_plays_a_tone_resume_stops_it_release_hangs_up(desk, tmp_path):
    board, adapter, (pos1, _) = desk
    t = adapter.ring("203", "5550123")          # a second PJSUA2 endpoint calls in
    wait_for(lambda: board.line("203") is LineState.RINGING, 10, "203 ringing")
    assert next(e for e in board.events if isinstance(e, LineRinging)).caller == "5550123"
    board.press("line-203")
    wait_for(lambda: t["answered_t"], 10, "the caller answered")
    pos1.next("confirmed", 10)
    assert heard_max(adapter, t, 1.0) == 0       # the position is silent: nothing to hear
    board.press("p1-hold")
    assert board.line("203") is LineState.HELD
    pos1.next("ended", 10)                       # the position's leg is freed while held
    assert heard_max(adapter, t, 3.5) > 0, "no hold tone reached the caller"
    board.press("line-203")
    assert board.line("203") is LineState.OPERATOR
    pos1.next("confirmed", 10)                   # a new leg to the position
    time.sleep(0.5)                              # the level meter keeps its last reading a while
    assert heard_max(adapter, t, 3.5) == 0, "the hold tone went on after the call was resumed"
    board.press("p1-release")
    wait_for(lambda: t["ended_t"], 10, "the caller hung up on by the board")
    assert board.line("203") is LineState.IDLE
    r = wait_for(lambda: JsonLinesRecords(tmp_path / "calls.jsonl").read(), 5, "a record")[-1]
    assert r["outcome"] == "answered" and r["caller"] == "5550123" and r["hold_s"] >= 3.0


def test_ok__a_caller_hanging_up_unanswered_is_abandoned(desk, tmp_path):
    board, adapter, _ = desk
    adapter.ring("204")
    wait_for(lambda: board.line("204") is LineState.RINGING, 10, "204 ringing")
    time.sleep(0.5)
    assert adapter.hang_up_test("204")
    wait_for(lambda: board.line("204") is LineState.IDLE, 10, "204 idle")
    r = wait_for(lambda: JsonLinesRecords(tmp_path / "calls.jsonl").read(), 5, "a record")[-1]
    assert (r["line"], r["outcome"], r["answered"], r["position"]) == ("204", "abandoned", None, None)


def test_fail__a_second_caller_on_a_ringing_line_hears_busy(desk):
    board, adapter, _ = desk
    first = adapter.ring("201")
    wait_for(lambda: board.line("201") is LineState.RINGING, 10, "201 ringing")
    second = adapter.ring("201")
    wait_for(lambda: second["ended_t"], 10, "the second caller turned away")
    assert second["code"] == 486 and first["ended_t"] is None
    assert adapter.status()["turned_away"] == 1


def test_ok__a_burst_of_call_attempts_kills_no_worker(desk):
    """A PJSUA2 process aborts when its I/O queue fills (each call's RTP sockets are freed
    500 ms after it ends); the front paces set-ups per worker (503 beyond) and spreads them.
    The burst is more than two seconds' worth of the pace, sent at once (in quick waves)."""
    board, adapter, _ = desk
    uac = Uac()
    uac.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)   # the burst's replies
    port = adapter.front.port
    pace = setups_per_worker_s([(w.port, w.maxload) for w in adapter.workers])
    n = 2 * pace * len(adapter.workers) + 60
    calls, t0 = [], time.time()
    for i in range(n):
        number = ("201", "202", "203", "204")[i % 4]
        cid, branch, _ = uac.invite(number, "127.0.0.1", port)
        calls.append((number, cid, branch))
        if i % 20 == 19:
            time.sleep(0.02)            # waves: keep within the sockets' receive buffers
    # As a phone does (RFC 3261 timer A), an INVITE with no reply at all is sent again after
    # 0.5 s, 1 s, 2 s: a datagram the loaded machine dropped in the burst is not a lost call.
    for backoff in (0.5, 1.0, 2.0):
        time.sleep(backoff)
        for number, cid, branch in calls:
            if not uac.replies.get(cid):
                uac.sock.sendto(uac._msg("INVITE", number, "127.0.0.1", port, cid, branch),
                                ("127.0.0.1", port))
    codes, deadline = [], time.time() + 30          # one deadline for every answer
    for _number, cid, _branch in calls:
        r = uac.wait(cid, lambda c: c == 180 or c >= 300, timeout=max(0.05, deadline - time.time()))
        codes.append(r[1] if r else None)
    for (number, cid, branch), c in zip(calls, codes):
        if c == 180:
            uac.cancel(number, "127.0.0.1", port, cid, branch)
    assert time.time() - t0 < 60
    missing = [i for i, c in enumerate(codes) if c is None]
    assert not missing, (f"{len(missing)} of {n} attempts got no answer at all (e.g. #{missing[:5]}): "
                         f"{ {c: codes.count(c) for c in set(codes)} }")
    # paced: some asked to retry (503), the rest rang or found their line ringing (486, or
    # 603 for one whose line filled while its set-up was under way)
    assert 180 in codes and 503 in codes and set(codes) <= {180, 486, 503, 603}, codes
    time.sleep(1.5)
    assert all(w.proc.poll() is None for w in adapter.workers), "a worker died"
    wait_for(lambda: board.count(LineState.IDLE) == len(DESK.lines), 15, "every line idle again")
    t = adapter.ring("201")                       # and the board still takes calls
    try:
        wait_for(lambda: board.line("201") is LineState.RINGING, 10, "201 ringing after the burst")
    except AssertionError:
        raise AssertionError((t, adapter.line_call, board.line("201"), adapter.status()["calls"])) from None
    adapter.hang_up_test("201")


def test_ok__split_two_positions_two_conversations_each_in_its_own_earpiece(desk, tmp_path):
    board, adapter, (pos1, pos2) = desk
    board.post(KeyChanged("split", True))        # the position-split key, turned
    a = sipp("answered.xml", adapter.front.port, ["201"], tmp_path, hold_ms=3000,
             tone=ulaw_tone(tmp_path / "a.wav", 1000, 5))
    b = sipp("answered.xml", adapter.front.port, ["202"], tmp_path, hold_ms=3000,
             tone=ulaw_tone(tmp_path / "b.wav", 600, 5))
    wait_for(lambda: board.count(LineState.RINGING) == 2, 10, "both lines ringing")
    board.press("line-201")                      # half 1: position 1
    board.press("line-202")                      # half 2: position 2, at the same time
    assert board.call(lambda: (board.state.lines["201"].position,
                               board.state.lines["202"].position)) == (1, 2)
    assert finish(a, 30) == 0 and finish(b, 30) == 0
    pos1.next("ended", 10)
    pos2.next("ended", 10)
    one = (tone_energy(pos1.dir / "call1.wav", 1000)[0], tone_energy(pos1.dir / "call1.wav", 600)[0])
    two = (tone_energy(pos2.dir / "call1.wav", 1000)[0], tone_energy(pos2.dir / "call1.wav", 600)[0])
    assert one[0] > 1000 and one[1] < one[0] / 20, one      # caller A, and only A, at position 1
    assert two[1] > 1000 and two[0] < two[1] / 20, two      # caller B, and only B, at position 2


def test_ok__a_worker_that_dies_is_restarted_on_its_port_and_the_fault_clears(desk):
    board, adapter, _ = desk
    t = adapter.ring("202")
    wait_for(lambda: board.line("202") is LineState.RINGING, 10, "202 ringing")
    victim = next(w for w in adapter.workers if t["board_call"] in w.calls)
    port = victim.port
    victim.proc.kill()                                  # as an abort in PJSUA2 would
    wait_for(lambda: board.line("202") is LineState.IDLE, 10, "the lost call cleared")
    wait_for(lambda: adapter.status()["worker_restarts"] == 1, 20, "the worker restarted")
    wait_for(lambda: board.faults() == {}, 10, "the fault cleared")
    assert any(e.source == f"worker {victim.index}" and e.message for e in board.events
               if type(e).__name__ == "Fault")
    new = adapter.workers[victim.index]
    assert new is not victim and new.port == port and new.proc.poll() is None
    adapter.hang_up_test("202")
    # Both workers take calls again (3 test callers + 3 calls fill the desk's 6 slots).
    tests = [adapter.ring(line) for line in ("201", "203", "204")]
    wait_for(lambda: board.count(LineState.RINGING) == 3, 10, "three lines ringing")
    assert not any(t["code"] for t in tests)
