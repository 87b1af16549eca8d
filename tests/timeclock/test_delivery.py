"""Delivering messages: a real SMTP server on loopback (aiosmtpd) and a simulated
GSM modem on a pseudo-terminal, behind the time clock's outbox.

Each fault is caused: a relay that is down, one that refuses the recipient, one
that answers "try later", one that drops the connection mid-session, a modem
that refuses; and the daemon stopping with messages still queued. E-mail goes
over STARTTLS and implicit TLS with a login, to relays whose certificates a
throwaway CA signed: the client trusts only that CA (``ca_file``), and a wrong
password, an untrusted or misnamed certificate and a relay without STARTTLS
each fail with their reason, nothing sent.
"""

import datetime as dt
import re
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
from mailbox_support import Inbox, Logins, free_port, make_certs, server_context
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


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def relays():
    """Start aiosmtpd relays on loopback that want a login (board / secret):
    ``start(**SMTP options)`` -> (inbox, logins, port)."""
    running = []

    def start(**kw):
        inbox, logins, port = Inbox(), Logins("board", "secret"), free_port()
        c = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=logins,
                       auth_required=True, **kw)
        c.start()
        running.append(c)
        return inbox, logins, port
    yield start
    for c in running:
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


def tls_cfg(port, security, relay="localhost", password="secret", ca_file=None, **kw):
    return DeliveryConfig(email=EmailConfig(relay=relay, port=port, security=security,
                                            username="board", password=password,
                                            sender="Answering Service <board@example.net>",
                                            timeout_s=5, ca_file=str(ca_file) if ca_file else None),
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


# -- TLS, logins and certificates ---------------------------------------------------
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_ok__starttls_then_login_relay_certificate_checked_against_the_ca_file(
        tmp_path, certs, relays, mechanism):
    inbox, logins, port = relays(
        tls_context=server_context(certs["relay"]), require_starttls=True,
        auth_require_tls=True, auth_exclude_mechanism=[{"PLAIN": "LOGIN"}.get(mechanism, "PLAIN")])
    d, a = make_rig(tmp_path, tls_cfg(port, "starttls", ca_file=certs["ca"]))
    try:
        slip = d.call("take-message", line="201", text="over starttls")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["status"] == "sent", "sent")
        assert inbox.sessions == [{"tls": True, "login": "board"}]
        assert logins.tries == [(mechanism, "board", True)]
        assert "over starttls" in inbox.messages[0].get_payload()
        assert a.status()["delivery"]["email"]["ca_file"] == str(certs["ca"])
    finally:
        a.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_ok__implicit_tls_with_login(tmp_path, certs, relays):
    # Implicit TLS from the first byte (SMTPS); aiosmtpd counts only STARTTLS as TLS
    # for its auth_require_tls, so it is off here: the whole session is encrypted.
    inbox, logins, port = relays(ssl_context=server_context(certs["relay"]),
                                 auth_require_tls=False)
    d, a = make_rig(tmp_path, tls_cfg(port, "tls", relay="127.0.0.1", ca_file=certs["ca"]))
    try:
        slip = d.call("take-message", line="201", text="over smtps")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["status"] == "sent", "sent")
        assert inbox.sessions == [{"tls": True, "login": "board"}]
        assert [t[1:] for t in logins.tries] == [("board", True)]
    finally:
        a.stop()


def test_fail__wrong_password_fails_at_once_454_is_tried_again(tmp_path, certs, relays):
    inbox, logins, port = relays(tls_context=server_context(certs["relay"]),
                                 require_starttls=True)
    d, a = make_rig(tmp_path, tls_cfg(port, "starttls", password="wrong", ca_file=certs["ca"],
                                      max_tries=50))
    try:
        slip = d.call("take-message", line="201", text="hello")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["status"] == "failed", "failed")
        st = status_of(a, slip)
        assert st["tries"] == 1 and "refused the login 'board': 535" in st["last_error"]
        assert "check [delivery.email] username and password" in st["last_error"]
        assert "wrong" not in st["last_error"] and "wrong" not in str(a.status())
        logins.later = True             # "454 try later": the relay's trouble, not ours
        slip = d.call("take-message", line="201", text="again")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["tries"] >= 2, "tried twice")
        assert status_of(a, slip)["status"] == "queued" and "454" in status_of(a, slip)["last_error"]
        assert inbox.messages == []
    finally:
        a.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("case, expected", [
    ("system CAs only", "certificate verify failed|unable to get local issuer certificate"),
    ("misnamed certificate", "Hostname mismatch"),
    ("no STARTTLS offered", "STARTTLS extension not supported by server"),
    ("ca_file gone since the site file was read", r"ca_file .*gone.pem: cannot load it"),
])
def test_fail__certificate_not_accepted_or_no_starttls_nothing_sent(
        tmp_path, certs, relays, case, expected):
    cert = certs["other"] if case == "misnamed certificate" else certs["relay"]
    tls = {} if case == "no STARTTLS offered" else {"tls_context": server_context(cert)}
    inbox, logins, port = relays(auth_require_tls=False, **tls)
    ca = None if case == "system CAs only" else tmp_path / "gone.pem" if "gone" in case \
        else certs["ca"]
    d, a = make_rig(tmp_path, tls_cfg(port, "starttls", ca_file=ca, max_tries=50))
    try:
        slip = d.call("take-message", line="201", text="hello")["stamp"]["slip"]
        wait_for(lambda: status_of(a, slip)["tries"] >= 2, "tried twice")
        st = status_of(a, slip)
        assert st["status"] == "queued" and re.search(expected, st["last_error"])
        assert "nothing was sent" in st["last_error"].lower()
        assert inbox.messages == [] and logins.tries == []      # no password sent either
    finally:
        a.stop()


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


def test_ok__site_file_delivery_section(tmp_path, certs):
    p = tmp_path / "desk.site.toml"
    p.write_text(SITE)
    p.chmod(0o600)
    site = load_site(p, load_board(find_board("desk")))
    assert site.delivery.email.port == 587 and site.delivery.email.password == "secret"
    assert site.delivery.text.modem == "/dev/ttyUSB2" and site.delivery.max_tries == 5
    assert site.delivery.email.ca_file is None
    # ca_file: relative to the site file.
    (tmp_path / "relay-ca.pem").write_bytes(certs["ca"].read_bytes())
    p.write_text(SITE.replace('security = "starttls"\n',
                              'security = "starttls"\nca_file = "relay-ca.pem"\n'))
    site = load_site(p, load_board(find_board("desk")))
    assert site.delivery.email.ca_file == str(tmp_path / "relay-ca.pem")


EMAIL = '[delivery.email]\nrelay = "smtp.example.net"\nfrom = "a@b"\n'


@pytest.mark.parametrize("text, mode, expected", [
    (SITE, 0o644, "holds a delivery.email.password but is readable by others"),
    ('[delivery.email]\nrelay = "smtp.example.net"\nfrom = "x@y"\nsecurity = "none"\n', 0o600,
     "allowed only to a relay on this machine"),
    ('[delivery.email]\nrelay = "r"\nfrom = "nobody"\n', 0o600, "delivery.email.from"),
    ('[delivery.email]\nrelay = "r"\nfrom = "a@b"\nusername = "u"\n', 0o600,
     "both username and password"),
    ('[delivery.email]\nrelay = "r"\nfrom = "a@b"\nport = 0\n', 0o600, "delivery.email.port"),
    ('[delivery.fax]\n', 0o600, "delivery.fax"),
    (EMAIL + 'ca_file = "missing.pem"\n', 0o600,
     r"delivery.email.ca_file = 'missing.pem': expected a PEM file of the CA .*No such file"),
    (EMAIL + 'ca_file = "junk.pem"\n', 0o600,
     r"delivery.email.ca_file = 'junk.pem': expected a PEM file .*(NO_CERTIFICATE|no certificate)"),
    (EMAIL + 'ca_file = "ca.pem"\n', 0o600, r"delivery.email.ca_file = 'ca.pem': expected a PEM"),
    ('[delivery.email]\nrelay = "127.0.0.1"\nfrom = "a@b"\nsecurity = "none"\n'
     'ca_file = "ca.pem"\n', 0o600, 'ca_file = .ca.pem.: expected nothing: security = "none"'),
    (EMAIL + 'ca_file = 5\n', 0o600, "delivery.email.ca_file = 5: expected a string"),
])
def test_fail__bad_delivery_section(tmp_path, text, mode, expected):
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    p = tmp_path / "desk.site.toml"
    p.write_text(text if text.startswith(TRUNK) else TRUNK + text)
    p.chmod(mode)
    with pytest.raises(ConfigError, match=expected):
        load_site(p, load_board(find_board("desk")))
