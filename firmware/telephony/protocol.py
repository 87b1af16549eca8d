"""The messages between the daemon and its PJSUA2 children, typed, one module for both sides.

The daemon talks to three kinds of child process over their stdin/stdout, one
JSON object per line:

- a **worker** (``firmware.telephony.pj.worker``), which holds callers' calls;
- a **position** (``firmware.telephony.pj.position``), an operator's headset endpoint;
- a **modem gateway** (``firmware.telephony.pj.modemgateway``), one USB modem's analog line.

All use one dialect: a command is ``{"cmd": NAME, ...fields}``, an event is
``{"event": NAME, ...fields}``. Each message is a frozen dataclass below,
registered under its wire name in one of six tables (worker, position and
gateway commands and events). ``encode`` writes a message;
``decode`` reads one line against a table and raises ``ProtocolError`` naming
the line and what is wrong with it (not JSON, no name, an unknown name, a
missing, unknown or mistyped field). Nothing is dropped silently: the reader
that gets a ``ProtocolError`` logs it (and a worker answers it with an
``Error`` event), so a mismatch between the two sides shows at once.

The SIP replies that both sides (and the front's config) must agree on, with
their reason phrases, are here too (``Reply``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from firmware.errors import SwitchboardError


class ProtocolError(SwitchboardError, ValueError):
    """A line from a child (or to it) is not a message of the protocol."""


# -- SIP replies the processes agree on -----------------------------------------
@dataclass(frozen=True)
class Reply:
    code: int
    reason: str


#: The line already has a call: the front must hand this back to the caller,
#: not try another worker (front.py's failure route compares the reason).
LINE_BUSY = Reply(486, "Line Busy")
#: A worker has no slot left for another caller: the front tries the next worker.
WORKER_FULL = Reply(486, "Busy Here")
#: The called number reaches no line of the board.
NO_SUCH_LINE = Reply(404, "No Such Line")
#: A position only takes legs from the board's own workers.
NOT_ALLOWED = Reply(403, "Forbidden: not an allowed address for this position")
#: A position already has as many legs as it answers at once.
POSITION_BUSY = Reply(486, "Busy Here")
#: A ringing caller whose worker died: the call cannot be answered any more.
WORKER_LOST = Reply(480, "Temporarily Unavailable")
#: An INVITE a worker cannot take: no usable SDP offer in it.
NOT_ACCEPTABLE = Reply(488, "Not Acceptable Here")
#: A modem gateway only takes INVITEs from the board's own addresses.
GATEWAY_NOT_ALLOWED = Reply(403, "Forbidden: not an allowed address for this line")
#: What a modem says when a call out fails on the analog line, as the SIP reply.
FAR_END_BUSY = Reply(486, "Busy Here")
NO_ANSWER = Reply(480, "No Answer")
NO_DIAL_TONE = Reply(503, "No Dial Tone")
DIAL_FAILED = Reply(500, "Dialling Failed")


# -- the tables -------------------------------------------------------------------
WORKER_COMMANDS: dict[str, type] = {}
WORKER_EVENTS: dict[str, type] = {}
POSITION_COMMANDS: dict[str, type] = {}
POSITION_EVENTS: dict[str, type] = {}
GATEWAY_COMMANDS: dict[str, type] = {}
GATEWAY_EVENTS: dict[str, type] = {}
_KEY = {id(WORKER_COMMANDS): "cmd", id(POSITION_COMMANDS): "cmd", id(GATEWAY_COMMANDS): "cmd",
        id(WORKER_EVENTS): "event", id(POSITION_EVENTS): "event", id(GATEWAY_EVENTS): "event"}
_TABLE_NAME = {id(WORKER_COMMANDS): "worker command", id(POSITION_COMMANDS): "position command",
               id(GATEWAY_COMMANDS): "gateway command",
               id(WORKER_EVENTS): "worker event", id(POSITION_EVENTS): "position event",
               id(GATEWAY_EVENTS): "gateway event"}
_KIND = {"cmd": "command", "event": "event"}


def _message(table: dict, name: str):
    def register(cls):
        cls = dataclass(frozen=True)(cls)
        cls.wire = name
        cls.key = _KEY[id(table)]
        table[name] = cls
        return cls
    return register


class Message:
    """Base of every message: ``wire`` is its name on the wire, ``key`` is "cmd" or "event"
    (class attributes: a message may well have a field called ``name``)."""

    wire: ClassVar[str]
    key: ClassVar[str]


# -- daemon -> worker -------------------------------------------------------------
@_message(WORKER_COMMANDS, "quit")
class Quit(Message):
    """Hang everything up and exit (end of stdin means the same)."""


@_message(WORKER_COMMANDS, "limits")
class Limits(Message):
    maxload: int                  # callers taken at once (one slot stays for a position leg)
    refusal: str | None = None    # the WAV a blocked caller hears (the front marks the call)


@_message(WORKER_COMMANDS, "ping")
class Ping(Message):
    seq: int | None = None


@_message(WORKER_COMMANDS, "calls")
class ListCalls(Message):
    """Which board calls does the worker still hold? (the board reconciles its lines)"""
    seq: int


@_message(WORKER_COMMANDS, "answer")
class AnswerCall(Message):
    call: str
    position_uri: str | None = None
    listen: bool = True           # the position hears the caller (off under secrecy)
    record: str | None = None     # a WAV path: record the conversation, both ways (record_calls)


@_message(WORKER_COMMANDS, "resume")
class ResumeCall(Message):
    call: str
    position_uri: str | None = None
    listen: bool = True


@_message(WORKER_COMMANDS, "hold")
class HoldCall(Message):
    call: str


@_message(WORKER_COMMANDS, "release")
class ReleaseCall(Message):
    """The operator drops off; the call ends unless ``keep`` (a customer or transfer on it)."""
    call: str
    keep: bool = False
    code: int | None = None
    reason: str | None = None


@_message(WORKER_COMMANDS, "overflow")
class OverflowCall(Message):
    call: str
    path: str                     # where the caller's voice message is recorded
    announcement: str | None = None
    max_s: float = 120.0


@_message(WORKER_COMMANDS, "fork")
class ForkCall(Message):
    """Ring the customer's own phone together with the board."""
    call: str
    uri: str


@_message(WORKER_COMMANDS, "patch")
class PatchCall(Message):
    """Transfer / live patch: call ``uri``, join it to the caller when it answers."""
    call: str
    uri: str
    consult: bool = False


@_message(WORKER_COMMANDS, "echo")
class EchoCall(Message):
    call: str


@_message(WORKER_COMMANDS, "call")
class PlaceOutgoing(Message):
    """An outgoing call: an office line, a placed call, or a test caller (``kind = "ring"``)."""
    call: str
    uri: str
    kind: str = "out"
    trunk: str | None = None
    caller: str | None = None
    play: str | None = None
    ring_s: float | None = None
    position_uri: str | None = None


@_message(WORKER_COMMANDS, "levels")
class GetLevels(Message):
    call: str
    seq: int


@_message(WORKER_COMMANDS, "dtmf")
class SendDtmf(Message):
    call: str
    digits: str


@_message(WORKER_COMMANDS, "register")
class Register(Message):
    trunk: str
    registrar: str
    username: str
    password: str
    realm: str = "*"
    expires: int = 300
    transport: str = "udp"
    retry_min_s: float = 5.0
    retry_max_s: float = 300.0
    contact: str | None = None


@_message(WORKER_COMMANDS, "unregister")
class Unregister(Message):
    trunk: str


@_message(WORKER_COMMANDS, "text")
class SendText(Message):
    """A text by SIP MESSAGE to ``uri``, through the front (``proxy``) to the trunk."""
    id: str                       # the outbox's: "slip-1042"
    uri: str
    body: str
    sender: str                   # the From URI
    proxy: str                    # the front, as a loose route: "sip:127.0.0.1:5070;lr"
    username: str | None = None   # the trunk's login, should it challenge
    password: str | None = None
    realm: str = "*"


# -- worker -> daemon --------------------------------------------------------------
@_message(WORKER_EVENTS, "ready")
class WorkerReady(Message):
    port: int
    limit: int
    pid: int


@_message(WORKER_EVENTS, "incoming")
class Incoming(Message):
    call: str
    user: str
    caller: str
    remote: str
    src: str
    sip_call_id: str
    t: float
    trunk: str | None = None


@_message(WORKER_EVENTS, "dialog")
class Dialog(Message):
    """A caller's dialog as the worker sees it: the INVITE's headers as received and the
    tag the worker gave it, so that the daemon can end the call for the caller if this
    worker dies (a BYE, or a final answer while it still rings)."""
    call: str
    invite: str
    tag: str


@_message(WORKER_EVENTS, "ended")
class Ended(Message):
    call: str | None
    code: int
    reason: str


@_message(WORKER_EVENTS, "confirmed")
class Confirmed(Message):
    call: str | None


@_message(WORKER_EVENTS, "ringing")
class Ringing(Message):
    call: str | None
    code: int


@_message(WORKER_EVENTS, "placed")
class Placed(Message):
    call: str
    sip_call_id: str


@_message(WORKER_EVENTS, "customer_answered")
class CustomerAnsweredEv(Message):
    call: str


@_message(WORKER_EVENTS, "customer_hungup")
class CustomerHungUpEv(Message):
    call: str


@_message(WORKER_EVENTS, "patching")
class Patching(Message):
    call: str
    consult: bool


@_message(WORKER_EVENTS, "patch_failed")
class PatchFailed(Message):
    call: str
    code: int
    reason: str


@_message(WORKER_EVENTS, "position_left")
class PositionLeft(Message):
    call: str
    code: int
    reason: str


@_message(WORKER_EVENTS, "bridged")
class Bridged(Message):
    call: str
    listen: bool
    customer: bool


@_message(WORKER_EVENTS, "message")
class VoiceMessage(Message):
    call: str
    path: str
    seconds: float


@_message(WORKER_EVENTS, "playing")
class Playing(Message):
    call: str
    seconds: float


@_message(WORKER_EVENTS, "dtmf")
class DtmfDigit(Message):
    call: str | None
    digit: str
    leg: str


@_message(WORKER_EVENTS, "levels")
class Levels(Message):
    call: str
    seq: int
    heard: float | None = None
    sent: float | None = None
    position_heard: float | None = None
    position_sent: float | None = None


@_message(WORKER_EVENTS, "calls")
class CallList(Message):
    seq: int
    calls: list = field(default_factory=list)


@_message(WORKER_EVENTS, "reg")
class RegState(Message):
    trunk: str
    ok: bool
    code: int
    reason: str
    expires: int


@_message(WORKER_EVENTS, "reg_retry")
class RegRetry(Message):
    trunk: str
    in_s: float


@_message(WORKER_EVENTS, "text_status")
class TextStatus(Message):
    """The trunk's final answer to a text (``code`` 0: it could not be sent at all)."""
    id: str
    code: int
    reason: str


@_message(WORKER_EVENTS, "pong")
class Pong(Message):
    calls: int
    legs: int
    seq: int | None = None


@_message(WORKER_EVENTS, "error")
class WorkerError(Message):
    message: str
    call: str | None = None


# -- daemon -> position --------------------------------------------------------------
@_message(POSITION_COMMANDS, "status")
class PositionStatusRequest(Message):
    pass


@_message(POSITION_COMMANDS, "hangup")
class PositionHangup(Message):
    call: int | None = None       # every leg without it


@_message(POSITION_COMMANDS, "quit")
class PositionQuit(Message):
    pass


# -- position -> daemon --------------------------------------------------------------
@_message(POSITION_EVENTS, "ready")
class PositionReady(Message):
    name: str
    uri: str
    host: str
    port: int
    pid: int
    headset: dict | None = None


@_message(POSITION_EVENTS, "incoming")
class PositionIncoming(Message):
    call: int
    source: str
    remote: str


@_message(POSITION_EVENTS, "answered")
class PositionAnswered(Message):
    call: int


@_message(POSITION_EVENTS, "rejected")
class PositionRejected(Message):
    call: int
    source: str
    code: int


@_message(POSITION_EVENTS, "media")
class PositionMedia(Message):
    call: int
    state: str
    port: int | None = None


@_message(POSITION_EVENTS, "ended")
class PositionEnded(Message):
    call: int
    code: int
    reason: str


@_message(POSITION_EVENTS, "status")
class PositionStatus(Message):
    name: str
    uri: str
    calls: list
    uptime_s: float
    answered: int
    rejected: int
    ended: int
    headset: dict | None = None


@_message(POSITION_EVENTS, "hangup")
class PositionHungUp(Message):
    calls: list


@_message(POSITION_EVENTS, "stopped")
class PositionStopped(Message):
    name: str


@_message(POSITION_EVENTS, "error")
class PositionErrorEv(Message):
    message: str


# -- daemon -> modem gateway -----------------------------------------------------------
@_message(GATEWAY_COMMANDS, "status")
class GatewayStatusRequest(Message):
    seq: int | None = None


@_message(GATEWAY_COMMANDS, "test")
class GatewayTest(Message):
    """Trunk test: off-hook with no call for ``seconds``; is there dial tone?"""
    seconds: float = 4.0


@_message(GATEWAY_COMMANDS, "hangup")
class GatewayHangup(Message):
    """End the call on the line (the daemon has recorded it failed)."""


@_message(GATEWAY_COMMANDS, "quit")
class GatewayQuit(Message):
    pass


# -- modem gateway -> daemon -----------------------------------------------------------
# The gateway's own events, then the line's (``firmware.telephony.modem.line``: the
# gateway passes each on as it comes, and acts on some).
@_message(GATEWAY_EVENTS, "ready")
class GatewayReady(Message):
    port: int
    pid: int
    uri: str                      # the dial URI, ``sip:{number}@host:port``


@_message(GATEWAY_EVENTS, "rejected")
class GatewayRejected(Message):
    src: str
    code: int


@_message(GATEWAY_EVENTS, "dialling")
class GatewayDialling(Message):
    number: str


@_message(GATEWAY_EVENTS, "answered")
class GatewayAnswered(Message):
    """The board answered the line's call: the modem goes off-hook."""


@_message(GATEWAY_EVENTS, "ended")
class GatewayEnded(Message):
    direction: str                # "in": the line rang the board; "out": the board dialled
    code: int
    reason: str


@_message(GATEWAY_EVENTS, "call_lost")
class GatewayCallLost(Message):
    message: str | None = None


@_message(GATEWAY_EVENTS, "status")
class GatewayStatus(Message):
    line: str
    modem: dict
    call: str | None
    rx: dict
    tx: dict
    seq: int | None = None


@_message(GATEWAY_EVENTS, "error")
class GatewayError(Message):
    message: str


@_message(GATEWAY_EVENTS, "modem_ready")
class ModemReady(Message):
    i0: str
    gmi: str
    identified: str
    profile: str
    gmm: str = ""                 # AT+GMM (tells a Dell RD02-D400 from other Conexants)


@_message(GATEWAY_EVENTS, "modem_fault")
class ModemFault(Message):
    message: str
    retry_in_s: float
    in_call: bool = False


@_message(GATEWAY_EVENTS, "ring")
class LineRing(Message):
    rings: int


@_message(GATEWAY_EVENTS, "offer")
class LineOffer(Message):
    """The line rings with (or without) caller ID: the gateway INVITEs the board."""
    rings: int
    number: str | None = None
    name: str | None = None
    date: str | None = None
    time: str | None = None
    absent: str | None = None     # why no number: "private" (withheld), "unavailable"


@_message(GATEWAY_EVENTS, "caller_id")
class LineCallerId(Message):
    """The caller ID block that follows the first ring (the call was offered at it): the
    line sends it without ``sip_call_id``; the gateway adds its INVITE's SIP Call-ID, by
    which the daemon finds the board's call."""
    number: str | None = None
    name: str | None = None
    date: str | None = None
    time: str | None = None
    absent: str | None = None     # why no number: "private" (withheld), "unavailable"
    sip_call_id: str | None = None


@_message(GATEWAY_EVENTS, "ring_stopped")
class LineRingStopped(Message):
    rings: int


@_message(GATEWAY_EVENTS, "voice")
class LineVoice(Message):
    direction: str
    format: str | None


@_message(GATEWAY_EVENTS, "answer_failed")
class LineAnswerFailed(Message):
    reason: str


@_message(GATEWAY_EVENTS, "dialled")
class LineDialled(Message):
    number: str


@_message(GATEWAY_EVENTS, "dial_failed")
class LineDialFailed(Message):
    number: str
    reason: str
    code: int


@_message(GATEWAY_EVENTS, "released")
class LineReleased(Message):
    pass


@_message(GATEWAY_EVENTS, "far_end_hangup")
class LineFarEndHangup(Message):
    reason: str


@_message(GATEWAY_EVENTS, "dtmf")
class LineDtmf(Message):
    digit: str


@_message(GATEWAY_EVENTS, "test_result")
class LineTestResult(Message):
    """A trunk test's outcome; ``error`` when the gateway could not run it."""
    off_hook: bool = False
    dial_tone_event: bool = False
    dial_tone_heard: bool = False
    dial_tone_ms: int | None = None
    events: list = field(default_factory=list)
    format: str | None = None
    error: str | None = None


# -- reading and writing -------------------------------------------------------------
def fields(msg: Message) -> dict:
    """The message's fields, without its name."""
    return dataclasses.asdict(msg)


def as_dict(msg: Message) -> dict:
    """The message as its JSON object (what ``encode`` writes)."""
    return {msg.key: msg.wire, **dataclasses.asdict(msg)}


def encode(msg: Message) -> str:
    """One JSON line (no newline) for ``msg``."""
    return json.dumps(as_dict(msg))


_HINTS: dict[type, dict] = {}


def field_types(cls) -> dict:
    """A message class's field types, worked out on first use (at import it would cost
    every worker process tens of milliseconds of start-up)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _type_ok(value, tp) -> bool:
    if tp is Any:
        return True
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return any(_type_ok(value, t) for t in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    origin = typing.get_origin(tp) or tp
    return isinstance(value, origin)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("NoneType", "null")


def from_dict(table: dict, obj, *, line: str | None = None) -> Message:
    """The message ``obj`` (a decoded JSON value) is, checked against ``table``."""
    what = _TABLE_NAME[id(table)]
    key = _KEY[id(table)]
    shown = (line if line is not None else repr(obj))[:200]
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} {shown}: expected a JSON object")
    name = obj.get(key)
    if not isinstance(name, str):
        raise ProtocolError(f"{what} {shown}: expected a {key!r} string naming the message")
    cls = table.get(name)
    if cls is None:
        raise ProtocolError(f"unknown {_KIND[key]} {name!r} ({what.split()[0]} protocol, in "
                            f"{shown}); expected one of: " + ", ".join(sorted(table)))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    given = {k: v for k, v in obj.items() if k != key}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ProtocolError(f"{what} {name!r}: unknown field {unknown[0]!r} (in {shown}); "
                            f"expected: {', '.join(fields) or 'no fields'}")
    for fname, f in fields.items():
        if fname not in given:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError(f"{what} {name!r}: missing field {fname!r} (in {shown})")
            continue
        tp = field_types(cls)[fname]
        if not _type_ok(given[fname], tp):
            raise ProtocolError(f"{what} {name!r}: field {fname!r} = {given[fname]!r}: "
                                f"expected {_type_name(tp)}")
    return cls(**given)


def decode(table: dict, line: str) -> Message:
    """Read one line as a message of ``table``; ``ProtocolError`` says what is wrong."""
    text = line.strip()
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ProtocolError(f"{_TABLE_NAME[id(table)]}: not a JSON line: {text[:200]!r} ({e})") \
            from None
    except RecursionError:
        raise ProtocolError(f"{_TABLE_NAME[id(table)]} {text[:80]!r}...: nested too deeply") \
            from None
    return from_dict(table, obj, line=text)
