"""The board's SIP front: a Kamailio configuration generated from the site file.

Kamailio listens where the site file says (loopback unless configured) and:

- accepts new calls only from the trunks' addresses (peers, and registrars
  given as IP addresses), answering anyone else ``403 Forbidden``;
- accepts only called numbers the site file maps to a board line (``404``);
- hands each call to a PJSUA2 worker in turn (dispatcher module, round robin)
  and fails over to the next when one answers ``486 Busy Here``: each worker
  refuses calls beyond its own ``maxload`` (its measured limit less the slot
  kept for the operator's leg), so a call lands on the first worker with room.
  (The dispatcher's own call-load algorithm keeps counts in the proxy that
  leaked with cancelled calls, and sent every short call of a burst to the
  same worker);
- paces call set-ups per worker (see ``SETUPS_PER_WORKER_S``), answering
  ``503`` with ``Retry-After`` to a burst that would exceed them;
- answers ``486 Busy Here`` only when every worker is full;
- hides the workers: a caller sees the front's address in every header, never a
  worker's (its Contact kept with the call's dialog, its Via restored on the way back).
- keeps its dialogs on disk (the dialog module's db_text tables in the run directory), so
  a restarted front relays the in-dialog requests of calls set up before it;
- relays a worker's call out over a modem trunk (``;modem=<name>`` in the Request-URI)
  to that modem's gateway on loopback, record-routed like the calls in.

Kamailio is started and stopped by the telephony adapter, in the foreground
under a guard (``frontguard.py``) that keeps its process tree together and
dies with the daemon, with its files in a private run directory; the adapter
checks it by a real OPTIONS round trip and restarts it (``supervisor.py``).
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from firmware.errors import SwitchboardError
from firmware.records.files import atomic_write
from firmware.telephony import frontblock
from firmware.telephony import protocol as msg
from firmware.telephony.children import child_env, spawn

MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules",
               "/usr/lib/arm-linux-gnueabihf/kamailio/modules", "/usr/lib/kamailio/modules")


class FrontError(SwitchboardError, RuntimeError):
    """Kamailio could not be configured or started."""


def free_port(host="127.0.0.1") -> int:
    """A port free for both UDP and TCP right now (Kamailio cannot bind port 0)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
                return port
    raise FrontError(f"no free port on {host}")


def module_dir() -> str:
    for d in MODULE_DIRS:
        if os.path.isdir(d):
            return d
    raise FrontError("Kamailio's modules were not found: install the Debian package kamailio "
                     "(scripts/setup.sh does)")


def kamailio_exe() -> str:
    """The kamailio program; FrontError when it is not installed."""
    exe = shutil.which("kamailio") or "/usr/sbin/kamailio"
    if not os.path.exists(exe):
        raise FrontError("kamailio is not installed: run scripts/setup.sh "
                         "(Debian package kamailio)")
    return exe


def load_modules(*names: str) -> str:
    """The configuration lines that load Kamailio modules ``names`` (``"tm"``, ...) from
    ``module_dir()``."""
    return "\n".join([f'mpath="{module_dir()}"'] + [f'loadmodule "{n}.so"' for n in names])


def options_reply(host: str, port: int, timeout: float = 1.0) -> int | None:
    """A real SIP round trip: the status code of the answer to an OPTIONS sent to
    ``host:port`` over UDP, or None when none came within ``timeout`` s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind((host, 0))
        msg = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {host}:{s.getsockname()[1]};branch=z9hG4bK{time.time_ns()}\r\n"
               "Max-Forwards: 5\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\n"
               f"To: <sip:{host}>\r\nCall-ID: probe{time.time_ns()}\r\n"
               "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        try:
            s.sendto(msg.encode(), (host, port))
            reply = s.recv(4096)
        except OSError:
            return None
    first = reply.split(b"\r\n", 1)[0].split(b" ")
    return int(first[1]) if first[0] == b"SIP/2.0" and len(first) > 1 and first[1].isdigit() else None


def _regex_alternation(items) -> str:
    return "|".join(re.escape(i).replace("\\", "\\\\") for i in sorted(items))


SETUPS_PER_WORKER_S = 12   # the PyPI wheel's build (4 calls, 64 I/O-queue slots)
SETUPS_PER_WORKER_S_128 = 64   # the project's build (128 calls, 1024 slots)


def setups_per_worker_s(workers) -> int:
    """Call set-ups a second each worker is given (``workers``: (port, maxload) pairs).

    The PyPI wheel (4 calls, 64 I/O-queue slots) aborts on about 28 set-ups within half a
    second: 12 a second. The project's build (scripts/pjsua2/config_site.h) has room for far
    more; what bounds it is the worker's Python handling each set-up. 64 a second per worker
    lets all 115 TAS-100 lines ring at once through 2 workers (58 each) and keeps a burst of
    twice that answered (the burst test). More than 8 calls: taken to be the project's build.
    """
    least = min((m for _, m in workers), default=0)
    return SETUPS_PER_WORKER_S if least <= 8 else SETUPS_PER_WORKER_S_128


MAX_MESSAGE_BYTES = 8192   # an INVITE larger than this is refused 513 (a real one is ~1-2 KB)
MAX_VIAS = 16              # more Via headers than any honest path has: 400
DIALOG_LIFETIME_S = 86400  # a dialog the front forgets after this long (a day: no call lasts it)
DUMP_INTERVAL_MS = 50      # the dialogs' tables go to disk this often (when they changed)


def trunk_match(peers) -> str:
    """The condition that is true when a request comes from one of the trunks.

    An address (IPv4 or IPv6) is compared as an address (``compare_ips``: ``::1``
    and ``0:0::1`` are the same); a name (a registrar given as ``sip:pbx.example.net``)
    matches any address the name resolves to when the request arrives
    (``dns_int_match_ip``), so a provider whose address changes still gets in."""
    terms = []
    for p in peers:
        try:
            ip = ipaddress.ip_address(p)
            terms.append(f'compare_ips("$si", "{ip}")')
        except ValueError:
            if not _HOSTNAME_RE.fullmatch(p):
                raise FrontError(f"trunk address {p!r} is neither an IP address nor a host name") from None
            terms.append(f'dns_int_match_ip("{p}", "$si")')
    return " || ".join(terms) or "false"


_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                          r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def modem_route(modems) -> str:
    """route[MODEM]: a worker's call out over a modem trunk (``;modem=<name>`` in its
    Request-URI) goes to that modem's gateway on loopback; any other name is 404."""
    branches = "".join(f'    {"else " if i else ""}if ($(ru{{uri.param,modem}}) == "{name}") {{\n'
                       f'        $du = "sip:127.0.0.1:{int(port)}";\n    }}\n'
                       for i, (name, port) in enumerate(sorted((modems or {}).items())))
    refuse = '        sl_send_reply("404", "No Such Modem");\n        exit;\n'
    if not branches:
        return f"route[MODEM] {{\n{refuse}}}\n"
    return (f"route[MODEM] {{\n{branches}    else {{\n{refuse}    }}\n"
            "    route(SDP);\n    dlg_manage();\n    $dlg_var(caller) = $si;\n"
            "    record_route();\n    t_relay();\n}\n")


def kamailio_config(*, listen: str, port: int, transports, peers, numbers, workers,
                    children: int = 4, tls_config: str | None = None,
                    refuse: str = "busy", modems=None) -> str:
    """The configuration text. ``workers`` is a list of (port, maxload); ``peers``
    the trunks' addresses and host names; ``refuse``: what a blocked caller gets
    (``frontblock.py``); ``modems`` modem trunk name -> its gateway's port on loopback."""
    listens = "\n".join(f"listen={t}:{listen}:{port}" for t in transports if t in ("udp", "tcp"))
    if "tls" in transports:
        listens += f"\nlisten=tls:{listen}:{port + 1}"
    allowed = trunk_match(peers)
    nums = _regex_alternation(numbers)
    # The sent-by a worker's Via shows the caller (never used to route: the front's
    # own Via is above it). A wildcard listen has no address to show.
    host = f"[{listen}]" if ":" in listen else listen
    sent_by = f"{host}:{port}" if listen not in ("0.0.0.0", "::") else "switchboard.invalid"
    return f"""#!KAMAILIO
# Generated by firmware/telephony/front.py from the site file: do not edit.
debug=1
log_stderror=yes
memdbg=5
memlog=5
children={children}
tcp_children=2
# UDP receive buffer up to 4 MB (default 256 kB): a burst of INVITEs is queued, not dropped.
maxbuffer=4194304
auto_aliases=no
# Names (a registrar's host) resolve through the system's resolver, /etc/hosts included.
use_dns_cache=no
# No version strings: a stranger learns nothing about what answers.
server_signature=no
server_header="Server: switchboard"
user_agent_header="User-Agent: switchboard"
{listens}
{"enable_tls=yes" if "tls" in transports else ""}
{"disable_tcp=yes" if not ({"tcp", "tls"} & set(transports)) else ""}
{load_modules("tm", "tmx", "sl", "rr", "pv", "maxfwd", "textops", "textopsx", "siputils", "xlog",
              "sanity", "dispatcher", "htable", "ipops", "db_text", "dialog", "jsonrpcs",
              "rtimer")}
{'loadmodule "tls.so"' if "tls" in transports else ""}
{f'modparam("tls", "config", "{tls_config}")' if "tls" in transports else ""}
# A board's call may ring for minutes before it is picked up or overflows.
modparam("tm", "fr_inv_timer", 900000)
modparam("tm", "max_inv_lifetime", 1000000)
modparam("dispatcher", "list_file", "{{DSLIST}}")
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_ping_interval", 0)
modparam("rr", "append_fromtag", 1)
# Every call the front lets in is a dialog it knows: in-dialog requests must
# belong to one and come from one of its parties (its caller or a worker).
modparam("dialog", "default_timeout", {DIALOG_LIFETIME_S})
modparam("dialog", "enable_stats", 0)
# The dialogs outlive this Kamailio: each is written to db_text tables in the run
# directory as it changes (db_mode 1), with what the script keeps of it in dialog
# variables (its caller, the worker's Contact, the front's Contact shown to the caller),
# and a restarted front loads them, so calls set up before a restart go on through it.
# db_text writes its tables to disk only when told (or at a clean shut-down): the timer
# below does so every {DUMP_INTERVAL_MS} ms, and only for tables that changed.
modparam("dialog", "db_url", "text://{{DLGDB}}")
modparam("dialog", "db_mode", 1)
modparam("rtimer", "timer", "name=dlgdump;interval={DUMP_INTERVAL_MS * 1000}u;mode=1;")
modparam("rtimer", "exec", "timer=dlgdump;route=DIALOGS_TO_DISK")
# Call set-ups per worker per second. A PJSUA2 process has 64 I/O-queue slots and
# frees each only 500 ms after its call's RTP sockets close: more than about 28 call
# set-ups within half a second abort it. {{SETUPS}} a second keeps well clear.
modparam("htable", "htable", "setups=>size=6;autoexpire=3;")
# Blocked callers (frontblock.py): rules and counts set and read over the control
# socket while the front runs; only the daemon's user can reach it.
modparam("htable", "htable", "{frontblock.RULES}=>size=8;")
modparam("htable", "htable", "{frontblock.COUNTS}=>size=2;")
modparam("jsonrpcs", "transport", 4)
modparam("jsonrpcs", "dgram_socket", "{{RPCSOCK}}")
modparam("jsonrpcs", "dgram_mode", 0600)

request_route {{
    if ($ml > {MAX_MESSAGE_BYTES}) {{
        xlog("L_NOTICE", "refused $rm from $si: $ml bytes\\n");
        if (!is_method("ACK")) {{
            sl_send_reply("513", "Message Too Large");
        }}
        exit;
    }}
    if ($hdrc(Via) > {MAX_VIAS}) {{
        if (!is_method("ACK")) {{
            sl_send_reply("400", "Too Many Via Headers");
        }}
        exit;
    }}
    if (!sanity_check()) {{
        exit;
    }}
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (has_totag()) {{
        route(IN_DIALOG);
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (({allowed}) && t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (is_method("OPTIONS")) {{
        append_to_reply("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\\r\\nAccept: application/sdp\\r\\n");
        sl_send_reply("200", "OK");
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (is_method("MESSAGE") && ds_is_from_list("1")) {{
        route(TEXT);
    }}
    if (!is_method("INVITE")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if (t_check_trans()) {{
        exit;
    }}
    if (ds_is_from_list("1") && $(ru{{uri.param,modem}}) != "") {{
        route(MODEM);                 # a worker dialling out on an analog line
        exit;
    }}
    if (!({allowed})) {{
        xlog("L_NOTICE", "refused INVITE from $si: not a trunk's address\\n");
        sl_send_reply("403", "Forbidden");
        exit;
    }}
    if (!($rU =~ "^({nums})$")) {{
        sl_send_reply("{msg.NO_SUCH_LINE.code}", "{msg.NO_SUCH_LINE.reason}");
        exit;
    }}
    remove_hf("{frontblock.HEADER}");
    route(BLOCKED);
    route(SDP);
    dlg_manage();
    $dlg_var(caller) = $si;
    record_route();
    if (!ds_select_dst("1", "4")) {{
        xlog("L_WARN", "every worker is full: $rU from $si turned away\\n");
        sl_send_reply("486", "Board Full");
        exit;
    }}
    $var(ok) = 0;
    $var(i) = 0;
    while ($var(ok) == 0 && $var(i) < 300) {{
        $var(k) = $du + "@" + $Ts;
        if ($sht(setups=>$var(k)) == $null) {{
            $sht(setups=>$var(k)) = 0;
        }}
        if ($shtinc(setups=>$var(k)) <= {{SETUPS}}) {{
            $var(ok) = 1;
        }} else if (!ds_next_dst()) {{
            $var(i) = 300;
        }}
        $var(i) = $var(i) + 1;
    }}
    if ($var(ok) == 0) {{
        xlog("L_WARN", "call set-up burst: $rU from $si asked to retry\\n");
        append_to_reply("Retry-After: 1\\r\\n");
        sl_send_reply("503", "Board Busy, Retry");
        exit;
    }}
    # What the caller is shown instead of a worker's Contact: the front, on the socket
    # and transport the caller used.
    $var(h) = $Ri;
    if ($Ri =~ ":") {{
        $var(h) = "[" + $Ri + "]";
    }}
    $var(fc) = "sip:" + $rU + "@" + $var(h) + ":" + $Rp;
    if ($proto != "udp") {{
        $var(fc) = $var(fc) + ";transport=" + $proto;
    }}
    $dlg_var(front) = $var(fc);
    $avp(front) = $var(fc);
    t_on_reply("FROM_WORKER");
    t_on_failure("WORKER_FAILED");
    t_relay();
    exit;
}}

# A request inside a dialog (it has a To tag). Relayed only when it comes from a
# trunk or a worker, routes through this front, belongs to a dialog the front set
# up, and comes from that dialog's caller or a worker: the front is nobody's relay.
route[IN_DIALOG] {{
    if (ds_is_from_list("1")) {{
        $var(party) = "worker";
    }} else if ({allowed}) {{
        $var(party) = "trunk";
    }} else {{
        xlog("L_NOTICE", "refused in-dialog $rm from $si: not a trunk's address\\n");
        if (!is_method("ACK")) {{
            sl_send_reply("403", "Forbidden");
        }}
        exit;
    }}
    # Find the call before routing: the dialog module takes a BYE that loose_route
    # has seen as the call's end, so a stranger's must be refused before that.
    if (dlg_get("$ci", "$ft", "$tt")) {{
        if ($var(party) == "trunk" && $dlg_var(caller) != $si) {{
            xlog("L_NOTICE", "refused in-dialog $rm from $si: not a party to the call\\n");
            if (!is_method("ACK")) {{
                sl_send_reply("403", "Forbidden");
            }}
            exit;
        }}
    }} else if (!is_method("ACK")) {{
        xlog("L_NOTICE", "refused in-dialog $rm from $si: no such call\\n");
        sl_send_reply("481", "Call Does Not Exist");
        exit;
    }}
    # Toward the worker (the caller knows only the front's Contact): the worker's own,
    # set before loose_route, which takes a Request-URI of its own as strict routing.
    $avp(front) = $dlg_var(front);
    $var(toward) = "caller";
    if (uri == myself) {{
        if ($dlg_var(worker) == $null) {{
            if (!is_method("ACK")) {{
                sl_send_reply("481", "Call Does Not Exist");
            }}
            exit;
        }}
        $ru = $dlg_var(worker);
        $var(toward) = "worker";
    }}
    if (loose_route()) {{
        if (!is_known_dlg()) {{
            xlog("L_NOTICE", "refused in-dialog $rm from $si: no such call\\n");
            if (!is_method("ACK")) {{
                sl_send_reply("481", "Call Does Not Exist");
            }}
            exit;
        }}
        if (is_method("INVITE|UPDATE")) {{
            route(SDP);
        }}
        if ($var(toward) == "worker") {{
            t_on_reply("FROM_WORKER");
        }} else {{
            route(TOWARD_CALLER);
            t_on_reply("TO_WORKER");
        }}
        t_relay();
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    sl_send_reply("404", "Not Here");
    exit;
}}

{blocked_route(refuse)}
# A text (SIP MESSAGE) from a worker goes on to the trunk its request URI names
# (firmware/telephony/texts.py); from anyone else it is refused 405 as above.
route[TEXT] {{
    loose_route();
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

# Every connection line of an offer must carry an IP address: a worker must not
# ring a line for a call whose media can go nowhere.
route[SDP] {{
    if (!has_body("application/sdp")) {{
        return;
    }}
    $var(n) = $(rb{{line.count}});
    $var(j) = 0;
    while ($var(j) < $var(n) && $var(j) < 200) {{
        $var(l) = $(rb{{line.at,$var(j)}});
        if ($(var(l){{s.substr,0,2}}) == "c=") {{
            $var(a) = $(var(l){{s.select,2, }}{{s.select,0,/}}{{s.trim}});
            if (!(($var(l) =~ "^c=IN IP4 " && is_ipv4("$var(a)"))
                    || ($var(l) =~ "^c=IN IP6 " && is_ipv6("$var(a)")))) {{
                xlog("L_NOTICE", "refused $rm from $si: bad SDP connection line\\n");
                sl_send_reply("488", "Not Acceptable Here");
                exit;
            }}
        }}
        $var(j) = $var(j) + 1;
    }}
}}

# Topology hiding, toward the caller: a request a worker sends (or the daemon in a dead
# worker's name) shows the front's address in its Contact and in the worker's Via (its
# branch kept), and no User-Agent. The transaction is made first, so that replies go
# back to where the request came from; the edited message then replaces the received
# one (msg_apply_changes), so the core adds no rport/received with the worker's port.
# TO_WORKER gives the worker back its own Via.
route[TOWARD_CALLER] {{
    if ($avp(front) == $null) {{
        return;
    }}
    $avp(workervia) = $hdr(Via);
    if (!is_method("ACK") && !t_newtran()) {{
        sl_reply_error();
        exit;
    }}
    subst_hf("Via", "#^(SIP */ *2[.]0 */ *[A-Za-z]+) .*;[ ]*(branch=[^;, ]+).*$#\\1 {sent_by};\\2#", "f");
    if (is_present_hf("Contact")) {{
        remove_hf("Contact");
        append_hf("Contact: <$avp(front)>\\r\\n");
    }}
    remove_hf("User-Agent");
    msg_apply_changes();
}}

# Replies from a worker, on their way to the caller: the worker's Contact is kept here
# (in-dialog requests are sent to it) and the caller is shown the front's instead.
onreply_route[FROM_WORKER] {{
    if (is_present_hf("Contact") && $avp(front) != $null) {{
        if ($rs =~ "^(1[0-9][1-9]|2[0-9][0-9])$") {{
            $dlg_var(worker) = $(ct{{tobody.uri}});
        }}
        remove_hf("Contact");
        append_hf("Contact: <$avp(front)>\\r\\n");
    }}
    remove_hf("Server");
    remove_hf("User-Agent");
}}

# A caller's reply to a worker's request: the worker gets back its own Via.
onreply_route[TO_WORKER] {{
    if ($avp(workervia) != $null) {{
        remove_hf("Via");
        append_hf("Via: $avp(workervia)\\r\\n");
    }}
}}

{modem_route(modems)}
# The dialogs' tables, to disk when they changed (see db_text above).
route[DIALOGS_TO_DISK] {{
    jsonrpc_exec('{{"jsonrpc": "2.0", "method": "db_text.dump", "id": 1}}');
}}

failure_route[WORKER_FAILED] {{
    if (t_is_canceled()) {{
        exit;
    }}
    # A worker that is full answers {msg.WORKER_FULL.code} "{msg.WORKER_FULL.reason}": try the next. Our own
    # {msg.LINE_BUSY.code} "{msg.LINE_BUSY.reason}" (the line already has a call) goes back to the caller.
    if (t_check_status("486|503|500|408") && $T_reply_reason != "{msg.LINE_BUSY.reason}") {{
        if (ds_next_dst()) {{
            t_on_failure("WORKER_FAILED");
            t_relay();
            exit;
        }}
    }}
}}
"""


def blocked_route(refuse: str) -> str:
    """Callers on the block list (frontblock.py's rules: regexes over
    ``<caller's national digits>@<called number>``) are refused here, before any
    worker: busy, or sent on to a worker that plays the announcement."""
    act = ('sl_send_reply("486", "Busy Here");\n        exit;' if refuse == "busy" else
           f'append_hf("{frontblock.HEADER}: $var(hit)\\r\\n");')
    rules, counts = frontblock.RULES, frontblock.COUNTS
    return f"""route[BLOCKED] {{
    $var(cd) = $(fU{{re.subst,/[^0-9]//g}});
    if ($(var(cd){{s.len}}) > 10) {{
        $var(cd) = $(var(cd){{s.substr,-10,0}});
    }}
    $var(k) = $var(cd) + "@" + $rU;
    $var(hit) = "";
    sht_iterator_start("b", "{rules}");
    while ($var(hit) == "" && sht_iterator_next("b")) {{
        if ($var(k) =~ $shtitkey(b)) {{
            $var(hit) = $shtitval(b);
        }}
    }}
    sht_iterator_end("b");
    if ($var(hit) != "" && $var(cd) != "") {{
        if ($sht({counts}=>count) == $null) {{
            $sht({counts}=>count) = 0;
        }}
        $var(n) = $shtinc({counts}=>count);
        $sht({counts}=>last) = $var(k) + " " + $var(hit);
        xlog("L_NOTICE", "refused $var(k) from $si: blocked ($var(hit))\\n");
        {act}
    }}
}}
"""


# The dialog module's tables in db_text form (Kamailio 5.6's schema: dialog version 7,
# dialog_vars version 1), as kamdbctl creates them: a header naming the columns, then
# one row a line, fields separated by ':'.
DIALOG_TABLES = {
    "version": ("id(int,auto) table_name(string) table_version(int) ",
                ["0:dialog:7", "0:dialog_vars:1"]),
    "dialog": ("id(int,auto) hash_entry(int) hash_id(int) callid(string) from_uri(string) "
               "from_tag(string) to_uri(string) to_tag(string) caller_cseq(string) "
               "callee_cseq(string) caller_route_set(string,null) callee_route_set(string,null) "
               "caller_contact(string) callee_contact(string) caller_sock(string) "
               "callee_sock(string) state(int) start_time(int) timeout(int) sflags(int) "
               "iflags(int) toroute_name(string,null) req_uri(string) xdata(string,null) ", []),
    "dialog_vars": ("id(int,auto) hash_entry(int) hash_id(int) dialog_key(string) "
                    "dialog_value(string) ", []),
}
_FIELD_SEP = re.compile(r"(?<!\\):")


def _lifetime_from_start(row: str) -> str:
    """A dialog row whose end (``timeout``) is its start plus ``DIALOG_LIFETIME_S``.

    The row Kamailio 5.6.3 writes when the 200 arrives holds in ``timeout`` a time long
    past (seen: months before the call's ``start_time``), and it is not rewritten later in
    this mode: a restarted front loading it as it is ends every call at once
    (``dlg_ontimeout`` in its log, then 481 to the call's BYE)."""
    f = _FIELD_SEP.split(row)
    try:
        f[18] = str(int(f[17]) + DIALOG_LIFETIME_S)     # start_time, timeout
    except ValueError:
        pass
    return ":".join(f)


def dialog_tables(folder, fresh: bool) -> None:
    """The dialog tables in ``folder``: new and empty when ``fresh`` (a front's first start:
    no call of an earlier daemon's workers lives on), else kept for the restarted front to
    load, less any row a killed Kamailio left half written (db_text rewrites a table file
    in place), which would stop it loading the table at all."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, (header, rows) in DIALOG_TABLES.items():
        path = folder / name
        kept = []
        if not fresh and name != "version":
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = ""
            lines = text.split("\n")
            columns = len(header.split())
            # The last piece has no newline: a complete file ends in one, so it is "".
            kept = [ln for ln in lines[1:-1] if len(_FIELD_SEP.split(ln)) == columns]
            if name == "dialog":
                kept = [_lifetime_from_start(ln) for ln in kept]
        atomic_write(path, "".join(f"{ln}\n" for ln in [header] + rows + kept).encode(), 0o600)


def dispatcher_list(workers, host="127.0.0.1") -> str:
    """Set 1: one line per worker (``maxload`` is informative: the worker enforces it)."""
    return "".join(f"1 sip:{host}:{p} 0 0 duid=w{i};maxload={m}\n"
                   for i, (p, m) in enumerate(workers))


class Front:
    """One Kamailio process in the foreground, its config in ``run_dir``."""

    def __init__(self, run_dir, *, listen, port, transports, peers, numbers, workers,
                 tls_certificate=None, tls_private_key=None, refuse="busy", modems=None):
        self.run_dir = Path(run_dir)
        self.refuse = refuse          # what a blocked caller gets: "busy" or "announcement"
        self.modems = dict(modems or {})
        self._rpc_path: Path | None = None
        self.listen = listen
        self.port = port or free_port(listen)
        self.transports = tuple(transports)
        self.peers = list(peers)
        self.numbers = list(numbers)
        self.workers = list(workers)
        self.tls = (tls_certificate, tls_private_key)
        self.proc: subprocess.Popen | None = None
        self._started = False     # once started, a restart keeps the dialogs (dialog_tables)

    @property
    def dialog_db(self) -> Path:
        """The dialog module's db_text tables: what a restarted front knows of the calls."""
        return self.run_dir / "dialogs"

    @property
    def host(self) -> str:
        """Where a process on this machine reaches the front."""
        return "127.0.0.1" if self.listen in ("0.0.0.0", "::", "") else self.listen

    @property
    def rpc_path(self) -> Path:
        """The control socket (JSON-RPC): in the run directory, or in a private folder
        under /tmp when that path is too long for a Unix socket (108 bytes)."""
        if self._rpc_path is None:
            p = self.run_dir.resolve() / "rpc.sock"
            if len(str(p)) > 90:
                # One folder per run directory, reused across restarts, removed at stop.
                tag = hashlib.sha1(str(self.run_dir.resolve()).encode()).hexdigest()[:12]
                p = Path(tempfile.gettempdir()) / f"switchboard-front-{os.getuid()}-{tag}" / "rpc.sock"
            self._rpc_path = p
        return self._rpc_path

    def _rpc_folder(self) -> None:
        d = self.rpc_path.parent
        if d == self.run_dir.resolve():
            return
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            st = d.lstat()
            if not (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
                    and not st.st_mode & 0o077):
                raise FrontError(f"{d}: not a private folder of this user; remove it (the "
                                 "front's control socket goes there)") from None

    @property
    def uri(self) -> str:
        return f"sip:{self.listen}:{self.port}"

    @property
    def tls_port(self) -> int | None:
        """TLS listens on the next port up (SIP's 5060/5061 habit)."""
        return self.port + 1 if "tls" in self.transports else None

    def write(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._rpc_folder()
        ds = self.run_dir / "dispatcher.list"
        ds.write_text(dispatcher_list(self.workers))
        tls_cfg = None
        if "tls" in self.transports:
            cert, key = (str(Path(p).resolve()) for p in self.tls)
            tls_cfg = self.run_dir / "tls.cfg"
            tls_cfg.write_text(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                f"require_certificate = no\ncertificate = {cert}\nprivate_key = {key}\n\n"
                "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                "require_certificate = no\n")
        cfg = self.run_dir / "kamailio.cfg"
        cfg.write_text(kamailio_config(listen=self.listen, port=self.port,
                                       transports=self.transports, peers=self.peers,
                                       numbers=self.numbers, workers=self.workers,
                                       tls_config=str(tls_cfg) if tls_cfg else None,
                                       refuse=self.refuse, modems=self.modems)
                       .replace("{DSLIST}", str(ds))
                       .replace("{RPCSOCK}", str(self.rpc_path))
                       .replace("{DLGDB}", str(self.dialog_db.resolve()))
                       .replace("{SETUPS}", str(setups_per_worker_s(self.workers))))
        return cfg

    @property
    def config_path(self) -> Path:
        return (self.run_dir / "kamailio.cfg").resolve()

    @property
    def pid_path(self) -> Path:
        return self.run_dir / "front.pid"

    def _sockets(self):
        """(protocol, address, port) of every socket the front listens on."""
        out = [(t, self.listen, self.port) for t in self.transports if t in ("udp", "tcp")]
        if "tls" in self.transports:
            out.append(("tls", self.listen, self.port + 1))
        return out

    def check_free(self) -> None:
        """A clear error now if any of the front's addresses cannot be bound (taken by
        another program, or not an address of this machine)."""
        for proto, host, port in self._sockets():
            kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, kind) as s:
                if kind == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as Kamailio does
                try:
                    s.bind((host, port))
                except OSError as e:
                    raise FrontError(
                        f"the SIP front cannot listen on {proto}:{host}:{port}: {e.strerror}; "
                        + ("another program holds that port (ss -lnp 'sport = :%d' shows "
                           "which): stop it, or choose another [front] port in the site file"
                           % port if e.errno == errno.EADDRINUSE else
                           "check [front] listen in the site file")) from None

    def _own_processes(self) -> list[int]:
        """Pids of processes running our config (a front of this data dir), from /proc."""
        needle = str(self.config_path).encode()
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if needle in f.read():
                        pids.append(int(d))
            except OSError:
                continue
        return pids

    def end_stale(self, timeout: float = 5.0) -> list[int]:
        """End a front left running by a daemon of this data dir that was killed: the
        group named in the pid file, and any process still running our config."""
        groups = set()
        try:
            groups.add(int(self.pid_path.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
        pids = self._own_processes()
        for pid in pids:
            try:
                groups.add(os.getpgid(pid))
            except OSError:
                pass
        for pgid in groups:
            # Only a group that really is ours: a reused pid is left alone.
            if pgid in pids or any(_pgid(p) == pgid for p in pids):
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except OSError:
                    pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while self._own_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            self.pid_path.unlink()
        except OSError:
            pass
        return pids

    def start(self, timeout=10.0):
        exe = kamailio_exe()
        cfg = self.write()
        dialog_tables(self.dialog_db, fresh=not self._started)
        self._started = True
        check = subprocess.run([exe, "-c", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise FrontError(f"Kamailio refused its generated config {cfg}: "
                             + check.stderr.strip()[-800:])
        # Our front's processes are ended before a start (stop, end_stale): a pid file
        # left by a killed Kamailio only makes the new one refuse to start ("running
        # process found in the pid file") when that pid lingers as a zombie or is reused.
        try:
            (self.run_dir / "kamailio.pid").unlink()
        except OSError:
            pass
        # -DD: stay in the foreground (the guard's child), still forking Kamailio's workers.
        # The guard keeps the whole tree together and dies with the daemon (frontguard.py).
        self.proc = spawn(
            [sys.executable, "-S", str(Path(__file__).with_name("frontguard.py")), "--pidfile",
             str(self.pid_path), "--", exe, "-DD", "-E", "-f", str(self.config_path),
             "-P", str(self.run_dir / "kamailio.pid"), "-Y", str(self.run_dir),
             "-m", "64", "-M", "8"],
            death_signal=signal.SIGTERM, log_path=self.run_dir / "kamailio.log",
            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=child_env())
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                why = self._bind_error()
                self.stop()
                raise FrontError(
                    f"Kamailio exited at start-up: {why}" if why else
                    f"Kamailio exited at start-up; see {self.run_dir / 'kamailio.log'}")
            if self.answers_options(0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise FrontError(f"Kamailio did not answer on {self.listen}:{self.port} within {timeout} s")

    def _bind_error(self) -> str | None:
        """The line of Kamailio's log saying which address it could not bind, if any."""
        try:
            tail = (self.run_dir / "kamailio.log").read_text(errors="replace")[-4000:]
        except OSError:
            return None
        for line in tail.splitlines():
            if "bind" in line and ("in use" in line or "assign" in line or "failed" in line):
                return (f"cannot listen on {self.listen}:{self.port}: "
                        + line.split("):", 1)[-1].strip()[:200])
        return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def answers_options(self, timeout: float = 1.0) -> bool:
        """A real SIP round trip: an OPTIONS to the front gets a 200."""
        host = "127.0.0.1" if self.listen in ("0.0.0.0", "::") else self.listen
        return options_reply(host, self.port, timeout) == 200

    def stop(self):
        """Stop the guard (it stops Kamailio), then kill whatever is left of the group."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pgid, signal.SIGKILL)    # orphans of a Kamailio that was killed
        except OSError:
            pass
        self.proc.wait()
        self.proc = None
        if self.rpc_path.parent != self.run_dir.resolve():
            for leftover in (self.rpc_path, self.rpc_path.parent):
                try:
                    os.unlink(leftover) if leftover is self.rpc_path else os.rmdir(leftover)
                except OSError:
                    pass


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
