"""The board's features on a modem caller, through the daemon as a process.

Two simulated modems (``SimModem`` on pseudo-terminals behind by-id style links): pots1
rings customer line 201, which has a customer's phone in the site file (a PJSUA2 peer
that answers after a second: the source of secrecy on a line the board does not own), and
pots2 rings customer line 202 (half 2 of the desk board). Transfers go out over a peer
trunk to a contact number (another PJSUA2 peer). Two positions, each with an ALSA
file-plugin headset; keys are pressed with switchboard-diag.
"""

import subprocess
import time
import wave

import pytest

from conftest import project_env, python_cmd
from alsa_fixture import FakeCard, best_tone, tone, tone_level
from peers import PeerProc
from procs import diag_json, stop
from telephony_support import have_tools, tone_energy, wait_for

from firmware.records.calls import JsonLinesRecords
from firmware.telephony.modem.sim import SimModem, tone_source

pytestmark = [pytest.mark.telephony, pytest.mark.audio]
RATE = 16000
LINE_HZ = 1000          # what each analog caller sends
FAR_HZ = 440            # what the customer's phone and the contact send


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    have_tools()
    tmp = tmp_path_factory.mktemp("modemboard")
    (tmp / "by-id").mkdir()
    r = {"tmp": tmp, "sock": tmp / "ctl.sock"}
    r["sim1"] = SimModem("conexant", link=tmp / "by-id" / "usb-Conexant_USB_Modem_1-if00")
    r["sim2"] = SimModem("usr", link=tmp / "by-id" / "usb-USR_5637_2-if00")
    r["customer"] = PeerProc(tmp, "customer", tone=FAR_HZ, answer_after=1.0)
    r["contact"] = PeerProc(tmp, "contact", tone=FAR_HZ, answer_after=1.0)
    card = r["card"] = FakeCard(tmp / "home", ["hs1", "hs2"], rate=RATE)
    card.start()
    contact_port = r["contact"].uri.rsplit(":", 1)[1]
    site = tmp / "desk.site.toml"
    site.write_text(
        '[front]\nport = 0\n'
        f'[[trunks]]\nname = "pots1"\nmode = "modem"\ndevice = "{r["sim1"].path}"\nline = "201"\n'
        f'[[trunks]]\nname = "pots2"\nmode = "modem"\ndevice = "{r["sim2"].path}"\nline = "202"\n'
        '[[trunks]]\nname = "gw"\nmode = "peer"\npeers = ["127.0.0.1"]\noutbound = true\n'
        f'dial = "sip:{{number}}@127.0.0.1:{contact_port}"\n'
        f'[customers]\n"201" = "{r["customer"].uri}"\n'
        '[[positions]]\nheadset = "hs1"\n[[positions]]\nheadset = "hs2"\n')
    r["out"] = open(tmp / "daemon.out", "wb")
    r["proc"] = subprocess.Popen(
        python_cmd("firmware.runtime.daemon", "--sim", "--board", "desk", "--site", site,
                   "--sip-port", "0", "--socket", r["sock"], "--no-web", "--data-dir",
                   tmp / "var"),
        stdout=r["out"], stderr=subprocess.STDOUT, env=project_env(**card.env()))
    try:
        wait_for(lambda: b"telephony ready" in (tmp / "daemon.out").read_bytes()
                 or r["proc"].poll() is not None, 90, "telephony ready")
        assert r["proc"].poll() is None, (tmp / "daemon.out").read_text()
        wait_for(lambda: all((status(r).get("modems") or {}).get(n, {}).get("state") == "ready"
                             for n in ("pots1", "pots2")), 30, "both modems ready")
        yield r
    finally:
        stop(r["proc"], 20)
        r["out"].close()
        card.stop()
        for k in ("sim1", "sim2"):
            r[k].stop()
        for k in ("customer", "contact"):
            r[k].stop()


def diag(r, *args, timeout=60):
    return diag_json(r["sock"], *args, timeout=timeout)


def status(r):
    return diag(r, "status")


def line(r, number):
    return next(ln for ln in status(r)["lines"] if ln["number"] == number)


def records(r):
    path = r["tmp"] / "var" / "calls.jsonl"
    return JsonLinesRecords(path).read() if path.exists() else []


def wav_tone(path, hz):
    """The loudest second of ``hz`` in a peer's recording, in 50 ms blocks: the modem's clock
    is not the bridge's (samples dropped or inserted), so one Goertzel over the whole call
    would cancel itself out."""
    tone_energy(path, hz)                      # waits until the peer has finished the WAV
    with wave.open(str(path)) as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    return best_tone(pcm, rate, 1.0, hz)[0]


def ring(r, sim, number, caller):
    r[sim].ring(caller, period=1.0, rings=40, source=tone_source(LINE_HZ, amp=12000))
    wait_for(lambda: line(r, number)["state"] == "ringing", 15, f"{number} ringing")
    wait_for(lambda: line(r, number)["caller"] == caller, 10, "the caller's number")


def hang_up(r, sim, number, n0):
    """The analog caller hangs up (busy tone and DLE b): the line is idle, the call recorded."""
    r[sim].hang_up("busy")
    wait_for(lambda: line(r, number)["state"] == "idle", 15, f"{number} idle")
    wait_for(lambda: not r[sim].off_hook, 10, "the modem back on-hook")
    wait_for(lambda: len(records(r)) > n0, 5, "the call record")
    return records(r)[-1]


@pytest.fixture(autouse=True)
def switches_off_and_lines_idle(rig):
    yield
    for sim, number in (("sim1", "201"), ("sim2", "202")):
        if rig[sim].plugged and (rig[sim].streaming or line(rig, number)["state"] != "idle"):
            rig[sim].hang_up("busy")
            wait_for(lambda: line(rig, number)["state"] == "idle", 15, f"{number} idle after")
    for switch in ("secrecy", "split"):
        if status(rig)["switches"][switch]:
            diag(rig, "release", switch)


def test_ok__secrecy_the_customer_answers_a_modem_caller_and_the_operator_stays_off(rig):
    r = rig
    n0 = len(records(r))
    diag(r, "press", "secrecy")                          # the latching switch, on
    r["sim1"].ring("5551111", period=1.0, rings=40, source=tone_source(LINE_HZ, amp=12000))
    r["customer"].next("incoming", 15)                   # their phone rings with the board
    # (it answers a second later: too soon to be sure of seeing the line ring under load)
    wait_for(lambda: line(r, "201")["state"] == "customer", 15, "201 in use by the customer")
    wait_for(lambda: line(r, "201")["caller"] == "5551111", 10, "the caller's number")
    assert status(r)["lamps"]["line-201"]["cadence"] == "steady"
    wait_for(lambda: r["sim1"].streaming, 10, "the analog line answered for the customer")
    diag(r, "tap", "line-201")                           # under secrecy: refused
    t0 = time.monotonic()
    time.sleep(2.5)
    assert line(r, "201")["state"] == "customer"
    assert tone_level(r["card"].ear("hs1", t0), RATE, LINE_HZ) < 300, \
        "the operator's earpiece carried a call the customer answered, under secrecy"
    # the caller and the customer hear each other through the analog line
    assert best_tone(r["sim1"].heard_pcm(t0), 8000, 1.0, FAR_HZ)[0] > 150
    rec = hang_up(r, "sim1", "201", n0)
    r["customer"].next("ended", 10)
    assert wav_tone(r["customer"].dir / "call1.wav", LINE_HZ) > 1000
    assert (rec["line"], rec["caller"], rec["position"]) == ("201", "5551111", None)


def test_ok__position_split_a_modem_caller_on_half_2_goes_to_position_2(rig):
    r = rig
    n0 = len(records(r))
    diag(r, "press", "split")
    ring(r, "sim2", "202", "5552222")
    assert line(r, "202")["served_by"] == 2
    diag(r, "tap", "line-202")
    wait_for(lambda: line(r, "202")["state"] == "operator", 10, "202 answered")
    assert line(r, "202")["position"] == 2
    wait_for(lambda: r["sim2"].streaming, 10, "off-hook")
    time.sleep(2.0)
    since = time.monotonic() - 1.5
    assert tone_level(r["card"].ear("hs2", since), RATE, LINE_HZ) > 4000
    assert tone_level(r["card"].ear("hs1", since), RATE, LINE_HZ) < 300
    t_say = time.monotonic()
    r["card"].say("hs2", tone(FAR_HZ, 2.0, RATE))        # position 2's operator speaks
    time.sleep(2.0)
    assert best_tone(r["sim2"].heard_pcm(t_say), 8000, 1.0, FAR_HZ)[0] > 4000
    diag(r, "tap", "p2-release")
    wait_for(lambda: line(r, "202")["state"] == "idle", 10, "202 released")
    wait_for(lambda: len(records(r)) > n0, 5, "the call record")
    assert records(r)[-1]["position"] == 2 and records(r)[-1]["caller"] == "5552222"


def test_ok__blind_transfer_of_a_modem_caller_to_a_contact(rig):
    r = rig
    n0 = len(records(r))
    calls0 = sum(e["event"] == "incoming" for e in r["contact"].seen)
    ring(r, "sim2", "202", "5553333")
    diag(r, "tap", "line-202")
    wait_for(lambda: r["sim2"].streaming, 10, "answered")
    diag(r, "transfer", "202", "4155559999")
    wait_for(lambda: sum(e["event"] == "incoming" for e in r["contact"].seen) > calls0, 15,
             "the contact rings")
    diag(r, "tap", "p1-release")                         # let go while it still rings
    wait_for(lambda: line(r, "202")["state"] == "customer", 15, "202 patched through")
    t0 = time.monotonic()
    time.sleep(2.0)
    assert best_tone(r["sim2"].heard_pcm(t0), 8000, 1.0, FAR_HZ)[0] > 150, \
        "the contact's voice did not reach the analog caller"
    rec = hang_up(r, "sim2", "202", n0)
    assert (rec["outcome"], rec["caller"]) == ("transferred", "5553333")
    wait_for(lambda: sum(e["event"] == "ended" for e in r["contact"].seen) > calls0, 10,
             "the contact's call ended with the caller's")
    wav = r["contact"].dir / f"call{calls0 + 1}.wav"
    assert wav_tone(wav, LINE_HZ) > 1000, "the analog caller did not reach the contact"


def test_ok__live_patch_all_three_hear_each_other_then_the_operator_drops_off(rig):
    r = rig
    n0 = len(records(r))
    calls0 = sum(e["event"] == "incoming" for e in r["contact"].seen)
    ring(r, "sim2", "202", "5554444")
    diag(r, "tap", "line-202")
    wait_for(lambda: r["sim2"].streaming, 10, "answered")
    diag(r, "transfer", "202", "4155558888")             # no --consult: a three-way patch
    wait_for(lambda: sum(e["event"] == "confirmed" for e in r["contact"].seen) > calls0, 15,
             "the contact answers")
    t0 = time.monotonic()
    time.sleep(2.5)
    ear = r["card"].ear("hs1", t0)
    assert tone_level(ear, RATE, LINE_HZ) > 1000 and best_tone(ear, RATE, 1.0, FAR_HZ)[0] > 100, \
        "the operator did not hear both the caller and the contact"
    assert best_tone(r["sim2"].heard_pcm(t0), 8000, 1.0, FAR_HZ)[0] > 150
    diag(r, "tap", "p1-release")                         # the operator drops off
    wait_for(lambda: line(r, "202")["state"] == "customer", 10, "caller and contact left talking")
    rec = hang_up(r, "sim2", "202", n0)
    assert (rec["outcome"], rec["caller"]) == ("transferred", "5554444")
