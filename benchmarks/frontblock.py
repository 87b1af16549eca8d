"""Blocked callers at the front: what the block list costs each new call, and a refusal's time.

A real Kamailio front (``firmware/telephony/front.py``) with a SIPp stand-in for
a worker that answers every INVITE ``486`` at once; a caller on loopback sends
INVITEs one after another and times each to its final answer:

- **not blocked**, with 0 (the baseline, in the same run), 100 and 1000 rules in
  the front's ``blocked`` htable: every rule is tried (none matches), then the
  call goes to the worker;
- **blocked**: refused ``486`` by the front itself (the rule matches);
- **a change**: how long giving the front 1000 rules, then one more, takes over
  its control socket.

Run: ``python benchmarks/frontblock.py [--calls 200]`` from the repository root.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firmware.telephony.front import Front, free_port  # noqa: E402
from firmware.telephony.frontblock import FrontBlocks, FrontRpc, front_rules  # noqa: E402

NUMBERS = {"201": "201"}


def invite(sock, port, caller, n):
    cid = f"bench-{caller}-{n}-{time.time_ns()}"
    me = sock.getsockname()
    msg = (f"INVITE sip:201@127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bK{cid};rport\r\n"
           "Max-Forwards: 70\r\n"
           f"From: <sip:{caller}@127.0.0.1>;tag=b{n}\r\nTo: <sip:201@127.0.0.1>\r\n"
           f"Call-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:b@{me[0]}:{me[1]}>\r\n"
           "Content-Length: 0\r\n\r\n")
    t = time.perf_counter()
    sock.sendto(msg.encode(), ("127.0.0.1", port))
    while True:
        data = sock.recv(65535)
        if cid.encode() in data and not data.startswith(b"SIP/2.0 1"):
            took = time.perf_counter() - t
            code = int(data.split(b" ", 2)[1])
            if code >= 200:    # ACK the final answer, as a caller does
                sock.sendto(msg.replace("INVITE sip", "ACK sip", 1)
                            .replace("CSeq: 1 INVITE", "CSeq: 1 ACK").encode(),
                            ("127.0.0.1", port))
            return took, code


def timed(sock, port, caller, calls):
    """Times of ``calls`` INVITEs, 40 a second at most (the front paces set-ups to a
    worker: 64 a second), and every final answer seen."""
    out, codes = [], set()
    for n in range(calls):
        took, code = invite(sock, port, caller, n)
        out.append(took)
        codes.add(code)
        time.sleep(max(0.0, 0.025 - took))
    return out, "/".join(map(str, sorted(codes)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wport = free_port()
        worker = subprocess.Popen(
            ["sipp", "-sf", str(ROOT / "tests/support/sipp/uas_busy.xml"), "-i", "127.0.0.1",
             "-p", str(wport), "-nostdin", "-timeout", "600s"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        front = Front(tmp / "front", listen="127.0.0.1", port=0, transports=("udp",),
                      peers=["127.0.0.1"], numbers=list(NUMBERS), workers=[(wport, 100)])
        front.start()
        blocks = FrontBlocks(FrontRpc(front.rpc_path))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        try:
            rows = []
            for n in (0, 100, 1000):
                rules = [(f"9{i:06d}*", None, f"9{i:06d}*|*") for i in range(n)]
                t = time.perf_counter()
                blocks.sync(front_rules(rules, NUMBERS))
                pushed = time.perf_counter() - t
                times, code = timed(sock, front.port, "5550123", args.calls)
                rows.append((f"not blocked, {n} rules (to the worker, {code})", times, pushed))
            t = time.perf_counter()
            blocks.sync(front_rules(rules + [("555019?", None, "555019?|*")], NUMBERS))
            one_more = time.perf_counter() - t
            times, code = timed(sock, front.port, "5550199", args.calls)
            assert code == "486", code
            rows.append((f"blocked at the front ({code}), 1001 rules", times, None))
            base = statistics.median(rows[0][1])
            print(f"{args.calls} INVITEs each, one at a time, to the final answer:")
            for label, times, pushed in rows:
                med = statistics.median(times)
                p99 = sorted(times)[int(0.99 * (len(times) - 1))]
                print(f"  {label:<46} median {med * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"
                      f"  (+{(med - base) * 1000:5.2f} ms on the baseline)"
                      + (f"  rules given in {pushed * 1000:.0f} ms" if pushed else ""))
            print(f"  one rule added to 1000 over the control socket: {one_more * 1000:.1f} ms")
        finally:
            sock.close()
            front.stop()
            worker.kill()
            worker.wait()


if __name__ == "__main__":
    main()
