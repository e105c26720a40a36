"""Payment plans, pure: the schedule of instalments, the limits on a settlement, and status.

All arithmetic is in integer minor units of the account's currency. A plan settles ``balance``
for an agreed total of ``balance - discount``; an optional down payment falls due on the start
date and the rest is split into ``instalments`` equal parts, one per period, the last absorbing
the rounding — so the instalments always sum to the agreed total and none is zero or negative.

Monthly instalments fall on the start date's day of the month, or on the month's last day when
it is shorter (31 January, 28 February, 31 March). A discount beyond the institution's limit is
refused; one above its approval threshold is allowed but needs a manager's approval (four eyes).

Status follows the payments through a waterfall, oldest instalment first: ``completed`` once
the agreed total is paid; ``broken`` when an instalment is still not fully paid ``grace_days``
after it fell due; ``late`` when one is past due but within the grace period; else ``on_track``.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

BASIS_POINTS = 10_000
DEFAULT_GRACE_DAYS = 5


class Frequency(StrEnum):
    """How often instalments fall due."""

    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"


class PlanStatus(StrEnum):
    """What the payments so far make of a plan."""

    ON_TRACK = "on_track"
    LATE = "late"
    BROKEN = "broken"
    COMPLETED = "completed"


class PlanRefused(ValueError):
    """The terms cannot make a plan; the message says which term and what would do."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """An institution's bounds on plans."""

    max_instalments: int = 24
    max_discount_bp: int = 3_000
    approval_above_bp: int = 1_000
    grace_days: int = DEFAULT_GRACE_DAYS


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """What the agent and debtor agreed."""

    balance: int
    instalments: int
    start: date
    frequency: Frequency = Frequency.MONTHLY
    discount: int = 0
    down_payment: int = 0


@dataclass(frozen=True, slots=True)
class Instalment:
    """One amount due on one date; number 0 is the down payment."""

    number: int
    due_on: date
    amount: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """A plan's instalments, its agreed total, and whether a manager must approve it."""

    instalments: tuple[Instalment, ...]
    total: int
    discount: int
    needs_approval: bool

    @property
    def discount_bp(self) -> int:
        return _basis_points(self.discount, self.total + self.discount)


def _basis_points(part: int, whole: int) -> int:
    """``part`` as basis points of ``whole``, rounded up (a limit is never crossed by rounding)."""
    return -(-part * BASIS_POINTS // whole) if whole > 0 else 0


def add_months(start: date, months: int) -> date:
    """The same day of the month ``months`` later, or that month's last day if it is shorter."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_date(start: date, frequency: Frequency, period: int) -> date:
    """The date of the ``period``-th regular instalment (0 is the start date)."""
    if frequency is Frequency.WEEKLY:
        return start + timedelta(weeks=period)
    if frequency is Frequency.FORTNIGHTLY:
        return start + timedelta(weeks=2 * period)
    return add_months(start, period)


def schedule(terms: PlanTerms, limits: PlanLimits = PlanLimits()) -> Schedule:
    """Check the terms against the limits and lay out the instalments."""
    if terms.balance <= 0:
        raise PlanRefused("balance", "Nothing is owed on this account, so no plan is needed.")
    if not 1 <= terms.instalments <= limits.max_instalments:
        raise PlanRefused(
            "instalments",
            f"A plan has 1 to {limits.max_instalments} instalments, not {terms.instalments}.",
        )
    if terms.discount < 0 or terms.discount >= terms.balance:
        raise PlanRefused(
            "discount", "The discount must be zero or more and less than the balance."
        )
    discount_bp = _basis_points(terms.discount, terms.balance)
    if discount_bp > limits.max_discount_bp:
        raise PlanRefused(
            "discount",
            f"A discount of {discount_bp / 100:.2f}% is over this institution's limit of "
            f"{limits.max_discount_bp / 100:.2f}%.",
        )
    total = terms.balance - terms.discount
    if terms.down_payment < 0 or terms.down_payment >= total:
        raise PlanRefused(
            "down_payment",
            "The down payment must be zero or more and less than the agreed total; "
            "for one payment of everything, take a promise to pay instead.",
        )
    rest = total - terms.down_payment
    if rest < terms.instalments:
        raise PlanRefused(
            "instalments",
            f"{rest} minor units cannot be split into {terms.instalments} instalments; "
            "choose fewer instalments.",
        )
    regular, remainder = divmod(rest, terms.instalments)
    instalments: list[Instalment] = []
    offset = 0
    if terms.down_payment:
        instalments.append(Instalment(0, terms.start, terms.down_payment))
        offset = 1
    for period in range(terms.instalments):
        amount = regular + (remainder if period == terms.instalments - 1 else 0)
        instalments.append(
            Instalment(period + 1, due_date(terms.start, terms.frequency, period + offset), amount)
        )
    return Schedule(
        instalments=tuple(instalments),
        total=total,
        discount=terms.discount,
        needs_approval=discount_bp > limits.approval_above_bp,
    )


@dataclass(frozen=True, slots=True)
class PlanPayment:
    """A payment toward the plan's account."""

    paid_on: date
    amount: int


@dataclass(frozen=True, slots=True)
class PlanStanding:
    """A plan as of one day: status, what was paid, what is overdue, and the next instalment."""

    status: PlanStatus
    paid: int
    overdue: int
    next_due: Instalment | None
    broken_on: date | None = None


def standing(
    plan: Schedule,
    payments: Iterable[PlanPayment],
    *,
    today: date,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> PlanStanding:
    """Apply the payments made up to ``today`` to the instalments, oldest first."""
    paid = sum(p.amount for p in payments if p.paid_on <= today and p.amount > 0)
    if paid >= plan.total:
        return PlanStanding(PlanStatus.COMPLETED, paid, 0, None)
    grace = timedelta(days=grace_days)
    covered = paid
    overdue = 0
    first_unpaid: Instalment | None = None
    for instalment in plan.instalments:
        short = max(instalment.amount - covered, 0)
        covered = max(covered - instalment.amount, 0)
        if short == 0:
            continue
        if first_unpaid is None:
            first_unpaid = instalment
        if instalment.due_on < today:
            overdue += short
    assert first_unpaid is not None  # paid < total, so some instalment is short
    if first_unpaid.due_on + grace < today:
        broken_on = first_unpaid.due_on + grace + timedelta(days=1)
        return PlanStanding(PlanStatus.BROKEN, paid, overdue, first_unpaid, broken_on)
    status = PlanStatus.LATE if first_unpaid.due_on < today else PlanStatus.ON_TRACK
    return PlanStanding(status, paid, overdue, first_unpaid)
