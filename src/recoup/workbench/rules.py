"""Promise-to-pay decisions, pure: whether a promise may be made, and what became of it.

A new promise is refused when its amount is not positive or exceeds what the account owes,
its currency is not the account's, its due date is in the past or beyond the institution's
horizon (``promise_horizon_days``, default 30), the account is closed or paid off, or the
account already has a pending promise (cancel that one first).

Reconciliation counts the payments on the account from the day the promise was made to the
due date plus the grace days (``promise_grace_days``, default 3): a promise is ``kept`` as
soon as they reach its amount; once the grace period has passed it is ``partially_kept`` if
anything was paid and ``broken`` otherwise. Two broken promises in a row escalate the account.

Reconciliation runs as of a date that is not after the institution's today (read a few minutes
ahead, ``kit.clock.CLOCK_SKEW``, for clocks that differ between systems): a later date would
judge promises by days that have not happened yet and break them for good. Nor is it before
the institution's first promise: there is nothing to reconcile before the data begins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from recoup.enums import FINISHED_STATUSES

DEFAULT_HORIZON_DAYS = 30
DEFAULT_GRACE_DAYS = 3
ESCALATE_AFTER_BROKEN = 2
MAX_SETTING_DAYS = 366

CHANNELS = ("call", "sms", "email", "visit", "letter", "web")
PENDING = "pending"
KEPT = "kept"
PARTIALLY_KEPT = "partially_kept"
BROKEN = "broken"
CANCELLED = "cancelled"
RESOLVED = (KEPT, PARTIALLY_KEPT, BROKEN)


@dataclass(frozen=True, slots=True)
class PromiseSettings:
    """How far ahead a promise may fall due, and how late a payment still counts."""

    horizon_days: int = DEFAULT_HORIZON_DAYS
    grace_days: int = DEFAULT_GRACE_DAYS


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What a promise is checked against: the account's state today."""

    status: str
    balance: int
    currency: str
    has_pending_promise: bool


@dataclass(frozen=True, slots=True)
class PromiseTerms:
    """The terms a debtor offers: an amount in minor units, a currency, a due date, a channel."""

    amount: int
    currency: str
    due_date: date
    channel: str


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a promise cannot be recorded: the field, a stable code, and a message with the fix."""

    field: str
    code: str
    message: str


def promise_problems(
    terms: PromiseTerms, account: AccountFacts, *, today: date, settings: PromiseSettings
) -> list[Problem]:
    """Return every reason the promise cannot be recorded (empty when it can)."""
    problems: list[Problem] = []
    if account.status in FINISHED_STATUSES:
        problems.append(
            Problem(
                "account_id",
                "account_finished",
                f"the account is {account.status}: it owes nothing to promise; "
                "record promises on open accounts only",
            )
        )
    if terms.channel not in CHANNELS:
        problems.append(
            Problem(
                "channel",
                "unknown_channel",
                f"channel {terms.channel!r} is not known: use one of {', '.join(CHANNELS)}",
            )
        )
    if terms.currency != account.currency:
        problems.append(
            Problem(
                "currency",
                "currency_mismatch",
                f"the promise is in {terms.currency} but the account is in {account.currency}: "
                f"promise in {account.currency}",
            )
        )
    if terms.amount <= 0:
        problems.append(Problem("amount", "amount_not_positive", "amount must be more than zero"))
    elif terms.amount > account.balance:
        problems.append(
            Problem(
                "amount",
                "amount_over_balance",
                f"amount {terms.amount} is more than the outstanding balance {account.balance} "
                "(minor units): promise at most the balance",
            )
        )
    if terms.due_date < today:
        problems.append(
            Problem(
                "due_date",
                "due_in_past",
                f"due date {terms.due_date.isoformat()} is in the past: choose "
                f"{today.isoformat()} or later",
            )
        )
    elif terms.due_date > today + timedelta(days=settings.horizon_days):
        latest = today + timedelta(days=settings.horizon_days)
        problems.append(
            Problem(
                "due_date",
                "due_beyond_horizon",
                f"due date {terms.due_date.isoformat()} is more than {settings.horizon_days} "
                f"days ahead: choose {latest.isoformat()} or earlier, or offer a payment plan",
            )
        )
    if account.has_pending_promise:
        problems.append(
            Problem(
                "account_id",
                "pending_exists",
                "the account already has a pending promise: cancel it before recording a new one",
            )
        )
    return problems


def reconcile_date_problems(
    as_of: date, *, today: date, first_promised_on: date | None
) -> list[Problem]:
    """Return why reconciling as of ``as_of`` would be wrong (empty when it is sane)."""
    if as_of > today:
        return [
            Problem(
                "as_of",
                "as_of_in_future",
                f"{as_of.isoformat()} is after the institution's today ({today.isoformat()}): "
                "promises can only be judged on days that have passed",
            )
        ]
    if first_promised_on is not None and as_of < first_promised_on:
        return [
            Problem(
                "as_of",
                "as_of_before_data",
                f"{as_of.isoformat()} is before the institution's first promise "
                f"({first_promised_on.isoformat()}): there is nothing to reconcile",
            )
        ]
    return []


def payment_window(promised_on: date, due_date: date, *, grace_days: int) -> tuple[date, date]:
    """Return the first and last day (inclusive) on which a payment counts toward a promise."""
    return promised_on, due_date + timedelta(days=grace_days)


def reconcile(*, amount: int, paid: int, due_date: date, as_of: date, grace_days: int) -> str:
    """Return the status a pending promise has on ``as_of`` given what was paid in its window.

    A payment of the whole amount keeps it at once; short of that it stays pending until the
    last grace day has passed.
    """
    if paid >= amount:
        return KEPT
    if as_of <= due_date + timedelta(days=grace_days):
        return PENDING
    return PARTIALLY_KEPT if paid > 0 else BROKEN


def consecutive_broken(statuses: Iterable[str]) -> int:
    """Return how many resolved promises in a row, counting back from the latest, were broken.

    ``statuses`` run oldest first; pending and cancelled promises are not resolved and skipped.
    """
    run = 0
    for status in statuses:
        if status == BROKEN:
            run += 1
        elif status in (KEPT, PARTIALLY_KEPT):
            run = 0
    return run


def should_escalate(statuses: Sequence[str]) -> bool:
    """Tell whether an account's promise history (oldest first) calls for escalation."""
    return consecutive_broken(statuses) >= ESCALATE_AFTER_BROKEN
