"""Statuses and kinds stored as strings: pure, so rules and models share them without an ORM.

Models type their columns with these; pure rules (imports, payments, gates) read them without
importing SQLAlchemy.
"""

from __future__ import annotations

from enum import StrEnum


class Product(StrEnum):
    credit_card = "credit_card"
    consumer_loan = "consumer_loan"
    cash_loan = "cash_loan"
    auto_loan = "auto_loan"
    mortgage = "mortgage"
    sme_loan = "sme_loan"
    other = "other"


class AccountStatus(StrEnum):
    current = "current"
    delinquent = "delinquent"
    promised = "promised"
    on_plan = "on_plan"
    disputed = "disputed"
    paused = "paused"
    legal = "legal"
    agency = "agency"
    charged_off = "charged_off"
    settled = "settled"
    closed = "closed"


# Delinquency buckets by days past due: M0 current, M1 1–30 … M6 151–180, M6+ beyond.
BUCKETS = ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+")

# Accounts that owe nothing more: no promise, contact rule or collection step binds them.
FINISHED_STATUSES = frozenset({AccountStatus.settled, AccountStatus.closed})


class PaymentChannel(StrEnum):
    bank_transfer = "bank_transfer"
    card = "card"
    alipay = "alipay"
    wechat_pay = "wechat_pay"
    cash = "cash"
    direct_debit = "direct_debit"
    other = "other"


class DebtorKind(StrEnum):
    individual = "individual"
    business = "business"


class IdKind(StrEnum):
    resident_id = "resident_id"  # 18-digit PRC resident identity number (GB 11643)
    uscc = "uscc"  # unified social credit code (GB 32100)
    other = "other"


class ContactKind(StrEnum):
    mobile = "mobile"
    landline = "landline"
    email = "email"
    address = "address"
    other = "other"


class Relation(StrEnum):
    self = "self"
    spouse = "spouse"
    relative = "relative"
    colleague = "colleague"
    emergency_contact = "emergency_contact"
    other = "other"


class ContactStatus(StrEnum):
    unverified = "unverified"
    valid = "valid"
    invalid = "invalid"
    wrong_party = "wrong_party"
    superseded = "superseded"


class ContactSource(StrEnum):
    core = "core"
    crm = "crm"
    agent = "agent"
    imported = "import"
    skip_trace = "skip_trace"


class ImportKind(StrEnum):
    debtors = "debtors"
    contacts = "contacts"
    accounts = "accounts"
    payments = "payments"


class ImportStatus(StrEnum):
    running = "running"
    completed = "completed"
    failed = "failed"
    # The importing process stopped without finishing (killed, machine down, Ctrl-C).
    interrupted = "interrupted"


class ScriptSituation(StrEnum):
    """The conversation a script (话术) is written for; stored on a script template."""

    first_contact = "first_contact"
    refusal_to_pay = "refusal_to_pay"
    anger_or_abuse = "anger_or_abuse"
    hardship = "hardship"
    dispute = "dispute"
    third_party = "third_party"
    wrong_number = "wrong_number"
    promise_confirmation = "promise_confirmation"
    plan_offer = "plan_offer"


# The template kind of a call script; its situation and guidance are reviewed with its text.
SCRIPT_KIND = "script"
