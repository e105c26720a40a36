"""Record payments: idempotent, applied by the institution's waterfall, history kept.

How a payment changes an account (the pure rule is ``rules.apply_payment``):

- The amount pays the balance parts in the institution's ``waterfall`` order
  (the ``portfolio.waterfall`` setting); whatever exceeds the balance is kept on the
  payment as ``unapplied`` (an overpayment to refund or reallocate, never lost).
- Days past due count from the oldest unpaid due date. A payment cannot move that date
  except by clearing everything overdue, so the applied amount pays down
  ``overdue_amount`` (and ``minimum_due``); a partial payment leaves days past due and
  bucket as they are (ageing is the daily cycle's job), and a payment that brings the
  overdue amount to zero cures the account: 0 days, M0, ``delinquent`` → ``current``.
  Other statuses (promised, on plan, legal, agency, charged off…) belong to the
  domains that set them and are kept.
- Paid to a zero balance, a non-revolving account becomes ``settled``; a credit card
  stays open (``current``).
- Every bucket or status change writes a ``DelinquencyEvent`` naming the payment,
  effective when the money was paid — but never before the account's latest snapshot
  from outside (an import event), which would otherwise hide the change in as-of views.
  Every applied payment writes an audit event (amounts and ids only, no PII).

Which payments are refused (outcome ``rejected`` with a reason, nothing written): an
unknown account, a ``closed`` account, a ``settled`` account unless the payment was made
before the moment payments settled it, a currency other than the account's, a
non-positive amount, a naive or future ``paid_at``, an unknown channel. A charged-off
account still takes payments: recoveries after charge-off are the point of collections.
The same external id again is a ``duplicate`` (nothing changes twice); the same
external id with a different account, amount, currency or paid-at is rejected, naming
the difference. Each rejection carries a stable ``code`` and the input ``field`` for the
reject report.

The accounts of a batch are locked for update (in external id order), so concurrent
batches queue rather than lose an update; two transactions racing on one new external
id fail on the unique constraint, and the retry sees a duplicate.

Backdated payments. Each payment row keeps what it applied to each part and the
delinquency state it found (``overdue_before``, ``days_past_due_before``,
``status_before``). Two facts make a late-arriving payment exact and cheap:

1. The waterfall is a greedy fill in a fixed order, so the balances, overdue amount
   and cure after a set of payments do not depend on their order. Today's state is
   therefore updated exactly as for an on-time payment.
2. Only history depends on the order. For a payment made before the account's latest
   payment, the state just before the earliest later payment is restored — balances =
   today's + what the later payments applied, delinquency = the state that payment
   found — and the new payment plus the later ones are replayed in paid-at order. The
   later payments' applied amounts are rewritten, the live events those later payments
   wrote are marked ``superseded`` (never deleted), and the replay's bucket/status
   changes are written with their true ``effective_at`` (cause ``payment`` for the new
   payment, ``correction`` for the later ones).

The replay assumes payments were the only change to balances and overdue amount since
the restore point; a newer balance file from the core system stays authoritative for
today's state. Rows written without a stored before-state (older data) fall back to
today's delinquency state and an overdue amount restored like the balances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.cases import rules as case_rules
from recoup.cases import service as cases
from recoup.compliance.certifications import service as certifications_service
from recoup.enums import AccountStatus, PaymentChannel, Product
from recoup.identity.principal import Principal
from recoup.identity.scoping import acting, get_scoped, scoped
from recoup.institutions.settings import settings_of
from recoup.kit import clock, events, jobs
from recoup.kit.clock import CLOCK_SKEW, utcnow
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.money import to_decimal
from recoup.models.account import Account, DelinquencyEvent, Payment
from recoup.models.identity import Role, User
from recoup.models.institution import Institution
from recoup.plans import service as plans
from recoup.portfolio import repository
from recoup.portfolio.rules import (
    REVERSED_BEFORE_PAID,
    AccountState,
    Balances,
    PaymentEffect,
    apply_payment,
    bucket_for,
    replay_payments,
    restore_balances,
    reversal_time_problem,
    reverse_payment,
)
from recoup.portfolio.schemas import (
    PaymentInput,
    PaymentOutcome,
    ReversalInput,
    ReversalOutcome,
)
from recoup.workbench import service as workbench

REVOLVING_PRODUCTS = frozenset({Product.credit_card})
# Clocks of integrating systems drift; a payment a few minutes "in the future" is real.
FUTURE_TOLERANCE = CLOCK_SKEW
_CHANNELS = frozenset(str(channel) for channel in PaymentChannel)
# Jobs of other domains that follow payments: cases open and close from the accounts,
# payment plans are followed against the payments.
CASES_SYNC = "cases.sync"
PLANS_RECONCILE = "plans.reconcile"
STRATEGY_REEVALUATE_PAID = "strategy.reevaluate_paid"
# The dashboards' aggregates, rewritten from the day a reversed payment had counted in.
ANALYTICS_REFRESH = "analytics.refresh"


def record_payment(
    session: Session,
    *,
    institution: Institution,
    payment: PaymentInput,
    actor: str = "api",
) -> PaymentOutcome:
    """Record one payment (see ``record_payments``)."""
    return record_payments(session, institution=institution, payments=[payment], actor=actor)[0]


def record_payments(
    session: Session,
    *,
    institution: Institution,
    payments: Sequence[PaymentInput],
    actor: str = "import",
) -> list[PaymentOutcome]:
    """Record a batch of payments and return one outcome per input, in input order."""
    order = waterfall_of(institution)
    now = utcnow()

    # Two look-ups for the whole batch: the accounts named (locked: balances change), and
    # the payments already recorded under these external ids.
    accounts = repository.accounts_by_external_id(
        session,
        institution_id=institution.id,
        external_ids=(payment.account_external_id for payment in payments),
        lock=True,
    )
    recorded = repository.payments_by_external_id(
        session,
        institution_id=institution.id,
        external_ids=(payment.external_id for payment in payments),
    )
    settled_at = repository.settled_at(
        session,
        institution_id=institution.id,
        account_ids=(a.id for a in accounts.values() if a.status == AccountStatus.settled),
    )
    recorded_accounts = repository.account_external_ids(
        session,
        institution_id=institution.id,
        account_ids=(payment.account_id for payment in recorded.values()),
    )

    # Sort each input into duplicate, rejected or accepted, in input order.
    outcomes: list[PaymentOutcome | None] = [None] * len(payments)
    accepted: dict[str, _Accepted] = {}
    duplicates_in_batch: list[tuple[int, str]] = []
    for index, payment in enumerate(payments):
        earlier = recorded.get(payment.external_id)
        if earlier is not None:
            earlier_claim = _Claim(
                account_external_id=recorded_accounts.get(earlier.account_id, "?"),
                amount=earlier.amount,
                currency=earlier.currency,
                paid_at=clock.aware(earlier.paid_at),
            )
            outcomes[index] = _duplicate_or_conflict(payment, earlier_claim, earlier.id)
            continue
        if payment.external_id in accepted:
            first = accepted[payment.external_id]
            outcome = _duplicate_or_conflict(payment, first.claim, None)
            if outcome.status == "duplicate":
                duplicates_in_batch.append((index, payment.external_id))
            outcomes[index] = outcome
            continue
        account = accounts.get(payment.account_external_id)
        refusal = _problem(payment, account, now=now)
        if refusal is not None or account is None:
            outcomes[index] = _rejected(payment.external_id, refusal)
            continue
        accepted[payment.external_id] = _Accepted(
            index=index, payment=payment, account=account, claim=_claim_of(payment)
        )

    # Apply in the order the money was paid, so a backlog in one batch needs no replay.
    accepted_accounts = {item.account.id for item in accepted.values()}
    latest = repository.latest_paid_at(
        session, institution_id=institution.id, account_ids=accepted_accounts
    )
    snapshots = repository.snapshot_at(
        session, institution_id=institution.id, account_ids=accepted_accounts
    )
    applied: list[tuple[_Accepted, _Applied]] = []
    for item in sorted(accepted.values(), key=lambda item: (item.claim.paid_at, item.index)):
        # Checked now, not up front: an earlier payment in this batch may have settled it.
        refusal = _status_problem(item, settled_at=settled_at)
        if refusal is not None:
            outcomes[item.index] = _rejected(item.payment.external_id, refusal)
            continue
        row = _apply(
            session,
            institution=institution,
            item=item,
            order=order,
            latest=latest,
            snapshot=snapshots.get(item.account.id),
        )
        if row.settled_at is not None:
            settled_at[item.account.id] = min(
                row.settled_at, settled_at.get(item.account.id, row.settled_at)
            )
        applied.append((item, row))
    session.flush()

    # One audit event per payment applied: money changed.
    audit.record_many(
        session,
        [
            audit.AuditEntry(
                actor=actor,
                action="payment.record",
                object_type="payment",
                object_id=row.payment.id,
                institution_id=institution.id,
                details=row.audit_details(),
            )
            for _item, row in applied
        ],
    )
    payment_ids: dict[str, int] = {}
    for item, row in applied:
        payment_ids[item.payment.external_id] = row.payment.id
        _announce(session, row)
        outcomes[item.index] = PaymentOutcome(
            external_id=item.payment.external_id, status="applied", payment_id=row.payment.id
        )
    for index, external_id in duplicates_in_batch:
        first_outcome = outcomes[accepted[external_id].index]
        if external_id in payment_ids:
            outcomes[index] = PaymentOutcome(
                external_id=external_id, status="duplicate", payment_id=payment_ids[external_id]
            )
        elif first_outcome is not None:
            outcomes[index] = first_outcome
    finished = [outcome for outcome in outcomes if outcome is not None]
    if len(finished) != len(payments):  # pragma: no cover - every branch above sets one
        raise RuntimeError("a payment was left without an outcome")
    if applied:
        follow_up_payments(session, institution_id=institution.id)
    return finished


def reverse_payments(
    session: Session,
    *,
    institution: Institution,
    reversals: Sequence[ReversalInput],
    actor: str = "import",
) -> list[ReversalOutcome]:
    """Record payments the core system reversed; return one outcome per input, in order.

    The payment row stays (with ``reversed_at`` and the reason) but is no longer money
    received: its account is restored as if it had never come — balances, overdue amount,
    days past due (aged meanwhile when still overdue) and a payment-set status, the later
    payments replayed and the events of all of them superseded by the re-lived history —,
    promises it counted toward and plans it completed are open again for the next
    reconciliation to settle, the account's case takes the reversal at once (reopened as a new
    case when the payment had cured it; ``cases.service.record_reversal``), and KPIs, which
    count only payments not reversed, follow. Reversing a reversed payment again is a
    ``duplicate``; an unknown one, or one dated before the payment was made
    (``reversed_before_paid``), is ``rejected``.
    """
    order = waterfall_of(institution)
    recorded = repository.payments_by_external_id(
        session,
        institution_id=institution.id,
        external_ids=(reversal.external_id for reversal in reversals),
    )
    external_ids = repository.account_external_ids(
        session,
        institution_id=institution.id,
        account_ids=(payment.account_id for payment in recorded.values()),
    )
    accounts = {
        account.id: account
        for account in repository.accounts_by_external_id(
            session,
            institution_id=institution.id,
            external_ids=external_ids.values(),
            lock=True,
        ).values()
    }
    outcomes: list[ReversalOutcome] = []
    for reversal in reversals:
        payment = recorded.get(reversal.external_id)
        if payment is None:
            outcomes.append(
                ReversalOutcome(
                    reversal.external_id,
                    "rejected",
                    f"no payment {reversal.external_id!r} was recorded to reverse",
                    code="not_found",
                    field="external_id",
                )
            )
            continue
        if payment.reversed_at is not None:
            outcomes.append(ReversalOutcome(reversal.external_id, "duplicate", None, payment.id))
            continue
        paid_at = clock.aware(payment.paid_at)
        reversed_at = (
            clock.aware(reversal.reversed_at)
            if reversal.reversed_at is not None
            else max(utcnow(), paid_at)
        )
        too_early = reversal_time_problem(paid_at=paid_at, reversed_at=reversed_at)
        if too_early is not None:
            outcomes.append(
                ReversalOutcome(
                    reversal.external_id,
                    "rejected",
                    too_early,
                    code=REVERSED_BEFORE_PAID,
                    field="reversed_at",
                )
            )
            continue
        account = accounts[payment.account_id]
        _undo(
            session,
            account=account,
            payment=payment,
            reversal=replace(reversal, reversed_at=reversed_at),
            order=order,
        )
        workbench.reopen_promises_kept_by(
            session,
            institution=institution,
            account_id=account.id,
            paid_at=clock.aware(payment.paid_at),
            amount=payment.amount,
        )
        plans.reopen_plans_completed_by(
            session,
            institution=institution,
            account_id=account.id,
            paid_at=clock.aware(payment.paid_at),
        )
        # The case follows at once: a case the payment had cured is not left closed until
        # the next sync (the account is delinquent again), and the strategy re-routes it.
        cases.record_reversal(
            session,
            institution_id=institution.id,
            account_id=account.id,
            debtor_id=account.debtor_id,
            status=str(account.status),
            days_past_due=account.days_past_due,
            note=(
                f"payment {payment.external_id} of "
                f"{to_decimal(payment.amount, payment.currency)} {payment.currency} "
                f"reversed: {payment.reversal_reason}"
            ),
            actor=actor,
        )
        audit.record(
            session,
            actor=actor,
            action="payment.reverse",
            object_type="payment",
            object_id=payment.id,
            institution_id=institution.id,
            details={
                "account_id": account.id,
                "amount": payment.amount,
                "currency": payment.currency,
                "reversed_at": reversed_at.isoformat(),
                "reason": payment.reversal_reason,
            },
        )
        events.emit(
            session,
            institution_id=institution.id,
            type="payment.reversed",
            data={
                "payment_id": payment.id,
                "account_id": account.id,
                "amount_minor": payment.amount,
                "currency": payment.currency,
                "reason": payment.reversal_reason,
            },
        )
        outcomes.append(ReversalOutcome(reversal.external_id, "reversed", None, payment.id))
    undone = [recorded[outcome.external_id] for outcome in outcomes if outcome.status == "reversed"]
    if undone:
        session.flush()
        follow_up_payments(session, institution_id=institution.id)
        # The dashboards' daily figures from the first day a reversed payment counted in.
        first = min(
            clock.aware(payment.paid_at).astimezone(clock.zone(institution.timezone)).date()
            for payment in undone
        )
        asked = f"{utcnow():%Y%m%dT%H%M%S%f}"
        jobs.enqueue(
            session,
            ANALYTICS_REFRESH,
            {"institution_id": institution.id, "first": first.isoformat()},
            idempotency_key=f"{ANALYTICS_REFRESH}@{institution.id}@reversed@{asked}",
            institution_id=institution.id,
        )
    return outcomes


def _undo(
    session: Session,
    *,
    account: Account,
    payment: Payment,
    reversal: ReversalInput,
    order: Sequence[str],
) -> None:
    """Mark ``payment`` reversed and re-live its account's history without it."""
    paid_at = clock.aware(payment.paid_at)
    assert reversal.reversed_at is not None  # resolved by reverse_payments
    reversed_at = clock.aware(reversal.reversed_at)
    payment.reversed_at = reversed_at
    payment.reversal_reason = reversal.reason.strip()[:255] or "reversed"
    session.flush()
    today = account_state(account)
    # The payments standing that came after it, in the order they applied (paid at, then id:
    # a core system dating by day pays several on one instant).
    later = [
        row
        for row in repository.account_payments(
            session, institution_id=account.institution_id, account_id=account.id
        )
        if row.reversed_at is None and (clock.aware(row.paid_at), row.id) > (paid_at, payment.id)
    ]
    before = AccountState(
        balances=today.balances,
        overdue_amount=(
            payment.overdue_before
            if payment.overdue_before is not None
            else today.overdue_amount + payment.amount - payment.unapplied
        ),
        days_past_due=(
            payment.days_past_due_before
            if payment.days_past_due_before is not None
            else today.days_past_due
        ),
        status=str(payment.status_before) if payment.status_before is not None else today.status,
    )
    undone = reverse_payment(
        today,
        before=before,
        reversed_applied=_applied_parts(payment),
        later=[(row.amount, _applied_parts(row)) for row in later],
        days_since=(reversed_at.date() - paid_at.date()).days,
        order=order,
        revolving=account.product in REVOLVING_PRODUCTS,
    )
    snapshot = repository.snapshot_at(
        session, institution_id=account.institution_id, account_ids=[account.id]
    ).get(account.id)
    repository.supersede_payment_events(
        session,
        institution_id=account.institution_id,
        account_id=account.id,
        payment_ids=[payment.id, *(row.id for row in later)],
    )
    for row, effect in zip(later, undone.later, strict=True):
        _store_effect(row, effect)
        if effect.changes_delinquency:
            session.add(_event(account, row, effect, snapshot=snapshot, cause="correction"))
    after = undone.today
    # Payments took the minimum due down to zero at the least: above zero, the reversed
    # payment's part comes back whole; at zero, what was due beyond the other payments is not
    # kept, and the overdue amount the account owes again stands for it.
    applied = sum(_applied_parts(payment).values())
    account.minimum_due = (
        account.minimum_due + applied
        if account.minimum_due > 0
        else min(applied, undone.today.overdue_amount)
    )
    changed = (after.bucket, after.status) != (today.bucket, today.status)
    account.principal = after.balances.principal
    account.interest = after.balances.interest
    account.fees = after.balances.fees
    account.penalty = after.balances.penalty
    account.overdue_amount = after.overdue_amount
    account.days_past_due = after.days_past_due
    account.bucket = after.bucket
    account.status = AccountStatus(after.status)
    if changed:
        session.add(
            DelinquencyEvent(
                institution_id=account.institution_id,
                account_id=account.id,
                payment_id=payment.id,
                effective_at=max(reversed_at, snapshot) if snapshot is not None else reversed_at,
                recorded_at=utcnow(),
                days_past_due=after.days_past_due,
                bucket=after.bucket,
                status=AccountStatus(after.status),
                balance=after.balances.total,
                cause="reversal",
            )
        )


def _announce(session: Session, row: _Applied) -> None:
    """Emit a payment's events for webhook subscribers (ids and amounts, no PII)."""
    payment = row.payment
    events.emit(
        session,
        institution_id=payment.institution_id,
        type="payment.received",
        data={
            "payment_id": payment.id,
            "account_id": payment.account_id,
            "amount_minor": payment.amount,
            "currency": payment.currency,
            "channel": str(payment.channel),
        },
    )
    if row.effect.before.status != row.effect.after.status == AccountStatus.current:
        events.emit(
            session,
            institution_id=payment.institution_id,
            type="account.cured",
            data={"account_id": payment.account_id, "payment_id": payment.id},
        )


def follow_up_payments(session: Session, *, institution_id: int) -> None:
    """Ask, within a minute, for what payments change: cases and payment plans."""
    # A payment may cure an account or pay it off (its case), keep a plan's instalment, or
    # move a case along its strategy.
    for name in (CASES_SYNC, PLANS_RECONCILE, STRATEGY_REEVALUATE_PAID):
        jobs.enqueue_soon(
            session,
            name,
            {"institution_id": institution_id},
            coalesce=f"{name}@{institution_id}",
            institution_id=institution_id,
        )


def waterfall_of(institution: Institution) -> tuple[str, ...]:
    """Return the order in which the institution's payments pay down balance parts."""
    return tuple(settings_of(institution).portfolio.waterfall)


def account_state(account: Account) -> AccountState:
    """Return the payment-relevant state of an account as the pure rules see it."""
    return AccountState(
        balances=Balances(
            principal=account.principal,
            interest=account.interest,
            fees=account.fees,
            penalty=account.penalty,
        ),
        overdue_amount=account.overdue_amount,
        days_past_due=account.days_past_due,
        status=str(account.status),
    )


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Why a payment is rejected: a stable code, the input field concerned, and words."""

    code: str
    field: str
    reason: str


def _rejected(external_id: str, refusal: _Refusal | None) -> PaymentOutcome:
    refusal = refusal or _Refusal("payment_rejected", "external_id", "the payment was refused")
    return PaymentOutcome(
        external_id=external_id,
        status="rejected",
        reason=refusal.reason,
        code=refusal.code,
        field=refusal.field,
    )


@dataclass(frozen=True, slots=True)
class _Claim:
    """What a payment says happened; two claims under one external id must agree."""

    account_external_id: str
    amount: int
    currency: str
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Accepted:
    index: int
    payment: PaymentInput
    account: Account
    claim: _Claim


@dataclass(slots=True)
class _Applied:
    payment: Payment
    effect: PaymentEffect
    recomputed: list[int]
    settled_at: datetime | None

    def audit_details(self) -> dict[str, object]:
        details: dict[str, object] = {
            "external_id": self.payment.external_id,
            "account_id": self.payment.account_id,
            "amount": self.payment.amount,
            "currency": self.payment.currency,
            "paid_at": self.payment.paid_at.isoformat(),
            "applied": dict(self.effect.allocation.applied),
            "unapplied": self.effect.allocation.unapplied,
            "balance_after": self.effect.after.balances.total,
            "bucket_after": self.effect.after.bucket,
            "status_after": self.effect.after.status,
        }
        if self.recomputed:
            details["recomputed_payment_ids"] = self.recomputed
        return details


def _claim_of(payment: PaymentInput) -> _Claim:
    paid_at = payment.paid_at
    return _Claim(
        account_external_id=payment.account_external_id,
        amount=payment.amount,
        currency=payment.currency,
        paid_at=clock.aware(paid_at) if paid_at.tzinfo is not None else None,
    )


def _duplicate_or_conflict(
    payment: PaymentInput, earlier: _Claim, payment_id: int | None
) -> PaymentOutcome:
    claim = _claim_of(payment)
    differences = [
        f"{name} {mine!r} (recorded: {theirs!r})"
        for name, mine, theirs in (
            ("account", claim.account_external_id, earlier.account_external_id),
            ("amount", claim.amount, earlier.amount),
            ("currency", claim.currency, earlier.currency),
            (
                "paid_at",
                claim.paid_at.isoformat() if claim.paid_at else None,
                earlier.paid_at.isoformat() if earlier.paid_at else None,
            ),
        )
        if mine != theirs
    ]
    if differences:
        return _rejected(
            payment.external_id,
            _Refusal(
                "conflicting_duplicate",
                "external_id",
                f"payment {payment.external_id} was already recorded with different details: "
                + "; ".join(differences)
                + " — a correction needs a new external id or a reversal",
            ),
        )
    return PaymentOutcome(
        external_id=payment.external_id, status="duplicate", payment_id=payment_id
    )


def _problem(payment: PaymentInput, account: Account | None, *, now: datetime) -> _Refusal | None:
    """Return why the payment cannot be applied whatever the account's status, or ``None``."""
    if not payment.external_id or len(payment.external_id) > 64:
        return _Refusal(
            "invalid_external_id", "external_id", "a payment external id is 1–64 characters"
        )
    if isinstance(payment.amount, bool) or not isinstance(payment.amount, int):
        return _Refusal(
            "invalid_amount",
            "amount",
            f"the amount must be whole minor units (分 / cents), not {payment.amount!r}",
        )
    if payment.amount <= 0:
        return _Refusal(
            "invalid_amount",
            "amount",
            f"the amount must be positive, not {payment.amount} (reversals are not payments)",
        )
    if payment.paid_at.tzinfo is None:
        return _Refusal(
            "missing_timezone",
            "paid_at",
            "paid_at has no time zone offset: give one (e.g. +08:00)",
        )
    paid_at = clock.aware(payment.paid_at)
    if paid_at > now + FUTURE_TOLERANCE:
        return _Refusal("future_date", "paid_at", f"paid_at {paid_at.isoformat()} is in the future")
    if payment.channel not in _CHANNELS:
        return _Refusal(
            "unknown_channel",
            "channel",
            f"unknown channel {payment.channel!r}: use one of {', '.join(sorted(_CHANNELS))}",
        )
    if account is None:
        return _Refusal(
            "unknown_account",
            "account_external_id",
            f"unknown account {payment.account_external_id!r} for this institution",
        )
    if payment.currency != account.currency:
        return _Refusal(
            "currency_mismatch",
            "currency",
            f"currency {payment.currency} does not match account "
            f"{account.external_id}, which is in {account.currency}",
        )
    return None


def _status_problem(item: _Accepted, *, settled_at: dict[int, datetime]) -> _Refusal | None:
    """Return why the account's status refuses the payment, or ``None``."""
    account = item.account
    if account.status == AccountStatus.closed:
        return _Refusal(
            "closed_account",
            "account_external_id",
            f"account {account.external_id} is closed: refund or reallocate the payment",
        )
    if account.status == AccountStatus.settled:
        settled = settled_at.get(account.id)
        paid_at = item.claim.paid_at
        if settled is None or paid_at is None or paid_at >= settled:
            when = f" on {settled.isoformat()}" if settled else ""
            return _Refusal(
                "settled_account",
                "account_external_id",
                f"account {account.external_id} was settled{when}: "
                "refund or reallocate the payment",
            )
    return None


def _apply(
    session: Session,
    *,
    institution: Institution,
    item: _Accepted,
    order: Sequence[str],
    latest: dict[int, datetime],
    snapshot: datetime | None,
) -> _Applied:
    """Apply one accepted payment to its account, replaying history if it is backdated."""
    account = item.account
    paid_at = clock.aware(item.payment.paid_at)
    revolving = account.product in REVOLVING_PRODUCTS
    before = account_state(account)
    effect = apply_payment(before, item.payment.amount, order, revolving=revolving)

    payment = Payment(
        institution_id=institution.id,
        external_id=item.payment.external_id,
        account_id=account.id,
        amount=item.payment.amount,
        currency=item.payment.currency,
        paid_at=paid_at,
        channel=PaymentChannel(item.payment.channel),
    )
    _store_effect(payment, effect)
    session.add(payment)
    _store_state(account, effect)

    backdated = account.id in latest and paid_at < latest[account.id]
    recomputed: list[int] = []
    settled_at = paid_at if _settles(effect) else None
    if backdated:
        session.flush()
        effect, recomputed, settled_at = _replay_from(
            session,
            account=account,
            payment=payment,
            today_before=before,
            order=order,
            revolving=revolving,
            snapshot=snapshot,
        )
    else:
        if effect.changes_delinquency:
            session.flush()  # the event names the payment
            session.add(_event(account, payment, effect, snapshot=snapshot, cause="payment"))
        latest[account.id] = paid_at
    return _Applied(payment=payment, effect=effect, recomputed=recomputed, settled_at=settled_at)


def _settles(effect: PaymentEffect) -> bool:
    return effect.after.status == AccountStatus.settled != effect.before.status


def _replay_from(
    session: Session,
    *,
    account: Account,
    payment: Payment,
    today_before: AccountState,
    order: Sequence[str],
    revolving: bool,
    snapshot: datetime | None,
) -> tuple[PaymentEffect, list[int], datetime | None]:
    """Rewrite the history after a backdated payment.

    Returns the payment's replayed effect, the ids of the later payments recomputed and
    when the replay settled the account (if it did).
    """
    paid_at = clock.aware(payment.paid_at)
    later = repository.payments_after(
        session, institution_id=account.institution_id, account_id=account.id, after=paid_at
    )
    first = later[0]
    applied_later = [_applied_parts(row) for row in later]
    balances = restore_balances(today_before.balances, applied_later)
    start = AccountState(
        balances=balances,
        overdue_amount=(
            first.overdue_before
            if first.overdue_before is not None
            else min(
                today_before.overdue_amount + sum(sum(parts.values()) for parts in applied_later),
                balances.total,
            )
        ),
        days_past_due=(
            first.days_past_due_before
            if first.days_past_due_before is not None
            else today_before.days_past_due
        ),
        status=str(first.status_before) if first.status_before is not None else today_before.status,
    )
    sequence = [payment, *later]
    effects = replay_payments(start, [row.amount for row in sequence], order, revolving=revolving)
    repository.supersede_payment_events(
        session,
        institution_id=account.institution_id,
        account_id=account.id,
        payment_ids=[row.id for row in later],
    )
    settled_at: datetime | None = None
    for row, effect in zip(sequence, effects, strict=True):
        _store_effect(row, effect)
        if settled_at is None and _settles(effect):
            settled_at = clock.aware(row.paid_at)
        if effect.changes_delinquency:
            cause = "payment" if row is payment else "correction"
            session.add(_event(account, row, effect, snapshot=snapshot, cause=cause))
    return effects[0], [row.id for row in later], settled_at


def _applied_parts(payment: Payment) -> dict[str, int]:
    return {
        "penalty": payment.applied_penalty,
        "fees": payment.applied_fees,
        "interest": payment.applied_interest,
        "principal": payment.applied_principal,
    }


def _store_effect(payment: Payment, effect: PaymentEffect) -> None:
    applied = effect.allocation.applied
    payment.applied_penalty = applied["penalty"]
    payment.applied_fees = applied["fees"]
    payment.applied_interest = applied["interest"]
    payment.applied_principal = applied["principal"]
    payment.unapplied = effect.allocation.unapplied
    payment.overdue_before = effect.before.overdue_amount
    payment.days_past_due_before = effect.before.days_past_due
    payment.status_before = AccountStatus(effect.before.status)


def _store_state(account: Account, effect: PaymentEffect) -> None:
    after = effect.after
    account.principal = after.balances.principal
    account.interest = after.balances.interest
    account.fees = after.balances.fees
    account.penalty = after.balances.penalty
    account.overdue_amount = after.overdue_amount
    account.minimum_due = max(account.minimum_due - effect.applied_total, 0)
    account.days_past_due = after.days_past_due
    account.bucket = bucket_for(after.days_past_due)
    account.status = AccountStatus(after.status)


def _event(
    account: Account,
    payment: Payment,
    effect: PaymentEffect,
    *,
    snapshot: datetime | None,
    cause: str,
) -> DelinquencyEvent:
    """Return the history event of a payment's bucket/status change.

    It is effective when the money was paid, but never before the account's latest
    snapshot from outside (an import): that snapshot showed the state this payment
    changes, so an earlier effective time would let the snapshot hide the change.
    """
    after = effect.after
    paid_at = clock.aware(payment.paid_at)
    return DelinquencyEvent(
        institution_id=account.institution_id,
        account_id=account.id,
        payment_id=payment.id,
        effective_at=max(paid_at, snapshot) if snapshot is not None else paid_at,
        recorded_at=utcnow(),
        days_past_due=after.days_past_due,
        bucket=after.bucket,
        status=AccountStatus(after.status),
        balance=after.balances.total,
        cause=cause,
    )


# Assignment of accounts to agents (until the workbench brings cases and queues)

MAX_ASSIGN_ACCOUNTS = 1000


def _today_at(session: Session, *, institution_id: int) -> date:
    institution = session.get(Institution, institution_id)
    if institution is None:
        raise NotFound(f"no institution {institution_id}")
    return clock.local_today(institution.timezone)


def assignable_agent_problem(
    session: Session, *, institution_id: int, agent: User | None, on: date
) -> str | None:
    """Say why a user cannot take accounts on a date, or None when they can.

    Only an active agent of the institution holding a compliance certificate valid that
    day (the same check as the gate's POL-CERT) may be assigned accounts.
    """
    if agent is None or agent.institution_id != institution_id:
        return "no such user in this institution"
    if agent.role != Role.agent or not agent.active:
        return f"user {agent.username} is not an active agent; assign accounts to an agent"
    if not certifications_service.is_certified(
        session, institution_id=institution_id, user_id=agent.id, on=on
    ):
        return (
            f"POL-CERT: agent {agent.username} holds no compliance certificate valid on {on}; "
            "record a current certificate before assigning accounts"
        )
    return None


def certified_agents(
    session: Session, *, institution_id: int, on: date | None = None
) -> list[User]:
    """Return the institution's active agents who may take accounts on a date."""
    on = on or _today_at(session, institution_id=institution_id)
    return certifications_service.certified_agents(session, institution_id=institution_id, on=on)


def account_ids_for_external_ids(
    session: Session, *, institution_id: int, external_ids: Sequence[str]
) -> list[int]:
    """Return the ids of the institution's accounts with these external ids; name any unknown."""
    found = repository.accounts_by_external_id(
        session, institution_id=institution_id, external_ids=external_ids
    )
    unknown = [external_id for external_id in external_ids if external_id not in found]
    if unknown:
        raise NotFound(
            f"no account with external id {', '.join(unknown)} in this institution",
            unknown_accounts=unknown,
        )
    return [found[external_id].id for external_id in external_ids]


def assign_accounts(
    session: Session,
    *,
    institution_id: int,
    agent_id: int,
    account_ids: Sequence[int],
    actor: str,
    on: date | None = None,
    principal: Principal | None = None,
) -> list[Account]:
    """Assign accounts to an active, certified agent of the institution (audited per account).

    The agent and the accounts are loaded as ``principal`` may see them: an id outside its
    scope, or unknown, is ``NotFound``.
    """
    scope = acting(principal, institution_id)
    wanted = list(dict.fromkeys(account_ids))
    if not wanted:
        raise ValidationFailed(
            "account_ids: give at least one account id",
            errors=[{"field": "account_ids", "message": "give at least one account id"}],
        )
    if len(wanted) > MAX_ASSIGN_ACCOUNTS:
        raise ValidationFailed(
            f"account_ids: at most {MAX_ASSIGN_ACCOUNTS} accounts per assignment",
            errors=[{"field": "account_ids", "message": f"at most {MAX_ASSIGN_ACCOUNTS}"}],
        )
    on = on or _today_at(session, institution_id=institution_id)
    agent = get_scoped(session, User, agent_id, scope)
    problem = assignable_agent_problem(session, institution_id=institution_id, agent=agent, on=on)
    if problem is not None:
        raise ValidationFailed(
            f"agent_id {agent_id}: {problem}",
            errors=[{"field": "agent_id", "message": problem}],
        )
    accounts = {
        account.id: account
        for account in session.scalars(
            scoped(select(Account), Account, scope)
            .where(Account.id.in_(wanted))
            .order_by(Account.id)
            .with_for_update()
        )
    }
    unknown = [account_id for account_id in wanted if account_id not in accounts]
    if unknown:
        raise NotFound(
            f"no account {', '.join(map(str, unknown))} in this institution; check the account ids",
            unknown_account_ids=unknown,
        )
    idle = [
        accounts[account_id].external_id
        for account_id in wanted
        if not case_rules.is_delinquent(
            accounts[account_id].status, accounts[account_id].days_past_due
        )
    ]
    if idle:
        message = (
            f"account {', '.join(idle)} is not delinquent: agents work collection cases, and "
            "only a delinquent account is in one"
        )
        raise ValidationFailed(
            f"account_ids: {message}", errors=[{"field": "account_ids", "message": message}]
        )
    entries = []
    owners: dict[int, int | None] = {}
    current: dict[int, int | None] = {}
    touched = []
    for account_id in wanted:
        account = accounts[account_id]
        case = cases.case_for_account(
            session,
            institution_id=institution_id,
            account_id=account.id,
            debtor_id=account.debtor_id,
            status=account.status,
            days_past_due=account.days_past_due,
            actor=actor,
        )
        assert case is not None  # a delinquent account is always in a live case
        current.setdefault(case.id, case.owner_id)
        owners[case.id] = agent_id
        touched.append(case)
        entries.append(
            audit.AuditEntry(
                actor=actor,
                action="accounts.assign",
                object_type="account",
                object_id=account.id,
                institution_id=institution_id,
                details={
                    "agent_id": agent_id,
                    "previous_agent_id": current[case.id],
                    "case_id": case.id,
                },
            )
        )
    cases.reassign(
        session, institution_id=institution_id, owners=owners, actor=actor, current=current
    )
    for case in touched:
        session.expire(case, ["owner_id", "updated_at"])
    audit.record_many(session, entries)
    return [accounts[account_id] for account_id in wanted]


@dataclass(frozen=True, slots=True)
class AgeingResult:
    """What ageing the accounts to a day did."""

    aged: int = 0
    events: int = 0


def age_accounts(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    now: datetime | None = None,
    shard: tuple[int, int] | None = None,
) -> AgeingResult:
    """Age the institution's overdue accounts to ``as_of`` (set-based; a re-run changes nothing).

    The new buckets take effect at the start of ``as_of`` where the institution is.
    ``shard=(index, count)`` ages only the accounts whose id modulo ``count`` is ``index``
    (the shards of a day together age every account once).
    """
    now = now or utcnow()
    aged, events = repository.age_accounts(
        session,
        institution_id=institution.id,
        as_of=as_of,
        effective_at=clock.start_of_day(as_of, institution.timezone),
        now=now,
        shard=shard,
    )
    return AgeingResult(aged=aged, events=events)
