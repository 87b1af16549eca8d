"""The board's side of texts by SIP MESSAGE: the outbox asks, a worker sends, the trunk answers.

``send`` is called from the outbox's sender thread (``timeclock/delivery.py``)
and waits, bounded, for the trunk's final answer, which a worker reports as
``TextStatus``. The request goes to the trunk through the front (the worker's
outbound proxy), addressed by ``[delivery.text] uri`` or the trunk's ``dial``
template, from ``[delivery.text] from`` or the trunk's login.

Never twice: an answer that comes after ``send`` stopped waiting is kept, and
the next try of the same message returns it instead of sending again (the
worker, for its part, does not send a message again while it still waits for
its answer).
"""

from __future__ import annotations

import logging
import re
import threading

from firmware.telephony import protocol as msg
from firmware.timeclock.delivery import SendError

log = logging.getLogger(__name__)


class TextSender:
    def __init__(self, adapter):
        self.adapter = adapter            # the TelephonyAdapter: its site, workers, front
        self.answers: dict[str, tuple[int, str]] = {}
        self.waiting: dict[str, threading.Event] = {}
        self.sent = self.failed = 0
        self._lock = threading.Lock()

    def _trunk(self, cfg):
        t = next((t for t in self.adapter.site.trunks if t.name == cfg.trunk), None)
        if t is None:
            raise SendError(f"delivery.text.trunk = {cfg.trunk!r}: no such trunk in the site "
                            "file", permanent=True)
        return t

    def target(self, cfg, number: str) -> tuple[str, str]:
        """(request URI, From URI) for a text to ``number``."""
        t = self._trunk(cfg)
        digits = re.sub(r"[^0-9+*#]", "", number)
        template = cfg.uri or t.dial
        if template is None:
            host = (t.registrar.split(":", 1)[1] if t.registrar else t.peers[0])
            template = f"sip:{{number}}@{host}"
        sender = cfg.sender
        if sender is None:
            host = template.split("@", 1)[1].split(";")[0] if "@" in template else "localhost"
            sender = f"sip:{t.username or 'switchboard'}@{host}"
        return template.format(number=digits), sender

    def send(self, tid: str, cfg, number: str, body: str) -> tuple[int, str]:
        """Send one text and wait for the trunk's final answer: (code, reason)."""
        with self._lock:
            late = self.answers.pop(tid, None)
            if late is not None and 200 <= late[0] < 300:
                return late               # delivered while nobody waited: not again
            ev = self.waiting.setdefault(tid, threading.Event())
            ev.clear()
        uri, sender = self.target(cfg, number)
        a = self.adapter
        worker = next((w for w in a.workers if w.alive()), None)
        if a.state != "running" or worker is None or a.front is None or not a.front_up:
            raise SendError(f"texts by SIP: the telephony is {a.status_state()}")
        t = self._trunk(cfg)
        worker.send(msg.SendText(id=tid, uri=uri, body=body, sender=sender,
                                 proxy=f"sip:127.0.0.1:{a.front.port};lr",
                                 username=t.username, password=t.password, realm=t.realm))
        if not ev.wait(cfg.timeout_s):
            raise SendError(f"trunk {cfg.trunk}: no answer to the text within "
                            f"{cfg.timeout_s:g} s")
        with self._lock:
            self.waiting.pop(tid, None)
            code, reason = self.answers.pop(tid)
        if 200 <= code < 300:
            self.sent += 1
        else:
            self.failed += 1
        log.info("text %s to %s: %s %s", tid, uri, code, reason)
        return code, reason

    def on_status(self, w, m: msg.TextStatus) -> None:
        """A worker's report (its reader thread)."""
        with self._lock:
            self.answers[m.id] = (m.code, m.reason)
            ev = self.waiting.get(m.id)
        if ev is not None:
            ev.set()

    def status(self) -> dict:
        return {"sent": self.sent, "refused": self.failed, "waiting": len(self.waiting)}
