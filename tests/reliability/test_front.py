"""The SIP front against strangers and bad requests (issue 10, findings 1, 2, 3, 13).

A real Kamailio front from ``firmware/telephony/front.py``; behind it, a SIPp
answering party standing in for a worker (``-sn uas``, every message it gets
written to a file); callers and strangers on other loopback addresses
(127.0.0.2 is no trunk; 127.0.0.4 is a second trunk that is no party to the call);
a relay target on 127.0.0.3 that must never hear anything.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware.config.board import load_board
from firmware.config.site import load_site
from firmware.telephony import front as front_module
from firmware.telephony.front import Front, free_port, kamailio_config

from sip_party import SipParty, parse, request, sdp
from telephony_support import SIPP_DIR, SippWorker, have_tools, wait_for

pytestmark = pytest.mark.telephony

DESK = load_board("boards/desk.toml")

GUARD = Path(front_module.__file__).with_name("frontguard.py")  # run as the front runs it


class Target:
    """Somewhere a relayed request would land (127.0.0.3): it must stay silent."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.3", 0))
        self.sock.settimeout(0.0)
        self.port = self.sock.getsockname()[1]

    def heard(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(65535))
            except (BlockingIOError, socket.timeout):
                return out


@pytest.fixture
def front(tmp_path):
    have_tools()
    worker = SippWorker(tmp_path)
    fr = Front(tmp_path / "front", listen="127.0.0.1", port=0, transports=("udp", "tcp"),
               peers=["127.0.0.1", "127.0.0.4"], numbers=["201", "202"],
               workers=[(worker.port, 3)])
    fr.start()
    fr.worker = worker
    yield fr
    fr.stop()
    worker.stop()


def addr(fr):
    return ("127.0.0.1", fr.port)


def call(fr, caller: SipParty, cid, body=None, extra=""):
    caller.send(request("INVITE", f"sip:201@127.0.0.1:{fr.port}", via_addr=caller.addr,
                        call_id=cid, body=sdp() if body is None else body, extra=extra), addr(fr))
    return caller.final(cid, timeout=8)


def test_fail__in_dialog_requests_from_a_stranger_are_refused_not_relayed(front, tmp_path):
    """SIPp on 127.0.0.2 sends in-dialog INVITE, MESSAGE and BYE routed through the
    front for a target on 127.0.0.3: each gets 403 and the target hears nothing."""
    target = Target()
    proc = subprocess.run(
        ["sipp", "-sf", str(SIPP_DIR / "stranger_in_dialog.xml"), "-i", "127.0.0.2",
         "-p", str(free_port("127.0.0.2")), "-mi", "127.0.0.2", "-mp", str(free_port("127.0.0.2")),
         "-m", "1", "-key", "target_host", "127.0.0.3", "-key", "target_port", str(target.port),
         "-timeout", "15s", "-timeout_error", "-nostdin", "-trace_err",
         "-error_file", str(tmp_path / "stranger-errors.log"), f"127.0.0.1:{front.port}"],
        capture_output=True, text=True, timeout=40, cwd=tmp_path)
    time.sleep(0.3)
    assert target.heard() == []
    assert proc.returncode == 0, (tmp_path / "stranger-errors.log").read_text(errors="replace")[-2000:]


def test_fail__in_dialog_request_from_a_trunk_outside_any_call_is_refused(front):
    """A trunk's address may not use the front as a relay either: no dialog, no relay."""
    target = Target()
    p = SipParty("127.0.0.1")
    try:
        for method in ("INVITE", "MESSAGE", "BYE"):
            cid = f"nodialog-{method}-{time.time_ns()}"
            p.send(request(method, f"sip:victim@127.0.0.3:{target.port}", via_addr=p.addr,
                           call_id=cid, to_tag="forged", route=f"<sip:127.0.0.1:{front.port};lr>",
                           body=sdp() if method == "INVITE" else ""), addr(front))
            first, _, _ = p.final(cid, method=method)
            assert first.split()[1] in ("403", "481"), first
        time.sleep(0.3)
        assert target.heard() == []
    finally:
        p.close()


def test_ok__a_call_through_the_front_shows_no_version_and_only_its_parties_end_it(front):
    caller, other_trunk = SipParty("127.0.0.1"), SipParty("127.0.0.4")
    try:
        cid = f"call-{time.time_ns()}"
        first, h, _ = call(front, caller, cid)
        assert first.startswith("SIP/2.0 200"), first
        text = "\r\n".join(f"{k}: {v}" for k, vs in h.items() for v in vs)
        assert "kamailio" not in text.lower()
        to_tag = h["to"][0].split("tag=")[1].split(";")[0]
        contact = h["contact"][0].strip("<>").split(">")[0]
        route = ", ".join(reversed(h.get("record-route", [])))
        ack = request("ACK", contact, via_addr=caller.addr, call_id=cid, to_tag=to_tag,
                      route=route or None)
        caller.send(ack, addr(front))
        wait_for(lambda: "ACK sip" in front.worker.text(), 5, "the ACK at the worker")
        # A second trunk that is no party to this call cannot hang it up.
        bye = request("BYE", contact, via_addr=other_trunk.addr, call_id=cid, cseq=2,
                      to_tag=to_tag, route=route or None, extra="X-Forged: yes")
        other_trunk.send(bye, addr(front))
        first, _, _ = other_trunk.final(cid, method="BYE")
        assert first.startswith("SIP/2.0 403"), first
        time.sleep(0.3)
        assert "X-Forged" not in front.worker.text()
        # The caller can.
        caller.send(request("BYE", contact, via_addr=caller.addr, call_id=cid, cseq=2,
                            to_tag=to_tag, route=route or None), addr(front))
        first, _, _ = caller.final(cid, method="BYE")
        assert first.startswith("SIP/2.0 200"), first
    finally:
        caller.close()
        other_trunk.close()


def test_ok__options_answer_without_a_version_and_say_what_is_allowed(front):
    p = SipParty("127.0.0.2")
    try:
        cid = f"opt-{time.time_ns()}"
        p.send(request("OPTIONS", f"sip:127.0.0.1:{front.port}", via_addr=p.addr, call_id=cid,
                       to=f"sip:127.0.0.1:{front.port}"), addr(front))
        first, h, _ = p.final(cid, method="OPTIONS")
        assert first.startswith("SIP/2.0 200"), first
        assert "INVITE" in h["allow"][0]
        raw = b"".join(p.messages()).decode(errors="replace").lower()
        assert "kamailio" not in raw and "5.6" not in raw
        assert h.get("server", ["switchboard"]) == ["switchboard"]
    finally:
        p.close()


@pytest.mark.parametrize("vias", [200, 20])
def test_fail__an_invite_with_many_via_headers_gets_a_final_answer(front, vias):
    """200 Vias (12 KB) used to get 100 Trying and then nothing, for ever."""
    p = SipParty("127.0.0.1")
    try:
        cid = f"vias-{vias}-{time.time_ns()}"
        extra = "\r\n".join(f"Via: SIP/2.0/UDP 10.0.{i // 250}.{i % 250 + 1}:5060;branch=z9hG4bK{i}x"
                            for i in range(vias - 1))
        first, _, _ = call(front, p, cid, extra=extra)
        assert first.split()[1] in ("400", "513"), first
        assert cid not in front.worker.text()
    finally:
        p.close()


@pytest.mark.parametrize("c_line", ["c=IN IP4 999.1.1.1", "c=IN IP4 1.2.3", "c=IN IP6 zz::1",
                                    "c=IN IP4 "])
def test_fail__an_offer_whose_media_goes_nowhere_is_refused_488(front, c_line):
    p = SipParty("127.0.0.1")
    try:
        cid = f"sdp-{time.time_ns()}"
        body = sdp().replace("c=IN IP4 127.0.0.1", c_line)
        first, _, _ = call(front, p, cid, body=body)
        assert first.startswith("SIP/2.0 488"), first
        assert cid not in front.worker.text()
    finally:
        p.close()


def test_ok__a_good_offer_still_rings_the_worker(front):
    p = SipParty("127.0.0.1")
    try:
        cid = f"good-{time.time_ns()}"
        first, _, _ = call(front, p, cid)
        assert first.startswith("SIP/2.0 200"), first
        assert cid in front.worker.text()
    finally:
        p.close()


# -- trunks given by address or by name (finding 3) ----------------------------
def site_with(tmp_path, trunk):
    p = tmp_path / "t.site.toml"
    p.write_text(f"[front]\nlisten = \"127.0.0.1\"\nport = 0\n{trunk}\n[numbers]\n")
    p.chmod(0o600)
    return load_site(p, DESK)


REGISTER = ('[[trunks]]\nname = "provider"\nmode = "register"\nregistrar = "{r}"\n'
            'username = "4155550100"\npassword = "pw"\n')


@pytest.mark.parametrize("trunk, allowed", [
    ('[[trunks]]\nname = "gw"\nmode = "peer"\npeers = ["127.0.0.1"]\n', True),
    ('[[trunks]]\nname = "gw"\nmode = "peer"\npeers = ["127.0.0.9"]\n', False),
    (REGISTER.format(r="sip:127.0.0.1:5999"), True),
    (REGISTER.format(r="sip:localhost:5999"), True),
    (REGISTER.format(r="sip:localhost"), True),
    (REGISTER.format(r="sip:nosuchhost.invalid"), False),
], ids=["peer-address", "other-peer-address", "registrar-address", "registrar-name-port",
        "registrar-name", "registrar-unresolvable-name"])
def test_ok__trunks_match_by_address_and_by_name(tmp_path, trunk, allowed):
    have_tools()
    site = site_with(tmp_path, trunk)
    text = kamailio_config(listen="127.0.0.1", port=5999, transports=("udp",),
                           peers=site.peer_addresses(), numbers=["201"], workers=[(6000, 3)])
    assert "(false)" not in text
    worker = SippWorker(tmp_path)
    fr = Front(tmp_path / "front", listen="127.0.0.1", port=0, transports=("udp",),
               peers=site.peer_addresses(), numbers=["201"], workers=[(worker.port, 3)])
    fr.start()
    p = SipParty("127.0.0.1")
    try:
        cid = f"trunk-{time.time_ns()}"
        first, _, _ = call(fr, p, cid)
        code = first.split()[1]
        assert (code == "200") if allowed else (code == "403"), first
    finally:
        p.close()
        fr.stop()
        worker.stop()


def test_ok__ipv6_trunk_addresses_are_compared_as_addresses():
    text = kamailio_config(listen="127.0.0.1", port=5999, transports=("udp",),
                           peers=["::1", "192.0.2.7"], numbers=["201"], workers=[(6000, 3)])
    assert 'compare_ips("$si", "::1")' in text and 'compare_ips("$si", "192.0.2.7")' in text


def test_parse_helper_reads_headers():
    first, h, body = parse(b"SIP/2.0 200 OK\r\nVia: a\r\nVia: b\r\n\r\nx")
    assert first == "SIP/2.0 200 OK" and h["via"] == ["a", "b"] and body == "x"


def test_ok__a_killed_fronts_dialog_tables_are_loaded_less_a_torn_row_with_their_lifetime(tmp_path):
    """What a restarted front loads: whole rows only (a SIGKILL can tear the last one as
    db_text rewrites the file), each dialog ending a day after its start; a first start
    begins with empty tables."""
    from firmware.telephony.front import DIALOG_LIFETIME_S, DIALOG_TABLES, dialog_tables
    d = tmp_path / "dialogs"
    dialog_tables(d, fresh=True)
    header = DIALOG_TABLES["dialog"][0]
    row = ("1:3443:11474:cid1:sip\\:diag@127.0.0.1:ft:sip\\:201@127.0.0.1:tt:16587:0:::"
           "sip\\:diag@127.0.0.1\\:46761;ob:sip\\:worker1@127.0.0.1\\:49668:udp\\:127.0.0.1\\:41985:"
           "udp\\:127.0.0.1\\:41985:3:1796101978:1751017078:0:0::sip\\:201@127.0.0.1\\:41985:")
    (d / "dialog").write_text(f"{header}\n{row}\n{row[:60]}")
    dialog_tables(d, fresh=False)
    lines = (d / "dialog").read_text().splitlines()
    assert lines[0] == header and len(lines) == 2
    assert f":3:1796101978:{1796101978 + DIALOG_LIFETIME_S}:0:0:" in lines[1]
    assert lines[1].replace(str(1796101978 + DIALOG_LIFETIME_S), "1751017078") == row
    assert (d / "version").read_text().splitlines()[1:] == ["0:dialog:7", "0:dialog_vars:1"]
    dialog_tables(d, fresh=True)
    assert (d / "dialog").read_text() == header + "\n"


def test_ok__the_guard_hands_kamailio_default_signal_dispositions(tmp_path):
    """Python ignores SIGPIPE and SIGXFSZ; the guard's child must not inherit that (with them
    ignored, a few calls of a 115-call storm went unanswered). It also ends the group."""
    out = tmp_path / "status"
    r = subprocess.run([sys.executable, "-S", str(GUARD), "--pidfile", str(tmp_path / "pid"), "--",
                        "sh", "-c", f"grep SigIgn /proc/self/status > {out}"],
                       capture_output=True, text=True, timeout=20,
                       start_new_session=True)  # as children.spawn starts it: its own group
    ignored = int(out.read_text().split()[1], 16)
    assert not ignored & (1 << (13 - 1)) and not ignored & (1 << (25 - 1)), hex(ignored)  # PIPE, XFSZ
    assert r.returncode == -9  # the group, the guard with it, is ended once the child is
    assert "frontguard: kamailio ended (status 0); ending its process group" in r.stderr
    assert not (tmp_path / "pid").exists()


@pytest.mark.parametrize("args", [[], ["--pidfile"], ["--pidfile", "p", "--"], ["kamailio"]])
def test_fail__the_guard_without_a_pid_file_or_command_says_how_to_run_it(tmp_path, args):
    r = subprocess.run([sys.executable, "-S", str(GUARD), *args], capture_output=True, text=True,
                       timeout=20, cwd=tmp_path, start_new_session=True)
    assert r.returncode == 2
    assert r.stderr.startswith("frontguard: ") and "usage: frontguard.py --pidfile PATH" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "p").exists()
