"""A made-up busy month of records for a board (benchmarks and tests).

Deterministic for a seed: customers of the usual kinds on lines 201..,
incoming calls with a day-time profile (busier mornings, quiet nights), some
abandoned, message slips stamped and read back, wake-up and reminder calls.
The records have the shapes of firmware/records/recordset.py.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

KINDS = ("doctor", "plumber", "locksmith", "tow", "sales", "office", "dentist", "lawyer")
PLANS = ("standard", "standard", "small", "busy")
#: Relative call volume per hour of the day.
HOURLY = (1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 15, 13, 10, 11, 13, 14, 12, 9, 6, 4, 3, 2, 2, 1)


def customers(n: int = 100, first_line: int = 201, start=date(2026, 1, 1), seed=1) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        out.append({
            "id": f"C{i + 1:03d}", "line": str(first_line + i),
            "name": f"{kind.title()} {chr(65 + i % 26)}{i:02d}", "kind": kind,
            "plan": PLANS[rng.randrange(len(PLANS))],
            "contract_start": start.isoformat(), "notice_date": None,
            "last_month_prepaid": rng.random() < 0.3,
        })
    return out


def month_of_records(custs, year=2026, month=11, busy=1.0, seed=2, positions=2):
    """(calls, stamps) for one month; ``busy`` scales the volume (1.0 ~ 120 calls a line)."""
    rng = random.Random(seed)
    first = datetime(year, month, 1, tzinfo=timezone.utc)
    nxt = datetime(year + (month == 12), 1 if month == 12 else month + 1, 1, tzinfo=timezone.utc)
    days = (nxt - first).days
    hours = [h for h, w in enumerate(HOURLY) for _ in range(w)]
    calls, stamps = [], []
    slip = 1000
    n_id = 0
    for c in custs:
        weight = {"doctor": 2.0, "dentist": 1.5, "plumber": 1.3, "tow": 1.2}.get(c["kind"], 0.8)
        weight *= rng.uniform(0.5, 1.6)
        n = int(120 * busy * weight)
        for _ in range(n):
            n_id += 1
            t = first + timedelta(days=rng.randrange(days), hours=rng.choice(hours),
                                  seconds=rng.randrange(3600))
            pos = rng.randrange(1, positions + 1)
            r = rng.random()
            wait = rng.lognormvariate(2.3, 0.6)       # seconds to answer, median ~10 s
            rec = {"id": f"K{n_id:06d}", "line": c["line"], "direction": "in", "kind": "call",
                   "caller": f"555{rng.randrange(10**7):07d}", "callee": c["line"],
                   "offered": t.isoformat(), "position": pos, "hold_s": 0.0}
            if r < 0.08:
                rec.update(answered=None, ended=(t + timedelta(seconds=wait * 1.5)).isoformat(),
                           rings=1 + int(wait * 1.5 // 6), outcome="abandoned", position=None)
            elif r < 0.10:
                rec.update(answered=(t + timedelta(seconds=wait)).isoformat(),
                           ended=(t + timedelta(seconds=wait + 40)).isoformat(),
                           rings=1 + int(wait // 6), outcome="transferred")
            else:
                talk = rng.uniform(20, 180)
                hold = rng.uniform(5, 60) if rng.random() < 0.2 else 0.0
                ans = t + timedelta(seconds=wait)
                rec.update(answered=ans.isoformat(),
                           ended=(ans + timedelta(seconds=talk + hold)).isoformat(),
                           rings=1 + int(wait // 6), outcome="answered", hold_s=round(hold, 1))
                if rng.random() < 0.6:
                    slip += 1
                    st = ans + timedelta(seconds=talk)
                    stamps.append({"slip": slip, "time": st.isoformat(), "line": c["line"],
                                   "customer": c["id"], "position": pos, "what": "message",
                                   "call": rec["id"], "text": "please call back"})
                    if rng.random() < 0.8:
                        rb = st + timedelta(hours=rng.uniform(0.5, 8))
                        if rb < nxt:
                            stamps.append({"slip": slip, "time": rb.isoformat(), "line": c["line"],
                                           "customer": c["id"], "position": rng.randrange(1, positions + 1),
                                           "what": "read-back", "call": None, "text": ""})
            calls.append(rec)
        if c["kind"] in ("doctor", "dentist", "office"):
            for d in range(days):
                if rng.random() < 0.3:
                    n_id += 1
                    t = first + timedelta(days=d, hours=6, minutes=rng.choice((0, 15, 30)))
                    kind = "wakeup" if c["kind"] == "office" else "reminder"
                    ok = rng.random() < 0.85
                    calls.append({"id": f"K{n_id:06d}", "line": "901", "direction": "out",
                                  "kind": kind, "caller": "901", "callee": f"555{rng.randrange(10**7):07d}",
                                  "offered": t.isoformat(),
                                  "answered": (t + timedelta(seconds=8)).isoformat() if ok else None,
                                  "ended": (t + timedelta(seconds=40)).isoformat(), "rings": 2,
                                  "position": None, "hold_s": 0.0,
                                  "outcome": "answered" if ok else "no-answer", "customer": c["id"]})
    calls.sort(key=lambda r: r["offered"])
    stamps.sort(key=lambda r: r["time"])
    return calls, stamps
