"""A worker's command handling: a bad line is a clear error event, a handler's own bug is
reported as that (never "bad command"), and the worker carries on with the next command."""

import io
import queue

import pytest

from firmware.telephony import protocol as msg
from firmware.telephony.pj.worker import Worker

pytestmark = pytest.mark.telephony


def _events(w):
    out = []
    while True:
        try:
            out.append(w.events.get_nowait())
        except queue.Empty:
            return out


def test_fail__a_line_that_is_no_command_is_answered_with_an_error_naming_it():
    w = Worker(0, "127.0.0.1", 0)
    w._reader(io.StringIO('{"cmd": "answer", "call": 5}\nnot json\n{"cmd": "ping"}\n'))
    errors = [e for e in _events(w) if isinstance(e, msg.WorkerError)]
    assert [e.message for e in errors] == [
        "worker command 'answer': field 'call' = 5: expected str",
        "worker command: not a JSON line: 'not json' (Expecting value: line 1 column 1 (char 0))"]
    # the good line still reached the queue, and the end of stdin means quit
    assert [type(c) for c in list(w.commands.queue)] == [msg.Ping, msg.Quit]


def test_fail__a_bug_inside_a_handler_is_reported_as_one_and_the_worker_goes_on(caplog):
    w = Worker(0, "127.0.0.1", 0)

    def buggy(cmd):
        return cmd.no_such_attribute          # AttributeError inside the handler

    w.handlers[msg.HoldCall] = buggy
    w.do(msg.HoldCall(call="w0-1-1"))
    w.do(msg.Ping(seq=7))
    evs = _events(w)
    err = next(e for e in evs if isinstance(e, msg.WorkerError))
    assert err.call == "w0-1-1"
    assert err.message.startswith("hold: internal error: AttributeError")
    assert "bad command" not in err.message
    assert any(isinstance(e, msg.Pong) and e.seq == 7 for e in evs)
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)


def test_ok__every_command_of_the_protocol_has_a_handler():
    w = Worker(0, "127.0.0.1", 0)
    assert set(w.handlers) == set(msg.WORKER_COMMANDS.values())
