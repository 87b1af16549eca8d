"""Texts by SIP MESSAGE through the trunk: the outbox (the same one as e-mail and GSM
texts) hands each to the telephony, a real PJSUA2 worker sends it through the real Kamailio
front, and a SIPp provider on loopback answers 200, refuses it (404 at once, 503 tried
again) or never answers (tried again, never sent twice, failed after max_tries)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.errors import ConfigError
from firmware.records.calls import JsonLinesRecords
from firmware.telephony.adapter import TelephonyAdapter
from firmware.telephony.front import free_port
from firmware.timeclock.delivery import DeliveryConfig, Outbox, TextConfig

from telephony_support import SIPP_DIR, BoardLoop, have_tools, wait_for

pytestmark = pytest.mark.telephony

DESK = load_board("boards/desk.toml")
DESK_SITE = load_site("boards/desk.site.toml", DESK)
STAMP = {"slip": 1042, "time": "2026-11-24T09:15:02-05:00", "line": "201",
         "customer": "marys-gloves", "position": 1, "what": "message", "call": "c-17",
         "text": "Mrs Lee called, please ring back", "urgent": True}


class Provider:
    """SIPp as the trunk's text service: answers each MESSAGE as its scenario says and
    logs every message it gets."""

    def __init__(self, tmp_path, scenario="uas_message.xml", code=None, reason=None):
        self.port = free_port()
        sf = SIPP_DIR / scenario
        if code is not None:
            text = sf.read_text().replace("@CODE@", str(code)).replace("@REASON@", reason)
            sf = tmp_path / f"{code}-{scenario}"
            sf.write_text(text)
        self.log = tmp_path / f"provider-{self.port}.log"
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(sf), "-i", "127.0.0.1", "-p", str(self.port), "-nostdin",
             "-trace_msg", "-message_file", str(self.log), "-timeout", "120s"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)

    @property
    def uri(self) -> str:
        return f"sip:{{number}}@127.0.0.1:{self.port}"

    def messages(self) -> list[str]:
        """Each MESSAGE received, once per transaction (retransmissions folded)."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        seen, out = set(), []
        for part in re.split(r"^-{5,}.*$", text, flags=re.M):     # SIPp's trace, one a message
            head, _, part = part.partition("\n\n")        # "<time>\nUDP message received..."
            part = part.strip()
            if "received" not in head or not part.startswith("MESSAGE sip:"):
                continue
            key = (re.search(r"Call-ID:\s*(\S+)", part, re.I).group(1),
                   re.search(r"CSeq:\s*(\d+)", part, re.I).group(1))
            if key not in seen:
                seen.add(key)
                out.append(part)
        return out

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def telephony(tmp_path_factory):
    have_tools()
    tmp = tmp_path_factory.mktemp("texts")
    board = BoardLoop(DESK, tmp / "data")
    adapter = TelephonyAdapter(DESK, DESK_SITE, run_dir=tmp / "tel", port=0, workers=1,
                               records=JsonLinesRecords(tmp / "calls.jsonl"))
    board.add_adapter(adapter)
    board.start()
    try:
        assert adapter.wait_ready(60), adapter.error
        yield adapter
    finally:
        board.stop()


def outbox(tmp_path, adapter, provider, *, timeout_s=5.0, max_tries=3):
    cfg = DeliveryConfig(text=TextConfig(via="sip", trunk="loopback", uri=provider.uri,
                                         timeout_s=timeout_s),
                         max_tries=max_tries, retry_min_s=0.2, retry_max_s=0.2)
    data = tmp_path / f"data-{provider.port}"
    data.mkdir()
    box = Outbox(data, cfg, names=lambda cid: "Mary's Gloves",
                 sip_sender=adapter.texts.send)
    return box


def stamp(slip):
    """A message slip; each test its own number, as the one telephony serves them all
    (a text still awaiting its answer is never sent again under the same number)."""
    return {**STAMP, "slip": slip}


def settled(box, slip=1042, timeout=40):
    wait_for(lambda: box.get(slip)["status"] != "queued", timeout, "the text settled")
    return box.get(slip)


def test_ok__text_sent_through_the_front_to_the_trunk(telephony, tmp_path):
    provider = Provider(tmp_path)
    box = outbox(tmp_path, telephony, provider)
    try:
        box.enqueue(STAMP, "text", "+1 (555) 010-0142")
        box.start()
        got = settled(box)
        assert got["status"] == "sent" and got["tries"] == 1 and got["last_error"] is None, got
        [m] = provider.messages()
        assert m.startswith(f"MESSAGE sip:+15550100142@127.0.0.1:{provider.port} SIP/2.0")
        assert m.rstrip().endswith("URGENT Msg 1042 for Mary's Gloves: Mrs Lee called, "
                                   "please ring back")
        assert re.search(r"Content-Type:\s*text/plain", m, re.I)
        # It came through the front: Kamailio's Via on top of the worker's.
        vias = re.findall(r"^Via:.*$", m, re.I | re.M)
        assert f"127.0.0.1:{telephony.front.port}" in vias[0], vias
        assert len(vias) == 2
        assert telephony.status()["texts"]["sent"] >= 1
        # Never twice: queued again (a restart's catch-up), it is not sent again.
        box.enqueue(STAMP, "text", "+1 (555) 010-0142")
        time.sleep(0.5)
        assert len(provider.messages()) == 1
    finally:
        box.stop()
        provider.stop()


@pytest.mark.parametrize("code, reason, status, tries, heard", [
    (404, "Not Found", "failed", 1, 404),            # the number is no good: at once
    # Tried again, failed after max_tries. (The front, a proxy, passes a 503 on as 500:
    # RFC 3261 16.7; both are worth another try.)
    (503, "Service Unavailable", "failed", 3, 500),
])
def test_fail__trunk_refuses_the_text(telephony, tmp_path, code, reason, status, tries, heard):
    provider = Provider(tmp_path, "uas_message_refused.xml", code, reason)
    box = outbox(tmp_path, telephony, provider)
    try:
        box.enqueue(stamp(1100 + code), "text", "5550142")
        box.start()
        got = settled(box, 1100 + code)
        assert got["status"] == status and got["tries"] == tries, got
        assert got["last_error"] == f"trunk loopback answered {heard} {reason}"
        assert len(provider.messages()) == tries
        assert box.summary()["failed"] == 1
    finally:
        box.stop()
        provider.stop()


def test_fail__trunk_never_answers_tried_again_never_sent_twice(telephony, tmp_path):
    provider = Provider(tmp_path, "uas_message_silent.xml")
    box = outbox(tmp_path, telephony, provider, timeout_s=1.0, max_tries=3)
    try:
        box.enqueue(stamp(1200), "text", "5550142")
        box.start()
        got = settled(box, 1200)
        assert got["status"] == "failed" and got["tries"] == 3, got
        assert got["last_error"] == "trunk loopback: no answer to the text within 1 s"
        # Every try after the first found the first still waiting for its answer:
        # one MESSAGE transaction reached the trunk, however often it was retransmitted.
        assert len(provider.messages()) == 1
    finally:
        box.stop()
        provider.stop()


def test_ok__a_late_answer_counts_and_the_text_goes_once(telephony, tmp_path):
    provider = Provider(tmp_path, "uas_message_slow.xml")
    box = outbox(tmp_path, telephony, provider, timeout_s=1.0, max_tries=5)
    try:
        box.enqueue(stamp(1300), "text", "5550142")
        box.start()
        got = settled(box, 1300)
        # The first wait ran out; a later try took the trunk's 200 instead of sending again.
        assert got["status"] == "sent" and got["tries"] >= 2, got
        assert len(provider.messages()) == 1
    finally:
        box.stop()
        provider.stop()


def test_fail__bad_text_sections_get_a_clear_error(tmp_path):
    base = Path("boards/desk.site.toml").read_text()
    for extra, expected in [
        ('via = "sip"\ntrunk = "nope"\n', r"delivery\.text\.trunk = 'nope'.*loopback"),
        ('via = "sip"\n', r"delivery\.text\.trunk"),
        ('via = "sip"\ntrunk = "loopback"\nmodem = "/dev/ttyUSB2"\n', r"delivery\.text\.modem"),
        ('via = "sip"\ntrunk = "loopback"\nuri = "sip:sms.example.net"\n', r"\{number\}"),
        ('via = "pigeon"\n', r"delivery\.text\.via"),
        ('modem = "/dev/ttyUSB2"\ntrunk = "loopback"\n', r'only via = "sip"'),
    ]:
        p = tmp_path / "t.site.toml"
        p.write_text(base + "\n[delivery.text]\n" + extra)
        with pytest.raises(ConfigError, match=expected) as e:
            load_site(p, DESK)
        assert str(p) in str(e.value) and "\n" not in str(e.value)
    p.write_text(base + '\n[delivery.text]\nvia = "sip"\ntrunk = "loopback"\n'
                 'uri = "sip:{number}@127.0.0.1:5999"\ntimeout_s = 10\n')
    site = load_site(p, DESK)
    assert site.delivery.text == TextConfig(via="sip", trunk="loopback",
                                            uri="sip:{number}@127.0.0.1:5999", timeout_s=10.0)


def test_ok__the_daemon_texts_a_customer_by_sip_as_the_message_is_stamped(tmp_path):
    """The whole daemon (app.py's wiring): a message for a customer who wants texts is
    stamped, queued, sent through the front to the provider, and the rack says so."""
    from firmware.timeclock.customers import Customers
    from test_blocked_callers import MARY
    from test_telephony_daemon import diag, site_daemon

    provider = Provider(tmp_path)
    site = tmp_path / "desk.site.toml"
    site.write_text(Path("boards/desk.site.toml").read_text()
                    + f'\n[delivery]\nretry_min_s = 0.5\n[delivery.text]\nvia = "sip"\n'
                      f'trunk = "loopback"\nuri = "{provider.uri}"\n')
    data = tmp_path / "var"
    data.mkdir()
    cs = Customers(data)
    cs.add({**MARY, "delivery": {"method": "text", "to": "555-0142"}})
    cs.close()
    try:
        with site_daemon(tmp_path, b"telephony ready", "--data-dir", data, "--site", site) as sock:
            rc, r, err = diag(sock, "take-message", "201", "Mrs Lee: the gloves are ready?")
            assert rc == 0, err
            slip = r["stamp"]["slip"]
            wait_for(lambda: diag(sock, "status")[1]["timeclock"]["delivery"]["sent"] == 1, 30,
                     "the text sent")
            [m] = provider.messages()
            assert m.startswith(f"MESSAGE sip:5550142@127.0.0.1:{provider.port} ")
            assert m.rstrip().endswith(f"Msg {slip} for Mary's Gloves: Mrs Lee: the gloves are "
                                       "ready?")
            st = diag(sock, "status")[1]
            assert st["timeclock"]["delivery"]["queued"] == 0
            assert st["timeclock"]["delivery"]["text"] == {"via": "sip", "trunk": "loopback",
                                                           "uri": provider.uri}
            assert st["telephony"]["texts"]["sent"] == 1
    finally:
        provider.stop()
