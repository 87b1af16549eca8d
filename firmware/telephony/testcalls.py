"""Test callers: the simulated board's ``ring``, and the trunk test (``test-call``).

A test caller is a real SIP call placed by a worker into the board's front,
as a caller on a trunk would; the call it becomes on the board is matched by
its SIP Call-ID. Test callers are kept apart from the board's calls
(``self.tests``, by id) and leave no call record of their own.
"""

from __future__ import annotations

import asyncio
import threading
import time

from firmware.runtime.commands import LINE, Arg, Command, NotMine
from firmware.telephony import protocol as msg


class TestCallers:
    """Mixin of ``TelephonyAdapter``: ring, hang up, levels, the trunk test, and the
    control commands that use them."""

    def ring(self, line: str, caller: str | None = None, echo: float = 0.0) -> dict:
        """Place a real SIP call into ``line`` through the front, as a caller would."""
        with self._lock:
            if self.state != "running" or not self.front_up:
                why = self.error or ("the SIP front is down" if self.state == "running" else None)
                raise RuntimeError(f"telephony is {self.status_state()}" +
                                   (f": {why}" if why else ""))
            number = next((n for n, ln in self.site.numbers.items() if ln == line), line)
            w = self._least_loaded()
            self._seq += 1
            tid = f"test-{self._seq}"
            t = {"id": tid, "line": line, "worker": w, "sip_call_id": None, "board_call": None,
                 "placed_t": self.clock(), "rang_t": None, "answered_t": None, "ended_t": None,
                 "code": None, "echo": echo}
            self.tests[tid] = t
            w.calls.add(tid)
            host = "127.0.0.1" if self.site.listen in ("0.0.0.0", "::") else self.site.listen
            w.send(msg.PlaceOutgoing(call=tid, kind="ring", caller=caller or "diag",
                                     uri=f"sip:{number}@{host}:{self.front.port}"))
            return t

    def _test_rang(self, t, c):
        """A test caller's INVITE has arrived on the board as call ``c``."""
        t["board_call"], t["rang_t"] = c.id, self.clock()
        if t.get("echo"):
            c.answered = self.clock()
            threading.Timer(t["echo"], c.worker.send, args=(msg.EchoCall(call=c.id),)).start()

    def _test_event(self, t, m):
        if isinstance(m, msg.Placed):
            # The two workers' reports race: the board's side may have arrived first.
            t["sip_call_id"] = m.sip_call_id
            c = next((c for c in self.book.by_id.values() if c.sip_call_id == t["sip_call_id"]),
                     None)
            if c is not None:
                self._test_rang(t, c)
        elif isinstance(m, msg.Confirmed):
            t["answered_t"] = self.clock()
        elif isinstance(m, msg.Ended):
            t["ended_t"], t["code"] = self.clock(), m.code
            t["worker"].calls.discard(t["id"])
            self.tests.pop(t["id"], None)

    def hang_up_test(self, line) -> dict | None:
        """The test caller of the call on ``line`` hangs up (or, with no call on it yet,
        one still ringing in). A caller whose call the line no longer holds (its BYE was
        lost to a front restart) is not the one meant."""
        with self._lock:
            c = self.book.on_line(line)
            mine = [t for t in self.tests.values() if t["line"] == line]
            t = next((t for t in mine if c is not None and t["board_call"] == c.id), None)
            if t is None and c is None and mine:
                t = mine[-1]
            if t is not None:
                t["worker"].send(msg.ReleaseCall(call=t["id"]))
            return t

    def end_call_on(self, line, why: str) -> bool:
        """End the SIP call on ``line`` from the board's side (its caller is not one of
        ours, or cannot be reached): the worker hangs up, the line clears, one record."""
        with self._lock:
            c = self.book.on_line(line)
            if c is None:
                return False
            self._end_from_board(c, why)
            return True

    def levels(self, worker, call, timeout=2.0) -> dict | None:
        with self._lock:
            self._seq += 1
            seq = self._seq
        worker.send(msg.GetLevels(call=call, seq=seq))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if seq in self._levels:
                return self._levels.pop(seq)
            time.sleep(0.01)
        return None

    def commands(self) -> list[Command]:
        """Control-socket commands: ``ring`` and ``hangup`` through real SIP, ``test-call``, ``transfer``."""
        line = Arg("line", LINE, required=True)

        def state_of(ln):
            return self.ctx.state.lines[ln].state.value

        async def ring(args):
            ln = args["line"]
            t = self.ring(ln, args.get("caller"))
            deadline = time.time() + 5
            while t["rang_t"] is None and t["ended_t"] is None and time.time() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.02)
            reply = {"line": ln, "state": state_of(ln), "via": "sip",
                     "call": t["board_call"], "rang": t["rang_t"] is not None}
            if t["rang_t"] is None:
                # Why not: the SIP final code if the call was turned away, else still trying.
                reply["code"] = t["code"]
            return reply

        async def hangup(args):
            ln = args["line"]
            t = self.hang_up_test(ln)
            if t is None:
                # A SIP call whose caller is not ours: ended from the board's side, never
                # only cleared on the board (the call, and the line's busy, would stay).
                if not self.end_call_on(ln, "caller hung up"):
                    raise NotMine             # no SIP call: the simulated board's hangup
            else:
                for _ in range(200):
                    if t["id"] not in self.tests:
                        break
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            return {"line": ln, "state": state_of(ln), "via": "sip"}

        async def test_call(args):
            return await self.test_call(args["line"], args["answer_s"], args["talk_s"],
                                        args["echo"])

        async def transfer(args):
            return self.transfer(args["line"], args["to"], args["consult"])

        return [
            Command("transfer", transfer, (line, Arg("to", default=""),
                                           Arg("consult", bool, default=False)),
                    "patch the call on a line through to a number"),
            Command("ring", ring, (line, Arg("caller")), "a real SIP call rings a line",
                    replaces=True),
            Command("hangup", hangup, (line,), "the SIP test caller on a line hangs up",
                    replaces=True),
            Command("test-call", test_call,
                    (line, Arg("answer_s", float, default=20.0, min=0),
                     Arg("talk_s", float, default=2.0, min=0), Arg("echo", bool, default=False)),
                    "trunk test: rang, answered, audio both ways"),
        ]

    async def test_call(self, line, answer_s=20.0, talk_s=2.0, echo=False) -> dict:
        """Ring ``line``, wait for it to be answered, measure audio both ways, hang up.

        With ``echo`` the board answers by itself after a ring and sends the caller's
        tone straight back, so one person can test a trunk end to end."""
        t0 = self.clock()
        t = self.ring(line, "trunktest", echo=1.0 if echo else 0.0)
        report = {"line": line, "echo": echo, "rang": False, "answered": False, "ring_ms": None,
                  "answer_s": None, "audio_to_board": None, "audio_from_board": None}

        async def until(pred, timeout):
            deadline = time.time() + timeout
            while not pred() and time.time() < deadline:
                await asyncio.sleep(0.01)
            return pred()

        if await until(lambda: t["rang_t"] is not None or t["ended_t"] is not None, 5):
            report["rang"] = t["rang_t"] is not None
            if report["rang"]:
                report["ring_ms"] = round((t["rang_t"] - t0) * 1000, 1)
        if report["rang"] and await until(
                lambda: t["answered_t"] is not None or t["ended_t"] is not None, answer_s):
            report["answered"] = t["answered_t"] is not None
            if report["answered"]:
                report["answer_s"] = round(t["answered_t"] - t["rang_t"], 2)
                await asyncio.sleep(talk_s)
                loop = asyncio.get_running_loop()
                mine = await loop.run_in_executor(None, self.levels, t["worker"], t["id"])
                board = self.book.get(t["board_call"])
                theirs = await loop.run_in_executor(None, self.levels, board.worker, board.id) \
                    if board is not None else None
                report["audio_from_board"] = mine and mine["heard"]
                report["audio_to_board"] = theirs and theirs["heard"]
                report["audio_to_position"] = theirs and theirs["position_sent"]
        if t["ended_t"] is None:
            t["worker"].send(msg.ReleaseCall(call=t["id"]))
            await until(lambda: t["id"] not in self.tests, 5)
        if not report["rang"]:
            report["code"] = t["code"]
        report["ok"] = bool(report["rang"] and report["answered"] and report["audio_to_board"]
                            and report["audio_from_board"])
        return report
