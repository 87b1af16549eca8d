"""An analog line on a USB voice modem against a SIP trunk: audio delay, and the drift buffers.

    .venv/bin/python benchmarks/modem.py [--calls 2] [--minutes 10] [--sim-minutes 10]
                                         [--no-audio] [--json]

1. **Audio delay, modem path beside SIP path, in one run** of the real daemon (a process:
   the simulated desk board, Kamailio, PJSUA2 workers, position p1 with its headset on the
   FIFO-paced ALSA file-plugin card of tests/support/alsa_fixture.py):

   - modem path: ``SimModem`` (a pseudo-terminal pair, mu-law, paced at 8000 bytes/s) is
     line 901's modem; its far end sends 1 kHz bursts (200 ms of each second). Line ->
     earpiece is from the moment the simulated modem wrote a burst's first byte to the pty
     to the moment ALSA's file plugin wrote its onset to the earpiece; microphone -> line
     from the moment ALSA read a burst from the microphone to the moment the simulated
     modem read its onset off the pty (a real modem adds its own playout buffer after that);
   - SIP path: a bare PJSUA2 endpoint (tests/support/pjsua_peer.py --stamped) calls line
     201 through the front and plays the same bursts; line -> earpiece from when its bridge
     took each burst's frame from its player, and microphone -> line to when its bridge
     gave its recorder the frame with the onset.

   "Added" is the modem path's median less the SIP path's median, each way.

2. **Ring -> lamp**, in the same run: the simulated line rings with the North American
   cadence (a RING every 6 s) and the caller ID block 2.4 s after the first RING (between
   the first and second ring, as the exchange sends it). Measured from the moment the
   first RING was written to the pty to the line's lamp flashing in the daemon's status
   (polled on the control socket every 10 ms), and to the caller's number on the line;
   beside them, when the caller ID block was written: the earliest the lamp could flash
   when the call was offered only once the caller ID had come.

3. **The drift buffers over a long call**, both of them: ``rx`` (line -> bridge: the serial
   thread puts what it reads, the bridge takes a 20 ms frame a tick) and ``tx`` (bridge ->
   line: the bridge puts a frame a tick, the serial thread takes one for every 160 samples
   it read from the modem, ``ModemLine._stream``). A modem clock fast fills ``rx`` and
   drains ``tx``; slow, the other way round. Each is printed beside a plain FIFO between
   the same writer and reader (started at the same 40 ms, never corrected).

   - *modelled*, in simulated time: the modem delivers 64-sample reads (what a CDC-ACM read
     of the CX93001 returns) at its own clock, 0.1 % fast or 0.1 % slow, each read's
     arrival jittered by up to +-4 ms (seeded), and the bridge ticks on its exact clock.
     The order of events is that of the two schedules merged, which is what the real
     threads see; the time is counted, not waited for, so 10 minutes take seconds.
   - *through the simulated modem*, in real time (``--sim-minutes``; the simulator paces
     by the host's clock): a real ``ModemLine`` (driver, pty, ``_stream``) on a
     ``SimModem`` with ``clock`` 1.001 and one with 0.999, side by side, and a thread
     standing in for PJSUA2's media clock (tests/support/modem_drift.py). What the serial
     thread's real scheduling does to the buffers: 20 ms reads, frames taken in batches,
     the machine's stalls.

   Printed: the level after each take (the standing delay; the first 5 s left out), samples
   dropped or inserted, underruns, and where the plain FIFO ends and how many frames it
   could not fill.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "support"), str(ROOT)]  # the tests' real peers

from alsa_fixture import FakeCard  # noqa: E402
from bursts import (AMP, BURSTS, LEAD_S, PERIOD_S, burst_train, expected_times, match,  # noqa: E402
                    stamped_onsets, stamped_sent, summary, timed_onsets)
from conftest import project_env, python_cmd  # noqa: E402
from headset_support import PeerProc, pcm_wav, wav_pcm  # noqa: E402
from modem_drift import MeteredBuffer, figures, run_calls  # noqa: E402
from procs import stop as stop_process  # noqa: E402

from switchboard_tools.diag import Client  # noqa: E402

from firmware.telephony.modem.sim import SimModem  # noqa: E402

RATE = 16000


def burst_source(i0, n):
    """The modem's far end: 1 kHz for the first 200 ms of every second (sample clock)."""
    import math
    return [int(AMP * 32767 * math.sin(2 * math.pi * 1000 * i / 8000)) if i % 8000 < 1600 else 0
            for i in range(i0, i0 + n)]


def say(card, pcm):
    """Queue a train for the microphone; returns the card's byte count where it starts."""
    h = card.headsets["hs1"]
    with h.lock:
        base = h.said + len(h.mic_queue)
    card.say("hs1", pcm)
    return base


def mic_start(card, base):
    """When ALSA read the first byte of the train that starts at byte ``base``."""
    t, said = next((t, s) for t, s in card.mic_log("hs1") if s >= base)
    return t - (said - base) / (2 * RATE)


class Board:
    """The daemon as a process, driven with switchboard-diag."""

    def __init__(self, tmp, card, sim):
        self.tmp = tmp
        site = tmp / "desk.site.toml"
        site.write_text(f'[front]\nport = 0\n[[trunks]]\nname = "lo"\nmode = "peer"\n'
                        'peers = ["127.0.0.1"]\n[[trunks]]\nname = "pots1"\nmode = "modem"\n'
                        f'device = "{sim.path}"\nline = "901"\n[[positions]]\nheadset = "hs1"\n')
        self.out = open(tmp / "daemon.out", "wb")
        self.proc = subprocess.Popen(
            python_cmd("firmware.runtime.daemon", "--sim", "--board", "desk", "--site", site,
                       "--sip-port", "0", "--socket", tmp / "ctl.sock", "--no-web",
                       "--data-dir", tmp / "var"),
            stdout=self.out, stderr=subprocess.STDOUT, env=project_env(**card.env()))
        self.wait(lambda: b"telephony ready" in (tmp / "daemon.out").read_bytes(), 120, "telephony")
        self.wait(lambda: self.status().get("modems", {}).get("pots1", {}).get("state") == "ready",
                  30, "the modem")
        self.front = int(self.status()["telephony"]["front"].rsplit(":", 1)[1])

    def diag(self, *args):
        r = subprocess.run(python_cmd("switchboard_tools.diag", *args, "--socket",
                                      self.tmp / "ctl.sock", "--json"),
                           capture_output=True, text=True, env=project_env(), timeout=60)
        return json.loads(r.stdout) if r.stdout.startswith("{") else {}

    def status(self):
        return self.diag("status")

    def line(self, n):
        return next(ln for ln in self.status()["lines"] if ln["number"] == n)

    def wait(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"the daemon exited: {(self.tmp / 'daemon.out').read_text()[-2000:]}")
            try:
                if pred():
                    return
            except (KeyError, StopIteration, ValueError):
                pass
            time.sleep(0.1)
        raise SystemExit(f"timed out waiting for {what}")

    def stop(self):
        stop_process(self.proc, 20)
        self.out.close()


def modem_call(board, sim, card):
    secs = LEAD_S + BURSTS * PERIOD_S + 0.8
    sim.ring("5551234", period=1.0, rings=30, source=burst_source)
    board.wait(lambda: board.line("901")["state"] == "ringing", 20, "901 ringing")
    board.diag("tap", "line-901")
    board.wait(lambda: sim.streaming, 10, "off-hook")
    time.sleep(1.0)
    t_ear0 = time.monotonic()
    t_mic = time.monotonic()
    base = say(card, burst_train(RATE))
    time.sleep(secs)
    ear = [(t, p) for t, p in card.ear_timed("hs1") if t >= t_ear0 - 0.5]
    # line -> earpiece: when did each burst's first sample leave the modem?
    sent = [(t, first, n) for t, first, n in sim.sent if t >= t_ear0 - 1.0]
    starts = []
    for t, first, n in sent:
        k = -(-first // 8000) * 8000                  # the next burst start at or after first
        if k < first + n:
            starts.append(t)
    to_ear = match(starts, timed_onsets(ear, RATE))
    heard0 = mic_start(card, base)
    mic_sent = expected_times(heard0)
    heard = [(t, p) for t, p in sim.heard if t >= t_mic]
    # each chunk's arrival stamps its last sample: shift to its first
    heard = [(t - len(p) / 2 / 8000, p) for t, p in heard]
    to_line = match(mic_sent, timed_onsets(heard, 8000))
    board.diag("tap", "p1-release")
    board.wait(lambda: not sim.streaming, 10, "on-hook")
    return to_ear, to_line


def ring_call(board, sim):
    """First RING -> lamp flashing, -> number on the line; and -> the caller ID block."""
    client = Client(board.tmp / "ctl.sock")

    def line901():
        return next(ln for ln in client.call("status")["lines"] if ln["number"] == "901")
    sim.ring("5557788", "ANN LEE", period=6.0, rings=4, source=burst_source)
    lamp = number = None
    end = time.monotonic() + 20
    while (lamp is None or number is None) and time.monotonic() < end:
        ln = line901()
        now = time.monotonic()
        if lamp is None and ln["state"] == "ringing":
            lamp = now
        if number is None and ln["caller"] == "5557788":
            number = now
        time.sleep(0.01)
    client.sock.close()
    first = sim.rang_at[0] if sim.rang_at else None
    out = {k: (t - first if t is not None and first is not None else None)
           for k, t in (("lamp", lamp), ("number", number), ("caller_id_block", sim.cid_at))}
    board.diag("tap", "line-901")
    board.wait(lambda: sim.streaming, 10, "off-hook")
    sim.hang_up("busy")
    board.wait(lambda: board.line("901")["state"] == "idle" and not sim.off_hook, 15, "901 idle")
    return out


def sip_call(board, card, tmp, i):
    secs = LEAD_S + BURSTS * PERIOD_S + 0.8
    train = pcm_wav(tmp / "train16k.wav", burst_train(RATE), RATE)  # the peer's bridge rate
    rec = tmp / f"sip-rec{i}.wav"
    with PeerProc(tmp, name=f"sip{i}", call=f"sip:201@127.0.0.1:{board.front}", record=rec,
                  play=train, seconds=secs + 6, codec="PCMU", stamped=True) as a:
        board.wait(lambda: board.line("201")["state"] == "ringing", 20, "201 ringing")
        board.diag("tap", "line-201")
        a.next("media", 15)
        time.sleep(0.5)
        base = say(card, burst_train(RATE))
        done = a.next("done", secs + 30)
    ear = card.ear_timed("hs1")
    to_ear = match(stamped_sent(done["played"], RATE), timed_onsets(ear, RATE))
    heard0 = mic_start(card, base)
    pa, ra = wav_pcm(rec)
    got = stamped_onsets(pa, ra, done["heard"])
    sent = expected_times(heard0)
    if "MODEM_BENCH_DEBUG" in __import__("os").environ:
        print("sip mic: sent", [round(x - heard0, 3) for x in sent], "got",
              [round(x - heard0, 3) for x in got], ra, len(pa), file=sys.stderr)
    to_line = match(sent, got)
    board.wait(lambda: board.line("201")["state"] == "idle", 15, "201 idle")
    return to_ear, to_line


def drift_run(drift, minutes, seed=1):
    """Simulated time: the modem's reads at its clock (jittered), the bridge's ticks at its own."""
    rnd = random.Random(seed)
    rx, tx = MeteredBuffer(), MeteredBuffer()
    chunk, gap = 64, 64 / (8000 * (1 + drift))
    frame = bytes(2 * 160)
    k_in, t_out, next_in, credit = 0, 0.0, 0.0, 0
    while t_out < minutes * 60:
        if next_in <= t_out:                  # the serial thread: a read, and tx by its count
            rx.put(bytes(2 * chunk))
            credit += chunk
            while credit >= 160:
                tx.take()
                credit -= 160
            k_in += 1
            next_in = k_in * gap + rnd.uniform(-0.004, 0.004)
        else:                                 # the bridge's tick
            rx.take()
            tx.put(frame)
            t_out += 0.02
    return {"drift_pct": drift * 100, "minutes": minutes, "rx": figures(rx), "tx": figures(tx)}


def drift_sim(minutes):
    """Real time: simulated modems 0.1 % fast and 0.1 % slow, side by side."""
    runs = run_calls((1.001, 0.999), minutes * 60)
    for r in runs:
        r["minutes"] = minutes
    return runs


def print_drift(title, runs):
    print(f"{title}: level after each take min/median/p99/max (ms); corrections; underruns; "
          "a plain FIFO's end")
    for d in runs:
        for side, way in (("rx", "line -> bridge"), ("tx", "bridge -> line")):
            b, lv = d[side], d[side]["level_ms"]
            print(f"  modem clock {d['drift_pct']:+.1f} %, {side} ({way}): "
                  f"{lv['min']:.1f}/{lv['median']:.1f}/{lv['p99']:.1f}/{lv['max']:.1f}; "
                  f"dropped {b['dropped']}, inserted {b['inserted']} "
                  f"({b['reversals']} reversals); underruns {b['underruns']}"
                  f"{', overflows ' + str(b['overflows']) if b['overflows'] else ''}; "
                  f"plain FIFO ends at {b['plain_fifo_end_ms']} ms, "
                  f"{b['plain_fifo_short_frames']} frames it could not fill")
        if "bridge_late_ms" in d:
            stalls = d["rx"]["writer_stalls"] + d["tx"]["writer_stalls"]
            worst = max(d["rx"]["writer_worst_gap_ms"], d["tx"]["writer_worst_gap_ms"])
            print(f"    (the machine: {stalls} stalls of a thread for more than two frames, the "
                  f"worst {worst} ms; still in the call at the end: {d['still_in_call']})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2, help="calls on each path")
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated call length (drift)")
    ap.add_argument("--sim-minutes", type=float, default=10.0,
                    help="real-time call length through the simulated modems (0: none)")
    ap.add_argument("--no-audio", action="store_true", help="only the drift buffers")
    ap.add_argument("--sip-only", action="store_true",
                    help="audio through the SIP path only (no modem calls, rings or drift)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    out = {"drift": [] if a.sip_only else [drift_run(d, a.minutes) for d in (0.001, -0.001)]}
    if a.sim_minutes > 0 and not a.sip_only:
        out["drift_sim"] = drift_sim(a.sim_minutes)
    if not a.no_audio:
        tmp = Path(tempfile.mkdtemp(prefix="modem-bench-"))
        (tmp / "by-id").mkdir()
        sim = SimModem("conexant", link=tmp / "by-id" / "usb-Conexant_USB_Modem-if00")
        card = FakeCard(tmp / "home", ["hs1"], rate=RATE)
        card.start()
        board = Board(tmp, card, sim)
        res = {"modem": ([], []), "sip": ([], [])}
        rings = []
        try:
            for i in range(a.calls):
                if not a.sip_only:
                    rings.append(ring_call(board, sim))
                    e, m = modem_call(board, sim, card)
                    res["modem"][0].extend(e)
                    res["modem"][1].extend(m)
                e, m = sip_call(board, card, tmp, i)
                res["sip"][0].extend(e)
                res["sip"][1].extend(m)
        finally:
            board.stop()
            card.stop()
            sim.stop()
        out["ring"] = {k: summary([r[k] for r in rings if r[k] is not None])
                       for k in ("lamp", "number", "caller_id_block")}
        out["delay"] = {p: {"line_to_earpiece": summary(v[0]), "microphone_to_line": summary(v[1])}
                        for p, v in res.items()}
        for way in ("line_to_earpiece", "microphone_to_line"):
            m, s = out["delay"]["modem"][way], out["delay"]["sip"][way]
            if m["n"] and s["n"]:
                out["delay"].setdefault("added_ms", {})[way] = round(m["median_ms"] - s["median_ms"], 1)
    if a.json:
        print(json.dumps(out, indent=1))
        return
    if "delay" in out:
        print("audio delay (median, min-max; n bursts)        modem path          SIP path")
        for way in ("line_to_earpiece", "microphone_to_line"):
            m, s = out["delay"]["modem"][way], out["delay"]["sip"][way]
            def f(d):
                return (f"{d['median_ms']} ({d['min_ms']}-{d['max_ms']}) n={d['n']}"
                        if d["n"] else "not measured")
            print(f"  {way.replace('_', ' '):40s} {f(m):20s}  {f(s)}")
        print(f"  added by the modem path: {out['delay'].get('added_ms')}")
    if "ring" in out and out["ring"]["lamp"]["n"]:
        rg = out["ring"]

        def g(d):
            return f"{d['median_ms']} ({d['min_ms']}-{d['max_ms']}) ms" if d["n"] else "not measured"
        print(f"after the first RING (median, min-max; n={rg['lamp']['n']}): lamp flashing "
              f"{g(rg['lamp'])}; number on the line {g(rg['number'])}; the caller ID block "
              f"came at {g(rg['caller_id_block'])} (where the lamp started before)")
    if out["drift"]:
        print_drift(f"drift buffers, modelled, {a.minutes:g} min simulated", out["drift"])
    if "drift_sim" in out:
        print_drift(f"drift buffers through the simulated modem, {a.sim_minutes:g} min real time",
                    out["drift_sim"])

if __name__ == "__main__":
    main()
