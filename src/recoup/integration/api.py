"""The inbound API other systems write through: payments and their reversals (one or a list,
each item on its own), contact points from the CRM, external risk scores, accounts and
balances, Fineract events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.institutions import repository as institutions
from recoup.integration import service
from recoup.integration.schemas import (
    AccountsBody,
    BatchResult,
    ContactPointChange,
    ContactPointChanged,
    FineractEventIn,
    FineractEventResult,
    ItemError,
    ItemResult,
    PaymentResult,
    PaymentsBody,
    ReversalResult,
    ReversalsBody,
    RiskScoresBody,
)
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.masking import mask_text

router = APIRouter(prefix="/api/v1", tags=["integration"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def item_result(outcome: service.ItemOutcome) -> ItemResult:
    """Return the API shape of one item's outcome."""
    return ItemResult(
        index=outcome.index,
        external_id=outcome.external_id,
        status=outcome.status,
        id=outcome.id,
        errors=[
            ItemError(field=problem.field, message=problem.message, code=problem.code)
            for problem in outcome.errors
        ],
    )


def batch_result(outcomes: Sequence[service.ItemOutcome]) -> BatchResult:
    """Return per-item results and counts by status."""
    return BatchResult(
        results=[item_result(outcome) for outcome in outcomes],
        counts=dict(Counter(outcome.status for outcome in outcomes)),
    )


def refuse_single(outcome: service.ItemOutcome) -> None:
    """Raise the problem a single item's refusal answers with (404 for an unseen account)."""
    if any(problem.code == "not_found" for problem in outcome.errors):
        raise NotFound(outcome.errors[0].message)
    errors = [
        {"field": f"body.{problem.field}", "message": problem.message, "code": problem.code}
        for problem in outcome.errors
    ]
    detail = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
    raise ValidationFailed(detail or "the item was refused", errors=errors)


def _recorded_single(
    outcomes: Sequence[service.ItemOutcome], response: Response
) -> tuple[service.ItemOutcome, str, int]:
    """Return a single item's outcome, external id and row id, or raise its refusal.

    A duplicate answers 200 instead of the route's 201.
    """
    (outcome,) = outcomes
    if outcome.status == "rejected" or outcome.id is None or outcome.external_id is None:
        refuse_single(outcome)
        raise AssertionError("unreachable")  # pragma: no cover
    if outcome.status == "duplicate":
        response.status_code = 200
    return outcome, outcome.external_id, outcome.id


def _items(
    body: PaymentsBody | ReversalsBody | RiskScoresBody | AccountsBody,
) -> tuple[list[dict[str, Any]], bool]:
    value = body.root
    if isinstance(value, list):
        if len(value) > 1_000:
            raise ValidationFailed(
                "send at most 1,000 items per request",
                errors=[{"field": "body", "message": "at most 1,000 items"}],
            )
        return value, True
    return [value], False


@router.post(
    "/payments",
    response_model=PaymentResult | BatchResult,
    status_code=201,
    dependencies=[Depends(authorize("payments:write"))],
    responses={
        200: {"description": "A list: per-item results; or a payment already recorded"},
        201: {"description": "One payment, recorded now"},
    },
)
def post_payments(
    body: PaymentsBody, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> PaymentResult | BatchResult:
    """Record one payment, or a list of up to 1,000 with a result per item.

    Each payment names its account by ``account_external_id`` or ``account_id`` and its
    amount as a decimal string. The same ``external_id`` again is a harmless duplicate (the
    first payment's id is answered); the same id with another account, amount, currency or
    time is refused. In a list, valid items are recorded and each bad one gets errors naming
    its index and field; a single payment that is refused is a 422 (404 for an account the
    caller cannot see).
    """
    institution = institutions.require_callers(session, principal.institution_id, what="payments")
    items, many = _items(body)
    outcomes = service.record_payments(
        session, institution=institution, principal=principal, items=items
    )
    if many:
        response.status_code = 200
        return batch_result(outcomes)
    outcome, external_id, payment_id = _recorded_single(outcomes, response)
    return PaymentResult(external_id=external_id, status=outcome.status, payment_id=payment_id)


@router.post(
    "/payments/reversals",
    response_model=ReversalResult | BatchResult,
    status_code=201,
    dependencies=[Depends(authorize("payments:write"))],
    responses={
        200: {"description": "A list: per-item results; or a payment reversed before"},
        201: {"description": "One payment, reversed now"},
    },
)
def post_payment_reversals(
    body: ReversalsBody, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ReversalResult | BatchResult:
    """Reverse one payment, or a list of up to 1,000 with a result per item.

    Each reversal names the payment by the ``external_id`` it was recorded with, gives a short
    ``reason`` and, optionally, ``reversed_at`` (default now). The payment stays, marked
    reversed: its account is restored as if it had never come, promises and plans it kept
    are open again, and ``payment.reversed`` goes to webhook subscribers. Reversing a
    reversed payment is a harmless ``duplicate``. In a list, valid items are reversed and each
    bad one gets errors naming its index and field; a single reversal that is refused is a
    422 (404 for a payment the caller cannot see or that was never recorded).
    """
    institution = institutions.require_callers(session, principal.institution_id, what="payments")
    items, many = _items(body)
    outcomes = service.reverse_payments(
        session, institution=institution, principal=principal, items=items
    )
    if many:
        response.status_code = 200
        return batch_result(outcomes)
    outcome, external_id, payment_id = _recorded_single(outcomes, response)
    return ReversalResult(
        external_id=external_id,
        status="duplicate" if outcome.status == "duplicate" else "reversed",
        payment_id=payment_id,
    )


@router.post(
    "/debtors/{debtor_id}/contact-points",
    response_model=ContactPointChanged,
    status_code=201,
    dependencies=[Depends(authorize("contacts:write"))],
)
def change_contact_point(
    debtor_id: RowId,
    body: ContactPointChange,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
) -> ContactPointChanged:
    """Record a contact point from the CRM: it supersedes the old one at once (kept in history).

    By default the debtor's own points of the same kind are superseded (a new mobile number
    replaces the old); ``replaces_contact_point_id`` names the one it replaces instead. The
    gate, the workspace and queued messages stop using a superseded point immediately.
    Sending a number the debtor already has makes it current again (200).
    """
    institution = institutions.require_callers(
        session, principal.institution_id, what="contact points"
    )
    change = service.change_contact_point(
        session,
        institution=institution,
        principal=principal,
        debtor_id=debtor_id,
        kind=body.kind,
        value=body.value,
        relation=body.relation,
        contact_name=body.contact_name,
        external_id=body.external_id,
        replaces_contact_point_id=body.replaces_contact_point_id,
        supersede_same_kind=body.supersede_same_kind,
        verified=body.verified,
    )
    if not change.created:
        response.status_code = 200
    point = change.contact_point
    return ContactPointChanged(
        id=point.id,
        kind=str(point.kind),
        value=mask_text(point.value, point.kind),
        status=str(point.status),
        created=change.created,
        superseded_ids=list(change.superseded),
    )


@router.post(
    "/risk-scores",
    response_model=BatchResult,
    dependencies=[Depends(authorize("risk_scores:write"))],
)
def post_risk_scores(
    body: RiskScoresBody, principal: CurrentPrincipal, session: SessionDep
) -> BatchResult:
    """Store scores a risk system or bureau gave accounts: one or a list, a result per item.

    Kept per account, source and scoring time (the newest per source counts, older ones stay
    as history); the same score again is ``unchanged``, another value for the same time
    replaces it. An account the caller cannot see is refused like one that does not exist.
    """
    institution = institutions.require_callers(
        session, principal.institution_id, what="risk scores"
    )
    items, _many = _items(body)
    outcomes = service.record_risk_scores(
        session, institution=institution, principal=principal, items=items
    )
    return batch_result(outcomes)


@router.put(
    "/accounts",
    response_model=BatchResult,
    dependencies=[Depends(authorize("imports:write"))],
)
def upsert_accounts(
    body: AccountsBody, principal: CurrentPrincipal, session: SessionDep
) -> BatchResult:
    """Insert or update accounts and balances by external id: one account or up to 1,000.

    Items carry the columns of an accounts file (``docs/import-formats.md``: amounts as
    decimal strings, dates as YYYY-MM-DD) and are checked by the same rules; each result is
    ``accepted`` or ``rejected`` with errors naming the field, and ``counts`` says how many
    accounts were inserted, updated or unchanged. A single refused account is a 422. The
    request is recorded as an import run.
    """
    institution = institutions.require_callers(session, principal.institution_id, what="accounts")
    items, many = _items(body)
    done = service.upsert_accounts(
        session, institution=institution, principal=principal, items=items
    )
    if not many and done.outcomes[0].status == "rejected":
        refuse_single(done.outcomes[0])
    result = batch_result(done.outcomes)
    result.counts.update(
        {"inserted": done.inserted, "updated": done.updated, "unchanged": done.unchanged}
    )
    result.import_run_id = done.import_run_id
    return result


@router.post(
    "/integrations/fineract/events",
    response_model=FineractEventResult,
    dependencies=[Depends(authorize("imports:write"))],
)
def post_fineract_event(
    body: FineractEventIn, principal: CurrentPrincipal, session: SessionDep
) -> FineractEventResult:
    """Apply an Apache Fineract external event: a loan, a delinquency change or a repayment.

    Send each message Fineract publishes (``MessageV1``) with ``data`` decoded to JSON.
    ``LoanAccountDataV1`` payloads upsert the loan's debtor and account;
    ``LoanAccountDelinquencyRangeDataV1`` (``LoanDelinquencyRangeChangeBusinessEvent``) sets
    the account's days past due and overdue amount; ``LoanTransactionDataV1`` repayments
    (``LoanTransactionMakeRepaymentPostBusinessEvent``) are recorded as payments. Other
    events are answered ``ignored``. The same event again (``idempotencyKey``) is a
    ``duplicate`` and changes nothing. What cannot be mapped is a 422 naming the field.
    """
    institution = institutions.require_callers(
        session, principal.institution_id, what="Fineract events"
    )
    outcome = service.receive_fineract_event(
        session,
        institution=institution,
        principal=principal,
        message=body.model_dump(mode="json"),
    )
    return FineractEventResult.model_validate(outcome.as_json())
