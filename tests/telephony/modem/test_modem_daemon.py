"""The daemon as a process with an analog line on a (simulated) USB voice modem.

The modem is ``SimModem`` on a real pseudo-terminal pair behind a by-id style symlink,
paced at 8000 bytes/s; the position's headset is an ALSA file-plugin card; the keys are
pressed with switchboard-diag. Line 901 (an office line of the desk board) is the analog
line's.
"""

import statistics
import subprocess
import time

import pytest

from conftest import project_env, python_cmd
from alsa_fixture import FakeCard, best_tone, tone, tone_level
from telephony_support import have_tools, wait_for
from procs import diag_json, stop

from firmware.telephony.modem.sim import SimModem, tone_source
from firmware.records.calls import JsonLinesRecords

pytestmark = [pytest.mark.telephony, pytest.mark.audio]
RATE = 16000


class Rig(dict):
    """The daemon as a process, with a simulated modem as line 901's and one headset."""


def start_rig(tmp, profile="conexant", stuck=False):
    (tmp / "by-id").mkdir()
    sim = SimModem(profile, link=tmp / "by-id" / f"usb-{profile}_USB_Modem_24680246-if00",
                   stuck=stuck)
    card = FakeCard(tmp / "home", ["hs1"], rate=RATE)
    card.start()
    site = tmp / "desk.site.toml"
    site.write_text(f'[front]\nport = 0\n[[trunks]]\nname = "pots1"\nmode = "modem"\n'
                    f'device = "{sim.path}"\nline = "901"\nsilence_s = 3\n'
                    '[[positions]]\nheadset = "hs1"\n')
    out = open(tmp / "daemon.out", "wb")
    proc = subprocess.Popen(python_cmd("firmware.runtime.daemon", "--sim", "--board", "desk",
                                       "--site", site, "--sip-port", "0", "--socket",
                                       tmp / "ctl.sock", "--no-web", "--data-dir", tmp / "var"),
                            stdout=out, stderr=subprocess.STDOUT, env=project_env(**card.env()))
    r = Rig(sock=tmp / "ctl.sock", tmp=tmp, sim=sim, card=card, proc=proc, out=out)
    try:
        wait_for(lambda: b"telephony ready" in (tmp / "daemon.out").read_bytes()
                 or proc.poll() is not None, 90, "telephony ready")
        assert proc.poll() is None, (tmp / "daemon.out").read_text()
        wait_for(lambda: (status(r).get("modems") or {}).get("pots1", {}).get("state") == "ready",
                 30, "the modem ready")
    except BaseException:
        stop_rig(r)
        raise
    return r


def stop_rig(r):
    stop(r["proc"], 20)
    r["out"].close()
    r["card"].stop()
    r["sim"].stop()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    have_tools()
    r = start_rig(tmp_path_factory.mktemp("modem"))
    try:
        yield r
    finally:
        stop_rig(r)


def diag(r, *args, timeout=60):
    return diag_json(r["sock"], *args, timeout=timeout)


def status(r):
    return diag(r, "status")


def line901(r):
    return next(ln for ln in status(r)["lines"] if ln["number"] == "901")


def records(r):
    path = r["tmp"] / "var" / "calls.jsonl"
    return JsonLinesRecords(path).read() if path.exists() else []   # checksummed lines


@pytest.fixture(autouse=True)
def line_left_idle(request):
    """A test that failed mid-call must not leave the next one a line in use."""
    yield
    if "rig" in request.fixturenames:
        r = request.getfixturevalue("rig")
        if r["sim"].plugged and (r["sim"].streaming or line901(r)["state"] != "idle"):
            r["sim"].hang_up("busy")
            diag(r, "tap", "p1-release")
            wait_for(lambda: line901(r)["state"] == "idle" and not r["sim"].streaming, 15,
                     "901 idle after the test")


def answered_call(r, number, name=None):
    sim, card = r["sim"], r["card"]
    sim.ring(number, name, period=1.0, rings=30, source=tone_source(1000, amp=12000))
    wait_for(lambda: line901(r)["state"] == "ringing", 15, "901 ringing")
    st = status(r)
    assert st["lamps"]["line-901"]["cadence"] == "flash"
    wait_for(lambda: line901(r)["caller"] == (number or "unknown"), 10, "the caller's number")
    diag(r, "tap", "line-901")                       # the operator answers
    wait_for(lambda: line901(r)["state"] == "operator", 10, "901 answered")
    wait_for(lambda: sim.streaming, 10, "the modem off-hook in full duplex")
    return sim, card


def test_ok__ring_card_answer_audio_both_ways_busy_hang_up_record(rig):
    r = rig
    n0 = len(records(r))
    sim, card = answered_call(r, "5551234", "JOHN DOE")
    time.sleep(2.0)
    since = time.monotonic() - 1.5
    ear = card.ear("hs1", since)
    # the line's tone (amplitude 12000 on the line) in the earpiece: full level, nothing else
    assert tone_level(ear, RATE, 1000) > 4000, "the line's 1 kHz tone did not reach the earpiece"
    # and nothing else: no 440 Hz (what the operator will say) in most of it; judged by the
    # median quarter second, since a frame lost under load clicks across the whole band
    quarters = [ear[i:i + RATE // 2] for i in range(0, len(ear) - RATE // 2 + 1, RATE // 2)]
    assert statistics.median(tone_level(q, RATE, 440) for q in quarters) < 400
    # the operator speaks: 440 Hz into the microphone must come out on the analog line
    t_say = time.monotonic()
    card.say("hs1", tone(440, 2.5, RATE))
    time.sleep(2.5)
    down = sim.heard_pcm(t_say)
    assert len(down) > 8000 * 2, "nothing was sent down the line"
    l440, l1000 = best_tone(down, 8000, 1.5, 440)[0], tone_level(down, 8000, 1000)
    assert l440 > 4000 and l1000 < l440 / 10, (l440, l1000)  # amplitude 16384 spoken
    diag(r, "tap", "p1-hold")                         # hold: the hold tone goes down the line
    wait_for(lambda: line901(r)["state"] == "held", 10, "901 held")
    t_hold = time.monotonic()
    time.sleep(3.5)                                   # the hold tone beeps every 3 s
    held = sim.heard_pcm(t_hold)
    assert best_tone(held, 8000, 0.4, 425)[0] > 1000, "no hold tone on the line"
    diag(r, "tap", "line-901")                        # picked up again
    wait_for(lambda: line901(r)["state"] == "operator", 10, "901 resumed")
    sim.hang_up("busy")                               # busy tone + DLE b
    wait_for(lambda: line901(r)["state"] == "idle", 10, "901 idle after busy tone")
    assert status(r)["lamps"]["line-901"]["cadence"] == "dark"
    wait_for(lambda: len(records(r)) > n0, 5, "the call record")
    rec = records(r)[-1]
    assert rec["line"] == "901" and rec["caller"] == "5551234" and rec["outcome"] == "answered"
    assert rec["answered"] and rec["ended"] and rec["position"] == 1
    wait_for(lambda: not sim.off_hook and not sim.streaming, 5, "the modem back on-hook")
    text = subprocess.run(python_cmd("switchboard_tools.diag", "status", "--socket", r["sock"]),
                          capture_output=True, text=True, env=project_env()).stdout
    assert "modem trunk pots1 (line 901, " in text and ": ready, conexant (CONEXANT 56000)" in text


def test_ok__the_lamp_flashes_at_the_first_ring_and_the_number_follows(rig):
    r = rig
    sim = r["sim"]
    n0 = len(records(r))
    sim.ring("5553344", "JANE ROE", cid="later", period=6.0, rings=5,
             source=tone_source(1000, amp=12000))
    wait_for(lambda: line901(r)["state"] == "ringing", 15, "901 ringing")
    st = status(r)
    assert sim.cid_blocks_sent == 0                  # it flashes before any caller ID came
    assert st["lamps"]["line-901"]["cadence"] == "flash"
    assert next(ln for ln in st["lines"] if ln["number"] == "901")["caller"] == "unknown"
    sim.send_caller_id()                             # the block between ring 1 and ring 2
    wait_for(lambda: line901(r)["caller"] == "5553344", 10, "the number on the line's card")
    diag(r, "tap", "line-901")
    wait_for(lambda: sim.streaming, 10, "answered: the modem in full duplex")
    sim.hang_up("busy")
    wait_for(lambda: line901(r)["state"] == "idle", 10, "901 idle")
    wait_for(lambda: len(records(r)) > n0, 5, "the call record")
    assert records(r)[-1]["caller"] == "5553344" and records(r)[-1]["outcome"] == "answered"


def test_fail__a_blocked_caller_is_refused_once_its_caller_id_comes(rig):
    r = rig
    sim = r["sim"]
    n0 = len(records(r))
    block = python_cmd("switchboard_tools.customers", "--data", r["tmp"] / "var", "block",
                       "5550666", "--note", "abusive")
    assert subprocess.run(block, env=project_env(), capture_output=True, timeout=30).returncode == 0
    b0 = status(r)["timeclock"]["blocked"]["count"]
    try:
        sim.ring("5550666", cid="later", period=1.0, rings=4, source=tone_source(1000, amp=12000))
        wait_for(lambda: line901(r)["state"] == "ringing", 15, "901 ringing at the first RING")
        sim.send_caller_id()                         # the number is on the block list
        wait_for(lambda: status(r)["timeclock"]["blocked"]["count"] > b0, 10, "refused")
        wait_for(lambda: line901(r)["state"] == "idle", 10, "901 idle again")
        assert status(r)["timeclock"]["blocked"]["last"]["caller"] == "5550666"
        # it rings on at the exchange, unanswered, until the caller gives up
        wait_for(lambda: not sim.ringing, 15, "the caller gave up ringing")
        assert not sim.off_hook and line901(r)["state"] == "idle"
        assert len(records(r)) == n0                 # refused, as before it rang: no record
    finally:
        unblock = python_cmd("switchboard_tools.customers", "--data", r["tmp"] / "var",
                             "unblock", "5550666")
        subprocess.run(unblock, env=project_env(), capture_output=True, timeout=30)
        # the next call is a new ring cycle only once the gateway has seen this one end
        wait_for(lambda: (status(r)["modems"]["pots1"].get("last") or {}).get("ev")
                 == "ring_stopped", 30, "the refused call's rings ended")


def test_ok__far_end_goes_silent_without_any_code(rig):
    r = rig
    n0 = len(records(r))
    sim, _ = answered_call(r, None)                   # a caller with no caller ID at all
    time.sleep(1.0)
    t0 = time.monotonic()
    sim.hang_up("silence")                            # the line goes quiet, nothing else
    wait_for(lambda: line901(r)["state"] == "idle", 15, "901 idle after silence")
    assert time.monotonic() - t0 >= 2.5               # silence_s = 3 in the site file
    wait_for(lambda: len(records(r)) > n0, 5, "the call record")
    assert records(r)[-1]["caller"] == "unknown" and records(r)[-1]["outcome"] == "answered"


def test_ok__trunk_test_hears_dial_tone(rig):
    r = rig
    rep = diag(r, "test-call", "901", "--talk-s", "1")
    assert rep["ok"] and rep["off_hook"] and rep["dial_tone"] and rep["dial_tone_event"], rep
    assert not r["sim"].off_hook


def test_ok__office_line_dials_out_on_the_modem(rig):
    r = rig
    sim = r["sim"]
    sim.answer_source = tone_source(1000, amp=12000)
    sim.dial_result = "VCON"
    diag(r, "tap", "line-901")                         # seize the office line
    for d in "5550100":
        diag(r, "tap", f"p1-dial-{d}")
    diag(r, "tap", "p1-dial-hash")
    wait_for(lambda: sim.dialled and sim.dialled[-1] == "5550100", 20, "the modem dialled")
    wait_for(lambda: sim.streaming, 10, "the outgoing call in voice")
    time.sleep(1.5)
    assert tone_level(r["card"].ear("hs1", time.monotonic() - 1.0), RATE, 1000) > 4000
    assert "ATDT5550100;" in sim.commands              # the Conexant's way: then the voice set-up
    diag(r, "tap", "p1-dial-4")                        # keys during the call: DTMF with +VTS
    wait_for(lambda: sim.vts == ["4"], 10, "AT+VTS=4")
    wait_for(lambda: sim.streaming, 10, "back in full duplex after the digit")
    time.sleep(1.0)
    assert tone_level(r["card"].ear("hs1", time.monotonic() - 0.8), RATE, 1000) > 4000
    diag(r, "tap", "p1-release")
    wait_for(lambda: not sim.off_hook and not sim.streaming, 10, "back on-hook")
    wait_for(lambda: line901(r)["state"] == "idle", 10, "901 idle")


def test_fail__unplugged_mid_call_fault_lamp_failed_record_and_back(rig):
    r = rig
    n0 = len(records(r))
    sim, _ = answered_call(r, "5559876")
    sim.unplug()
    wait_for(lambda: "trunk pots1" in status(r)["faults"], 10, "the fault naming the trunk")
    st = status(r)
    assert "unplugged" in st["faults"]["trunk pots1"] and st["lamps"]["fault"]["cadence"] != "dark"
    wait_for(lambda: line901(r)["state"] == "idle", 10, "the call ended")
    wait_for(lambda: len(records(r)) > n0, 5, "the call record")
    assert records(r)[-1]["outcome"] == "failed" and records(r)[-1]["caller"] == "5559876"
    sim.plug()                                         # plugged back in: reopened
    wait_for(lambda: "trunk pots1" not in status(r)["faults"], 30, "the fault cleared")
    assert status(r)["modems"]["pots1"]["state"] == "ready"


def test_fail__a_gateway_that_dies_is_restarted(rig):
    r = rig
    import os
    import signal
    n0 = len(records(r))
    answered_call(r, "5550002")                       # a call in progress when it dies
    pid = status(r)["modems"]["pots1"]["pid"]
    os.kill(pid, signal.SIGKILL)
    # one status read: the new gateway may clear the fault by the next (a second or two)
    fault = wait_for(lambda: status(r)["faults"].get("trunk pots1"), 10, "the fault naming the trunk")
    assert "exited" in fault
    wait_for(lambda: line901(r)["state"] == "idle", 10, "the call ended")
    wait_for(lambda: len(records(r)) > n0, 5, "the call record")
    assert records(r)[-1]["outcome"] == "failed" and records(r)[-1]["caller"] == "5550002"
    wait_for(lambda: status(r)["modems"]["pots1"]["state"] == "ready"
             and status(r)["modems"]["pots1"]["pid"] != pid, 30, "a new gateway, modem ready")
    wait_for(lambda: "trunk pots1" not in status(r)["faults"], 10, "the fault cleared")
    assert status(r)["modems"]["pots1"]["restarts"] == 1
    answered_call(r, "5550001")                       # and it carries calls again
    r["sim"].hang_up("busy")
    wait_for(lambda: line901(r)["state"] == "idle", 10, "901 idle")


@pytest.mark.parametrize("profile,stuck,number,name", [
    ("usr", False, "5552468", None),          # 8-bit linear, DLE H; caller ID without NAME
    ("multitech", True, None, None),          # no hang-up codes; stuck in duplex at start;
])                                            # no caller ID at all
def test_ok__other_profiles_through_the_daemon(tmp_path, profile, stuck, number, name):
    have_tools()
    r = start_rig(tmp_path, profile, stuck)
    try:
        assert status(r)["modems"]["pots1"]["profile"] == profile
        sim = r["sim"]
        if number is None:
            sim.ring(cid=False, period=1.0, rings=30, source=tone_source(1000, amp=12000))
        else:
            sim.ring(number, name, period=1.0, rings=30, source=tone_source(1000, amp=12000))
        wait_for(lambda: line901(r)["state"] == "ringing", 15, "901 ringing")
        wait_for(lambda: line901(r)["caller"] == (number or "unknown"), 10, "the caller ID")
        diag(r, "tap", "line-901")
        wait_for(lambda: sim.streaming, 10, "off-hook")
        time.sleep(2.0)
        assert tone_level(r["card"].ear("hs1", time.monotonic() - 1.5), RATE, 1000) > 4000
        t0 = time.monotonic()
        sim.hang_up("busy")          # MultiTech: busy tone only, no DLE b: heard in the audio
        # generous: 4 s of tone heard in real time, then the hang-up, on a loaded machine
        wait_for(lambda: line901(r)["state"] == "idle", 30, "901 idle after busy tone")
        if profile == "multitech":
            assert time.monotonic() - t0 >= 3.5          # the 4 s of tone, not a code
        wait_for(lambda: records(r), 5, "the call record")
        assert records(r)[-1]["outcome"] == "answered"
    finally:
        stop_rig(r)
