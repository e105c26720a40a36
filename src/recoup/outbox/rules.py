"""Pure rules of the outbox: message states, retries, rate limits, receipts and replies.

A message is *queued* in the transaction of the decision that wants it, holding the gate's
decision. The dispatcher asks the gate again when it is due; allowed, the message is marked
*sending* with a send token (committed before the provider is called), then *sent* when the
provider accepts it, and *delivered* or *failed* by a receipt. A transient failure puts it
back to *queued* with a later ``scheduled_at``; too many, or a permanent failure, make it
*dead* (a person may retry it). A cease request, a payment or an opt-out since queueing
*cancels* it; a message that cannot leave before its expiry is *expired*.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from html import escape
from types import MappingProxyType

from recoup.contact.channels import Channel
from recoup.kit.clock import zone

# The channels the outbox sends (calls and visits are tasks, not messages).
MESSAGE_CHANNELS = frozenset({Channel.SMS, Channel.EMAIL, Channel.LETTER})


class OutboxStatus(StrEnum):
    """Where a message stands."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class CampaignStatus(StrEnum):
    """Where a campaign stands: its job is still queueing its messages, or they are all queued."""

    QUEUEING = "queueing"
    QUEUED = "queued"


# Statuses a message leaves no more (a dead one only by a person's retry).
FINAL_STATUSES = frozenset(
    {OutboxStatus.DELIVERED, OutboxStatus.FAILED, OutboxStatus.CANCELLED, OutboxStatus.EXPIRED}
)

_TRANSITIONS: Mapping[OutboxStatus, frozenset[OutboxStatus]] = MappingProxyType(
    {
        OutboxStatus.QUEUED: frozenset(
            {
                OutboxStatus.SENDING,
                OutboxStatus.QUEUED,
                OutboxStatus.CANCELLED,
                OutboxStatus.EXPIRED,
                OutboxStatus.DEAD,
            }
        ),
        # From sending: accepted, a transient failure (queued again), a permanent one, or
        # after a restart whatever the provider says happened.
        OutboxStatus.SENDING: frozenset(
            {
                OutboxStatus.SENT,
                OutboxStatus.DELIVERED,
                OutboxStatus.FAILED,
                OutboxStatus.QUEUED,
                OutboxStatus.DEAD,
            }
        ),
        OutboxStatus.SENT: frozenset({OutboxStatus.DELIVERED, OutboxStatus.FAILED}),
        OutboxStatus.DEAD: frozenset({OutboxStatus.QUEUED, OutboxStatus.CANCELLED}),
        OutboxStatus.DELIVERED: frozenset(),
        OutboxStatus.FAILED: frozenset(),
        OutboxStatus.CANCELLED: frozenset(),
        OutboxStatus.EXPIRED: frozenset(),
    }
)


class OutboxTransitionRefused(ValueError):
    """A message cannot move from its status to the one asked for."""


def transition(current: OutboxStatus, wanted: OutboxStatus) -> OutboxStatus:
    """Return ``wanted`` if a message in ``current`` may move there; refuse otherwise."""
    if wanted not in _TRANSITIONS[current]:
        raise OutboxTransitionRefused(f"the message is {current}; it cannot become {wanted}")
    return wanted


class MissedWindow(StrEnum):
    """What happens to a message the gate holds back at send time."""

    RESCHEDULE = "reschedule"
    EXPIRE = "expire"


@dataclass(frozen=True, slots=True)
class HeldBack:
    """What to do with a message the gate did not let leave now."""

    status: OutboxStatus
    scheduled_at: datetime | None


def held_back(
    *,
    next_allowed_at: datetime | None,
    expires_at: datetime,
    on_missed_window: MissedWindow,
) -> HeldBack:
    """Reschedule a held-back message to the gate's next allowed time, or expire it.

    A block no later time lifts (a cease request, an opt-out) has no next allowed time: such a
    message is cancelled by the caller before this is asked. A next time past the message's
    expiry, or an institution that expires missed messages, expires it.
    """
    if (
        on_missed_window is MissedWindow.RESCHEDULE
        and next_allowed_at is not None
        and next_allowed_at <= expires_at
    ):
        return HeldBack(OutboxStatus.QUEUED, next_allowed_at)
    return HeldBack(OutboxStatus.EXPIRED, None)


def backoff(
    attempts: int,
    *,
    base: timedelta = timedelta(seconds=30),
    cap: timedelta = timedelta(hours=2),
    rng: random.Random | None = None,
) -> timedelta:
    """Return the wait before try ``attempts + 1``: doubling from ``base``, with full jitter.

    Full jitter (a uniform wait between half and all of the doubled delay) keeps many
    messages failing together from retrying together.
    """
    ceiling = min(cap, base * (2 ** max(attempts - 1, 0)))
    fraction = (rng or random).uniform(0.5, 1.0)
    return timedelta(seconds=ceiling.total_seconds() * fraction)


@dataclass(slots=True)
class TokenBucket:
    """A provider's rate limit: ``rate`` messages a second, bursts up to ``burst``."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float, count: int = 1) -> float:
        """Take ``count`` tokens at ``now`` (seconds); return how long to wait first (0 if none)."""
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= count
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate


def idempotency_key(*parts: object) -> str:
    """Return a stable key for a message from what makes it the same message."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    return digest[:40]


def campaign_key(campaign_id: int, account_id: int) -> str:
    """Return the idempotency key of a campaign's message to one account (one each, ever)."""
    return f"campaign:{campaign_id}:{account_id}"


def add_blocked(counts: Mapping[str, int], rule_ids: Iterable[Sequence[str]]) -> dict[str, int]:
    """Add blocked contacts to counts per rule they cite (one citing two rules counts for both)."""
    added: Counter[str] = Counter(counts)
    for ids in rule_ids:
        added.update(set(ids))
    return dict(sorted(added.items()))


def message_id(key: str, domain: str) -> str:
    """Return the RFC 5322 Message-ID an email of key ``key`` always carries."""
    return f"<{key}@{domain}>"


def template_version(body: str) -> str:
    """Return the version of an approved template's text: a digest of what was approved."""
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class Transient(Exception):
    """A provider failure worth retrying (a 5xx, a timeout, an SMTP 4xx)."""


class Permanent(Exception):
    """A provider refusal retrying will not change (a 4xx, an SMTP 5xx, a bad number)."""

    def __init__(self, message: str, *, invalid_contact: bool = False) -> None:
        super().__init__(message)
        self.invalid_contact = invalid_contact


class Receipt(StrEnum):
    """What a delivery receipt says of a sent message."""

    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    INVALID_CONTACT = "invalid_contact"


# Receipt statuses of the SMS providers, read as one of ours (unknown ones are ignored).
PROVIDER_RECEIPTS: Mapping[str, Receipt] = MappingProxyType(
    {
        "queued": Receipt.SENT,
        "accepted": Receipt.SENT,
        "sending": Receipt.SENT,
        "sent": Receipt.SENT,
        "delivered": Receipt.DELIVERED,
        "read": Receipt.DELIVERED,
        "undelivered": Receipt.FAILED,
        "failed": Receipt.FAILED,
        "bounced": Receipt.INVALID_CONTACT,
        "invalid_number": Receipt.INVALID_CONTACT,
    }
)
# Twilio error codes that say the number itself is wrong (not a passing failure).
INVALID_NUMBER_CODES = frozenset({"21211", "21614", "30005", "30006", "30008"})


def read_receipt(status: str, error_code: str | None = None) -> Receipt | None:
    """Return what a provider's receipt status means, or None for one we do not track."""
    receipt = PROVIDER_RECEIPTS.get(status.strip().lower())
    if receipt is Receipt.FAILED and error_code in INVALID_NUMBER_CODES:
        return Receipt.INVALID_CONTACT
    return receipt


def receipt_status(current: OutboxStatus, receipt: Receipt) -> OutboxStatus | None:
    """Return the status a receipt moves a message to, or None when it changes nothing.

    Receipts arrive out of order and more than once: a late "sent" never undoes "delivered".
    """
    wanted = {
        Receipt.SENT: OutboxStatus.SENT,
        Receipt.DELIVERED: OutboxStatus.DELIVERED,
        Receipt.FAILED: OutboxStatus.FAILED,
        Receipt.INVALID_CONTACT: OutboxStatus.FAILED,
    }[receipt]
    if wanted == current or wanted not in _TRANSITIONS[current]:
        return None
    return wanted


# The sandbox provider (demo only): what becomes of each message, decided from its provider id
# so a message always meets the same fate. Shares in ten-thousandths, after a "sent" receipt:
# most are delivered, some fail for a while (an unreachable handset, a full mailbox) and some
# because the number or the mailbox does not exist (the contact point becomes invalid).
SANDBOX_PREFIX = "sandbox-"
SANDBOX_FATES: Mapping[str, tuple[tuple[int, str, str | None], ...]] = MappingProxyType(
    {
        "sms": ((8_800, "delivered", None), (9_500, "undelivered", "30003"),
                (10_000, "undelivered", "30006")),
        "email": ((9_200, "delivered", None), (9_600, "failed", "452"),
                  (10_000, "bounced", "550")),
    }
)  # fmt: skip
# How long after a message was sent the sandbox posts its final receipt.
SANDBOX_RECEIPT_DELAY = timedelta(seconds=20)


def sandbox_message_id(channel: str, key: str) -> str:
    """Return the sandbox provider's id of a message (the same key, the same id)."""
    digest = hashlib.sha256(f"{channel}:{key}".encode()).hexdigest()[:24]
    return f"{SANDBOX_PREFIX}{channel}-{digest}"


def sandbox_fate(provider_message_id: str, channel: str) -> tuple[str, str | None]:
    """Return the final receipt (status, error code) the sandbox gives a message."""
    fates = SANDBOX_FATES.get(channel, SANDBOX_FATES["sms"])
    draw = int(hashlib.sha256(provider_message_id.encode()).hexdigest()[:8], 16) % 10_000
    for upper, status, code in fates:
        if draw < upper:
            return status, code
    return fates[-1][1], fates[-1][2]


# A validation notice (Reg F, 12 CFR 1006.34): the consumer is assumed to receive it five days
# after it is sent, not counting legal public holidays, Saturdays and Sundays (1006.34(b)(5)),
# and may dispute the debt until 30 days after that (the end of the validation period).
RECEIPT_WORKING_DAYS = 5
VALIDATION_PERIOD_DAYS = 30


def validation_period_end(sent_on: date, *, is_working_day: Callable[[date], bool]) -> date:
    """Return the last day a consumer may dispute a debt whose validation notice is sent on
    ``sent_on``: five working days for it to arrive, then 30 days."""
    received, counted = sent_on, 0
    while counted < RECEIPT_WORKING_DAYS:
        received += timedelta(days=1)
        if is_working_day(received):
            counted += 1
    return received + timedelta(days=VALIDATION_PERIOD_DAYS)


def itemization_date(
    *, charged_off_on: date | None, due_date: date | None, opened_on: date | None, today: date
) -> date:
    """Return the date a validation notice itemizes the debt from (1006.34(b)(3) offers the last
    statement, charge-off, last payment, transaction or judgment date): the charge-off date when
    the account was charged off, else its last due date (the last statement's), else the day it
    was opened (the transaction), else today."""
    for candidate in (charged_off_on, due_date, opened_on):
        if candidate is not None and candidate <= today:
            return candidate
    return today


def written_date(day: date, language: str) -> str:
    """Return a date as a letter writes it: "March 3, 2025" or "2025年3月3日"."""
    if language == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day:%B} {day.day}, {day.year}"


# Replies that withdraw consent to texts: English keywords carriers honour (TCPA) and the
# Chinese 退订 / TD that CN senders print in every text.
_STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "退订", "td"}
)
_PUNCTUATION = re.compile(r"[\s\W_]+", re.UNICODE)


def is_opt_out_reply(text: str) -> bool:
    """Tell whether an inbound text asks to stop messages ("STOP", "退订", "TD", "stop.")."""
    normal = unicodedata.normalize("NFKC", text).strip().casefold()
    word = _PUNCTUATION.sub("", normal)
    return word in _STOP_WORDS


@dataclass(frozen=True, slots=True)
class QuietPeriod:
    """An institution's own hours without messages (stricter than the pack), in local time."""

    start: time
    end: time

    def holds(self, local: datetime) -> bool:
        """Tell whether a local moment falls in the quiet period (which may cross midnight)."""
        moment = local.time()
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def ends_after(self, local: datetime) -> datetime:
        """Return the local moment the quiet period holding ``local`` ends."""
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end > local else end + timedelta(days=1)


def quiet_period(start: str | None, end: str | None, channel: Channel) -> QuietPeriod | None:
    """Return an institution's quiet hours (``HH:MM`` to ``HH:MM``) for a channel: none for a
    letter, whose release is a print run (it reaches the debtor by post, days later), none when
    the institution has none."""
    if start is None or end is None or channel is Channel.LETTER:
        return None
    return QuietPeriod(time.fromisoformat(start), time.fromisoformat(end))


def quiet_end(
    quiet: QuietPeriod | None, *, at: datetime, timezones: Sequence[str], institution_zone: str
) -> datetime | None:
    """Return when the quiet hours holding a message sent at ``at`` end, read in the zone the
    dispatcher reads them in (the debtor's first, else the institution's); None when they do
    not hold."""
    if quiet is None:
        return None
    local = at.astimezone(zone(timezones[0] if timezones else institution_zone))
    if not quiet.holds(local):
        return None
    return quiet.ends_after(local).astimezone(at.tzinfo)


def html_of(text: str) -> str:
    """Return an email's HTML part for a plain-text body (escaped, paragraphs kept)."""
    paragraphs = [part.strip() for part in text.split("\n\n") if part.strip()]
    body = "".join(f"<p>{escape(part).replace(chr(10), '<br>')}</p>" for part in paragraphs)
    return f'<!doctype html><html><body style="font-family:sans-serif">{body}</body></html>'


def gateway_signature(secret: str, body: bytes) -> str:
    """Return the signature the generic gateway puts on a callback: hex HMAC-SHA256 of the body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def twilio_signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """Return Twilio's X-Twilio-Signature of a form POST: base64 HMAC-SHA1 of the URL followed
    by each parameter's name and value, sorted by name."""
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_matches(expected: str, given: str | None) -> bool:
    """Compare signatures in constant time."""
    return given is not None and hmac.compare_digest(expected, given.strip())


def message_channel_of(value: str | None) -> Channel | None:
    """Return the message channel a plan names, or None for one the outbox does not send."""
    try:
        channel = Channel(value or "")
    except ValueError:
        return None
    return channel if channel in MESSAGE_CHANNELS else None


class NotQueued(StrEnum):
    """Why a message a plan asked for was not queued (counted, never silently dropped)."""

    CHANNEL_NOT_SENT = "channel_not_sent"
    CHANNEL_NOT_ENABLED = "channel_not_enabled"
    NO_TEMPLATE = "no_template"
    TEMPLATE_NOT_APPROVED = "template_not_approved"
    NO_CONTACT_POINT = "no_contact_point"
    RENDER_FAILED = "render_failed"
    TIME_BARRED_THREAT = "time_barred_threat"


def choose_template(
    channel_value: str | None,
    template_name: str | None,
    *,
    enabled: Collection[str],
    approved: Container[tuple[str, str]],
    campaign_channels: Collection[str] | None = None,
) -> Channel | NotQueued:
    """Return the message channel a planned send goes out on, or why it is not queued.

    Decided before the send's contact point is looked up. ``enabled`` are the institution's
    enabled message channels, ``approved`` the (name, channel) of its approved templates; the
    send is rendered from the template ``(template_name, channel)``. A campaign sends its one
    template on that template's channel (``campaign_channels``): the plan's template name does
    not count then. Checked in this order: a channel the outbox sends, enabled, then a template
    named and approved.
    """
    channel = message_channel_of(channel_value)
    if channel is None:
        return NotQueued.CHANNEL_NOT_SENT
    if channel.value not in enabled:
        return NotQueued.CHANNEL_NOT_ENABLED
    if campaign_channels is not None:
        return channel if channel.value in campaign_channels else NotQueued.TEMPLATE_NOT_APPROVED
    if not template_name:
        return NotQueued.NO_TEMPLATE
    if (template_name, channel.value) not in approved:
        return NotQueued.TEMPLATE_NOT_APPROVED
    return channel
