"""Call recording over real SIP: a customer with record_calls has the operator's
conversation recorded in the worker, one WAV per call, tied to the call record and the
slip taken on it, listed by switchboard-messages and served to the dead box; a
recording that cannot start leaves the call going."""

import json
import math
import struct
import subprocess
import time
import wave

import pytest

from conftest import project_env, python_cmd
from board_support import wait_for
from switchboard_tools.diag import Client
from firmware.timeclock.adapter import read_call_records
from firmware.timeclock.customers import Customers
from test_telephony_daemon import diag, site_daemon

pytestmark = pytest.mark.telephony

MARY = {"id": "marys-gloves", "name": "Mary's Gloves", "line": "201", "kind": "Shop",
        "answer": "{name}, this is {operator}", "instructions": [], "collect": ["name"],
        "pronounce": "", "emergency": [], "on_call": [], "alternate": [], "holidays": [],
        "delivery": {"method": "hold", "to": None}, "plan": "Basic 100",
        "contract_start": "2026-01-01", "notice_date": None, "last_month_prepaid": False,
        "record_calls": True}
ACME = {**MARY, "id": "acme", "name": "Acme", "line": "202", "record_calls": False}


def rms(path):
    with wave.open(str(path)) as w:
        frames = w.readframes(w.getnframes())
        seconds = w.getnframes() / w.getframerate()
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    return seconds, math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


def control(sock, cmd, **args):
    """The daemon's raw reply to one control command (switchboard-diag's client)."""
    c = Client(sock)
    try:
        c.send(cmd, **args)
        return c.read()
    finally:
        c.close()


def test_ok__conversation_recorded_tied_listed_served_and_a_failure_never_stops_the_call(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    cs = Customers(data)
    cs.add(MARY)
    cs.add(ACME)
    cs.close()
    with site_daemon(tmp_path, b"telephony ready", "--data-dir", data) as sock:
        rc, r, err = diag(sock, "ring", "201", "--caller", "5550123")
        assert rc == 0 and r["rang"], (r, err)
        call = r["call"]
        diag(sock, "tap", "line-201")                       # the operator answers: recording
        rc, r, err = diag(sock, "take-message", "201", "Mrs Lee: ring back")
        assert rc == 0, err
        slip = r["stamp"]["slip"]
        time.sleep(2.0)
        diag(sock, "hangup", "201")
        diag(sock, "tap", "p1-release")
        rec = wait_for(lambda: next((x for x in read_call_records(data / "calls.jsonl")
                                     if x["id"] == call), None), 15, "the call record")
        path = rec["recording"]
        assert path.startswith(str(data / "recordings")) and path.endswith(f"-{call}.wav")
        seconds, level = wait_for(lambda: (lambda s: s if s[0] > 1.0 else None)(rms(path)), 15,
                                  "the WAV closed with the conversation in it")
        assert level > 300, f"the caller's test tone is in the recording (RMS {level:.0f})"
        # Listed with the slip taken on the call, and served to the dead box.
        r = subprocess.run(python_cmd("switchboard_tools.messages", "--data", data, "recordings",
                                      "--json"), env=project_env(), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        [listed] = json.loads(r.stdout)
        assert listed["call"] == call and listed["slips"] == [slip] and listed["kept"]
        r = control(sock, "recording", call=call)             # what the dead box plays
        assert r["ok"] and r["result"]["path"] == path, r
        # A line without record_calls is not recorded.
        rc, r, err = diag(sock, "ring", "202")
        diag(sock, "tap", "line-202")
        diag(sock, "hangup", "202")
        diag(sock, "tap", "p1-release")
        rec = wait_for(lambda: next((x for x in read_call_records(data / "calls.jsonl")
                                     if x["id"] == r["call"]), None), 15, "202's call record")
        assert "recording" not in rec
        # The recordings folder cannot be made: the call goes on, answered, unrecorded.
        day = time.strftime("%Y-%m-%d")
        for f in (data / "recordings" / day).iterdir():
            f.unlink()
        (data / "recordings" / day).rmdir()
        (data / "recordings" / day).write_text("in the way")
        rc, r, err = diag(sock, "ring", "201", "--caller", "5550123")
        diag(sock, "tap", "line-201")
        rc, st, _ = diag(sock, "status")
        assert next(ln for ln in st["lines"] if ln["number"] == "201")["state"] == "operator"
        diag(sock, "hangup", "201")
        diag(sock, "tap", "p1-release")
        rec = wait_for(lambda: next((x for x in read_call_records(data / "calls.jsonl")
                                     if x["id"] == r["call"]), None), 15, "the unrecorded call's record")
        assert rec["outcome"] == "answered" and "recording" not in rec
