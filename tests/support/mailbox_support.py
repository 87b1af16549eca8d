"""An SMTP server's mailbox for tests (an aiosmtpd handler), and a free loopback port."""

import email

from firmware.telephony.front import free_port  # noqa: F401 (tests import it from here too)


class Inbox:
    """An aiosmtpd handler that keeps what it receives, or misbehaves on request."""

    def __init__(self):
        self.messages = []
        self.mode = "accept"        # "refuse" (550), "later" (451), "drop" (hang up at DATA)
        self.drops = 0

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
        return "250 OK queued"
