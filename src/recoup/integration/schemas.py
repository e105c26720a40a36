"""Inbound API models: payments (one or many), per-item results, and the one-or-many body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from recoup.enums import PaymentChannel
from recoup.kit.schemas import Moment, RowIdField

MAX_ITEMS = 1_000
EXTERNAL_ID = r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$"
AMOUNT = r"^[0-9]{1,15}(\.[0-9]{1,4})?$"
# A reversal's reason is kept in payments.reversal_reason (String(255)).
REASON_LENGTH = 255


class PaymentIn(BaseModel):
    """One payment as the accounting or core banking system reports it."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(
        pattern=EXTERNAL_ID,
        description="The sender's id of the payment: sending it again is a harmless duplicate",
        examples=["PAY-2026-000123"],
    )
    account_external_id: str | None = Field(
        default=None, pattern=EXTERNAL_ID, description="The account, by the lender's id"
    )
    account_id: RowIdField | None = Field(
        default=None, description="The account, by Recoup's id (instead of account_external_id)"
    )
    amount: str = Field(
        pattern=AMOUNT,
        description="A decimal string in major units, e.g. 1500.00 (never a float)",
        examples=["1500.00"],
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["CNY"])
    paid_at: Moment = Field(description="When the money was paid, with its offset")
    channel: str = Field(
        default=PaymentChannel.other.value,
        description="How it was paid",
        json_schema_extra={"enum": [channel.value for channel in PaymentChannel]},
    )


PAYMENT_EXAMPLE = {
    "external_id": "PAY-2026-000123",
    "account_external_id": "LN-0001",
    "amount": "1500.00",
    "currency": "CNY",
    "paid_at": "2026-12-06T10:15:00+08:00",
    "channel": "bank_transfer",
}


def one_or_many(item: type[BaseModel], example: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """Return a schema hook documenting a body that is one ``item`` or a list of them."""

    def rewrite(schema: dict[str, Any]) -> None:
        single = item.model_json_schema()
        schema.clear()
        schema.update(
            {
                "title": f"{item.__name__} or a list of them",
                "oneOf": [single, {"type": "array", "items": single, "maxItems": MAX_ITEMS}],
                "examples": [example, [example]],
            }
        )

    return rewrite


class PaymentsBody(RootModel[dict[str, Any] | list[dict[str, Any]]]):
    """One payment or a list of up to 1,000 (each checked on its own)."""

    model_config = ConfigDict(json_schema_extra=one_or_many(PaymentIn, PAYMENT_EXAMPLE))


class ReversalIn(BaseModel):
    """A payment the accounting or core banking system reversed (bounced, charged back, keyed
    in error): the payment by its ``external_id``, when and why."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(
        pattern=EXTERNAL_ID,
        description="The payment's external_id, as it was recorded",
        examples=["PAY-2026-000123"],
    )
    reversed_at: Moment | None = Field(
        default=None, description="When the payment was reversed, with its offset (default: now)"
    )
    reason: str = Field(
        min_length=1,
        max_length=REASON_LENGTH,
        description="Why, in a few words (kept with the payment and shown to agents)",
        examples=["cheque bounced"],
    )

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give the reason in a few words, e.g. cheque bounced")
        return value.strip()


REVERSAL_EXAMPLE = {
    "external_id": "PAY-2026-000123",
    "reversed_at": "2026-12-07T09:30:00+08:00",
    "reason": "cheque bounced",
}


class ReversalsBody(RootModel[dict[str, Any] | list[dict[str, Any]]]):
    """One reversal or a list of up to 1,000 (each checked on its own)."""

    model_config = ConfigDict(json_schema_extra=one_or_many(ReversalIn, REVERSAL_EXAMPLE))


class ItemError(BaseModel):
    """What is wrong with one field of one item."""

    field: str
    message: str
    code: str | None = None


class ItemResult(BaseModel):
    """What became of one item of a request: its index in the list, its status, its id."""

    index: int
    external_id: str | None
    status: Literal[
        "applied",
        "duplicate",
        "accepted",
        "created",
        "updated",
        "unchanged",
        "reversed",
        "rejected",
    ]
    id: int | None = None
    errors: list[ItemError] = Field(default_factory=list)


class BatchResult(BaseModel):
    """Per-item results of a list, in the list's order, and counts by status."""

    results: list[ItemResult]
    counts: dict[str, int]
    import_run_id: int | None = Field(
        default=None, description="The import run recording an accounts upsert"
    )


class PaymentResult(BaseModel):
    """One payment's result."""

    external_id: str
    status: Literal["applied", "duplicate"]
    payment_id: int


class ReversalResult(BaseModel):
    """One reversal's result: the payment reversed now, or reversed before (``duplicate``)."""

    external_id: str
    status: Literal["reversed", "duplicate"]
    payment_id: int


class ContactPointChange(BaseModel):
    """A contact point the CRM has for a debtor, replacing the old one by default."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mobile", "landline", "email", "address", "other"] = Field(examples=["mobile"])
    value: str = Field(min_length=1, max_length=500, examples=["13912345678"])
    relation: str = Field(default="self", max_length=24, examples=["self"])
    contact_name: str | None = Field(default=None, max_length=128)
    external_id: str | None = Field(
        default=None, pattern=EXTERNAL_ID, description="The CRM's id of this contact point"
    )
    replaces_contact_point_id: RowIdField | None = Field(
        default=None,
        description="The point it replaces; by default every own point of the same kind",
    )
    supersede_same_kind: bool = Field(
        default=True,
        description="Without replaces_contact_point_id: supersede the debtor's own points of "
        "this kind (false adds a second number)",
    )
    verified: bool = Field(default=False, description="The CRM has verified it with the debtor")


class ContactPointChanged(BaseModel):
    """The contact point now in use (masked) and the ids it superseded."""

    id: int
    kind: str
    value: str
    status: str
    created: bool
    superseded_ids: list[int]


class RiskScoreIn(BaseModel):
    """A score a risk system gave an account."""

    model_config = ConfigDict(extra="forbid")

    account_external_id: str | None = Field(default=None, pattern=EXTERNAL_ID)
    account_id: RowIdField | None = None
    source: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$",
        description="Who scored it, as a code (e.g. bureau, fraud-engine)",
        examples=["bureau"],
    )
    score: str = Field(
        pattern=r"^-?[0-9]{1,8}(\.[0-9]{1,4})?$",
        description="The score as a decimal string (e.g. 0.1834 or 612)",
        examples=["612"],
    )
    grade: str | None = Field(default=None, max_length=16, examples=["B2"])
    reason_codes: list[str] = Field(default_factory=list, max_length=10, examples=[["R01"]])
    scored_at: Moment = Field(description="When the source scored the account")


RISK_SCORE_EXAMPLE = {
    "account_external_id": "LN-0001",
    "source": "bureau",
    "score": "612",
    "grade": "B2",
    "reason_codes": ["R01", "R17"],
    "scored_at": "2026-12-06T02:00:00+08:00",
}


class RiskScoresBody(RootModel[dict[str, Any] | list[dict[str, Any]]]):
    """One score or a list of up to 1,000 (each checked on its own)."""

    model_config = ConfigDict(json_schema_extra=one_or_many(RiskScoreIn, RISK_SCORE_EXAMPLE))


class AccountIn(BaseModel):
    """An account and its balances, with the columns of an accounts file (as strings)."""

    model_config = ConfigDict(extra="allow")

    external_id: str = Field(pattern=EXTERNAL_ID, examples=["LN-0001"])
    debtor_external_id: str = Field(pattern=EXTERNAL_ID, examples=["D-0001"])
    product: str = Field(examples=["consumer_loan"])
    principal: str = Field(description="Decimal string in major units", examples=["12000.00"])
    days_past_due: int | str = Field(examples=[45])


ACCOUNT_EXAMPLE = {
    "external_id": "LN-0001",
    "debtor_external_id": "D-0001",
    "product": "consumer_loan",
    "currency": "CNY",
    "principal": "12000.00",
    "interest": "350.00",
    "fees": "50.00",
    "penalty": "0",
    "overdue_amount": "1200.00",
    "due_date": "2026-10-14",
    "days_past_due": 45,
}


class AccountsBody(RootModel[dict[str, Any] | list[dict[str, Any]]]):
    """One account or a list of up to 1,000, each with the columns of an accounts file."""

    model_config = ConfigDict(json_schema_extra=one_or_many(AccountIn, ACCOUNT_EXAMPLE))


FINERACT_EVENT_EXAMPLE: dict[str, Any] = {
    "id": 121,
    "source": "fineract-prod",
    "type": "LoanDelinquencyRangeChangeBusinessEvent",
    "category": "LOAN",
    "createdAt": "2024-07-16T01:02:03.000",
    "businessDate": "2024-07-16",
    "tenantId": "default",
    "idempotencyKey": "4b7c1f0e-3c1d-4c55-9a4a-0f6f1c2d9e21",
    "dataschema": "org.apache.fineract.avro.loan.v1.LoanAccountDelinquencyRangeDataV1",
    "data": {
        "loanId": 1,
        "loanAccountNo": "000000001",
        "loanExternalId": None,
        "delinquencyRange": {"id": 2, "classification": "RANGE_30", "minimumAgeDays": 30},
        "charges": [],
        "currency": {"code": "USD", "decimalPlaces": 2},
        "amount": {"totalAmount": 1250.0, "principalAmount": 1100.0, "interestAmount": 150.0},
        "delinquentDate": "2024-06-11",
    },
}


class FineractEventIn(BaseModel):
    """A Fineract external event (Avro ``MessageV1``) with ``data``, its payload, as JSON."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"examples": [FINERACT_EVENT_EXAMPLE]}
    )

    id: int | None = Field(default=None, description="Fineract's message id (per source)")
    source: str | None = Field(default=None, max_length=200)
    type: str = Field(max_length=200, description="e.g. LoanDelinquencyRangeChangeBusinessEvent")
    category: str | None = Field(default=None, max_length=64)
    createdAt: str | None = Field(default=None, max_length=64)
    businessDate: str | None = Field(default=None, max_length=32)
    tenantId: str | None = Field(default=None, max_length=200)
    idempotencyKey: str | None = Field(
        default=None, max_length=200, description="What Recoup de-duplicates the event by"
    )
    dataschema: str = Field(
        max_length=300, description="The payload's schema, e.g. …loan.v1.LoanTransactionDataV1"
    )
    data: dict[str, Any] = Field(description="The payload (the Avro record) as a JSON object")


class FineractEventResult(BaseModel):
    """What Recoup did with a Fineract event."""

    key: str = Field(description="The event's idempotency key (or source:id)")
    type: str
    status: Literal["applied", "ignored", "duplicate"]
    account_external_id: str | None = None
    detail: str = ""
