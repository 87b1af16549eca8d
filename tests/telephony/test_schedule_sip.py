"""Scheduled calls placed for real: the scheduler (clock moved forward) asks the board,
the board asks the telephony (PJSUA2 workers), and the far end is SIPp or a PJSUA2
phone on 127.0.0.1. The outcome comes back to the scheduler and is billed."""

import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from conftest import ROOT
from switchboard_tools.office import billing
from firmware.schedule import scheduler as schedule
from firmware.config.board import load_board
from firmware.records.recordset import call_from, check_customer
from firmware.config.site import load_site
from firmware.core.state import PlaceCall, PlacedCallEnded
from firmware.telephony.adapter import TelephonyAdapter
from firmware.telephony.front import free_port
from firmware.records.calls import JsonLinesRecords
from telephony_support import BoardLoop, PeerProc, finish, have_tools, tone_energy, wait_for

pytestmark = pytest.mark.telephony

UTC = timezone.utc
DESK = load_board(ROOT / "boards" / "desk.toml")
DESK_SITE = load_site(ROOT / "boards" / "desk.site.toml", DESK)
DUE = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)


def tone_wav(path, seconds=2, hz=1000):
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(path),
                    "synth", str(seconds), "sine", str(hz), "vol", "0.5"], check=True)
    return path


def sipp_uas(scenario, tmp_path, calls):
    """SIPp as the customer's phone, on a port of its own; returns (Popen, port)."""
    port = free_port()
    cmd = ["sipp", "-sf", str(ROOT / "tests" / "support" / "sipp" / scenario), "-i", "127.0.0.1", "-p", str(port),
           "-mi", "127.0.0.1", "-mp", str(free_port()), "-m", str(calls), "-t", "u1",
           "-timeout", "60s", "-timeout_error", "-trace_err", "-error_file", str(tmp_path / "sipp-err.log"),
           "-nostdin"]
    log = open(tmp_path / f"sipp-{scenario}.out", "wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path), port


def start_board(tmp_path, site):
    have_tools()
    clock = [DUE - timedelta(minutes=5)]
    loop = BoardLoop(DESK, tmp_path / "data")
    tel = TelephonyAdapter(DESK, site, run_dir=tmp_path / "tel", port=0, workers=1,
                           records=JsonLinesRecords(tmp_path / "calls.jsonl"))
    sched = schedule.ScheduleAdapter(tmp_path / "schedule.json", UTC, clock=lambda: clock[0], period_s=0.05)
    loop.add_adapter(tel)
    loop.add_adapter(sched)
    loop.start()
    assert tel.wait_ready(60), tel.error
    return loop, tel, sched, clock


@pytest.fixture
def board(tmp_path):
    """The board loop with the real telephony and the scheduler on a clock we move."""
    b = start_board(tmp_path, DESK_SITE)
    yield b
    b[0].stop()


@pytest.fixture
def no_answer(tmp_path):
    """SIPp as a phone nobody picks up, reached through the site's trunk, which
    dials numbers as sip:{number}@127.0.0.1:<SIPp's port>."""
    uas, port = sipp_uas("uas_no_answer.xml", tmp_path, calls=2)
    text = (ROOT / "boards" / "desk.site.toml").read_text().replace(
        'outbound = true\n', f'outbound = true\ndial = "sip:{{number}}@127.0.0.1:{port}"\n', 1)
    (tmp_path / "site.toml").write_text(text)
    b = start_board(tmp_path, load_site(tmp_path / "site.toml", DESK))
    yield (*b, uas)
    b[0].stop()
    if uas.poll() is None:
        uas.kill()
        uas.wait()


def log_of(loop, sched):
    return loop.call(lambda: list(sched.scheduler.log))


def test_ok__wakeup_call_answered_by_sipp_plays_the_message_and_is_billed(board, tmp_path):
    loop, tel, sched, clock = board
    uas, port = sipp_uas("uas_answer.xml", tmp_path, calls=1)
    try:
        msg = tone_wav(tmp_path / "wake.wav", seconds=2)
        loop.call(lambda: sched.scheduler.add({
            "id": "w1", "customer": "C1", "kind": "wakeup", "number": f"sip:5551234@127.0.0.1:{port}",
            "message": f"file:{msg}", "time": "06:30", "date": "2026-11-23", "repeat": "daily",
            "retries": 1, "retry_after_s": 60, "ring_s": 15}, clock[0]))
        assert not [c for c in loop.commands if isinstance(c, PlaceCall)]
        clock[0] = DUE                                            # the clock moves forward
        wait_for(lambda: any(isinstance(c, PlaceCall) for c in loop.commands), 5, "PlaceCall")
        log = wait_for(lambda: log_of(loop, sched), 30, "the outcome in the schedule's log")
        assert finish(uas, 20) == 0                               # SIPp: the call was answered and hung up
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.wait()
    assert (log[0]["outcome"], log[0]["attempts"], len(log[0]["calls"])) == ("answered", 1, 1)
    ended = [e for e in loop.events if isinstance(e, PlacedCallEnded)]
    assert [(e.outcome, e.call) for e in ended] == [("answered", log[0]["calls"][0])]
    rec = wait_for(lambda: JsonLinesRecords(tmp_path / "calls.jsonl").read(), 5, "the call record")[0]
    assert (rec["id"], rec["direction"], rec["kind"], rec["customer"], rec["schedule"], rec["outcome"]) == \
        (log[0]["calls"][0], "out", "wakeup", "C1", "w1", "answered")
    assert rec["line"] in ("901", "902")
    call = call_from(rec)
    talk = (call.ended - call.answered).total_seconds()
    assert 2.0 <= talk <= 5.0, f"the board hung up {talk:.1f} s after the answer; the message is 2 s"
    # billed from the record the telephony wrote
    cfg = billing.load_plans(ROOT / "plans" / "plans.toml")
    cust = check_customer({"id": "C1", "line": "201", "name": "Dr. A", "plan": "standard",
                           "contract_start": "2026-01-01"})
    month = f"{call.offered:%Y-%m}"
    st = billing.bill_month([cust], cfg, month, [call], (), (), UTC)[0][0]
    assert [(i.code, i.calls, str(i.amount)) for i in st.items if i.code == "wakeup"] == \
        [("wakeup", (rec["id"],), "0.50")]


def test_ok__no_answer_is_retried_after_a_scheduler_restart_then_given_up(no_answer, tmp_path):
    loop, tel, sched, clock, uas = no_answer
    try:
        loop.call(lambda: sched.scheduler.add({
            "id": "r1", "customer": "C2", "kind": "reminder", "number": "5559876",
            "message": "file:" + str(tone_wav(tmp_path / "r.wav", 1)), "time": "06:30", "date": "2026-11-23",
            "repeat": "once", "retries": 1, "retry_after_s": 120, "ring_s": 2}, clock[0]))
        clock[0] = DUE
        occ = wait_for(lambda: loop.call(lambda: [o for o in sched.scheduler.open.values()
                                                  if o.state == "retry"]), 20, "the first attempt to fail")[0]
        assert occ.calls and occ.calls[0].startswith("placed-")
        # The scheduler restarts (its state is on disk) before the retry is due.
        fresh = schedule.ScheduleAdapter(tmp_path / "schedule.json", UTC, clock=lambda: clock[0], period_s=0.05)

        def swap():
            sched.stop()
            loop.adapters[loop.adapters.index(sched)] = fresh
            fresh.start(loop.context())
        loop.call(swap)
        clock[0] = DUE + timedelta(minutes=1)
        assert loop.call(lambda: fresh.scheduler.open[occ.id].state) == "retry"   # not due yet
        clock[0] = DUE + timedelta(minutes=3)
        log = wait_for(lambda: log_of(loop, fresh), 20, "the second attempt to fail")
        assert finish(uas, 20) == 0
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.wait()
    assert (log[0]["outcome"], log[0]["attempts"], len(log[0]["calls"])) == ("no-answer", 2, 2)
    recs = wait_for(lambda: [r for r in JsonLinesRecords(tmp_path / "calls.jsonl").read()
                             if r["kind"] == "reminder"], 5, "two call records")
    assert [(r["outcome"], r["customer"], r["callee"]) for r in recs] == [("no-answer", "C2", "5559876")] * 2
    for r in recs:
        assert r["answered"] is None


def test_ok__spoken_message_reaches_the_phone(board, tmp_path):
    """A PJSUA2 phone answers and records what it hears: the tone played as the message."""
    loop, tel, sched, clock = board
    phone = PeerProc(tmp_path, "phone")
    try:
        msg = tone_wav(tmp_path / "m.wav", seconds=2, hz=1000)
        loop.call(lambda: sched.scheduler.add({
            "id": "w2", "customer": "C1", "kind": "wakeup", "number": phone.uri, "message": f"file:{msg}",
            "time": "06:30", "date": "2026-11-23", "ring_s": 10}, clock[0]))
        clock[0] = DUE
        phone.next("confirmed", 20)
        phone.next("ended", 20)
        log = wait_for(lambda: log_of(loop, sched), 10, "the outcome")
        assert log[0]["outcome"] == "answered"
    finally:
        phone.stop()
    energy, rms = tone_energy(phone.dir / "call1.wav", 1000)
    assert energy > 1000, f"the message's 1 kHz tone did not reach the phone ({energy:.0f}, rms {rms:.0f})"


def test_ok__text_message_is_spoken_by_espeak(board, tmp_path):
    """A message given as text is spoken (espeak-ng) into the call: the phone hears speech."""
    loop, tel, sched, clock = board
    text = "Good morning, it is half past six. This is your wake-up call."
    path = tel._message_file(text)
    import wave
    with wave.open(str(path)) as w:
        spoken_s = w.getnframes() / w.getframerate()
    assert spoken_s > 2.0 and tel._message_file(text) == path        # made once, then reused
    with pytest.raises(OSError, match="message file /nonexistent.wav does not exist"):
        tel._message_file("file:/nonexistent.wav")
    phone = PeerProc(tmp_path, "phone")
    try:
        loop.call(lambda: sched.scheduler.add({
            "id": "w3", "customer": "C1", "kind": "wakeup", "number": phone.uri, "message": text,
            "time": "06:30", "date": "2026-11-23", "ring_s": 10}, clock[0]))
        clock[0] = DUE
        phone.next("ended", 30)
        assert wait_for(lambda: log_of(loop, sched), 10, "the outcome")[0]["outcome"] == "answered"
    finally:
        phone.stop()
    with wave.open(str(phone.dir / "call1.wav")) as w:
        heard_s = w.getnframes() / w.getframerate()
    _, rms = tone_energy(phone.dir / "call1.wav", 1000)
    assert heard_s >= spoken_s - 0.5 and rms > 200, (heard_s, spoken_s, rms)
    json.dumps(tel.status())
