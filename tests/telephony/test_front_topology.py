"""Topology hiding at the front: across whole calls (ring, answer, hold, a re-INVITE from
the caller, BYE from the board and from the caller), a caller on 127.0.0.1 never sees a
worker's address, port or name, nor a version string, in any header of any message."""

import os
import re
import signal

import pytest

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.core.state import LineState
from firmware.records.calls import JsonLinesRecords
from firmware.telephony.adapter import TelephonyAdapter

from sip_party import SipParty, parse, request, sdp
from telephony_support import BoardLoop, PeerProc, have_tools, wait_for

pytestmark = pytest.mark.telephony

DESK = load_board("boards/desk.toml")
DESK_SITE = load_site("boards/desk.site.toml", DESK)


class Caller(SipParty):
    """A caller's phone: answers every request it gets with 200 (an INVITE with SDP)."""

    def on_message(self, data):
        if not data.startswith(b"SIP/2.0") and not data.startswith(b"ACK "):
            self._answer(data)

    def _answer(self, data):
        first, h, _ = parse(data)
        body = sdp(port=40002) if first.startswith("INVITE ") else ""
        lines = ["SIP/2.0 200 OK"] + [f"Via: {v}" for v in h["via"]]
        lines += [f"From: {h['from'][0]}", f"To: {h['to'][0]}", f"Call-ID: {h['call-id'][0]}",
                  f"CSeq: {h['cseq'][0]}", f"Contact: <sip:caller@{self.addr[0]}:{self.addr[1]}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        # the reply goes where the top Via says (the front)
        top = h["via"][0].split(",")[0].split()[1].split(";")[0]
        host, _, port = top.partition(":")
        self.send("\r\n".join(lines) + "\r\n\r\n" + body, (host, int(port or 5060)))


@pytest.fixture
def desk(tmp_path):
    have_tools()
    position = PeerProc(tmp_path, "position1")
    board = BoardLoop(DESK, tmp_path / "data")
    adapter = TelephonyAdapter(DESK, DESK_SITE, run_dir=tmp_path / "tel", port=0, workers=2,
                               records=JsonLinesRecords(tmp_path / "calls.jsonl"),
                               position_uris={1: position.uri, 2: position.uri})
    board.add_adapter(adapter)
    board.start()
    assert adapter.wait_ready(60), adapter.error
    yield board, adapter
    board.stop()
    position.stop()


def _status(m):
    return int(m[0].split()[1]) if m[0].startswith("SIP/2.0") else 0


def _uri(value):
    return value.split("<", 1)[1].split(">", 1)[0] if "<" in value else value.split(";")[0]


class Dialog:
    """One call from the caller's side: INVITE, then requests inside the dialog."""

    def __init__(self, caller: Caller, front, line):
        self.caller, self.front, self.line = caller, front, line
        self.cid = f"hide-{line}-{id(self)}"
        self.cseq = 1
        self.done: set = set()
        caller.send(request("INVITE", f"sip:{line}@127.0.0.1:{front}", via_addr=caller.addr,
                            call_id=self.cid, to=f"sip:{line}@127.0.0.1", body=sdp()),
                    ("127.0.0.1", front))

    def reply(self, code, method="INVITE", timeout=20):
        m = self.caller.wait(lambda m: _status(m) == code and m[1]["call-id"][0] == self.cid
                             and m[1]["cseq"][0].endswith(f"{self.cseq} {method}"), timeout)
        assert m, (f"no {code} to {method} {self.cseq} on {self.line}; the caller got: "
                   + " | ".join(d.decode(errors="replace").split("\r\n")[0]
                                for d in self.caller.messages()))
        return m

    def established(self, ok):
        _, h, _ = ok
        self.to_tag = h["to"][0].split("tag=")[1].split(";")[0]
        self.target = _uri(h["contact"][0])
        self.routes = [_uri(r) for v in reversed(h.get("record-route", []))
                       for r in v.split(",")]

    def send(self, method, body=""):
        if method != "ACK":
            self.cseq += 1
        text = request(method, self.target, via_addr=self.caller.addr, call_id=self.cid,
                       cseq=self.cseq, to_tag=self.to_tag, to=f"sip:{self.line}@127.0.0.1",
                       route=", ".join(f"<{r}>" for r in self.routes) or None, body=body)
        host, port = self.routes[0].split("sip:", 1)[1].split(";")[0].split(":")
        self.caller.send(text, (host, int(port)))


def test_ok__a_caller_never_sees_a_worker_across_whole_calls(desk):
    board, adapter = desk
    front = adapter.front.port
    ports = {w.port for w in adapter.workers}
    assert len(ports) == 2 and front not in ports
    caller = Caller("127.0.0.1")
    try:
        # Call 1: rings, answered, held, resumed, a re-INVITE from the caller, the board hangs up.
        one = Dialog(caller, front, "201")
        one.reply(180)
        wait_for(lambda: board.line("201") is LineState.RINGING, 10, "201 ringing")
        board.press("line-201")
        one.established(one.reply(200))
        one.send("ACK")
        assert one.target.startswith("sip:201@127.0.0.1:") and str(front) in one.target
        board.press("p1-hold")
        wait_for(lambda: board.line("201") is LineState.HELD, 10, "201 held")
        board.press("line-201")
        wait_for(lambda: board.line("201") is LineState.OPERATOR, 10, "201 resumed")
        one.send("INVITE", sdp(port=40004))        # the caller's own re-INVITE reaches the worker
        one.reply(200)
        one.send("ACK")
        board.press("p1-release")
        assert caller.wait(lambda m: m[0].startswith("BYE ") and m[1]["call-id"][0] == one.cid,
                           15), "the board's BYE never reached the caller"
        wait_for(lambda: board.line("201") is LineState.IDLE, 10, "201 idle")

        # Call 2: answered, then the caller hangs up.
        two = Dialog(caller, front, "202")
        two.reply(180)
        wait_for(lambda: board.line("202") is LineState.RINGING, 10, "202 ringing")
        board.press("line-202")
        two.established(two.reply(200))
        two.send("ACK")
        two.send("BYE")
        two.reply(200, "BYE")
        wait_for(lambda: board.line("202") is LineState.IDLE, 10, "202 idle")
        recs = wait_for(lambda: len(adapter.records.read()) == 2 and adapter.records.read(), 10,
                        "two call records")
        assert [r["outcome"] for r in recs] == ["answered", "answered"]

        seen = caller.messages()
        assert len(seen) >= 10
        for data in seen:
            head = data.decode(errors="replace").split("\r\n\r\n", 1)[0]
            for port in ports:
                assert not re.search(rf"[:=]\s*{port}\b", head), (port, head)
            assert "worker" not in head.lower(), head
            for bad in ("kamailio", "pjsua", "pjsip"):
                assert bad not in head.lower(), head
            _, h, _ = parse(data)
            for name in ("server", "user-agent"):
                assert all(v == "switchboard" for v in h.get(name, [])), head
    finally:
        caller.close()


def _hidden(seen, ports):
    for data in seen:
        head = data.decode(errors="replace").split("\r\n\r\n", 1)[0]
        for port in ports:
            assert not re.search(rf"[:=]\s*{port}\b", head), (port, head)
        assert "worker" not in head.lower(), head


def test_ok__calls_set_up_before_a_front_restart_go_on_through_the_new_front(desk):
    """Kamailio SIGKILLed and restarted under two answered calls: the caller's re-INVITE
    and BYE reach the worker, the board's BYE reaches the other caller, through the new
    front and with the workers still hidden (the dialogs were kept on disk)."""
    board, adapter = desk
    front = adapter.front.port
    ports = {w.port for w in adapter.workers}
    caller = Caller("127.0.0.1")
    try:
        calls = {}
        for line in ("201", "202"):
            d = calls[line] = Dialog(caller, front, line)
            d.reply(180)
            wait_for(lambda: board.line(line) is LineState.RINGING, 10, f"{line} ringing")
            board.press(f"line-{line}")
            d.established(d.reply(200))
            d.send("ACK")
            wait_for(lambda: board.line(line) is LineState.OPERATOR, 10, f"{line} answered")
            if line == "201":
                board.press("p1-hold")
                wait_for(lambda: board.line("201") is LineState.HELD, 10, "201 held")
        wait_for(lambda: all(d.cid in (adapter.front.dialog_db / "dialog").read_text()
                             for d in calls.values()), 2, "the dialogs on disk")
        os.kill(int((adapter.front.run_dir / "kamailio.pid").read_text()), signal.SIGKILL)
        wait_for(lambda: adapter.status()["state"] == "front down", 15, "the front down")
        wait_for(lambda: adapter.status()["state"] == "running", 30, "the front back")
        before = len(caller.messages())

        one, two = calls["201"], calls["202"]
        one.send("INVITE", sdp(port=40006))         # the caller's re-INVITE reaches the worker
        one.reply(200)
        one.send("ACK")
        wait_for(lambda: board.line("201") is LineState.HELD, 10, "201 still held")
        board.press("p1-release")                    # the operator releases 202
        assert caller.wait(lambda m: m[0].startswith("BYE ") and m[1]["call-id"][0] == two.cid,
                           15), "the board's BYE never reached the caller"
        wait_for(lambda: board.line("202") is LineState.IDLE, 10, "202 idle")
        one.send("BYE")                              # the caller hangs up: the worker hears it
        one.reply(200, "BYE")
        wait_for(lambda: board.line("201") is LineState.IDLE, 10, "201 idle")
        assert adapter.status()["in_use"] == 0
        _hidden(caller.messages()[before:], ports)
    finally:
        caller.close()

