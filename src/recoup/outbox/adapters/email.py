"""Email over SMTP: multipart text and HTML, a Message-ID made from the key, and a journal.

SMTP has no way to ask a server whether it already took a message, so the adapter keeps a
local journal: a line *begin KEY* written before the transaction and *accepted KEY* the
moment the server accepts it, each written straight to the file (they survive the process
being killed). After a crash, *accepted* means sent; *begin* alone means the server may or
may not have it, and the message goes to a person instead of out twice; neither means it
never left. Every copy of a message carries the same Message-ID, so a receiving system that
de-duplicates by Message-ID drops a copy a person chose to send again.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
import threading
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from recoup.db import create_owner_only
from recoup.outbox.adapters.base import (
    Accepted,
    DeliveryUnknown,
    OutgoingMessage,
    Permanent,
    Transient,
)
from recoup.outbox.rules import html_of, message_id

# Headers fold at whitespace; List-Unsubscribe has none, so a longer line keeps it readable
# rather than encoded (RFC 5322 allows 998).
_POLICY = policy.default.clone(max_line_length=200)
# SMTP replies that say the mailbox itself is wrong (RFC 3463 / 5321): the address is invalid.
_NO_MAILBOX = frozenset({550, 551, 553})
# Refusals of our connection, not of the message (STARTTLS or a login required, a login
# refused): retried, so they end as dead letters a person retries once the settings are fixed.
_OURS = frozenset({530, 534, 535, 538})


class SmtpJournal:
    """The local record of SMTP transactions begun and accepted, by message key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _write(self, line: str) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_owner_only(self.path)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(descriptor, (line + "\n").encode())
        finally:
            os.close(descriptor)

    def begin(self, key: str) -> None:
        """Record that a transaction for ``key`` is about to start."""
        with self._lock:
            self._write(f"begin {key}")

    def failed(self, key: str) -> None:
        """Record that the server refused ``key``'s message or could not be reached."""
        with self._lock:
            self._write(f"failed {key}")

    def accepted(self, key: str, reference: str) -> None:
        """Record that the server accepted ``key``'s message."""
        with self._lock:
            self._write(f"accepted {key} {reference}")

    def state(self, key: str) -> tuple[bool, str | None]:
        """Return whether ``key`` was begun and, if accepted, the server's reference."""
        if not self.path.exists():
            return False, None
        begun, reference = False, None
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                parts = line.split()
                if len(parts) >= 2 and parts[1] == key:
                    # The last word wins, except that an acceptance is never taken back.
                    begun = parts[0] == "begin"
                    if parts[0] == "accepted":
                        reference = parts[2] if len(parts) > 2 else key
        return begun, reference


class SmtpEmail:
    """Send email through one SMTP server, reusing the connection between messages."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        journal: SmtpJournal,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        domain: str | None = None,
        timeout: float = 15.0,
        name: str = "smtp",
    ) -> None:
        self.name = name
        self.host, self.port = host, port
        self.sender = sender
        self.journal = journal
        self.starttls = starttls
        self.username, self.password = username, password
        self.domain = domain or sender.rpartition("@")[2] or "recoup.invalid"
        self.timeout = timeout
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if connection.sock is not None:
            # A message is several writes; Nagle would hold the last one for the server's
            # delayed ACK (tens of milliseconds per message).
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.starttls:
            connection.starttls(context=ssl.create_default_context())
        if self.username:
            connection.login(self.username, self.password or "")
        self._connection = connection
        return connection

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """Return the MIME message: text and HTML alternatives, stable Message-ID."""
        email = EmailMessage(policy=_POLICY)
        email["From"] = message.sender or self.sender
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(localtime=False, usegmt=True)
        email["Message-ID"] = message_id(message.key, self.domain)
        if message.unsubscribe:
            email["List-Unsubscribe"] = f"<{message.unsubscribe}>"
            if message.unsubscribe.startswith("https:"):
                email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email.set_content(message.text)
        email.add_alternative(html_of(message.text), subtype="html")
        return email

    def send(self, message: OutgoingMessage) -> Accepted:
        """Send one message; a 4xx or a lost connection is transient, a 5xx permanent."""
        email = self.build(message)
        self.journal.begin(message.key)
        try:
            connection = self._connect()
            connection.send_message(email)
        except smtplib.SMTPRecipientsRefused as error:
            self._failed(message.key)
            code = next(iter(error.recipients.values()))[0]
            raise self._refusal(code) from None
        except smtplib.SMTPResponseException as error:
            self._failed(message.key)
            raise self._refusal(error.smtp_code) from None
        except (smtplib.SMTPException, OSError) as error:
            # A connection lost after DATA may hide an acceptance: the journal keeps "begin".
            self._drop()
            raise Transient(f"SMTP server unreachable: {type(error).__name__}") from None
        reference = str(email["Message-ID"])
        self.journal.accepted(message.key, reference)
        return Accepted(reference, "sent")

    def _refusal(self, code: int) -> Exception:
        if 400 <= code < 500 or code in _OURS:
            return Transient(f"SMTP server answered {code}")
        return Permanent(
            f"SMTP server refused the message: {code}", invalid_contact=code in _NO_MAILBOX
        )

    def _failed(self, key: str) -> None:
        self._drop()
        self.journal.failed(key)

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def lookup(self, message: OutgoingMessage) -> Accepted | None:
        """Read the journal: accepted, never begun, or unknown."""
        begun, reference = self.journal.state(message.key)
        if reference is not None:
            return Accepted(reference, "sent")
        if begun:
            raise DeliveryUnknown("the SMTP transaction began but its outcome was not recorded")
        return None

    def close(self) -> None:
        """Say QUIT to the server."""
        if self._connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._connection.quit()
            self._connection = None
