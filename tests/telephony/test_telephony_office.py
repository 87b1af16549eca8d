import pytest
"""Office lines: seize, dial on the position's dial pad, talk, release; a real callee."""

import time

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.core.state import Dial, LineState, Seize
from firmware.records.calls import JsonLinesRecords

from telephony_support import PeerProc, have_tools, telephony_board, tone_energy, wait_for

pytestmark = pytest.mark.telephony

DESK = load_board("boards/desk.toml")


def test_ok__seize_dial_talk_release(tmp_path):
    have_tools()
    callee = PeerProc(tmp_path, "callee", tone=440)           # the number dialled answers
    position = PeerProc(tmp_path, "position1")
    port = callee.uri.rsplit(":", 1)[1]
    p = tmp_path / "desk.site.toml"
    p.write_text('[front]\nport = 0\n[[trunks]]\nname = "gw"\nmode = "peer"\n'
                 f'peers = ["127.0.0.1"]\noutbound = true\ndial = "sip:{{number}}@127.0.0.1:{port}"\n')
    board = None
    try:
        board, adapter = telephony_board(DESK, load_site(p, DESK), tmp_path, {1: position.uri},
                                         workers=1)
        board.press("line-901")                              # seize the office line
        assert board.line("901") is LineState.OPERATOR
        for key in ("p1-dial-5", "p1-dial-5", "p1-dial-0", "p1-dial-1", "p1-dial-hash"):
            board.press(key)
        assert [c.digit for c in board.commands if isinstance(c, Dial)] == list("5501#")
        assert any(isinstance(c, Seize) and c.line == "901" for c in board.commands)
        callee.next("incoming", 10)                          # the number dialled rings
        callee.next("confirmed", 10)                         # and answers
        position.next("confirmed", 10)                       # the operator is on the call
        time.sleep(2.0)
        board.press("p1-release")
        callee.next("ended", 10)
        position.next("ended", 10)
        assert board.line("901") is LineState.IDLE
        energy, _ = tone_energy(position.dir / "call1.wav", 440)
        assert energy > 1000, "the callee's voice did not reach the operator"
        r = wait_for(lambda: JsonLinesRecords(tmp_path / "calls.jsonl").read(), 5, "a record")[-1]
        assert (r["line"], r["direction"], r["callee"], r["position"], r["outcome"]) == \
            ("901", "out", "5501", 1, "answered")
    finally:
        if board is not None:
            board.stop()
        callee.stop()
        position.stop()


def office_board(tmp_path, contact):
    port = contact.uri.rsplit(":", 1)[1]
    p = tmp_path / "desk.site.toml"
    p.write_text('[front]\nport = 0\n[[trunks]]\nname = "gw"\nmode = "peer"\n'
                 f'peers = ["127.0.0.1"]\noutbound = true\ndial = "sip:{{number}}@127.0.0.1:{port}"\n')
    position = PeerProc(tmp_path, "position1")
    try:
        board, adapter = telephony_board(DESK, load_site(p, DESK), tmp_path, {1: position.uri},
                                         workers=1)
    except BaseException:
        position.stop()
        raise
    return board, adapter, position


def test_ok__blind_transfer_released_while_the_contact_still_rings(tmp_path):
    have_tools()
    contact = PeerProc(tmp_path, "contact", answer_after=1.5)   # the customer's contact number
    board, adapter, position = office_board(tmp_path, contact)
    try:
        t = adapter.ring("202", "5550142")
        wait_for(lambda: board.line("202") is LineState.RINGING, 10, "202 ringing")
        board.press("line-202")
        position.next("confirmed", 10)
        adapter.transfer("202", "4155559999")
        contact.next("incoming", 10)                         # the contact rings...
        board.press("p1-release")                            # ...and the operator lets go
        assert t["ended_t"] is None
        contact.next("confirmed", 10)                        # the contact answers
        wait_for(lambda: board.line("202") is LineState.CUSTOMER, 10, "202 patched through")
        time.sleep(1.5)
        adapter.hang_up_test("202")                          # the caller hangs up
        contact.next("ended", 10)
        wait_for(lambda: board.line("202") is LineState.IDLE, 10, "202 idle")
        energy, _ = tone_energy(contact.dir / "call1.wav", 1000)
        assert energy > 1000, "the caller's voice did not reach the contact"
        r = wait_for(lambda: JsonLinesRecords(tmp_path / "calls.jsonl").read(), 5, "a record")[-1]
        assert (r["line"], r["outcome"], r["caller"]) == ("202", "transferred", "5550142")
    finally:
        board.stop()
        position.stop()
        contact.stop()


def wav_window_energy(path, hz, start_s, end_s):
    """Tone energy at ``hz`` between two times of a WAV (after waiting for it to be closed)."""
    import math
    import struct
    import wave
    tone_energy(path, hz)                                  # waits until the WAV is complete
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        w.setpos(int(start_s * rate))
        data = w.readframes(int((end_s - start_s) * rate))
    x = struct.unpack(f"<{len(data) // 2}h", data)
    k = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + k * s1 - s2, s1
    return math.sqrt(max(0.0, s1 * s1 + s2 * s2 - k * s1 * s2)) / max(1, len(x)) * 2


def test_ok__attended_transfer_consults_with_the_caller_on_hold_then_connects(tmp_path):
    have_tools()
    contact = PeerProc(tmp_path, "contact", tone=440, answer_after=0.5)
    board, adapter, position = office_board(tmp_path, contact)
    try:
        adapter.ring("203", "5550177")                      # the caller sends 1 kHz
        wait_for(lambda: board.line("203") is LineState.RINGING, 10, "203 ringing")
        board.press("line-203")
        position.next("confirmed", 10)
        adapter.transfer("203", "4155558888", consult=True)
        contact.next("confirmed", 10)                        # the contact answers: consult
        t_consult = time.time()
        time.sleep(2.5)
        board.press("p1-release")                            # connect them
        wait_for(lambda: board.line("203") is LineState.CUSTOMER, 10, "203 connected")
        t_connect = time.time()
        time.sleep(2.5)
        adapter.hang_up_test("203")
        contact.next("ended", 10)
        position.next("ended", 10)
        rec = contact.dir / "call1.wav"
        consult_s = t_connect - t_consult
        during = wav_window_energy(rec, 1000, 0.3, consult_s - 0.3)
        after = wav_window_energy(rec, 1000, consult_s + 0.5, consult_s + 2.0)
        assert after > 1000 and during < after / 20, (during, after)   # caller only after connect
        # the operator heard the contact while consulting
        assert tone_energy(position.dir / "call1.wav", 440)[0] > 150
        r = wait_for(lambda: JsonLinesRecords(tmp_path / "calls.jsonl").read(), 5, "a record")[-1]
        assert r["outcome"] == "transferred"
    finally:
        board.stop()
        position.stop()
        contact.stop()
