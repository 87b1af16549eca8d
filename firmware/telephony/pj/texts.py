"""Text messages by SIP MESSAGE, sent from a worker (it owns PJSUA2) through the front.

The outbox (``timeclock/delivery.py``) asks the telephony for one message at a
time; the telephony hands it to a worker as ``SendText``. Here it goes out on an
account made for texts (one per trunk login), whose outbound proxy is the front,
so Kamailio relays it to the trunk; a trunk that challenges (401/407) is
answered with the trunk's login by PJSUA2 itself. The final answer comes back as
``TextStatus`` (PJSIP reports a 408 itself when nobody answers within its
transaction timeout, 32 s).

Never twice: a text still waiting for its answer is not sent again when the
outbox asks once more (its own wait having run out); the one answer is
reported when it comes.
"""

from __future__ import annotations

import pjsua2 as pj

from firmware.telephony import protocol as msg
from firmware.telephony.pj.legs import account_config


class TextAccount(pj.Account):
    """An account that only sends texts: no registration, the front as its proxy."""

    def __init__(self, texts):
        super().__init__()
        self.texts = texts

    def onInstantMessageStatus(self, prm):
        self.texts.on_status(prm.toUri, prm.msgBody, prm.code, prm.reason)


class Texts:
    def __init__(self, worker):
        self.worker = worker
        self.accounts: dict[tuple, TextAccount] = {}
        self.pending: dict[tuple[str, str], tuple[str, pj.Buddy]] = {}   # (uri, body) -> (id, buddy)
        self.done: list[pj.Buddy] = []       # dropped in the loop, never in a callback

    def _account(self, cmd: msg.SendText) -> TextAccount:
        key = (cmd.sender, cmd.proxy, cmd.username, cmd.password, cmd.realm)
        acc = self.accounts.get(key)
        if acc is None:
            ac = account_config(cmd.sender, self.worker.listen)
            ac.sipConfig.proxies.append(cmd.proxy)
            if cmd.username:
                ac.sipConfig.authCreds.append(
                    pj.AuthCredInfo("digest", cmd.realm, cmd.username, 0, cmd.password or ""))
            acc = TextAccount(self)
            acc.create(ac, False)
            self.accounts[key] = acc
        return acc

    def send(self, cmd: msg.SendText) -> None:
        if any(i == cmd.id for i, _ in self.pending.values()):
            return                       # still waiting for the trunk's answer: once only
        try:
            bc = pj.BuddyConfig()
            bc.uri = cmd.uri
            bc.subscribe = False
            buddy = pj.Buddy()
            buddy.create(self._account(cmd), bc)
            prm = pj.SendInstantMessageParam()
            prm.content = cmd.body
            prm.contentType = "text/plain;charset=UTF-8"
            self.pending[(cmd.uri, cmd.body)] = (cmd.id, buddy)
            buddy.sendInstantMessage(prm)
        except pj.Error as e:
            self.pending.pop((cmd.uri, cmd.body), None)
            self.worker.emit(msg.TextStatus(id=cmd.id, code=0, reason=e.info()))

    def on_status(self, uri, body, code, reason):
        found = self.pending.pop((uri, body), None)
        if found is None:
            # PJSUA2 may give the URI back in another form: match on the body alone.
            key = next((k for k in self.pending if k[1] == body), None)
            found = self.pending.pop(key) if key else None
        if found is None:
            return
        tid, buddy = found
        self.done.append(buddy)
        self.worker.emit(msg.TextStatus(id=tid, code=code, reason=reason))

    def reap(self) -> None:
        self.done.clear()

    def shutdown(self) -> None:
        self.pending.clear()
        self.done.clear()
        for acc in self.accounts.values():
            acc.shutdown()
        self.accounts.clear()
