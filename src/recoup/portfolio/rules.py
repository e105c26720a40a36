"""Pure portfolio rules: buckets, the payment waterfall and identity-number checksums."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from recoup.enums import BUCKETS as BUCKETS

BALANCE_PARTS = ("penalty", "fees", "interest", "principal")
DEFAULT_WATERFALL: tuple[str, ...] = BALANCE_PARTS


def bucket_for(days_past_due: int) -> str:
    """Return the delinquency bucket: M0 current, M1 1–30 … M6 151–180, M6+ beyond."""
    if days_past_due < 0:
        raise ValueError("days past due cannot be negative")
    if days_past_due == 0:
        return "M0"
    index = (days_past_due - 1) // 30 + 1
    return BUCKETS[index] if index <= 6 else "M6+"


def bucket_rank(bucket: str) -> int:
    """Return a bucket's position (M0 = 0 … M6+ = 7) for comparisons and roll rates."""
    return BUCKETS.index(bucket)


def days_past_due_on(*, oldest_unpaid_due: date | None, as_of: date) -> int:
    """Return days past due on ``as_of`` given the oldest unpaid due date."""
    if oldest_unpaid_due is None or as_of <= oldest_unpaid_due:
        return 0
    return (as_of - oldest_unpaid_due).days


@dataclass(frozen=True, slots=True)
class Balances:
    """An account's outstanding balance by component, in minor units."""

    principal: int = 0
    interest: int = 0
    fees: int = 0
    penalty: int = 0

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fees + self.penalty


@dataclass(frozen=True, slots=True)
class Allocation:
    """How one payment was applied, and what it left."""

    applied: dict[str, int]
    unapplied: int
    remaining: Balances


def apply_waterfall(
    balances: Balances, amount: int, order: Sequence[str] = DEFAULT_WATERFALL
) -> Allocation:
    """Apply ``amount`` to the balance parts in ``order``; any excess stays unapplied."""
    if amount < 0:
        raise ValueError("a payment amount cannot be negative")
    if sorted(order) != sorted(BALANCE_PARTS):
        raise ValueError(f"a waterfall must name each of {', '.join(BALANCE_PARTS)} exactly once")
    left = amount
    remaining = {part: getattr(balances, part) for part in BALANCE_PARTS}
    applied = dict.fromkeys(BALANCE_PARTS, 0)
    for part in order:
        take = min(left, max(remaining[part], 0))
        applied[part] = take
        remaining[part] -= take
        left -= take
    return Allocation(applied=applied, unapplied=left, remaining=Balances(**remaining))


# GB 11643-1999: 18-digit resident identity number, ISO 7064 MOD 11-2 check character.
_RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_CHECK = "10X98765432"


def resident_id_check_char(first17: str) -> str:
    """Return the check character for the first 17 digits of a resident id."""
    total = sum(
        int(digit) * weight for digit, weight in zip(first17, _RESIDENT_WEIGHTS, strict=True)
    )
    return _RESIDENT_CHECK[total % 11]


def resident_id_problem(value: str) -> str | None:
    """Return why ``value`` is not a valid 18-digit resident id, or ``None`` if it is."""
    text = value.strip().upper()
    if len(text) != 18:
        return f"a resident id has 18 characters, this has {len(text)}"
    if not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        return "a resident id is 17 digits followed by a digit or X"
    try:
        date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return f"the birth date {text[6:14]} inside the resident id is not a real date"
    if resident_id_check_char(text[:17]) != text[17]:
        return "the check digit does not match (GB 11643): the number was mistyped"
    return None


def birth_date_from_resident_id(value: str) -> date:
    """Return the birth date encoded in a valid resident id."""
    text = value.strip()
    return date(int(text[6:10]), int(text[10:12]), int(text[12:14]))


# GB 32100-2015: 18-character unified social credit code, base-31 alphabet.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """Return the check character for the first 17 characters of a credit code."""
    total = sum(
        _USCC_ALPHABET.index(ch) * weight for ch, weight in zip(first17, _USCC_WEIGHTS, strict=True)
    )
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_problem(value: str) -> str | None:
    """Return why ``value`` is not a valid unified social credit code, or ``None``."""
    text = value.strip().upper()
    if len(text) != 18:
        return f"a unified social credit code has 18 characters, this has {len(text)}"
    bad = sorted({ch for ch in text if ch not in _USCC_ALPHABET})
    if bad:
        return f"characters {''.join(bad)} are not used in credit codes (no I, O, S, V, Z)"
    if uscc_check_char(text[:17]) != text[17]:
        return "the check character does not match (GB 32100): the code was mistyped"
    return None


# Statuses a payment moves an account between; the rest belong to other domains
# (promises, plans, legal…) and a payment leaves them as they are.
CURRENT = "current"
DELINQUENT = "delinquent"
SETTLED = "settled"


@dataclass(frozen=True, slots=True)
class AccountState:
    """The part of an account a payment can change: balances and delinquency."""

    balances: Balances
    overdue_amount: int
    days_past_due: int
    status: str

    @property
    def bucket(self) -> str:
        return bucket_for(self.days_past_due)


@dataclass(frozen=True, slots=True)
class PaymentEffect:
    """One payment's allocation and the account state before and after it."""

    allocation: Allocation
    before: AccountState
    after: AccountState

    @property
    def applied_total(self) -> int:
        return sum(self.allocation.applied.values())

    @property
    def changes_delinquency(self) -> bool:
        """Tell whether the payment moved the bucket or the status (a history event)."""
        return self.before.bucket != self.after.bucket or self.before.status != self.after.status


def apply_payment(
    state: AccountState,
    amount: int,
    order: Sequence[str] = DEFAULT_WATERFALL,
    *,
    revolving: bool = False,
) -> PaymentEffect:
    """Apply one payment: waterfall, overdue paid down, cure at zero overdue, settle at zero.

    Days past due count from the oldest unpaid due date, which a payment cannot move
    except by clearing everything overdue; so a partial payment keeps the days past due
    (ageing is the daily cycle's job) and a payment that brings the overdue amount to
    zero cures the account (0 days, M0, delinquent → current). A non-revolving account
    paid to a zero balance is settled; a credit card paid to zero stays open.
    """
    allocation = apply_waterfall(state.balances, amount, order)
    remaining = allocation.remaining
    applied_total = amount - allocation.unapplied
    overdue_amount = min(max(state.overdue_amount - applied_total, 0), max(remaining.total, 0))
    days_past_due = state.days_past_due
    status = state.status
    if overdue_amount == 0:
        days_past_due = 0
        if status == DELINQUENT:
            status = CURRENT
    if remaining.total <= 0 and not revolving:
        status = SETTLED
    after = AccountState(
        balances=remaining,
        overdue_amount=overdue_amount,
        days_past_due=days_past_due,
        status=status,
    )
    return PaymentEffect(allocation=allocation, before=state, after=after)


def replay_payments(
    start: AccountState,
    amounts: Sequence[int],
    order: Sequence[str] = DEFAULT_WATERFALL,
    *,
    revolving: bool = False,
) -> list[PaymentEffect]:
    """Apply payments one after another from ``start`` (already in paid-at order)."""
    effects: list[PaymentEffect] = []
    state = start
    for amount in amounts:
        effect = apply_payment(state, amount, order, revolving=revolving)
        effects.append(effect)
        state = effect.after
    return effects


def restore_balances(current: Balances, applied: Sequence[dict[str, int]]) -> Balances:
    """Return the balances before payments whose applied parts are ``applied``."""
    totals = {part: getattr(current, part) for part in BALANCE_PARTS}
    for allocation in applied:
        for part in BALANCE_PARTS:
            totals[part] += allocation.get(part, 0)
    return Balances(**totals)


# The statuses payments move an account between; any other (legal, agency, charged off,
# promised …) belongs to the domain that set it and a reversal leaves it.
REVERSED_BEFORE_PAID = "reversed_before_paid"


def reversal_time_problem(*, paid_at: datetime, reversed_at: datetime) -> str | None:
    """Say what is wrong with reversing a payment made at ``paid_at`` at ``reversed_at``.

    A payment cannot be undone before it was made: the account would age backwards.
    """
    if reversed_at >= paid_at:
        return None
    return (
        f"reversed_at {reversed_at.isoformat()} is before the payment was made "
        f"({paid_at.isoformat()}); send the time the payment was reversed, at or after its paid_at"
    )


PAYMENT_STATUSES = frozenset({"delinquent", "current", "settled"})


@dataclass(frozen=True, slots=True)
class Reversal:
    """An account's history re-lived without a reversed payment."""

    # Each later payment's effect replayed from the state the reversed one found.
    later: list[PaymentEffect]
    # The account's state today without the reversed payment.
    today: AccountState


def reverse_payment(
    today: AccountState,
    *,
    before: AccountState,
    reversed_applied: dict[str, int],
    later: Sequence[tuple[int, dict[str, int]]],
    days_since: int,
    order: Sequence[str] = DEFAULT_WATERFALL,
    revolving: bool = False,
) -> Reversal:
    """Undo one payment: the account as if its money had never come.

    ``before`` is the delinquency the reversed payment found (its balances are restored
    here: today's plus what it and the ``later`` payments applied); ``later`` are the
    payments made after it that still stand, (amount, applied parts) in paid-at order, and
    are replayed from there. An account still overdue after the replay has aged ``days_since``
    days (since the reversed payment) meanwhile. A status no payment sets is kept.
    """
    balances = restore_balances(
        today.balances, [reversed_applied, *(applied for _amount, applied in later)]
    )
    start = AccountState(
        balances=balances,
        overdue_amount=min(before.overdue_amount, balances.total),
        days_past_due=before.days_past_due,
        status=before.status,
    )
    effects = replay_payments(start, [amount for amount, _ in later], order, revolving=revolving)
    after = effects[-1].after if effects else start
    overdue = after.overdue_amount > 0 and after.days_past_due > 0
    days = after.days_past_due + max(days_since, 0) if overdue else after.days_past_due
    status = after.status if today.status in PAYMENT_STATUSES else today.status
    final = AccountState(
        balances=after.balances,
        overdue_amount=after.overdue_amount,
        days_past_due=days,
        status=status,
    )
    return Reversal(later=effects, today=final)
