"""What callers hand the portfolio services and what they get back (plain dataclasses).

Payments arrive in batches of thousands from imports, so they are light dataclasses
rather than Pydantic models; the API layer validates its own request models first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from recoup.kit.schemas import CleanText

PaymentStatus = Literal["applied", "duplicate", "rejected"]


@dataclass(frozen=True, slots=True)
class PaymentInput:
    """One payment as an integrating system reports it."""

    external_id: str
    account_external_id: str
    amount: int  # minor units (分 / cents)
    currency: str
    paid_at: datetime  # timezone-aware
    channel: str = "other"


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What became of one payment: applied, a harmless duplicate, or rejected with a reason.

    A rejection also carries a stable ``code`` (for counting rejects by kind) and the
    input ``field`` it is about, so a reject report need not parse the reason.
    """

    external_id: str
    status: PaymentStatus
    reason: str | None = None
    payment_id: int | None = None
    code: str | None = None
    field: str | None = None


ReversalStatus = Literal["reversed", "duplicate", "rejected"]


@dataclass(frozen=True, slots=True)
class ReversalInput:
    """A payment the core system reversed: the payment's external id, when and why."""

    external_id: str
    # Timezone-aware; None: now, or the payment's paid_at if that is later (a payment dated a
    # few minutes ahead by a drifting clock, reversed at once).
    reversed_at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class ReversalOutcome:
    """What became of one reversal: the payment reversed, already reversed, or rejected.

    A rejection carries a stable ``code`` (``not_found``, ``reversed_before_paid``) and the
    input ``field`` it is about, like a payment's.
    """

    external_id: str
    status: ReversalStatus
    reason: str | None = None
    payment_id: int | None = None
    code: str | None = None
    field: str | None = None


@dataclass(frozen=True, slots=True)
class BucketState:
    """An account's delinquency as of a date, read from its history."""

    account_id: int
    bucket: str
    status: str
    days_past_due: int
    balance: int
    effective_at: datetime


@dataclass(frozen=True, slots=True)
class RollRateCell:
    """Accounts (and their balance at the start) that moved from one bucket to another."""

    from_bucket: str
    to_bucket: str  # a bucket, or "settled" / "closed" / "charged_off" for accounts that left
    accounts: int
    balance: int
    # The values of the population's group columns (empty when the matrix is not split).
    group: tuple[str | None, ...] = ()


# --- API shapes of the read API (``portfolio/api.py``); PII is masked unless revealed. ---


class ContactPointRead(BaseModel):
    """A contact point with its value masked (138****5678)."""

    id: int
    kind: str
    value: str
    relation: str
    third_party: bool
    status: str


class AccountRead(BaseModel):
    """An account with its balance parts in minor units."""

    id: int
    external_id: str
    debtor_id: int
    product: str
    currency: str
    principal: int
    interest: int
    fees: int
    penalty: int
    balance: int
    minimum_due: int
    overdue_amount: int
    due_date: date | None
    days_past_due: int
    bucket: str
    status: str
    assigned_agent_id: int | None


AccountSort = Literal["priority", "score", "balance", "dpd", "id"]
SortDirection = Literal["desc", "asc"]


@dataclass(frozen=True, slots=True)
class AccountFilters:
    """What an accounts list is narrowed to and ordered by; ``None`` leaves a filter off."""

    search: str | None = None
    debtor_id: int | None = None
    bucket: str | None = None
    status: str | None = None
    # An agent's user id, or ``0`` for accounts nobody is assigned to.
    agent_id: int | None = None
    grade: str | None = None
    segment: str | None = None
    sort: AccountSort = "id"
    direction: SortDirection | None = None

    @property
    def order(self) -> SortDirection:
        """The direction to sort in: as asked, else the order added oldest first, else highest."""
        if self.direction is not None:
            return self.direction
        return "asc" if self.sort == "id" else "desc"


class AccountListItem(AccountRead):
    """An account as a list shows it: with its latest score, grade, segment, priority and agent."""

    score: float | None = None
    grade: str | None = None
    segment: str | None = None
    priority: float | None = None
    agent_username: str | None = None
    agent_name: str | None = None


class DebtorRead(BaseModel):
    """A debtor with name and id number masked (张*, 110101********1234)."""

    id: int
    external_id: str
    kind: str
    name: str
    national_id: str | None
    id_kind: str | None
    province: str | None
    city: str | None
    timezone: str
    language: str
    deceased: bool
    bankrupt: bool
    disputed: bool
    cease_contact: bool
    hardship: bool


class DebtorDetail(DebtorRead):
    """A debtor with masked contact points and the accounts the caller may see."""

    contact_points: list[ContactPointRead]
    accounts: list[AccountRead]


class RevealRequest(BaseModel):
    """Why the caller needs to see a debtor's unmasked PII (kept in the audit trail)."""

    reason: CleanText = Field(min_length=5, max_length=500)


class RevealedContactPoint(BaseModel):
    """A contact point in the clear."""

    id: int
    kind: str
    value: str
    contact_name: str | None


class DebtorRevealed(BaseModel):
    """A debtor's PII in the clear, after an audited reveal."""

    id: int
    name: str
    national_id: str | None
    employer: str | None
    contact_points: list[RevealedContactPoint]


class AccountAssignment(BaseModel):
    """Accounts to hand to one agent."""

    agent_id: int = Field(ge=1, le=2**63 - 1)
    account_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=1000
    )


class AccountAssignmentResult(BaseModel):
    """Which accounts now belong to which agent."""

    agent_id: int
    account_ids: list[int]
