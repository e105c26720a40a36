"""The letters API: queue a letter through the gate; a day's print file and its manifest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.pii import NO_STORE_HEADERS
from recoup.identity.principal import Principal
from recoup.institutions import repository as institutions
from recoup.kit.schemas import Day
from recoup.models.institution import Institution
from recoup.outreach.letters import service
from recoup.outreach.letters.schemas import LetterCreate, LetterQueued

router = APIRouter(prefix="/api/v1/letters", tags=["letters"])

PrintDay = Annotated[Day, Query(description="The print day (institution time), YYYY-MM-DD")]


def _institution(session: SessionDep, principal: Principal) -> Institution:
    return institutions.require_callers(session, principal.institution_id, what="letters")


@router.post(
    "",
    response_model=LetterQueued,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(authorize("cases:work"))],
)
def queue_letter(
    body: LetterCreate, principal: CurrentPrincipal, session: SessionDep
) -> LetterQueued:
    """Queue a letter from an approved letter template to the debtor's own address.

    The gate decides on the letter channel; a refused letter is ``queued: false`` with the
    rules. The dispatcher releases queued letters to the day's print file.
    """
    institution = _institution(session, principal)
    result = service.queue_letter(
        session,
        principal=principal,
        institution=institution,
        debtor_id=body.debtor_id,
        template_id=body.template_id,
        account_id=body.account_id,
        day=body.day,
    )
    message = result.message
    return LetterQueued(
        queued=message is not None,
        message_id=message.id if message else None,
        status=str(message.status) if message else None,
        decision_id=(
            message.decision_id if message else result.decision.id if result.decision else None
        ),
        rule_ids=list(result.reasons),
        duplicate=result.duplicate,
    )


@router.get(
    "/batch.pdf",
    response_class=Response,
    dependencies=[Depends(authorize("exports:write"))],
    responses={200: {"content": {"application/pdf": {}}, "description": "The day's letters"}},
)
def print_file(day: PrintDay, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Return every letter released on ``day`` in one PDF, each from a new page (audited)."""
    institution = _institution(session, principal)
    batch = service.print_batch(session, principal=principal, institution=institution, day=day)
    return Response(
        batch.pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{batch.filename}.pdf"',
            **NO_STORE_HEADERS,
        },
    )


@router.get(
    "/manifest.csv",
    response_class=Response,
    dependencies=[Depends(authorize("exports:write"))],
    responses={200: {"content": {"text/csv": {}}, "description": "The print file's manifest"}},
)
def manifest(day: PrintDay, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Return the manifest of ``day``'s print file: one row per letter, no personal data."""
    institution = _institution(session, principal)
    batch = service.print_batch(session, principal=principal, institution=institution, day=day)
    return Response(
        batch.manifest,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{batch.filename}.csv"'},
    )
