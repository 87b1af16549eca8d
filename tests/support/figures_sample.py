"""A small sample of call records and stamps whose figures are worked out by hand."""

from datetime import datetime, timedelta, timezone

from firmware.records.recordset import call_from, stamp_from

UTC = timezone.utc
T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def call(i, line="201", wait=None, rang=None, hour=9, position=1, hold=0.0, outcome=None, **kw):
    t = T0.replace(hour=hour) + timedelta(minutes=i)
    rec = {"id": f"F{line}-{hour}-{i}", "line": line, "direction": "in", "kind": "call", "caller": "5550100",
           "callee": line, "offered": t.isoformat(), "rings": 1, "position": position, "hold_s": hold}
    if wait is not None:
        rec.update(answered=(t + timedelta(seconds=wait)).isoformat(),
                   ended=(t + timedelta(seconds=wait + 60)).isoformat(), outcome=outcome or "answered")
    else:
        rec.update(answered=None, ended=(t + timedelta(seconds=rang)).isoformat(),
                   outcome=outcome or "abandoned", position=None)
    rec.update(kw)
    return call_from(rec)


def stamp(slip, what, line="201", position=1, hour=9, **kw):
    return stamp_from({"slip": slip, "time": T0.replace(hour=hour).isoformat(), "line": line,
                       "customer": None, "position": position, "what": what, "call": None, "text": "", **kw})


def sample():
    waits = [2, 4, 6, 8, 10, 12, 14, 16, 18, 40]          # line 201, hour 9, position 1
    calls = [call(i, wait=w, hold=5.0 if i < 2 else 0.0) for i, w in enumerate(waits)]
    calls += [call(20, rang=30), call(21, rang=12)]        # two abandoned on 201
    calls += [call(i, line="202", wait=20, hour=14, position=2) for i in range(4)]
    calls += [call(9, line="202", rang=8, hour=14), call(10, line="202", wait=None, rang=60, hour=14,
                                                          outcome="overflowed")]
    calls.append(call_from({"id": "W1", "line": "901", "direction": "out", "kind": "wakeup", "caller": "901",
                            "callee": "5557", "offered": T0.isoformat(), "answered": None,
                            "ended": T0.isoformat(), "rings": 5, "position": None, "hold_s": 0,
                            "outcome": "no-answer", "customer": "C1"}))
    stamps = [stamp(1, "message"), stamp(2, "message"), stamp(3, "read-back", of=1, position=2, hour=15),
              stamp(4, "message", line="202", position=2, hour=14), stamp(5, "answer")]
    customers = [{"id": "C1", "line": "201"}, {"id": "C2", "line": "202"}]
    return calls, stamps, customers
