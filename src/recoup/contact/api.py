"""The contact log API: a debtor's contacts, paged and scoped, and inbound contacts logged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from recoup.contact import service
from recoup.contact.rules import OUTCOMES, OutcomeCode
from recoup.contact.schemas import ContactAttemptRead, InboundContactCreate, OutcomeMeaningRead
from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.kit.errors import NotFound
from recoup.kit.masking import mask_text
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated

router = APIRouter(prefix="/api/v1", tags=["contacts"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]


def _meaning(outcome: str | None) -> OutcomeMeaningRead | None:
    if outcome is None or outcome not in OutcomeCode.__members__.values():
        return None
    meaning = OUTCOMES[OutcomeCode(outcome)]
    return OutcomeMeaningRead(
        reached=meaning.reached,
        right_party=meaning.right_party,
        third_party=meaning.third_party,
        conversation=meaning.conversation,
        effective=meaning.effective,
        failed_to_reach=meaning.failed_to_reach,
        refused_contact=meaning.refused_contact,
    )


def attempt_read(row: service.ContactLogRow) -> ContactAttemptRead:
    """Return the API shape of a contact log row, masking the contact point's value."""
    attempt, contact_point, account_external_id, agent = row
    return ContactAttemptRead(
        id=attempt.id,
        debtor_id=attempt.debtor_id,
        account_id=attempt.account_id,
        account_external_id=account_external_id,
        contact_point_id=attempt.contact_point_id,
        contact_point=(
            mask_text(contact_point.value, contact_point.kind) if contact_point else None
        ),
        channel=attempt.channel,
        party=attempt.party,
        direction=attempt.direction,
        status=attempt.status,
        outcome=attempt.outcome,
        meaning=_meaning(attempt.outcome),
        effective=attempt.effective,
        decision_id=attempt.decision_id,
        planned_at=attempt.planned_at,
        expires_at=attempt.expires_at,
        started_at=attempt.started_at,
        ended_at=attempt.ended_at,
        duration_seconds=attempt.duration_seconds,
        agent=agent,
        actor=attempt.actor,
        provider_message_id=attempt.provider_message_id,
        script_id=attempt.script_id,
    )


@router.get(
    "/debtors/{debtor_id}/contacts",
    response_model=Paginated[ContactAttemptRead],
    dependencies=[Depends(authorize("debtors:read"))],
)
def list_contacts(
    debtor_id: RowId,
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageNumber = 1,
    size: PageSize = 50,
) -> Paginated[ContactAttemptRead]:
    """List a debtor's contact log, newest first: planned, made, cancelled and expired."""
    result = service.contact_log(
        session, principal=principal, debtor_id=debtor_id, page=PageRequest(page, size)
    )
    return Paginated[ContactAttemptRead].of(result, attempt_read)


@router.post(
    "/debtors/{debtor_id}/contacts",
    response_model=ContactAttemptRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(authorize("cases:work"))],
)
def log_inbound_contact(
    debtor_id: RowId,
    body: InboundContactCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> ContactAttemptRead:
    """Log a contact the debtor or a contact person started; it needs no gate decision."""
    if principal.institution_id is None:
        raise NotFound("contacts belong to an institution; sign in as one of its users")
    row = service.log_inbound(
        session,
        institution_id=principal.institution_id,
        debtor_id=debtor_id,
        channel=body.channel,
        started_at=body.started_at,
        actor=principal.username,
        outcome=body.outcome,
        party=body.party,
        contact_point_id=body.contact_point_id,
        account_id=body.account_id,
        agent_id=principal.user_id,
        ended_at=body.ended_at,
        duration_seconds=body.duration_seconds,
        provider_message_id=body.provider_message_id,
        principal=principal,
        script_id=body.script_id,
    )
    attempt, contact_point, account_external_id, _agent = row
    agent = principal.username if principal.user_id is not None else None
    return attempt_read((attempt, contact_point, account_external_id, agent))
