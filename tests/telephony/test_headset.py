"""Headsets on real PyAudio streams, positions on real SIP/RTP legs, all on 127.0.0.1.

The sound card is tests/alsa_fixture.FakeCard: ALSA file-plugin devices
defined in an .asoundrc the test writes (HOME pointed at it), paced in real
time. Callers are SIPp (PCMU tone from a sox-made u-law WAV) and a second
PJSUA2 endpoint (tests/pjsua_peer.py) that records to a WAV.
"""

import json
import subprocess

import pytest

from alsa_fixture import FakeCard, best_tone, rms, samples, tone, tone_level, window
from bursts import BURSTS, LEAD_S, PERIOD_S, burst_train, match, stamped_onsets, stamped_sent
from conftest import project_env, python_cmd
from firmware.telephony.pj.headset import Device, FrameRing, HeadsetNotFound, find_device
from firmware.telephony.pj.position import PositionError, PositionProcess
from headset_support import (PeerProc, PositionProc, ensure_tools, pcm_wav, sipp_tone_call,
                             ulaw_wav, wait_for, wait_sipp, wav_pcm)

pytestmark = [pytest.mark.telephony, pytest.mark.audio]

RATE = 16000  # the fake card's native rate; the bridge's too (USB headsets do 16 or 48 kHz)

# What "arrives with full energy" means here: the loudest second of tone is within
# 2 dB (0.8 in amplitude) of what was sent, and at least 75 % of that second's power
# is at 1 kHz. The slack is for what the path itself does to a tone (u-law
# quantisation, the 8 -> 16 kHz resampler's image, speex between two PJSUA2
# endpoints) and for a frame lost when the machine is loaded; a leg joined twice,
# half-mixed or missing is off by 6 dB or more, and silence is checked below 50 RMS.


@pytest.fixture
def card(tmp_path):
    ensure_tools()
    with FakeCard(tmp_path / "home", ["hs1", "hs2"], rate=RATE) as c:
        yield c


@pytest.fixture
def card48(tmp_path):
    """A card that runs at 48 kHz: the headset's port runs at 48 kHz, the bridge resamples."""
    ensure_tools()
    with FakeCard(tmp_path / "home48", ["hs1"], rate=48000) as c:
        yield c


@pytest.fixture
def tone_wav(tmp_path):
    return ulaw_wav(tmp_path / "tone.wav", seconds=4)


def reference_level(wav) -> float:
    pcm, rate = wav_pcm(wav)
    return tone_level(window(pcm, rate, 0.5, 1.0), rate)


def ear_after(card, name, t, start_s, seconds):
    """What the earpiece played from `start_s` after monotonic time `t`, `seconds` long."""
    return window(card.ear(name, since=t), RATE, start_s, seconds)


# -- pieces on their own --------------------------------------------------------------

def test_ok__ring_drops_oldest_and_underruns_to_silence():
    ring = FrameRing(2, 4)
    assert ring.get() == bytes(4) and ring.underruns == 1
    for f in (b"aaaa", b"bbbb", b"cccc"):
        ring.put(f)
    assert ring.overruns == 1
    assert [ring.get(), ring.get(), ring.get()] == [b"bbbb", b"cccc", bytes(4)]
    assert ring.counts() == {"frames_in": 3, "frames_out": 4, "overruns": 1, "underruns": 2,
                             "trimmed": 0}


def test_ok__ring_trims_a_frame_that_is_only_delay():
    ring = FrameRing(6, 2, patience=5)
    for i in range(3):  # a hiccup left three frames waiting; the producer keeps pace
        ring.put(b"h%d" % i)
    out = []
    for i in range(1, 12):
        ring.put(b"%02d" % i)
        out.append(ring.get())
    assert ring.trimmed == 3 and ring.underruns == 0
    assert out[-1] == b"11"  # after the trim the newest frame comes straight out


def test_ok__ring_keeps_the_buffering_a_bursty_device_needs():
    ring = FrameRing(10, 2, patience=8)
    for burst in range(8):  # the device delivers 6 frames every 6 reads
        for i in range(6):
            ring.put(b"%d%d" % (burst, i))
        for i in range(6):
            assert ring.get() == b"%d%d" % (burst, i)
    assert ring.trimmed == 0 and ring.underruns == 0 and ring.overruns == 0


DEVICES = [Device(0, "USB Audio Device: - (hw:1,0)", 1, 2, 48000),
           Device(1, "USB Audio Device: - (hw:2,0)", 1, 2, 48000),
           Device(2, "hs1", 1, 1, 48000), Device(3, "hdmi", 0, 8, 48000)]


@pytest.mark.parametrize("name,index", [("hs1", 2), ("USB Audio Device: - (hw:2,0)", 1),
                                        ("USB Audio Device: - (hw:1", 0)])
def test_ok__device_found_by_name_or_unique_prefix(name, index):
    assert find_device(name, DEVICES).index == index


@pytest.mark.parametrize("name,words", [
    ("nope", ["'nope'", "'hs1'", "'USB Audio Device: - (hw:1,0)'", "--list"]),
    ("USB Audio", ["ambiguous", "(hw:1,0)", "(hw:2,0)"]),
    ("hdmi", ["not both microphone and earpiece"]),
])
def test_fail__device_name_not_found_names_what_exists(name, words):
    with pytest.raises(HeadsetNotFound) as exc:
        find_device(name, DEVICES)
    assert isinstance(exc.value, LookupError)
    for w in words:
        assert w in str(exc.value)


def test_ok__list_shows_the_cards_headsets(card):
    out = subprocess.run(python_cmd("firmware.telephony.pj.headset", "--list", "--json"), env=project_env(
        **card.env()), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr[-500:]
    names = {d["name"]: d for d in json.loads(out.stdout.strip().splitlines()[-1])}
    assert names["hs1"]["inputs"] >= 1 and names["hs1"]["outputs"] >= 1
    assert "hs2" in names


def test_fail__position_with_unknown_headset_says_which_exist(card, tmp_path):
    pos = PositionProc(tmp_path, card, headset="no-such-headset", wait=False)
    err = pos.next("error", 20)
    assert pos.stop() == 2
    assert "'no-such-headset'" in err["message"]
    assert "'hs1'" in err["message"] and "'hs2'" in err["message"]
    assert "Traceback" not in pos.stderr()


# -- (a) caller -> earpiece -----------------------------------------------------------

BEFORE = ["--headset-ptime", 20, "--headset-period", 20, "--bridge-ptime", 20, "--packet-ms", 20]
FIVE = ["--headset-ptime", 5, "--headset-period", 5, "--bridge-ptime", 5]


@pytest.mark.parametrize("headset_rate,extra", [(None, []), (48000, []), (None, BEFORE),
                                                (48000, FIVE)],
                         ids=["defaults-at-bridge-rate", "defaults-port-at-48k-card-rate",
                              "20ms-frames-periods-and-bridge", "5ms-frames-periods-and-bridge"])
def test_ok__caller_tone_reaches_earpiece(request, tmp_path, tone_wav, headset_rate, extra):
    """SIPp sends a 1 kHz PCMU tone; the earpiece plays it at full level, clean, then silence.

    With the defaults (10 ms frames on a 10 ms bridge tick, the card's 5 ms periods
    carrying half-frames over), with the port at the card's 48 kHz (the bridge
    resamples), and with whole 20 ms frames per period on a 20 ms tick."""
    card = request.getfixturevalue("card48" if headset_rate else "card")
    rate = card.rate
    args = ["--headset-rate", headset_rate] if headset_rate else []
    args += extra
    with PositionProc(tmp_path, card, headset="hs1", args=args) as pos:
        sipp = sipp_tone_call(tmp_path, pos.ready["port"], tone_wav, user="p1", hold_ms=3000)
        media = pos.next("media", 15, state="active")
        ended = pos.next("ended", 20)
        assert wait_sipp(sipp) == 0
        status = pos.status()
        during = card.ear("hs1", since=media["t"])
        wait_for(lambda: card.ear("hs1", since=ended["t"] + 0.3), 5, "earpiece after the call")
        after = window(card.ear("hs1", since=ended["t"] + 0.3), rate, 0, 0.3)

    ref = reference_level(tone_wav)
    level, clean, _ = best_tone(during, rate, seconds=1.0)
    assert level > 0.8 * ref, (level, ref)
    assert clean > 0.75, clean
    assert status["headset"]["connected"] == 0 and status["calls"] == []
    assert len(after) > 0 and rms(samples(after)) < 50  # dropped from the call that ended
    if headset_rate:
        assert status["headset"]["rate"] == 48000 and status["headset"]["bridge_rate"] == 16000
    assert (status["headset"]["ptime_ms"], status["headset"]["period_ms"]) == \
        ((extra[1], extra[3]) if extra else (10, 5))


# -- (b) microphone -> far end --------------------------------------------------------

@pytest.mark.parametrize("headset_rate", [None, 48000], ids=["port-at-bridge-rate",
                                                            "port-at-48k-card-rate"])
def test_ok__microphone_tone_reaches_far_end(request, tmp_path, headset_rate):
    """A tone said into hs1's microphone is in the far end's recording, at full level."""
    card = request.getfixturevalue("card48" if headset_rate else "card")
    args = ["--headset-rate", headset_rate] if headset_rate else []
    rec = tmp_path / "far.wav"
    with PositionProc(tmp_path, card, headset="hs1", args=args) as pos:
        with PeerProc(tmp_path, call=pos.uri, record=rec, seconds=3.0) as peer:
            m = peer.next("media", 15)
            pos.next("media", 5, state="active")
            card.say("hs1", bytes(int(0.4 * card.rate) * 2) + tone(1000, 2.2, card.rate, 0.5))
            done = peer.next("done", 20)
        assert peer.proc.returncode == 0
    pcm, rate = wav_pcm(rec)
    assert m["record_at"] > 0
    # 10 ms packets (G.722 at 64 kbit/s: 80 bytes), as the bridge ticks: none waits for a second frame
    assert done["rx_bytes"] / done["rx_packets"] == 80, done
    level, clean, start = best_tone(pcm, rate, seconds=1.0)
    assert level > 0.8 * 16384, level
    assert clean > 0.75, clean
    assert start >= 0.3 and rms(samples(window(pcm, rate, 0.0, 0.3))) < 50  # silence before


def test_ok__stamped_peers_time_a_bare_call_to_the_tick(tmp_path):
    """benchmarks/audio.py's clock: two bare peers play a burst train at each other through
    their own bridge ports, and the frame stamps time every burst, both ways."""
    ensure_tools()
    train = pcm_wav(tmp_path / "train.wav", burst_train(RATE), RATE)
    secs = LEAD_S + BURSTS * PERIOD_S + 0.5
    rec_a, rec_b = tmp_path / "a.wav", tmp_path / "b.wav"
    with PeerProc(tmp_path, name="b", answer=True, record=rec_b, play=train, seconds=secs,
                  stamped=True) as b:
        with PeerProc(tmp_path, name="a", call=b.uri, record=rec_a, play=train, seconds=secs,
                      stamped=True) as a:
            ma = a.next("media", 15)
            da, db = a.next("done", 30), b.next("done", 30)
    played = da["played"]
    # the player starts at its bridge's next tick, then moves a 20 ms frame (320 samples) a tick
    assert 0 <= played[0][0] - ma["play_at"] < 0.025, (played[0], ma)
    assert [s for _, s in played[:5]] == [0, 320, 640, 960, 1280]
    ticks = [t1 - t0 for (t0, _), (t1, _) in zip(played, played[1:])]
    assert 0.015 < sorted(ticks)[len(ticks) // 2] < 0.025
    for sent, rec, heard in ((da["played"], rec_b, db["heard"]), (db["played"], rec_a, da["heard"])):
        pcm, rate = wav_pcm(rec)
        assert heard[-1][1] + 320 == len(pcm) // 2  # every frame heard is in the recording, stamped
        delays = match(stamped_sent(sent, RATE), stamped_onsets(pcm, rate, heard))
        assert len(delays) == BURSTS, delays
        # a few ms of network and decoding at least, and no more than the jitter buffers hold
        # (PJSUA2's adapts within a call: a burst may take 15 ms, the next 55)
        assert all(0.002 < d < 0.100 for d in delays), delays


# -- (c) silence in -> silence out, both ways -----------------------------------------

def test_ok__silence_in_is_silence_out(card, tmp_path):
    """A silent caller and a silent microphone: measured energy at both ends is nil."""
    rec = tmp_path / "far.wav"
    quiet = pcm_wav(tmp_path / "quiet.wav", bytes(16000 * 2 * 4), 16000)
    with PositionProc(tmp_path, card, headset="hs1") as pos:
        with PeerProc(tmp_path, call=pos.uri, record=rec, play=quiet, seconds=3.0) as peer:
            media = pos.next("media", 15, state="active")
            card.say("hs1", bytes(RATE * 2 * 3))
            peer.next("done", 20)
        ear = ear_after(card, "hs1", media["t"], 0.5, 2.0)
    pcm, rate = wav_pcm(rec)
    far = window(pcm, rate, 0.5, 2.0)
    # the measurement is not vacuous: both ends really carried 2 s of audio
    assert len(ear) == RATE * 2 * 2 and len(far) == rate * 2 * 2
    assert rms(samples(ear)) < 50, rms(samples(ear))
    assert rms(samples(far)) < 50, rms(samples(far))
    assert tone_level(ear, RATE) < 20 and tone_level(far, rate) < 20


# -- (d) two positions, two headsets ------------------------------------------------

def test_ok__tone_reaches_only_its_own_positions_earpiece(card, tmp_path, tone_wav):
    """p1 (hs1) has the tone caller, p2 (hs2) a silent caller: the tone is in hs1 only.

    And what is said into hs2's microphone reaches p2's far end, not p1's caller.
    """
    rec2 = tmp_path / "far2.wav"
    with PositionProc(tmp_path, card, name="p1", headset="hs1") as p1, \
            PositionProc(tmp_path, card, name="p2", headset="hs2") as p2:
        with PeerProc(tmp_path, name="peer2", call=p2.uri, record=rec2, seconds=4.0) as peer2:
            p2.next("media", 15, state="active")
            sipp = sipp_tone_call(tmp_path, p1.ready["port"], tone_wav, user="p1", hold_ms=3000)
            m1 = p1.next("media", 15, state="active")
            card.say("hs2", bytes(int(0.5 * RATE) * 2) + tone(1000, 2.0, RATE, 0.5))
            p1.next("ended", 20)
            assert wait_sipp(sipp) == 0
            peer2.next("done", 20)
        ear1 = card.ear("hs1", since=m1["t"])
        ear2 = card.ear("hs2", since=m1["t"])
    ref = reference_level(tone_wav)
    assert len(ear1) > 2.5 * RATE * 2 and len(ear2) > 2.5 * RATE * 2  # both played all along
    assert best_tone(ear1, RATE, seconds=1.0)[0] > 0.8 * ref
    assert best_tone(ear2, RATE, seconds=0.05)[0] < 0.01 * ref  # not even 50 ms of it
    assert rms(samples(ear2)) < 50
    pcm, rate = wav_pcm(rec2)
    level, clean, _ = best_tone(pcm, rate, seconds=1.0)
    assert level > 0.8 * 16384 and clean > 0.75, (level, clean)


# -- who may call a position, and its control channel --------------------------------

def test_fail__caller_from_an_address_not_allowed_gets_403(card, tmp_path):
    with PositionProc(tmp_path, card, headset="hs1", args=["--allow", "10.9.9.9"]) as pos:
        with PeerProc(tmp_path, call=pos.uri, seconds=1.0) as peer:
            ended = peer.next("ended", 15)
            peer.next("done", 10)
        rejected = pos.next("rejected", 5)
        status = pos.status()
    assert ended["code"] == 403
    assert rejected["code"] == 403 and rejected["source"].startswith("127.0.0.1:")
    assert status["rejected"] == 1 and status["answered"] == 0 and status["calls"] == []


def test_fail__bad_allow_address_is_a_clear_error(tmp_path):
    pos = PositionProc(tmp_path, None, args=["--allow", "not-an-address"], wait=False)
    err = pos.next("error", 20)
    assert pos.stop() == 2
    assert "--allow 'not-an-address'" in err["message"] and "expected" in err["message"]


def test_ok__control_channel_reports_and_hangs_up(card, tmp_path):
    with PositionProc(tmp_path, card, headset="hs1") as pos:
        with PeerProc(tmp_path, call=pos.uri, seconds=30.0) as peer:
            media = pos.next("media", 15, state="active")
            st = pos.status()
            assert [c["call"] for c in st["calls"]] == [media["call"]]
            assert st["headset"]["connected"] == 1 and st["headset"]["device"] == "hs1"
            pos.send(cmd="hangup")
            assert pos.next("hangup", 5)["calls"] == [media["call"]]
            assert peer.next("ended", 10)["code"] in (200, 487)
            wait_for(lambda: any(e["event"] == "ended" for e in pos.seen), 5, "position's ended")
            st = pos.status()
            assert st["calls"] == [] and st["headset"]["connected"] == 0
            pos.proc.stdin.write("this is not json\n")
            pos.proc.stdin.flush()
            assert "not a JSON line" in pos.next("error", 5)["message"]
            pos.send(cmd="dance")
            assert "unknown command 'dance'" in pos.next("error", 5)["message"]
            pos.send(cmd="quit")
            pos.next("stopped", 10)
        assert pos.stop() == 0
    assert "Traceback" not in pos.stderr()


def test_ok__quitting_in_the_middle_of_a_call_tears_down_in_order(card, tmp_path):
    """Calls, headset port, account, then the library: no PJSUA2 assertion, exit code 0."""
    with PositionProc(tmp_path, card, headset="hs1") as pos:
        with PeerProc(tmp_path, call=pos.uri, seconds=30.0) as peer:
            pos.next("media", 15, state="active")
            pos.send(cmd="quit")
            pos.next("stopped", 10)
            assert pos.stop() == 0
            assert peer.next("ended", 10)["code"] in (200, 487, 503)
    err = pos.stderr()
    assert "Assertion" not in err and "Traceback" not in err


def test_ok__end_of_stdin_stops_the_position(card, tmp_path):
    """The daemon feeding it dies: stdin closes and the position goes with it."""
    pos = PositionProc(tmp_path, card, headset="hs1")
    pos.proc.stdin.close()
    pos.next("stopped", 10)
    assert pos.stop() == 0


def test_ok__daemon_handle_starts_queries_and_stops_a_position(card, tmp_path):
    events = []
    handle = PositionProcess(name="p1", headset="hs1", env=project_env(**card.env()),
                             on_event=events.append, log=tmp_path / "p1.log")
    ready = handle.start()
    try:
        assert handle.uri == ready["uri"] and handle.uri.startswith("sip:p1@127.0.0.1:")
        with PeerProc(tmp_path, call=handle.uri, seconds=30.0) as peer:
            wait_for(lambda: any(e["event"] == "media" for e in events), 15, "media")
            assert handle.status()["headset"]["connected"] == 1
            handle.hangup()
            assert peer.next("ended", 10)["code"] in (200, 487)
    finally:
        assert handle.stop() == 0
    assert [e["event"] for e in events][:2] == ["ready", "incoming"]
    assert "pjlib" in (tmp_path / "p1.log").read_text(errors="replace")  # the child's chatter


def test_fail__daemon_handle_reports_why_a_position_did_not_start(card):
    handle = PositionProcess(name="p2", headset="hs9", env=project_env(**card.env()))
    with pytest.raises(PositionError) as exc:
        handle.start()
    assert "'p2' did not start" in str(exc.value) and "'hs9'" in str(exc.value)
    assert "'hs1'" in str(exc.value) and handle.proc.poll() is not None


def test_fail__a_card_period_that_does_not_divide_the_frame_is_a_clear_error(card, tmp_path):
    pos = PositionProc(tmp_path, card, headset="hs1", args=["--headset-period", 3], wait=False)
    err = pos.next("error", 20)
    assert pos.stop() == 2
    assert err["message"] == "headset period 3 ms must divide its 10 ms frames"
    assert "Traceback" not in pos.stderr()


def test_fail__unknown_codec_is_a_clear_error(tmp_path):
    pos = PositionProc(tmp_path, None, args=["--codecs", "G729/8000"], wait=False)
    err = pos.next("error", 20)
    assert pos.stop() == 2
    assert "--codecs 'G729/8000': no such codec" in err["message"]
    assert "PCMU/8000/1" in err["message"]


def test_ok__stereo_only_cards_are_mixed_down_and_duplicated():
    from firmware.telephony.pj.headset import _from_mono, _to_mono
    import array
    mono = array.array("h", [1, -2, 3000, -32768]).tobytes()
    stereo = _from_mono(mono, 2)
    assert array.array("h", stereo).tolist() == [1, 1, -2, -2, 3000, 3000, -32768, -32768]
    assert _to_mono(stereo, 2) == mono
    assert _to_mono(mono, 1) is mono and _from_mono(mono, 1) is mono


def test_fail__port_in_use_is_a_clear_error(tmp_path):
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        pos = PositionProc(tmp_path, None, args=["--port", port], wait=False)
        err = pos.next("error", 20)
        assert pos.stop() == 2
    assert "position failed to start" in err["message"]
    assert "Address already in use" in err["message"] or "in use" in err["message"].lower()
    assert "Traceback" not in pos.stderr()


def test_fail__a_leg_beyond_max_calls_gets_486(card, tmp_path):
    with PositionProc(tmp_path, card, headset="hs1", args=["--max-calls", 1]) as pos:
        with PeerProc(tmp_path, name="first", call=pos.uri, seconds=30.0) as first:
            pos.next("media", 15, state="active")
            with PeerProc(tmp_path, name="second", call=pos.uri, seconds=1.0) as second:
                assert second.next("ended", 15)["code"] == 486
            st = pos.status()
            assert len(st["calls"]) == 1 and st["headset"]["connected"] == 1
            assert st["answered"] == 1 and st["ended"] == 0
            pos.send(cmd="hangup")
            first.next("ended", 10)
