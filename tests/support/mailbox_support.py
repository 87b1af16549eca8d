"""An SMTP server's mailbox for tests (an aiosmtpd handler), a login checker, a
throwaway CA with relay certificates (the openssl command), and a free loopback port."""

import email
import ssl
import subprocess
from pathlib import Path

from aiosmtpd.smtp import AuthResult, LoginPassword

from firmware.telephony.front import free_port  # noqa: F401 (tests import it from here too)


class Inbox:
    """An aiosmtpd handler that keeps what it receives, or misbehaves on request."""

    def __init__(self):
        self.messages = []
        self.mode = "accept"        # "refuse" (550), "later" (451), "drop" (hang up at DATA)
        self.drops = 0
        self.sessions = []          # each message's session: {"tls": bool, "login": str | None}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "refuse":
            return "550 5.1.1 no such mailbox here"
        if self.mode == "later":
            return "451 4.3.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "drop":
            self.mode = "accept"
            self.drops += 1
            server.transport.close()          # gone before the reply: unknown outcome
            return "421 gone"
        self.messages.append(email.message_from_bytes(envelope.content))
        login = session.auth_data.login.decode() if session.authenticated else None
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.sessions.append({"tls": tls, "login": login})
        return "250 OK queued"


class Logins:
    """An aiosmtpd ``authenticator``: one user and password; notes each try's mechanism.
    ``later`` answers 454 (a temporary failure) instead of checking."""

    def __init__(self, user, password):
        self.user, self.password = user.encode(), password.encode()
        self.tries = []             # (mechanism, login, accepted)
        self.later = False

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if self.later:
            self.tries.append((mechanism, None, False))
            return AuthResult(success=False, handled=False,
                              message="454 4.7.0 Temporary authentication failure")
        ok = isinstance(auth_data, LoginPassword) and \
            (auth_data.login, auth_data.password) == (self.user, self.password)
        self.tries.append((mechanism, auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(folder: Path) -> dict:
    """A throwaway CA (``ca.pem``) and two relay certificates it signed: ``relay``
    for localhost and 127.0.0.1, ``other`` for smtp.example.net only. Returns paths."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=Switchboard test relay CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    out = {"ca": folder / "ca.pem"}
    for name, alt in (("relay", "DNS:localhost,IP:127.0.0.1"), ("other", "DNS:smtp.example.net")):
        (folder / f"{name}.ext").write_text(
            f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={alt.split(',')[0][4:]}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
                 "-extfile", f"{name}.ext", cwd=folder)
        out[name] = (folder / f"{name}.pem", folder / f"{name}.key")
    return out


def server_context(cert_key) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*map(str, cert_key))
    return ctx
