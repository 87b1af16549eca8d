"""Delivering messages: a real SMTP server on loopback (aiosmtpd) and a simulated
GSM modem on a pseudo-terminal, behind the time clock's outbox.

Each fault is caused: a relay that is down, one that refuses the recipient, one
that answers "try later", one that drops the connection mid-session, a modem
that refuses; and the daemon stopping with messages still queued.
"""

import datetime as dt
import time

import pytest
from aiosmtpd.controller import Controller

from firmware.config.board import find_board, load_board
from firmware.config.site import load_site
from firmware.errors import ConfigError
from firmware.timeclock.adapter import TimeClockAdapter
from firmware.timeclock.customers import Customers
from firmware.timeclock.delivery import DeliveryConfig, EmailConfig, TextConfig

import board_support
from fakemodem import FakeModem
from mailbox_support import Inbox, free_port
from test_customers import MARY
from test_timeclock_adapter import TZ, MiniDaemon

EMAIL_MARY = {**MARY, "delivery": {"method": "email", "to": "mary@example.net"}}


@pytest.fixture
def smtp():
    inbox = Inbox()
    port = free_port()
    c = Controller(inbox, hostname="127.0.0.1", port=port)
    c.start()
    yield inbox, port
    c.stop()


def wait_for(cond, what, seconds=10.0):
    """The tests' one wait (``board_support``), taking what is awaited before the timeout."""
    board_support.wait_for(cond, seconds, what)


def make_rig(tmp_path, cfg, customer=EMAIL_MARY):
    if not (tmp_path / "customers.jsonl").exists():
        cs = Customers(tmp_path)
        cs.add(customer)
        cs.close()
    d = MiniDaemon()
    a = TimeClockAdapter(tmp_path, clock=lambda: dt.datetime(2026, 11, 24, 10, tzinfo=TZ),
                         delivery=cfg)
    d.add_adapter(a)
    return d, a


def email_cfg(port, **kw):
    return DeliveryConfig(email=EmailConfig(relay="127.0.0.1", port=port, security="none",
                                            sender="Answering Service <board@example.net>",
                                            timeout_s=5),
                          retry_min_s=kw.get("retry_min_s", 0.2), retry_max_s=1.0,
                          max_tries=kw.get("max_tries", 4))


def status_of(a, slip):
    return a.outbox.get(slip)


def test_ok__stamped_message_is_mailed_once_with_the_slips_message_id(tmp_path, smtp):
    inbox, port = smtp
    d, a = make_rig(tmp_path, email_cfg(port))
    try:
        d.call("draft", position=1, line="201", fields={"name": "Mrs Lee",
                                                       "message": "gloves ready?"}, urgent=True)
        slip = d.call("pad-stamp", position=1)["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["status"] == "sent", "the message sent")
        [m] = inbox.messages
        assert m["Message-ID"] == f"<slip-{slip}.marys-gloves@switchboard>"
        assert m["To"] == "mary@example.net" and m["Subject"].startswith("URGENT: Message")
        assert "Message: gloves ready?" in m.get_payload()
        rack = d.call("rack")["rack"][0]["messages"][0]
        assert rack["sent"]["status"] == "sent" and rack["sent"]["tries"] == 1
        assert a.status()["delivery"]["sent"] == 1
    finally:
        a.stop()
    # Restarted: nothing is sent again.
    d, a = make_rig(tmp_path, email_cfg(port))
    try:
        time.sleep(0.5)
        assert len(inbox.messages) == 1
    finally:
        a.stop()


def test_fail__relay_refuses_the_recipient_failed_at_once(tmp_path, smtp):
    inbox, port = smtp
    inbox.mode = "refuse"
    d, a = make_rig(tmp_path, email_cfg(port))
    try:
        slip = d.call("take-message", line="201", text="hello")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["status"] == "failed", "marked failed")
        st = status_of(a, slip)
        assert st["tries"] == 1 and "550" in st["last_error"] and "mary@example.net" in st["last_error"]
        found = d.call("deadbox", search="hello")["slips"][0]
        assert found["sent"]["status"] == "failed"
        assert a.status()["delivery"]["failed"] == 1
    finally:
        a.stop()


def test_fail__try_later_retries_with_back_off_then_fails_after_n(tmp_path, smtp):
    inbox, port = smtp
    inbox.mode = "later"
    d, a = make_rig(tmp_path, email_cfg(port, max_tries=3))
    try:
        t0 = time.monotonic()
        slip = d.call("take-message", line="201", text="hello")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["status"] == "failed", "failed after 3 tries")
        assert status_of(a, slip)["tries"] == 3 and "451" in status_of(a, slip)["last_error"]
        assert time.monotonic() - t0 >= 0.2 + 0.4        # waited 0.2 s, then 0.4 s
        assert inbox.messages == []
    finally:
        a.stop()


def test_ok__relay_drops_mid_session_then_sent_on_retry(tmp_path, smtp):
    inbox, port = smtp
    inbox.mode = "drop"
    d, a = make_rig(tmp_path, email_cfg(port))
    try:
        slip = d.call("take-message", line="201", text="hello")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["status"] == "sent", "sent on the second try")
        assert inbox.drops == 1 and len(inbox.messages) == 1
        assert status_of(a, slip)["tries"] == 2
    finally:
        a.stop()


def test_ok__relay_down_and_daemon_restarted_message_kept_then_sent(tmp_path):
    port = free_port()                          # nothing listens there yet
    d, a = make_rig(tmp_path, email_cfg(port, retry_min_s=0.1, max_tries=100))
    slip = d.call("take-message", line="201", text="while the relay is down")["stamp"]["slip"]
    wait_for(lambda: status_of(a, slip)["tries"] >= 2, "tried twice")
    assert status_of(a, slip)["status"] == "queued"
    assert "Connection refused" in status_of(a, slip)["last_error"]
    a.stop()
    inbox = Inbox()
    c = Controller(inbox, hostname="127.0.0.1", port=port)
    c.start()
    try:
        d, a = make_rig(tmp_path, email_cfg(port, retry_min_s=0.1, max_tries=100))
        try:
            wait_for(lambda: len(inbox.messages) == 1, "sent after the restart")
            assert "while the relay is down" in inbox.messages[0].get_payload()
            wait_for(lambda: status_of(a, slip)["status"] == "sent", "noted as sent")
        finally:
            a.stop()
    finally:
        c.stop()


# -- texts through a GSM modem ------------------------------------------------------
TEXT_MARY = {**MARY, "delivery": {"method": "text", "to": "+15550199"}}


def text_cfg(link):
    return DeliveryConfig(text=TextConfig(modem=str(link), speed=115200, timeout_s=3),
                          retry_min_s=0.2, retry_max_s=1.0, max_tries=4)


@pytest.fixture
def modem(tmp_path):
    m = FakeModem(tmp_path / "modem")
    yield m
    m.close()


def test_ok__text_mode_for_plain_text_pdu_for_other_scripts(tmp_path, modem):
    d, a = make_rig(tmp_path, text_cfg(modem.link), TEXT_MARY)
    try:
        s1 = d.call("take-message", line="201", text="Mrs Lee called, ring back")["stamp"]["slip"]
        s2 = d.call("take-message", line="201", text="Zoë rang: café order €12")["stamp"]["slip"]
        wait_for(lambda: status_of(a, s2)["status"] == "sent", "both texts sent")
        assert status_of(a, s1)["status"] == "sent"
        assert modem.texts[0] == ("text", "+15550199",
                                  f"Msg {s1} for Mary's Gloves: Mrs Lee called, ring back")
        assert modem.texts[1] == ("pdu", "+15550199",
                                  f"Msg {s2} for Mary's Gloves: Zoë rang: café order €12")
    finally:
        a.stop()


def test_fail__modem_refuses_then_missing(tmp_path, modem):
    modem.refuse = 1
    d, a = make_rig(tmp_path, text_cfg(modem.link), TEXT_MARY)
    try:
        slip = d.call("take-message", line="201", text="hello")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["status"] == "failed", "refused: failed")
        assert "+CMS ERROR: 500" in status_of(a, slip)["last_error"]
        modem.close()                                   # unplugged
        slip = d.call("take-message", line="201", text="again")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["tries"] >= 1, "tried")
        assert status_of(a, slip)["status"] == "queued"
        assert "cannot open it" in status_of(a, slip)["last_error"]
    finally:
        a.stop()


# -- the site file ----------------------------------------------------------------
TRUNK = '''
[[trunks]]
name = "loopback"
mode = "peer"
peers = ["127.0.0.1"]
'''
SITE = TRUNK + '''
[delivery]
max_tries = 5
[delivery.email]
relay = "smtp.example.net"
security = "starttls"
username = "board"
password = "secret"
from = "Answering Service <board@example.net>"
[delivery.text]
modem = "/dev/ttyUSB2"
'''


def test_ok__site_file_delivery_section(tmp_path):
    p = tmp_path / "desk.site.toml"
    p.write_text(SITE)
    p.chmod(0o600)
    site = load_site(p, load_board(find_board("desk")))
    assert site.delivery.email.port == 587 and site.delivery.email.password == "secret"
    assert site.delivery.text.modem == "/dev/ttyUSB2" and site.delivery.max_tries == 5


@pytest.mark.parametrize("text, mode, expected", [
    (SITE, 0o644, "holds a delivery.email.password but is readable by others"),
    ('[delivery.email]\nrelay = "smtp.example.net"\nfrom = "x@y"\nsecurity = "none"\n', 0o600,
     "allowed only to a relay on this machine"),
    ('[delivery.email]\nrelay = "r"\nfrom = "nobody"\n', 0o600, "delivery.email.from"),
    ('[delivery.email]\nrelay = "r"\nfrom = "a@b"\nusername = "u"\n', 0o600,
     "both username and password"),
    ('[delivery.email]\nrelay = "r"\nfrom = "a@b"\nport = 0\n', 0o600, "delivery.email.port"),
    ('[delivery.fax]\n', 0o600, "delivery.fax"),
])
def test_fail__bad_delivery_section(tmp_path, text, mode, expected):
    p = tmp_path / "desk.site.toml"
    p.write_text(text if text.startswith(TRUNK) else TRUNK + text)
    p.chmod(mode)
    with pytest.raises(ConfigError, match=expected):
        load_site(p, load_board(find_board("desk")))
