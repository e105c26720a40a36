"""What every channel adapter does: send a message once, and say later whether it did.

An adapter sends one message under its idempotency key and returns the provider's id, or
raises ``Transient`` (worth retrying) or ``Permanent`` (not). After a crash the dispatcher
asks ``lookup`` whether the provider already has a message of that key: ``Accepted`` (it
does), None (it never got it, so sending again is safe) or ``DeliveryUnknown`` (it cannot
tell; the message goes to a person rather than out twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from recoup.outbox.rules import Permanent, Transient

__all__ = [
    "Accepted",
    "Adapter",
    "DeliveryUnknown",
    "OutgoingMessage",
    "Permanent",
    "Transient",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingMessage:
    """One message as a provider needs it."""

    key: str
    to: str
    text: str
    subject: str | None = None
    sender: str | None = None
    # Where the provider posts delivery receipts for this message.
    status_callback: str | None = None
    # A mailto: or https: address that stops messages (US-MEDIUM), for the email header.
    unsubscribe: str | None = None
    # When the first try began (bounds a provider search after a crash).
    sending_since: datetime | None = None
    # Tries made before this one: one of them may have reached a provider whose answer was
    # lost, so an adapter without an idempotency key looks before it sends again.
    earlier_tries: int = 0


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message: its id there and the status it gave."""

    provider_message_id: str
    status: str = "sent"


class DeliveryUnknown(Exception):
    """Whether the provider took a message cannot be told (it is not sent again blindly)."""


class Adapter(Protocol):
    """A way out: SMTP, an SMS gateway, a local sink."""

    name: str

    def send(self, message: OutgoingMessage) -> Accepted:
        """Hand one message to the provider."""
        ...

    def lookup(self, message: OutgoingMessage) -> Accepted | None:
        """Return what the provider has under the message's key (after a crash)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
