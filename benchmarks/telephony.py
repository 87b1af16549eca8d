"""Telephony benchmark: the board's SIP side beside a bare PJSUA2 auto-answer endpoint.

Both are measured in the same run, on 127.0.0.1:

- INVITE to 180 Ringing (both), and INVITE to LineRinging handled by the
  board's state (the moment the lamp starts flashing), median and p99;
- the most simultaneous calls held ringing with none turned away (the
  baseline is one PJSUA2 process; the board is the TAS-100, up to all 115
  lines);
- sustained call attempts per second with no failures: SIPp callers that ring
  for half a second and give up, stepping the rate up until one fails
  (bounded: each step lasts a few seconds, the rates are capped);
- memory of each side: every worker, Kamailio, the positions: resident (VmRSS summed,
  as the old figure was taken; it counts each shared page once per process, e.g.
  Kamailio's shared memory in each of its children) and proportional (Pss: shared pages
  split between the processes sharing them, so the sum is what the side really takes);
- the TAS-100's PJSUA2 worker processes and all its telephony processes, beside the
  figures before the project built its own PJSUA2 (PyPI's wheel, 4 calls a process:
  39 workers, 1264 MB resident; README, "Telephony").

Run: ``python benchmarks/telephony.py [--quick]``. Needs sipp and kamailio
(scripts/setup.sh installs them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "support"), str(ROOT / "host-tools")]

from firmware.config.board import load_board                       # noqa: E402
from firmware.config.site import load_site                         # noqa: E402
from firmware.core.state import LineRinging, LineState               # noqa: E402
from firmware.telephony.adapter import TelephonyAdapter         # noqa: E402
from firmware.records.calls import JsonLinesRecords         # noqa: E402
from firmware.telephony.children import rss_kb              # noqa: E402
from telephony_support import BoardLoop, PeerProc, Uac, sipp    # noqa: E402


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")


def pss_kb(pid) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pids(pid) -> list[int]:
    """A process and its children (Kamailio forks its own workers)."""
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except OSError:
        kids = []
    return [pid] + [p for k in kids for p in tree_pids(int(k))]


def tree_rss_kb(pid) -> int:
    return sum(rss_kb(p) for p in tree_pids(pid))


# The TAS-100's telephony with PyPI's pjsua2-python wheel (4 calls a process), measured
# 2026-11-22 by this benchmark on the same machine: README, "Telephony".
BEFORE = {"workers": 39, "memory_mb": 1264}


def latency(uac, host, port, numbers, n, board=None):
    """INVITE to 180 (and to LineRinging on the board), one call at a time."""
    to180, toring = [], []
    for i in range(n):
        number = numbers[i % len(numbers)]
        seen = len(board.events) if board else 0
        cid, branch, t0 = uac.invite(number, host, port)
        r = uac.wait(cid, lambda c: c == 180 or c >= 300)
        if r is None or r[1] != 180:
            raise SystemExit(f"call {i} to {number}: no 180 ({r and r[1]})")
        to180.append((r[0] - t0) * 1000)
        if board is not None:
            deadline = time.time() + 5
            while time.time() < deadline:
                hit = next((e for e in board.events[seen:] if isinstance(e, LineRinging)), None)
                if hit is not None and id(hit) in board.handled_at:
                    toring.append((board.handled_at[id(hit)] - t0) * 1000)
                    break
                time.sleep(0.0005)
        uac.cancel(number, host, port, cid, branch)
        # Paced: one PJSUA2 process aborts after ~28 call set-ups in half a second
        # (its RTP sockets' I/O-queue slots are freed 500 ms late), the baseline too.
        time.sleep(0.04)
        if board is not None:
            deadline = time.time() + 5
            while board.line(number) is not LineState.IDLE and time.time() < deadline:
                time.sleep(0.002)
    return to180, toring


def most_at_once(uac, host, port, numbers, attempts):
    """Send ``attempts`` INVITEs together; count those that ring (180) before any is refused."""
    calls = [(n,) + uac.invite(n, host, port) for n in numbers[:attempts]]
    codes = []
    for _number, cid, _branch, _ in calls:
        r = uac.wait(cid, lambda c: c == 180 or c >= 300, timeout=10)
        codes.append(r[1] if r else None)
    ringing = sum(1 for c in codes if c == 180)
    refused = sum(1 for c in codes if c != 180)
    for (number, cid, branch, _), c in zip(calls, codes):
        if c == 180:
            uac.cancel(number, host, port, cid, branch)
    why = {}  # what turned each refused call away: its SIP code, or "none" in 10 s
    for (number, *_), c in zip(calls, codes):
        if c != 180:
            why.setdefault(str(c or "none"), []).append(number)
    return ringing, refused, why


def sustained(port, numbers, tmp, rates, seconds):
    """The highest SIPp call rate (ringing 0.5 s each) with no failed call."""
    best = 0
    for rate in rates:
        calls = int(rate * seconds)
        d = Path(tmp) / f"rate{rate}-{port}"
        d.mkdir(parents=True, exist_ok=True)
        p = sipp("ring_cancel.xml", port, numbers, d, calls=calls, rate=rate, hold_ms=500,
                 limit=max(8, int(rate)), timeout_s=int(seconds + 15))
        try:
            rc = p.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = -1
        if rc != 0:
            break
        best = rate
        time.sleep(1.0)
    return best


class TimedBoard(BoardLoop):
    """The board loop, noting when each event was handled (the lamp starts flashing then)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.handled_at = {}

    def _handle(self, event):
        super()._handle(event)
        self.handled_at[id(event)] = time.perf_counter()


def step(text):
    print(f"  ... {text}", file=sys.stderr, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls, lower rates")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    n_lat = 30 if a.quick else 200
    rates = [5, 10, 20] if a.quick else [5, 10, 20, 40, 80, 120, 160]
    secs = 3 if a.quick else 5
    tmp = Path(tempfile.mkdtemp(prefix="bench-telephony-"))
    out = {}
    uac = Uac()

    # -- baseline: one bare PJSUA2 process that rings and never answers
    peer = PeerProc(tmp, "baseline", answer_after=3600, record=False)
    pport = int(peer.uri.rsplit(":", 1)[1])
    try:
        step("baseline: latency")
        b180, _ = latency(uac, "127.0.0.1", pport, ["100"], n_lat)
        step("baseline: calls at once")
        ring, refused, _ = most_at_once(uac, "127.0.0.1", pport, ["100"] * 20, 20)
        time.sleep(1)
        step("baseline: sustained rate")
        brate = sustained(pport, ["100"], tmp, rates, secs)
        out["baseline"] = {"invite_to_180_ms": {"median": statistics.median(b180),
                                                "p99": pct(b180, 99)},
                           "most_ringing_at_once": ring, "refused_of_20": refused,
                           "calls_per_s_no_failures": brate,
                           "memory_mb": round(rss_kb(peer.proc.pid) / 1024, 1)}
    finally:
        peer.stop()

    # -- the board: TAS-100, Kamailio front, PJSUA2 worker pool, two positions
    board_file = load_board(ROOT / "boards" / "tas100.toml")
    site = load_site(ROOT / "boards" / "tas100.site.toml", board_file)
    step("board: starting")
    board = TimedBoard(board_file, tmp / "data")
    t = time.perf_counter()
    adapter = TelephonyAdapter(board_file, site, run_dir=tmp / "tel", port=0,
                               records=JsonLinesRecords(tmp / "calls.jsonl"))
    board.add_adapter(adapter)
    board.start()
    if not adapter.wait_ready(120):
        raise SystemExit(f"telephony did not start: {adapter.error}")
    start_s = time.perf_counter() - t
    try:
        fport = adapter.front.port
        lines = [ln.number for ln in board_file.lines]
        step("board: latency")
        r180, rring = latency(uac, "127.0.0.1", fport, lines, n_lat, board)
        step("board: calls at once")
        # The front paces set-ups per worker per clock second (503 Retry-After beyond): the
        # storm starts in a second of its own, or the latency run's last calls count in it.
        time.sleep(1.1)
        ring, refused, why = most_at_once(uac, "127.0.0.1", fport, lines, len(lines))
        held = board.count(LineState.RINGING)
        time.sleep(2)
        pids = [w.pid for w in adapter.workers] + tree_pids(adapter.front.proc.pid) \
            + [p.proc.pid for p in adapter.position_procs.values()]
        mem = sum(rss_kb(p) for p in pids)
        pss = sum(pss_kb(p) for p in pids)
        worker_mem = sum(rss_kb(w.pid) for w in adapter.workers)
        step("board: sustained rate")
        brate = sustained(fport, lines, tmp, rates, secs)
        st = adapter.status()
        out["board"] = {"invite_to_180_ms": {"median": statistics.median(r180), "p99": pct(r180, 99)},
                        "invite_to_line_ringing_ms": {"median": statistics.median(rring),
                                                      "p99": pct(rring, 99)},
                        "most_ringing_at_once": ring, "refused_of_115": refused,
                        "refused_by_code": why,
                        "lines_ringing_on_the_board": held,
                        "calls_per_s_no_failures": brate,
                        "workers": len(adapter.workers), "calls_per_worker": st["calls_per_worker"],
                        "capacity": st["capacity"], "start_s": round(start_s, 2),
                        "memory_mb": round(mem / 1024, 1), "memory_pss_mb": round(pss / 1024, 1),
                        "workers_memory_mb": round(worker_mem / 1024, 1),
                        "processes": len(pids), "before": BEFORE}
    finally:
        board.stop()

    if a.json:
        print(json.dumps(out, indent=2))
        return
    b, s = out["baseline"], out["board"]
    rows = [
        ("INVITE -> 180 Ringing, median (ms)", f"{b['invite_to_180_ms']['median']:.2f}",
         f"{s['invite_to_180_ms']['median']:.2f}"),
        ("INVITE -> 180 Ringing, p99 (ms)", f"{b['invite_to_180_ms']['p99']:.2f}",
         f"{s['invite_to_180_ms']['p99']:.2f}"),
        ("INVITE -> LineRinging (lamp), median (ms)", "-",
         f"{s['invite_to_line_ringing_ms']['median']:.2f}"),
        ("INVITE -> LineRinging (lamp), p99 (ms)", "-", f"{s['invite_to_line_ringing_ms']['p99']:.2f}"),
        ("calls ringing at once, none refused", f"{b['most_ringing_at_once']} (of 20: "
         f"{b['refused_of_20']} refused)", f"{s['most_ringing_at_once']} (of 115: "
         f"{s['refused_of_115']} refused)"),
        ("call attempts/s with no failure (tried up to)", f"{b['calls_per_s_no_failures']}",
         f"{s['calls_per_s_no_failures']}  (max tried {rates[-1]})"),
        ("memory, resident (MB, VmRSS summed)", f"{b['memory_mb']}", f"{s['memory_mb']}"),
        ("memory, proportional (MB, Pss summed)", "-", f"{s['memory_pss_mb']}"),
    ]
    print(f"telephony benchmark ({'quick' if a.quick else 'full'}; {n_lat} calls for latency)")
    print(f"board: {s['workers']} PJSUA2 workers x {s['calls_per_worker']} calls, "
          f"capacity {s['capacity']}, started in {s['start_s']} s")
    print(f"TAS-100 telephony: {s['workers']} PJSUA2 workers ({s['workers_memory_mb']} MB), "
          f"{s['processes']} processes in all (workers, Kamailio and its children, 2 positions): "
          f"{s['memory_mb']} MB resident, {s['memory_pss_mb']} MB proportional; before (PyPI's "
          f"4-call wheel): {BEFORE['workers']} workers, {BEFORE['memory_mb']} MB resident")
    print(f"ring storm: {s['most_ringing_at_once']} of 115 ringing at once, {s['refused_of_115']} "
          f"refused{' ' + str(s['refused_by_code']) if s['refused_by_code'] else ''}; "
          f"{s['calls_per_s_no_failures']} call attempts/s sustained with no failure")
    w = max(len(r[0]) for r in rows)
    print(f"{'':<{w}}  {'bare PJSUA2':>22}  {'board (TAS-100)':>28}")
    for name, x, y in rows:
        print(f"{name:<{w}}  {x:>22}  {y:>28}")


if __name__ == "__main__":
    main()
