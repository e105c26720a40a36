"""Call script routes: the approved library, one script, a case's suggestion, the comparison."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from recoup.deps import SessionDep
from recoup.enums import ScriptSituation
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.institutions import repository as institutions_repository
from recoup.kit.clock import local_today
from recoup.kit.schemas import Day
from recoup.models.compliance import MessageTemplate
from recoup.scripts import service
from recoup.scripts.rules import Answered
from recoup.scripts.schemas import ScriptPerformanceRead, ScriptRead, ScriptSuggestionRead

router = APIRouter(prefix="/api/v1", tags=["scripts"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
READ = "templates:read"
# The comparison's default period: the last 90 days.
DEFAULT_PERIOD_DAYS = 90


def script_read(script: MessageTemplate) -> ScriptRead:
    """Return the API shape of a script, its guidance split into points."""
    return ScriptRead(
        id=script.id,
        name=script.name,
        situation=script.situation,
        locale=script.locale,
        audience=script.audience,
        channel=script.channel,
        body=script.body,
        guidance=service.guidance_points(script.guidance),
        status=script.status,
        re_review_on=script.re_review_on,
    )


@router.get("/scripts", response_model=list[ScriptRead], dependencies=[Depends(authorize(READ))])
def list_scripts(
    principal: CurrentPrincipal,
    session: SessionDep,
    situation: ScriptSituation | None = None,
    locale: Annotated[str | None, Query(max_length=16)] = None,
) -> list[ScriptRead]:
    """List the approved call scripts, optionally of one situation and language."""
    institution = institutions_repository.require_callers(
        session, principal.institution_id, what="scripts"
    )
    found = service.library(session, institution_id=institution.id, locale=locale)
    return [
        script_read(script)
        for key, scripts in found.items()
        if situation is None or key == situation
        for script in scripts
    ]


@router.get(
    "/scripts/performance",
    response_model=list[ScriptPerformanceRead],
    dependencies=[Depends(authorize(READ))],
)
def script_performance(
    principal: CurrentPrincipal,
    session: SessionDep,
    since: Day | None = None,
    until: Day | None = None,
) -> list[ScriptPerformanceRead]:
    """Compare scripts by their contacts: promise, kept, dispute and complaint rates.

    The period is ``since`` up to ``until`` (exclusive); by default the last 90 days.
    """
    institution = institutions_repository.require_callers(
        session, principal.institution_id, what="scripts"
    )
    end = until or local_today(institution.timezone) + timedelta(days=1)
    start = since or end - timedelta(days=DEFAULT_PERIOD_DAYS)
    rows = service.script_performance(
        session, institution_id=institution.id, since=start, until=end
    )
    return [
        ScriptPerformanceRead(
            script_id=row.script.id,
            name=row.script.name,
            situation=row.script.situation,
            locale=row.script.locale,
            status=row.script.status,
            attempts=row.outcomes.attempts,
            right_party=row.outcomes.right_party,
            promises=row.outcomes.promises,
            promises_resolved=row.outcomes.promises_resolved,
            promises_kept=row.outcomes.promises_kept,
            disputes=row.outcomes.disputes,
            complaints=row.outcomes.complaints,
            promise_rate=row.rates.promise_rate,
            kept_rate=row.rates.kept_rate,
            dispute_rate=row.rates.dispute_rate,
            complaint_rate=row.rates.complaint_rate,
        )
        for row in rows
    ]


@router.get(
    "/scripts/suggestion",
    response_model=ScriptSuggestionRead,
    dependencies=[Depends(authorize("cases:work"))],
)
def suggest_script(
    principal: CurrentPrincipal,
    session: SessionDep,
    case_id: Annotated[int, Query(ge=1, le=2**63 - 1)],
    locale: Annotated[str, Query(max_length=16)] = "zh-CN",
    answered: Answered | None = None,
    last_outcome: Annotated[str | None, Query(max_length=24)] = None,
) -> ScriptSuggestionRead:
    """Suggest the approved script for a case, rendered for it, with its guidance.

    ``answered`` says who picked up (debtor, third_party, wrong_number); ``last_outcome``
    overrides the debtor's last outcome from the contact log.
    """
    institution = institutions_repository.require_callers(
        session, principal.institution_id, what="cases"
    )
    suggestion = service.suggest_script(
        session,
        institution_id=institution.id,
        case_id=case_id,
        locale=locale,
        answered=answered,
        last_outcome=last_outcome,
        agent_name=principal.username,
        principal=principal,
    )
    return ScriptSuggestionRead(
        case_id=suggestion.case_id,
        situation=suggestion.situation.value,
        reason=suggestion.reason.value,
        locale=suggestion.locale,
        script_id=suggestion.script.id if suggestion.script else None,
        script_name=suggestion.script.name if suggestion.script else None,
        text=suggestion.text,
        guidance=suggestion.guidance,
        missing=suggestion.missing,
        problem=suggestion.problem,
    )


@router.get(
    "/scripts/{script_id}", response_model=ScriptRead, dependencies=[Depends(authorize(READ))]
)
def get_script(script_id: RowId, principal: CurrentPrincipal, session: SessionDep) -> ScriptRead:
    """Return one call script of the institution, whatever its review state."""
    institution = institutions_repository.require_callers(
        session, principal.institution_id, what="scripts"
    )
    return script_read(
        service.get_script(session, institution_id=institution.id, script_id=script_id)
    )
