"""Apache Fineract → Recoup: loans, clients, repayments and external events, mapped (pure).

The shapes are Fineract's own (``docs/integrations.md`` names the source files):

- a loan as ``GET /v1/loans/{loanId}?associations=repaymentSchedule,transactions`` answers it
  (``LoansApiResourceSwagger.GetLoansLoanIdResponse``), or as a loan event carries it
  (Avro ``LoanAccountDataV1``): ``id``, ``accountNo``, ``externalId``, ``clientId``,
  ``clientName``, ``currency``, ``status``, ``summary`` (outstanding and overdue amounts),
  ``delinquent`` (``CollectionDataV1``: ``pastDueDays``, ``delinquentAmount`` …),
  ``timeline`` and ``transactions``;
- a loan transaction (``GetLoansLoanIdTransactions`` / Avro ``LoanTransactionDataV1``):
  ``id``, ``loanId``, ``externalLoanId``, ``type`` (``repayment`` …), ``date``, ``amount``,
  ``currency``, ``paymentDetailData``, ``manuallyReversed``;
- a transaction adjustment (Avro ``LoanTransactionAdjustmentDataV1``, the payload of
  ``LoanAdjustTransactionBusinessEvent``): ``transactionToAdjust`` (the transaction reversed:
  ``reversed``/``manuallyReversed``, ``reversedOnDate``) and ``newTransactionDetail`` (its
  replacement, absent when it was undone);
- a delinquency change (Avro ``LoanAccountDelinquencyRangeDataV1``, the payload of
  ``LoanDelinquencyRangeChangeBusinessEvent``): ``loanId``, ``loanExternalId``,
  ``delinquentDate``, ``amount`` (overdue totals), ``currency``, ``delinquencyRange``;
- an external event (Avro ``MessageV1``) with ``data`` given as the payload's JSON.

Dates come as ISO text (``2024-07-01``, events) or as Fineract's REST arrays
(``[2024, 7, 1]``); amounts as JSON numbers or decimal strings. What cannot be mapped raises
``FineractMapError`` naming the field (``summary.principalOutstanding``) and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from recoup.enums import AccountStatus, PaymentChannel, Product

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$")
MAX_AMOUNT = Decimal(10) ** 13
LOAN_PREFIX = "fineract:loan:"
CLIENT_PREFIX = "fineract:client:"
TRANSACTION_PREFIX = "fineract:txn:"

# The Avro schemas whose payloads Recoup reads, by the last part of ``dataschema``.
LOAN_SCHEMA = "LoanAccountDataV1"
DELINQUENCY_SCHEMA = "LoanAccountDelinquencyRangeDataV1"
TRANSACTION_SCHEMA = "LoanTransactionDataV1"
# ``LoanAdjustTransactionBusinessEvent``: a transaction undone (``transactionToAdjust``,
# reversed) and, when it was changed rather than undone, its replacement
# (``newTransactionDetail``).
ADJUSTMENT_SCHEMA = "LoanTransactionAdjustmentDataV1"
CLIENT_SCHEMA = "ClientDataV1"
# Repayment-like transaction events: money the borrower paid.
REPAYMENT_EVENTS = frozenset(
    {
        "LoanTransactionMakeRepaymentPostBusinessEvent",
        "LoanTransactionRecoveryPaymentPostBusinessEvent",
        "LoanTransactionMerchantIssuedRefundPostBusinessEvent",
    }
)

# Fineract payment type names (free text an institution sets up) → Recoup's channels.
_CHANNEL_WORDS: tuple[tuple[str, PaymentChannel], ...] = (
    ("alipay", PaymentChannel.alipay),
    ("wechat", PaymentChannel.wechat_pay),
    ("card", PaymentChannel.card),
    ("debit order", PaymentChannel.direct_debit),
    ("direct debit", PaymentChannel.direct_debit),
    ("standing", PaymentChannel.direct_debit),
    ("cash", PaymentChannel.cash),
    ("transfer", PaymentChannel.bank_transfer),
    ("bank", PaymentChannel.bank_transfer),
    ("wire", PaymentChannel.bank_transfer),
)


class FineractMapError(ValueError):
    """A Fineract payload Recoup cannot map: the field (a dotted path) and what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class LoanMapping:
    """One Fineract loan as Recoup rows: its debtor, its account and its repayments."""

    loan_id: int
    debtor: dict[str, str | None]
    account: dict[str, str | int | None]
    payments: list[dict[str, str]] = field(default_factory=list)
    # Repayments Fineract reversed (``map_reversal``): undone in Recoup if recorded there.
    reversals: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Delinquency:
    """A loan's new delinquency: days past due and the overdue amount, as of a business day."""

    account_external_id: str
    days_past_due: int
    overdue_amount: str
    currency: str
    classification: str | None


@dataclass(frozen=True, slots=True)
class Event:
    """A Fineract external event (``MessageV1``) with its payload as JSON."""

    key: str
    type: str
    schema: str
    business_date: date | None
    data: Mapping[str, Any]


# --- reading fields ------------------------------------------------------------------------


def _get(payload: Mapping[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _required(payload: Mapping[str, Any], path: str, what: str) -> Any:
    value = _get(payload, path)
    if value is None or value == "":
        raise FineractMapError(path, f"missing; Fineract sends {what}")
    return value


def _integer(payload: Mapping[str, Any], path: str, *, required: bool = False) -> int | None:
    value = _required(payload, path, "an integer") if required else _get(payload, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FineractMapError(path, f"{value!r} is not an integer")
    try:
        return int(value)
    except ValueError:
        raise FineractMapError(path, f"{value!r} is not an integer") from None


def _text(payload: Mapping[str, Any], path: str) -> str | None:
    value = _get(payload, path)
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise FineractMapError(path, f"{value!r} is not text")
    text = str(value).strip()
    return text or None


def day_of(value: Any, path: str) -> date | None:
    """Read a Fineract date: ``"2024-07-01"`` or the REST array ``[2024, 7, 1]``."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, list) and len(value) == 3 and all(isinstance(p, int) for p in value):
            return date(value[0], value[1], value[2])
        if isinstance(value, str):
            return date.fromisoformat(value[:10])
    except (ValueError, OverflowError):
        pass
    raise FineractMapError(
        path, f"{value!r} is not a date; send yyyy-MM-dd or [yyyy, M, d] (no dateFormat)"
    )


def _day(payload: Mapping[str, Any], path: str) -> date | None:
    return day_of(_get(payload, path), path)


def _amount(payload: Mapping[str, Any], path: str, places: int) -> Decimal:
    value = _get(payload, path)
    if value is None or value == "":
        return _zero(places)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FineractMapError(path, f"{value!r} is not an amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise FineractMapError(path, f"{value!r} is not an amount") from None
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise FineractMapError(path, f"{value!r} is not an amount Recoup keeps (below 10^13)")
    rounded = amount.quantize(Decimal(1).scaleb(-places))
    if rounded != amount:
        raise FineractMapError(
            path, f"{value} has more than the currency's {places} decimal places"
        )
    if rounded < 0:
        raise FineractMapError(path, f"{value} is negative; Recoup keeps amounts owed as ≥ 0")
    return rounded


def _zero(places: int) -> Decimal:
    return Decimal(0).quantize(Decimal(1).scaleb(-places))


def _major(amount: Decimal) -> str:
    return format(amount, "f")


def _currency(payload: Mapping[str, Any], path: str = "currency") -> tuple[str, int]:
    code = _required(payload, f"{path}.code", "the ISO 4217 code, e.g. USD")
    if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
        raise FineractMapError(f"{path}.code", f"{code!r} is not an ISO 4217 currency code")
    places = _integer(payload, f"{path}.decimalPlaces")
    if places is None:
        places = 2
    if not 0 <= places <= 4:
        raise FineractMapError(f"{path}.decimalPlaces", f"{places} is outside 0–4")
    return code, places


def _external(value: str, path: str) -> str:
    if not EXTERNAL_ID.fullmatch(value):
        raise FineractMapError(
            path,
            f"{value!r} cannot be a Recoup external id (letters, digits and ._:/#-, "
            "at most 64); clear it in Fineract or use the loan id",
        )
    return value


def account_external_id(loan_id: int | None, external_id: str | None, *, path: str) -> str:
    """The Recoup account of a Fineract loan: its ``externalId``, else ``fineract:loan:<id>``."""
    if external_id:
        return _external(external_id, path)
    if loan_id is None:
        raise FineractMapError(path, "missing, and so is the loan id; send either")
    return f"{LOAN_PREFIX}{loan_id}"


def debtor_external_id(client_id: int | None, external_id: str | None, *, path: str) -> str:
    """The Recoup debtor of a Fineract client: its ``externalId``, else ``fineract:client:<id>``."""
    if external_id:
        return _external(external_id, path)
    if client_id is None:
        raise FineractMapError(path, "missing, and so is the client id; send either")
    return f"{CLIENT_PREFIX}{client_id}"


# --- clients, loans, transactions ----------------------------------------------------------


def map_client(client: Mapping[str, Any]) -> dict[str, str | None]:
    """A Fineract client (``GET /v1/clients/{id}``, Avro ``ClientDataV1``) → a debtors row."""
    client_id = _integer(client, "id", required=True)
    name = _text(client, "displayName") or _text(client, "fullname")
    if name is None:
        parts = [_text(client, key) for key in ("firstname", "middlename", "lastname")]
        name = " ".join(part for part in parts if part) or None
    if name is None:
        raise FineractMapError("displayName", "missing; the client needs a name")
    legal_form = str(_get(client, "legalForm.code") or "")
    return {
        "external_id": debtor_external_id(
            client_id, _text(client, "externalId"), path="externalId"
        ),
        "name": name,
        "kind": "business" if legal_form.endswith("entity") else "individual",
    }


def _loan_client(loan: Mapping[str, Any]) -> dict[str, str | None]:
    client_id = _integer(loan, "clientId", required=True)
    name = _text(loan, "clientName") or _text(loan, "clientDisplayName")
    if name is None:
        raise FineractMapError("clientName", "missing; the loan's client needs a name")
    return {
        "external_id": debtor_external_id(
            client_id, _text(loan, "clientExternalId"), path="clientExternalId"
        ),
        "name": name,
        "kind": "individual",
    }


def _loan_status(loan: Mapping[str, Any]) -> AccountStatus | None:
    """Recoup's status for a loan Fineract has closed or written off; None while active."""
    status = _get(loan, "status")
    if not isinstance(status, Mapping):
        raise FineractMapError("status", "missing; Fineract sends the loan status object")
    if status.get("closedWrittenOff") or _get(loan, "chargedOff") is True:
        return AccountStatus.charged_off
    if status.get("closedObligationsMet") or status.get("closed") or status.get("overpaid"):
        return AccountStatus.closed
    if status.get("active"):
        return None
    code = status.get("code") or status.get("value") or "not active"
    raise FineractMapError(
        "status", f"the loan is {code}: only active, closed or written-off loans are collected"
    )


def loan_days_past_due(loan: Mapping[str, Any], *, today: date) -> int:
    """Days past due: ``delinquent.pastDueDays``, else from ``summary.overdueSinceDate``."""
    days = _integer(loan, "delinquent.pastDueDays")
    if days is None:
        days = _integer(loan, "delinquent.delinquentDays")
    if days is None:
        since = _day(loan, "summary.overdueSinceDate")
        days = (today - since).days if since else 0
    if days < 0:
        raise FineractMapError("delinquent.pastDueDays", f"{days} is negative")
    return days


def map_loan(
    loan: Mapping[str, Any],
    *,
    today: date,
    timezone: str,
    product: Product = Product.consumer_loan,
) -> LoanMapping:
    """A Fineract loan → its debtor row, its accounts row and its repayments as payments."""
    loan_id = _integer(loan, "id", required=True)
    assert loan_id is not None
    external_id = account_external_id(loan_id, _text(loan, "externalId"), path="externalId")
    currency, places = _currency(loan)
    status = _loan_status(loan)
    days = 0 if status is not None else loan_days_past_due(loan, today=today)
    overdue = _amount(loan, "delinquent.delinquentAmount", places) or _amount(
        loan, "summary.totalOverdue", places
    )
    account: dict[str, str | int | None] = {
        "external_id": external_id,
        "debtor_external_id": None,
        "product": str(product),
        "currency": currency,
        "principal": _major(_amount(loan, "summary.principalOutstanding", places)),
        "interest": _major(_amount(loan, "summary.interestOutstanding", places)),
        "fees": _major(_amount(loan, "summary.feeChargesOutstanding", places)),
        "penalty": _major(_amount(loan, "summary.penaltyChargesOutstanding", places)),
        "overdue_amount": _major(overdue if status is None else _zero(places)),
        "days_past_due": days,
    }
    if _get(loan, "summary") is None:
        raise FineractMapError("summary", "missing; ask Fineract for the loan with its summary")
    due = _day(loan, "delinquent.nextPaymentDueDate")
    if due is not None:
        account["due_date"] = due.isoformat()
    opened = _day(loan, "timeline.actualDisbursementDate")
    if opened is not None:
        account["opened_on"] = opened.isoformat()
    if status is not None:
        account["status"] = str(status)
        if status == AccountStatus.charged_off:
            written_off = _day(loan, "timeline.writeOffOnDate") or _day(
                loan, "timeline.closedOnDate"
            )
            account["charged_off_on"] = (written_off or today).isoformat()
    debtor = _loan_client(loan)
    account["debtor_external_id"] = debtor["external_id"]
    payments = []
    reversals = []
    transactions = _get(loan, "transactions") or []
    if not isinstance(transactions, list):
        raise FineractMapError("transactions", "not a list")
    for index, transaction in enumerate(transactions):
        if not isinstance(transaction, Mapping):
            raise FineractMapError(f"transactions[{index}]", "not an object")
        try:
            payment = map_transaction(transaction, timezone=timezone, account=external_id)
            reversal = map_reversal(transaction, timezone=timezone, today=today)
        except FineractMapError as error:
            raise FineractMapError(f"transactions[{index}].{error.field}", error.message) from None
        if payment is not None:
            payments.append(payment)
        if reversal is not None:
            reversals.append(reversal)
    return LoanMapping(
        loan_id=loan_id, debtor=debtor, account=account, payments=payments, reversals=reversals
    )


def _is_repayment(transaction: Mapping[str, Any]) -> bool:
    kind = transaction.get("type")
    if not isinstance(kind, Mapping):
        raise FineractMapError("type", "missing; Fineract sends the transaction type object")
    code = str(kind.get("code") or "")
    return bool(kind.get("repayment") or kind.get("recoveryRepayment")) or code.endswith(
        ("repayment", "recoveryRepayment")
    )


def payment_channel(transaction: Mapping[str, Any]) -> PaymentChannel:
    """The channel of a repayment, from its payment type's name (``other`` when unknown)."""
    name = str(_get(transaction, "paymentDetailData.paymentType.name") or "").lower()
    for word, channel in _CHANNEL_WORDS:
        if word in name:
            return channel
    return PaymentChannel.other


def map_transaction(
    transaction: Mapping[str, Any], *, timezone: str, account: str | None = None
) -> dict[str, str] | None:
    """A repayment → a payment (``external_id`` from Fineract's ids); None for anything else.

    Other transaction types (disbursements, accruals, waivers …) and reversed repayments
    are not payments and map to None. The payment is dated at the start of the business day
    in the institution's time zone (Fineract dates transactions by day).
    """
    if not _is_repayment(transaction) or is_reversed(transaction):
        return None
    transaction_id = _integer(transaction, "id", required=True)
    currency, places = _currency(transaction)
    amount = _amount(transaction, "amount", places)
    if amount <= 0:
        raise FineractMapError("amount", f"{amount} is not a payment; a repayment is above 0")
    day = _day(transaction, "date")
    if day is None:
        raise FineractMapError("date", "missing; Fineract sends the transaction's date")
    if account is None:
        account = account_external_id(
            _integer(transaction, "loanId"),
            _text(transaction, "externalLoanId"),
            path="externalLoanId",
        )
    paid_at = datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(timezone))
    return {
        "external_id": _payment_external_id(transaction, transaction_id),
        "account_external_id": account,
        "amount": _major(amount),
        "currency": currency,
        "paid_at": paid_at.isoformat(),
        "channel": str(payment_channel(transaction)),
    }


def is_reversed(transaction: Mapping[str, Any]) -> bool:
    """Tell whether Fineract reversed (undid or adjusted) a transaction."""
    return bool(
        transaction.get("reversed")
        or transaction.get("manuallyReversed")
        or _get(transaction, "reversedOnDate")
    )


def _payment_external_id(transaction: Mapping[str, Any], transaction_id: int | None) -> str:
    """The Recoup payment of a repayment: its ``externalId``, else ``fineract:txn:<id>``."""
    own_id = _text(transaction, "externalId")
    return _external(own_id, "externalId") if own_id else f"{TRANSACTION_PREFIX}{transaction_id}"


def map_reversal(
    transaction: Mapping[str, Any], *, timezone: str, today: date, reason: str | None = None
) -> dict[str, str] | None:
    """A reversed repayment → the reversal of its payment; None for anything else.

    The payment is the one ``map_transaction`` made of the repayment (the same external id);
    it is reversed at the start of ``reversedOnDate`` in the institution's time zone, or of
    ``today`` when Fineract does not say.
    """
    if not _is_repayment(transaction) or not is_reversed(transaction):
        return None
    transaction_id = _integer(transaction, "id", required=True)
    day = _day(transaction, "reversedOnDate") or today
    reversed_at = datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(timezone))
    return {
        "external_id": _payment_external_id(transaction, transaction_id),
        "reversed_at": reversed_at.isoformat(),
        "reason": reason or f"repayment {transaction_id} reversed in Fineract",
    }


def map_adjustment(
    data: Mapping[str, Any], *, timezone: str, today: date
) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """``LoanTransactionAdjustmentDataV1`` → (the reversal of the adjusted repayment, the
    replacement repayment as a payment); either is None when it is not a repayment."""
    adjusted = _get(data, "transactionToAdjust")
    if not isinstance(adjusted, Mapping):
        raise FineractMapError("transactionToAdjust", "missing; the adjusted transaction")
    replacement = _get(data, "newTransactionDetail")
    reason = (
        "repayment {id} undone in Fineract"
        if replacement is None
        else "repayment {id} adjusted in Fineract (replaced by transaction {new})"
    ).format(id=_get(adjusted, "id"), new=_get(replacement or {}, "id"))
    try:
        # The adjusted transaction is reversed by the adjustment even if the payload's copy
        # predates the flag.
        reversal = map_reversal(
            {**adjusted, "reversed": True}, timezone=timezone, today=today, reason=reason
        )
    except FineractMapError as error:
        raise FineractMapError(f"transactionToAdjust.{error.field}", error.message) from None
    payment = None
    if isinstance(replacement, Mapping):
        try:
            payment = map_transaction(replacement, timezone=timezone)
        except FineractMapError as error:
            raise FineractMapError(f"newTransactionDetail.{error.field}", error.message) from None
    return reversal, payment


def map_delinquency(data: Mapping[str, Any], *, business_date: date) -> Delinquency:
    """``LoanAccountDelinquencyRangeDataV1`` → the loan's days past due and overdue amount.

    Days past due count from ``delinquentDate`` to the event's business date (Fineract's
    delinquent date already includes the product's grace days); no date means not delinquent.
    """
    external_id = account_external_id(
        _integer(data, "loanId", required=True),
        _text(data, "loanExternalId"),
        path="loanExternalId",
    )
    currency, places = _currency(data)
    since = _day(data, "delinquentDate")
    days = max(0, (business_date - since).days) if since else 0
    overdue = _amount(data, "amount.totalAmount", places) if days else _zero(places)
    classification = _text(data, "delinquencyRange.classification")
    return Delinquency(external_id, days, _major(overdue), currency, classification)


def parse_event(message: Mapping[str, Any]) -> Event:
    """Read a ``MessageV1`` whose ``data`` is the payload as a JSON object."""
    kind = _required(
        message, "type", "the event type, e.g. LoanDelinquencyRangeChangeBusinessEvent"
    )
    schema = _required(message, "dataschema", "the payload's schema name")
    key = _text(message, "idempotencyKey")
    if key is None:
        key = f"{_text(message, 'source') or 'fineract'}:{_integer(message, 'id', required=True)}"
    if len(key) > 200:
        raise FineractMapError("idempotencyKey", "longer than 200 characters")
    data = _get(message, "data")
    if not isinstance(data, Mapping):
        raise FineractMapError(
            "data", "send the payload as a JSON object (the Avro record decoded), not bytes"
        )
    return Event(
        key=key,
        type=str(kind),
        schema=str(schema).rsplit(".", 1)[-1],
        business_date=_day(message, "businessDate"),
        data=data,
    )


def loans_of_dump(dump: Any) -> Sequence[Mapping[str, Any]]:
    """The loans of a JSON dump: a list of loans, or Fineract's ``{"pageItems": [...]}``."""
    loans = dump.get("pageItems") if isinstance(dump, Mapping) else dump
    if isinstance(dump, Mapping) and loans is None and "id" in dump:
        loans = [dump]
    if not isinstance(loans, list) or not all(isinstance(loan, Mapping) for loan in loans):
        raise FineractMapError(
            "pageItems", "send a list of loans or Fineract's page {'pageItems': [...]}"
        )
    return loans
