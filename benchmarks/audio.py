"""Audio delay through a position's headset path, beside a bare PJSUA2 path; memory.

    .venv/bin/python benchmarks/audio.py [--calls 3] [--position-args ARGS] [--before ARGS] [--json]

Everything runs on 127.0.0.1 in a temp dir: position processes with their
headsets on the FIFO-paced ALSA file-plugin card of tests/alsa_fixture.py,
and bare PJSUA2 endpoints (tests/pjsua_peer.py) as callers and baseline.

The signal is a train of 1 kHz bursts (200 ms on, 800 ms off). A burst's
delay is the time between it leaving one end and its onset arriving at the
other, all stamped with CLOCK_MONOTONIC, which the processes share. The
peers play and record through their own bridge ports (pjsua_peer.py
--stamped), which stamp every frame when their bridge moves it:

- baseline, bare:   peer A's player -> network -> peer B's recorder (and B -> A)
- caller->earpiece: peer A's player -> position (jitter buffer, bridge, ear ring,
                    PortAudio, ALSA) -> the moment ALSA's file plugin wrote it
- mic->far end:     the moment ALSA's file plugin read it from the microphone ->
                    PortAudio, mic ring, bridge -> network -> peer A's recorder

The position runs with its defaults (plus --position-args) and, in turns
with it and the bare path, with the settings before issue 11's voice work
(--before: 20 ms frames, card periods, bridge tick and packets), so both
are measured under the same load.

"Added" is the headset path's median minus the bare path's one-way delay:
what joining a call through a position and its headset costs over joining
the same call with a PJSUA2 endpoint's own media. A bare call's two
directions differ by where the two endpoints' 20 ms bridge ticks fall
against each other (a frame waits for the receiver's next tick: about 9 ms
one way and 24 the other, or anything between, fixed for a call; now and
then both near 26), so the bare one-way delay is each call's two directions
averaged, then the calls' mean. The peers' stamps are good to
their bridge's tick jitter (under a ms on a quiet machine), those of the
ALSA side to about an ALSA period (a few ms). Before the frame stamps, the
figures took a player's and a recorder's start from when they were joined,
which is up to a 20 ms tick early: the bare path's two directions then fell
about 7 and 26 ms, and its median jumped between them from run to run.
The test card's capture moves in pipe pages (43 ms at 48 kHz), so ALSA
reads the microphone up to a page after its samples' time: a lag a real card
would not add (it hands a sample over a period after it). The card logs when
ALSA really read each burst, and that lag is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "support"), str(ROOT)]  # a script: uses the tests' real peers

from alsa_fixture import FakeCard  # noqa: E402
from bursts import (BURSTS, LEAD_S, ON_S, PERIOD_S, burst_train, expected_times, match,  # noqa: E402
                    stamped_onsets, stamped_sent, timed_onsets)
from headset_support import PeerProc, PositionProc, pcm_wav, wav_pcm  # noqa: E402

from firmware.telephony.children import rss_kb  # noqa: E402

RATE = 16000


def bare_run(tmp: Path, train: Path, i: int):
    rec_a, rec_b = tmp / f"bare-a{i}.wav", tmp / f"bare-b{i}.wav"
    secs = LEAD_S + BURSTS * PERIOD_S + 0.5
    with PeerProc(tmp, name=f"bare-b{i}", answer=True, record=rec_b, play=train,
                  seconds=secs, stamped=True) as b:
        with PeerProc(tmp, name=f"bare-a{i}", call=b.uri, record=rec_a, play=train,
                      seconds=secs, stamped=True) as a:
            ma, mb = a.next("media", 15), b.next("media", 15)
            time.sleep(1.0)
            mem = rss_kb(b.ready["pid"])
            da = a.next("done", 30)
            db = b.next("done", 30)
    a_to_b = match(stamped_sent(da["played"], RATE), heard_onsets(rec_b, db["heard"]))
    b_to_a = match(stamped_sent(db["played"], RATE), heard_onsets(rec_a, da["heard"]))
    return a_to_b, b_to_a, mem, tick_waits(ma, da) + tick_waits(mb, db)


def heard_onsets(wav: Path, stamps) -> list[float]:
    """Burst onsets in a --stamped peer's recording, timed by the frames they came in."""
    pcm, rate = wav_pcm(wav)
    return stamped_onsets(pcm, rate, stamps)


def tick_waits(media: dict, done: dict) -> list[float]:
    """How long a file player or recorder joined at `play_at`/`record_at` would have waited
    for the bridge's next tick: the error the frame stamps take out of the figures."""
    out = []
    if done.get("played") and "play_at" in media:
        out.append(done["played"][0][0] - media["play_at"])
    if done.get("heard") and "record_at" in media:
        out.append(done["heard"][0][0] - media["record_at"])
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def headset_run(tmp: Path, train: Path, tag: str, card_rate: int, extra=()):
    rec_a = tmp / f"hs-a{tag}.wav"
    secs = LEAD_S + BURSTS * PERIOD_S + 0.8
    with FakeCard(tmp / f"home{tag}", ["hs1"], rate=card_rate) as card:
        with PositionProc(tmp, card, name=f"p{tag}", headset="hs1",
                          args=["--headset-rate", card_rate, *extra]) as pos:
            pid = pos.ready["pid"]
            cpu0, t0 = cpu_s(pid), time.monotonic()
            time.sleep(2.0)  # idle: the card's callbacks run, no call on the bridge
            idle_cpu = (cpu_s(pid) - cpu0) / (time.monotonic() - t0)
            mem_idle = rss_kb(pid)
            with PeerProc(tmp, name=f"hs-a{tag}", call=pos.uri, record=rec_a, play=train,
                          seconds=secs, stamped=True) as a:
                a.next("media", 15)
                pos.next("media", 10, state="active")
                card.say("hs1", burst_train(card_rate))
                cpu0, t0 = cpu_s(pid), time.monotonic()
                time.sleep(1.0)
                mem_call = rss_kb(pid)
                time.sleep(2.0)
                cpu = (cpu_s(pid) - cpu0) / (time.monotonic() - t0)
                da = a.next("done", 30)
            status = pos.status()["headset"]
            ear = card.ear_timed("hs1")
            mic_log = card.mic_log("hs1")
            # the test card's own capture steps: when ALSA really read each burst's first byte
            burst_bytes = (int(ON_S * card_rate) + int((PERIOD_S - ON_S) * card_rate)) * 2
            firsts = [int(LEAD_S * card_rate) * 2 + k * burst_bytes for k in range(BURSTS)]
            taken = [card.mic_taken_at("hs1", b) for b in firsts]
    # caller -> earpiece: onsets in the whole earpiece stream, stamped through their chunk
    got = timed_onsets(ear, card_rate)
    to_ear = match(stamped_sent(da["played"], RATE), got)
    # mic -> far end: the card stamped when ALSA read the first byte of the train
    heard0 = mic_log[0][0] - mic_log[0][1] / (2 * card_rate)
    far = heard_onsets(rec_a, da["heard"])
    from_mic = match(expected_times(heard0), far)
    # the same bursts from when ALSA handed them to PortAudio (the test card's steps left out)
    lag, from_read = [], []
    for said, read in zip(expected_times(heard0), taken):
        heard = [g for g in far if 0 <= g - said < PERIOD_S / 2]
        if read is not None and heard:
            lag.append(read - said)
            from_read.append(heard[0] - read)
    return {"ear": to_ear, "mic": from_mic, "card_lag": lag, "mic_read": from_read,
            "mem_idle": mem_idle,
            "mem_call": mem_call, "idle_cpu": idle_cpu,
            "cpu": cpu, "status": status}


def ms(v):
    return round(v * 1000, 1) if v is not None else None


def summary(vals, per_run=None):
    if not vals:
        return {"n": 0}
    q = statistics.quantiles(vals, n=4) if len(vals) > 1 else [vals[0]] * 3
    out = {"n": len(vals), "median_ms": ms(statistics.median(vals)), "p25_ms": ms(q[0]),
           "p75_ms": ms(q[2]), "min_ms": ms(min(vals)), "max_ms": ms(max(vals))}
    if per_run:
        out["run_medians_ms"] = [ms(statistics.median(r)) for r in per_run if r]
    return out


# The position's settings before issue 11's voice work: 20 ms frames, 20 ms card periods,
# the bridge ticking every 20 ms, 20 ms RTP packets.
BEFORE = "--headset-ptime 20 --headset-period 20 --bridge-ptime 20 --packet-ms 20"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3, help="calls per path (bounded: 1-10)")
    ap.add_argument("--card-rate", type=int, default=48000,
                    help="the test card's rate; the headset is opened at it (48000: a USB "
                         "headset; 16000: the bridge's rate, but the file-plugin card then "
                         "paces capture in 128 ms steps, which shows as delay)")
    ap.add_argument("--position-args", default="",
                    help="options for the position under test, on top of its defaults "
                         "(e.g. '--headset-ptime 20')")
    ap.add_argument("--before", default=BEFORE,
                    help=f"options of the position measured beside it ('' to skip; default "
                         f"the settings before: {BEFORE!r})")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    calls = max(1, min(args.calls, 10))
    paths = {"now": args.position_args.split()}
    if args.before.strip():
        paths["before"] = args.before.split()
    bare, bare_runs, bare_mem, waits, both_ways = [], [], [], [], []
    got = {name: [] for name in paths}
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as d:
        tmp = Path(d)
        train = pcm_wav(tmp / "train.wav", burst_train(RATE), RATE)
        for i in range(calls):  # the paths take turns, so the machine's load falls on each
            ab, ba, m, w = bare_run(tmp, train, i)
            waits += w
            bare += ab + ba
            bare_runs.append(ab + ba)
            if ab and ba:
                both_ways.append((statistics.median(ab), statistics.median(ba)))
            bare_mem.append(m)
            for name, extra in paths.items():
                got[name].append(headset_run(tmp, train, f"{name}{i}", args.card_rate, extra))
    base = statistics.mean((x + y) / 2 for x, y in both_ways) if both_ways else None
    result = {"bursts_per_call": BURSTS, "calls": calls, "card_rate": args.card_rate,
              "bare_pjsua2_one_way_ms": ms(base),
              "bare_each_call_ms": [[ms(x), ms(y)] for x, y in both_ways],
              "bare_pjsua2_bursts": summary(bare, bare_runs),
              "rss_kb_bare_endpoint_in_call": max(bare_mem),
              "file_port_tick_wait": summary(waits)}
    for name, extra in paths.items():
        runs = got[name]
        ear = [v for r in runs for v in r["ear"]]
        mic = [v for r in runs for v in r["mic"]]
        lag = [v for r in runs for v in r["card_lag"]]
        mic_read = [v for r in runs for v in r["mic_read"]]
        result[name] = {
            "position_args": " ".join(extra),
            "caller_to_earpiece": summary(ear, [r["ear"] for r in runs]),
            "mic_to_far_end": summary(mic, [r["mic"] for r in runs]),
            "added_caller_to_earpiece_ms": ms(statistics.median(ear) - base)
            if ear and base is not None else None,
            "added_mic_to_far_end_ms": ms(statistics.median(mic) - base)
            if mic and base is not None else None,
            "test_card_capture_lag": summary(lag),
            "mic_read_to_far_end": summary(mic_read, [r["mic_read"] for r in runs]),
            "added_mic_read_to_far_end_ms": ms(statistics.median(mic_read) - base)
            if mic_read and base is not None else None,
            "rss_kb": {"idle": max(r["mem_idle"] for r in runs),
                       "in_call": max(r["mem_call"] for r in runs)},
            "cpu_in_call_pct": round(100 * statistics.median(r["cpu"] for r in runs), 1),
            "cpu_idle_pct": round(100 * statistics.median(r["idle_cpu"] for r in runs), 1),
            "last_headset_status": runs[-1]["status"],
        }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"audio delay, {calls} call(s) x {BURSTS} bursts per path: median (p25-p75, min-max) "
          f"[each call's median]; headset card at {args.card_rate} Hz, bridge at 16000 Hz:")

    def line(label, s):
        if not s["n"]:
            print(f"  {label:44s}     n/a (no burst matched)")
            return
        print(f"  {label:44s} {s['median_ms']:6.1f} ms ({s['p25_ms']}-{s['p75_ms']}, "
              f"{s['min_ms']}-{s['max_ms']}, n={s['n']}) {s.get('run_medians_ms', '')}")

    line("bare PJSUA2 -> PJSUA2, every burst", result["bare_pjsua2_bursts"])
    print(f"    baseline, one way: {result['bare_pjsua2_one_way_ms']} ms (each call's two directions "
          f"averaged; the calls' caller->callee, callee->caller: {result['bare_each_call_ms']})")
    w = result["file_port_tick_wait"]
    if w["n"]:
        print(f"    (a file player or recorder would start {w['min_ms']}-{w['max_ms']} ms after it "
              f"is joined, at the bridge's next tick; the frame stamps take that out)")
    for name in paths:
        r = result[name]
        st = r["last_headset_status"]
        print(f"  position {name} ({r['position_args'] or 'its defaults'}; frames "
              f"{st['ptime_ms']} ms, card period {st['period_ms']} ms):")
        line("  caller -> position -> earpiece", r["caller_to_earpiece"])
        line("  microphone -> position -> far end", r["mic_to_far_end"])
        line("  the same, from when ALSA read it", r["mic_read_to_far_end"])
        print(f"    added by the headset path: caller->ear {r['added_caller_to_earpiece_ms']} ms, "
              f"mic->far end {r['added_mic_to_far_end_ms']} ms (from when ALSA read it "
              f"{r['added_mic_read_to_far_end_ms']} ms); position CPU idle "
              f"{r['cpu_idle_pct']} %, in a call {r['cpu_in_call_pct']} % of a core; the test card's capture steps (in "
              f"mic->far end) {r['test_card_capture_lag'].get('median_ms')} ms median; "
              f"RSS idle {r['rss_kb']['idle'] / 1024:.1f} MB, "
              f"in a call {r['rss_kb']['in_call'] / 1024:.1f} MB")
    print(f"memory (RSS): bare endpoint in a call {result['rss_kb_bare_endpoint_in_call'] / 1024:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
