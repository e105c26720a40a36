"""Payment plan API models."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from recoup.kit.schemas import CleanText
from recoup.plans.rules import Frequency


class PlanCreate(BaseModel):
    """A plan to propose on an account."""

    model_config = ConfigDict(extra="forbid")

    instalments: int = Field(ge=1, le=120, description="number of regular instalments")
    start_on: date = Field(description="the first instalment's (or down payment's) due date")
    frequency: Frequency = Frequency.MONTHLY
    discount: str = Field(
        default="0",
        min_length=1,
        max_length=32,
        examples=["500.00"],
        description="Discount off the balance in the account's currency (digits and '.')",
    )
    down_payment: str = Field(
        default="0",
        min_length=1,
        max_length=32,
        examples=["1000.00"],
        description="Paid on the start date before the instalments (digits and '.')",
    )
    note: CleanText | None = Field(default=None, max_length=500)


class InstalmentRead(BaseModel):
    number: int
    due_on: date
    amount: str
    amount_minor: int


class PlanRead(BaseModel):
    """A payment plan with its schedule and how the payments stand against it."""

    id: int
    account_id: int
    debtor_id: int
    currency: str
    balance: str
    discount: str
    total: str
    total_minor: int
    down_payment: str
    frequency: Frequency
    start_on: date
    status: str
    standing: str
    paid_amount: str
    overdue_amount: str
    needs_approval: bool
    decided_by: str | None
    decided_at: datetime | None
    created_by: str
    note: str | None
    instalments: list[InstalmentRead]


class PlanReconcileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None


class PlanReconcileRead(BaseModel):
    as_of: date
    examined: int
    on_track: int
    late: int
    broken: int
    completed: int
