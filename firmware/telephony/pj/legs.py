"""The PJSUA2 classes a worker subclasses: its calls (legs) and its accounts.

As in pjsua2's own Python app (``pygui``: one module per PJSUA2 class), the
callbacks only forward to the worker, which owns every decision; all the
state a leg carries is declared here, so nothing is added later and read
back with ``getattr``.
"""

from __future__ import annotations

import logging

import pjsua2 as pj

#: PJSIP's log levels (1 error, 2 warning, 3 info, 4-6 detail) as ``logging``'s.
PJ_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING}
pjlog = logging.getLogger("switchboard.pjsip")


def request_user(whole_msg: str) -> str:
    """The user part of the Request-URI of an INVITE (the called number / DID)."""
    first = whole_msg.split("\r\n", 1)[0].split(" ")
    uri = first[1] if len(first) > 1 else ""
    uri = uri.split(":", 1)[1] if ":" in uri else uri
    return uri.split("@", 1)[0].split(";", 1)[0] if "@" in uri else ""


def takes_offer(whole_msg: str) -> bool:
    """Can the board take this INVITE's offer? An SDP body with an audio line, or no body
    at all (a late offer: PJSUA2 offers in its 200 and the answer comes in the ACK).
    A body of another kind, or SDP without audio, cannot make a call with a voice."""
    head, _, body = whole_msg.partition("\r\n\r\n")
    ctype = ""
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("content-type", "c"):
            ctype = value.strip().lower()
    if not body.strip():
        return True
    return ctype.startswith("application/sdp") and "\nm=audio " in "\n" + body.replace("\r\n", "\n")


def blocked_mark(whole_msg: str) -> str | None:
    """The front's ``X-Switchboard-Blocked`` mark on an INVITE (it strips any a caller
    sent), or None."""
    head = whole_msg.partition("\r\n\r\n")[0]
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "x-switchboard-blocked":
            return value.strip() or "blocked"
    return None


def header_tag(whole_msg: str, name: str = "to") -> str | None:
    """The tag of a message's To (or From) header."""
    short = {"to": "t", "from": "f"}[name]
    head = whole_msg.partition("\r\n\r\n")[0]
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() in (name, short):
            for param in value.split(">")[-1].split(";")[1:]:
                k, _, v = param.strip().partition("=")
                if k.lower() == "tag" and v:
                    return v
    return None


def display_caller(remote_uri: str) -> str:
    """``"Ann" <sip:4155550100@host>`` -> ``4155550100`` (the caller ID the board shows)."""
    u = remote_uri
    if "<" in u:
        u = u.split("<", 1)[1].split(">", 1)[0]
    u = u.split(":", 1)[1] if u.startswith(("sip:", "sips:", "tel:")) else u
    return u.split("@", 1)[0].split(";", 1)[0]


class Leg(pj.Call):
    """One SIP call in this worker.

    ``kind``: "in" (a caller), "out" (an office line or placed call), "ring" (a
    test caller), "pos" (the leg to an operator's position), "cust" (the
    customer's phone, or a transfer's far end), "probe" (measuring the limit),
    "refused" (turned away, ending)."""

    def __init__(self, worker, acc, call_id=pj.PJSUA_INVALID_ID, kind="in", cid=None):
        super().__init__(acc, call_id)
        self.worker = worker
        self.kind = kind
        self.cid: str | None = cid       # the board's id for the call
        self.peer: Leg | None = None     # the position leg of a caller, or its caller
        self.customer: Leg | None = None # the customer's phone (or a transfer), rung with the board
        self.answered = False            # a customer leg that picked up
        self.patch = False               # a customer leg that is a transfer's far end
        self.recorder = None             # overflow: the caller's voice message
        self.call_rec = None             # the operator's conversation, both ways (record_calls)
        self.player = None               # overflow's announcement, or a placed call's message
        self.message: tuple | None = None  # overflow: (path, started, announcement)
        self.media: pj.AudioMedia | None = None
        self.listen = True               # the position hears the caller (not under secrecy)
        self.held = False
        self.consult = False             # attended transfer: operator and far end talk alone
        self.echo = False                # trunk test: the caller hears itself
        self.dead = False                # disconnected: ended exactly once
        self.play: str | None = None     # a placed call's message (WAV), played once answered
        self.invite: str | None = None   # a caller's INVITE headers, as received
        self.dialog_reported = False     # its Dialog event has gone out

    def onCallState(self, prm):
        ci = self.getInfo()
        self.worker.on_state(self, ci.state, ci.lastStatusCode, ci.lastReason)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.media = self.getAudioMedia(i)
                self.worker.bridge.connect(self)
                return

    def onCallTsxState(self, prm):
        self.worker.on_tsx(self, prm)

    def onDtmfDigit(self, prm):
        self.worker.on_dtmf(self, prm.digit)


def call_param(reply=None) -> pj.CallOpParam:
    """The parameters of an answer or hang-up carrying ``reply`` (a ``protocol.Reply``):
    its code and reason; PJSUA2's defaults without one."""
    p = pj.CallOpParam(True)
    if reply is not None:
        p.statusCode = reply.code
        p.reason = reply.reason
    return p


def account_config(uri: str, listen: str) -> pj.AccountConfig:
    """An account whose RTP binds to our address only (PJSUA2 would bind 0.0.0.0:4000+)."""
    ac = pj.AccountConfig()
    ac.idUri = uri
    ac.mediaConfig.transportConfig.boundAddress = listen
    ac.mediaConfig.transportConfig.port = 0
    return ac


class LocalAccount(pj.Account):
    """The worker's own account on its address: calls from the front, and calls it places."""

    trunk: str | None = None

    def __init__(self, worker):
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm):
        self.worker.on_incoming(self, prm)


class TrunkAccount(pj.Account):
    """A trunk that registers (digest authentication); the worker backs off its retries."""

    def __init__(self, worker, name: str, retry: tuple[float, float]):
        super().__init__()
        self.worker = worker
        self.trunk = name
        self.want = True                 # False once unregistered on purpose
        self.retry = retry               # (first, most) seconds between attempts

    def onIncomingCall(self, prm):
        self.worker.on_incoming(self, prm)

    def onRegState(self, prm):
        self.worker.on_reg(self, prm.code, prm.reason, prm.expiration)


class PjsipLog(pj.LogWriter):
    """PJSIP's console log goes to stdout, which carries our events: send it to ``logging``
    (the process's stderr, its log file). Which lines come is PJSIP's own log level
    (``--log-level``); errors and warnings keep their level, the rest are info."""

    def write(self, entry):
        level = PJ_LEVELS.get(entry.level, logging.INFO)
        if pjlog.isEnabledFor(level):
            pjlog.log(level, "%s", entry.msg.rstrip("\n"))
