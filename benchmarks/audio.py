"""Audio delay through a position's headset path, beside a bare PJSUA2 path; memory.

    /tmp/venv/bin/python benchmarks/audio.py [--calls 3] [--json]

Everything runs on 127.0.0.1 in a temp dir: position processes with their
headsets on the FIFO-paced ALSA file-plugin card of tests/alsa_fixture.py,
and bare PJSUA2 endpoints (tests/pjsua_peer.py) as callers and baseline.

The signal is a train of 1 kHz bursts (200 ms on, 800 ms off). A burst's
delay is the time between it leaving one end and its onset arriving at the
other, all stamped with CLOCK_MONOTONIC, which the processes share:

- baseline, bare:   peer A's player -> network -> peer B's recorder (and B -> A)
- caller->earpiece: peer A's player -> position (jitter buffer, bridge, ear ring,
                    PortAudio, ALSA) -> the moment ALSA's file plugin wrote it
- mic->far end:     the moment ALSA's file plugin read it from the microphone ->
                    PortAudio, mic ring, bridge -> network -> peer A's recorder

"Added" is the headset path's median minus the bare path's median: what
joining a call through a position and its headset costs over joining the
same call with a PJSUA2 endpoint's own media. Resolution: a bridge frame
(20 ms) at the player's start; stamps of the ALSA side are good to about an
ALSA period (a few ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "support"), str(ROOT)]  # a script: uses the tests' real peers

from alsa_fixture import FakeCard  # noqa: E402
from bursts import (BURSTS, LEAD_S, PERIOD_S, burst_train, expected_times, match,  # noqa: E402
                    ms, onsets, summary, timed_onsets)
from headset_support import PeerProc, PositionProc, pcm_wav, wav_pcm  # noqa: E402

from firmware.telephony.children import rss_kb  # noqa: E402

RATE = 16000


def bare_run(tmp: Path, train: Path, i: int):
    rec_a, rec_b = tmp / f"bare-a{i}.wav", tmp / f"bare-b{i}.wav"
    secs = LEAD_S + BURSTS * PERIOD_S + 0.5
    with PeerProc(tmp, name=f"bare-b{i}", answer=True, record=rec_b, play=train,
                  seconds=secs) as b:
        with PeerProc(tmp, name=f"bare-a{i}", call=b.uri, record=rec_a, play=train,
                      seconds=secs) as a:
            ma, mb = a.next("media", 15), b.next("media", 15)
            time.sleep(1.0)
            mem = rss_kb(b.ready["pid"])
            a.next("done", 30)
            b.next("done", 30)
    pa, ra = wav_pcm(rec_a)
    pb, rb = wav_pcm(rec_b)
    a_to_b = match(expected_times(ma["play_at"]), [mb["record_at"] + t for t in onsets(pb, rb)])
    b_to_a = match(expected_times(mb["play_at"]), [ma["record_at"] + t for t in onsets(pa, ra)])
    return a_to_b, b_to_a, mem


def headset_run(tmp: Path, train: Path, i: int, card_rate: int, ptime: int):
    rec_a = tmp / f"hs-a{i}.wav"
    secs = LEAD_S + BURSTS * PERIOD_S + 0.8
    with FakeCard(tmp / f"home{i}", ["hs1"], rate=card_rate) as card:
        with PositionProc(tmp, card, name=f"p{i}", headset="hs1",
                          args=["--headset-rate", card_rate, "--headset-ptime", ptime]) as pos:
            mem_idle = rss_kb(pos.ready["pid"])
            with PeerProc(tmp, name=f"hs-a{i}", call=pos.uri, record=rec_a, play=train,
                          seconds=secs) as a:
                ma = a.next("media", 15)
                pos.next("media", 10, state="active")
                card.say("hs1", burst_train(card_rate))
                time.sleep(1.0)
                mem_call = rss_kb(pos.ready["pid"])
                a.next("done", 30)
            status = pos.status()["headset"]
            ear = card.ear_timed("hs1")
            mic_log = card.mic_log("hs1")
    # caller -> earpiece: onsets in the whole earpiece stream, stamped through their chunk
    got = timed_onsets(ear, card_rate)
    to_ear = match(expected_times(ma["play_at"]), got)
    # mic -> far end: the card stamped when ALSA read the first byte of the train
    heard0 = mic_log[0][0] - mic_log[0][1] / (2 * card_rate)
    pa, ra = wav_pcm(rec_a)
    from_mic = match(expected_times(heard0), [ma["record_at"] + t for t in onsets(pa, ra)])
    return to_ear, from_mic, mem_idle, mem_call, status


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3, help="calls per path (bounded: 1-10)")
    ap.add_argument("--card-rate", type=int, default=48000,
                    help="the test card's rate; the headset is opened at it (48000: a USB "
                         "headset; 16000: the bridge's rate, but the file-plugin card then "
                         "paces capture in 128 ms steps, which shows as delay)")
    ap.add_argument("--ptime", type=int, default=20, choices=(10, 20),
                    help="the position's --headset-ptime")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    calls = max(1, min(args.calls, 10))
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as d:
        tmp = Path(d)
        train = pcm_wav(tmp / "train.wav", burst_train(RATE), RATE)
        bare_ab, bare_ba, bare_mem = [], [], []
        hs_ear, hs_mic, mem_idle, mem_call = [], [], [], []
        status = None
        for i in range(calls):
            ab, ba, m = bare_run(tmp, train, i)
            bare_ab += ab
            bare_ba += ba
            bare_mem.append(m)
            e, mic, mi, mc, status = headset_run(tmp, train, i, args.card_rate, args.ptime)
            hs_ear += e
            hs_mic += mic
            mem_idle.append(mi)
            mem_call.append(mc)
    bare_all = bare_ab + bare_ba
    result = {
        "bursts_per_call": BURSTS, "calls": calls, "card_rate": args.card_rate, "ptime_ms": args.ptime,
        "bare_pjsua2_one_way": summary(bare_all),
        "caller_to_earpiece": summary(hs_ear),
        "mic_to_far_end": summary(hs_mic),
        "added_caller_to_earpiece_ms": ms(statistics.median(hs_ear) - statistics.median(bare_all))
        if hs_ear and bare_all else None,
        "added_mic_to_far_end_ms": ms(statistics.median(hs_mic) - statistics.median(bare_all))
        if hs_mic and bare_all else None,
        "rss_kb": {"bare_endpoint_in_call": max(bare_mem), "position_idle": max(mem_idle),
                   "position_in_call": max(mem_call)},
        "last_headset_status": status,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"audio delay, {calls} call(s) x {BURSTS} bursts per path (median, min-max); "
          f"headset card at {args.card_rate} Hz, {args.ptime} ms frames, bridge at 16000 Hz:")
    for key, label in (("bare_pjsua2_one_way", "bare PJSUA2 -> PJSUA2 (baseline)"),
                       ("caller_to_earpiece", "caller -> position -> earpiece"),
                       ("mic_to_far_end", "microphone -> position -> far end")):
        s = result[key]
        if s["n"]:
            print(f"  {label:36s} {s['median_ms']:7.1f} ms  ({s['min_ms']}-{s['max_ms']}, n={s['n']})")
        else:
            print(f"  {label:36s}     n/a (no burst matched)")
    print(f"  added by the headset path: caller->ear {result['added_caller_to_earpiece_ms']} ms, "
          f"mic->far end {result['added_mic_to_far_end_ms']} ms")
    r = result["rss_kb"]
    print(f"memory (RSS): bare endpoint in a call {r['bare_endpoint_in_call'] / 1024:.1f} MB; "
          f"position idle {r['position_idle'] / 1024:.1f} MB, in a call "
          f"{r['position_in_call'] / 1024:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
