"""The sandbox provider (demo only): accepts every message, delivers none, answers with receipts.

It stands in for an SMS gateway or a mail server so the demo shows the whole path: the
dispatcher sends through it like through a real provider (rate limit, send token, contact log),
it answers ``accepted`` with an id made from the message's key (the same key, the same id, like
a gateway that honours idempotency keys), and the ``outbox.sandbox_receipts`` job later records
its delivery receipts through the receipt code the providers' callbacks use
(``outbox.service.record_receipt``): most delivered, some failed, some wrong numbers or
mailboxes. Nothing leaves the machine. It is never an institution's default.
"""

from __future__ import annotations

from recoup.outbox.adapters.base import Accepted, OutgoingMessage
from recoup.outbox.rules import sandbox_message_id


class SandboxProvider:
    """Accept every message of one channel; the receipts come later, from the sandbox job."""

    def __init__(self, *, channel: str) -> None:
        self.name = "sandbox"
        self.channel = channel

    def send(self, message: OutgoingMessage) -> Accepted:
        """Accept the message (nothing is sent anywhere)."""
        return Accepted(sandbox_message_id(self.channel, message.key), "accepted")

    def lookup(self, message: OutgoingMessage) -> Accepted | None:
        """The sandbox holds every message of every key: it has the message (after a crash)."""
        return Accepted(sandbox_message_id(self.channel, message.key), "accepted")

    def close(self) -> None:
        """Nothing to release."""
