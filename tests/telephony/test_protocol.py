"""The telephony protocol: every message round-trips; every bad line is a clear ProtocolError.

Pure Python (no PJSUA2): runs everywhere, including a Pi without the telephony."""

import dataclasses
import json

import pytest

from firmware.telephony import protocol as p

TABLES = [p.WORKER_COMMANDS, p.WORKER_EVENTS, p.POSITION_COMMANDS, p.POSITION_EVENTS,
          p.GATEWAY_COMMANDS, p.GATEWAY_EVENTS]
SAMPLE = {str: "x", int: 3, float: 1.5, bool: True, list: ["a"], dict: {"k": 1}}


def _sample(cls):
    """An instance with every field set to a value of its type."""
    values = {}
    for f in dataclasses.fields(cls):
        tp = p.field_types(cls)[f.name]
        args = [a for a in getattr(tp, "__args__", (tp,)) if a is not type(None)]
        values[f.name] = SAMPLE[args[0]]
    return cls(**values)


@pytest.mark.parametrize("table", TABLES,
                         ids=["worker-commands", "worker-events", "position-commands", "position-events",
                              "gateway-commands", "gateway-events"])
def test_ok__every_message_round_trips(table):
    for name, cls in table.items():
        m = _sample(cls)
        line = p.encode(m)
        assert json.loads(line)[cls.key] == name == cls.wire
        assert p.decode(table, line) == m


@pytest.mark.parametrize("line, says", [
    ("not json", "not a JSON line: 'not json'"),
    ("[1, 2]", "expected a JSON object"),
    ('{"call": "w0-1"}', "expected a 'cmd' string naming the message"),
    ('{"cmd": 7}', "expected a 'cmd' string"),
    ('{"cmd": "dance"}', "unknown command 'dance' (worker protocol"),
    ('{"cmd": "answer"}', "worker command 'answer': missing field 'call'"),
    ('{"cmd": "answer", "call": 5}', "field 'call' = 5: expected str"),
    ('{"cmd": "limits", "maxload": true}', "field 'maxload' = True: expected int"),
    ('{"cmd": "hold", "call": "a", "colour": "red"}', "unknown field 'colour'"),
    ('[' * 20000 + ']' * 20000, "nested too deeply"),
])
def test_fail__bad_worker_commands_name_what_is_wrong(line, says):
    with pytest.raises(p.ProtocolError) as e:
        p.decode(p.WORKER_COMMANDS, line)
    assert says in str(e.value)
    assert "\n" not in str(e.value)


def test_fail__an_event_is_not_a_command_nor_the_other_way():
    with pytest.raises(p.ProtocolError, match="expected a 'cmd' string"):
        p.decode(p.WORKER_COMMANDS, p.encode(p.Ended(call="a", code=200, reason="OK")))
    with pytest.raises(p.ProtocolError, match="unknown event 'answer'"):
        p.decode(p.WORKER_EVENTS, '{"event": "answer", "call": "a"}')


def test_ok__replies_the_front_relies_on():
    from firmware.telephony.front import kamailio_config
    assert p.LINE_BUSY == p.Reply(486, "Line Busy") and p.WORKER_FULL.code == 486
    text = kamailio_config(listen="127.0.0.1", port=5999, transports=("udp",), peers=["127.0.0.1"],
                           numbers=["201"], workers=[(6000, 3)])
    # The front tells our own "Line Busy" from a full worker's 486 by its reason phrase...
    assert '$T_reply_reason != "Line Busy"' in text
    # ... and turns away a number of no line as the workers do.
    assert 'sl_send_reply("404", "No Such Line");' in text


def test_ok__the_caller_id_after_the_first_ring_is_a_gateway_event():
    # what the modem line emits (no Call-ID), then what the gateway sends on (with it)
    line = p.from_dict(p.GATEWAY_EVENTS, {"event": "caller_id", "number": "5551234",
                                          "name": "JOHN DOE", "date": "1130", "time": "0915",
                                          "absent": None})
    assert isinstance(line, p.LineCallerId) and line.sip_call_id is None
    sent = dataclasses.replace(line, sip_call_id="abc@127.0.0.1")
    assert p.decode(p.GATEWAY_EVENTS, p.encode(sent)) == sent
    with pytest.raises(p.ProtocolError, match="unknown field 'rings'"):
        p.decode(p.GATEWAY_EVENTS, '{"event": "caller_id", "rings": 2}')
    # a Dell is told apart by AT+GMM, which modem_ready carries
    ready = p.decode(p.GATEWAY_EVENTS, '{"event": "modem_ready", "i0": "56000", "gmi": "Conexant",'
                     ' "gmm": "RD02-D400", "identified": "dell", "profile": "dell"}')
    assert ready.gmm == "RD02-D400"
