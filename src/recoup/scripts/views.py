"""The script library page: approved call scripts by situation, in Chinese or English, and
how each script's conversations turned out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from recoup.deps import SessionDep
from recoup.enums import ScriptSituation
from recoup.institutions import repository as institutions_repository
from recoup.kit import clock
from recoup.scripts import service
from recoup.scripts.api import DEFAULT_PERIOD_DAYS
from recoup.scripts.rules import Answered
from recoup.web.templating import Viewer, render, viewer_with

router = APIRouter(include_in_schema=False)

ReadScripts = Annotated[Viewer, viewer_with("templates:read")]
WorkCases = Annotated[Viewer, viewer_with("cases:work")]


def percent(rate: float | None) -> str:
    """Show a rate as a whole percentage, or a dash when there is nothing to divide."""
    return "—" if rate is None else f"{rate:.0%}"


@router.get("/scripts", response_class=HTMLResponse)
def script_library(
    viewer: ReadScripts,
    session: SessionDep,
    locale: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """List the approved scripts by situation in one language, and the comparison by script."""
    assert viewer.principal is not None
    institution = institutions_repository.require_callers(
        session, viewer.principal.institution_id, what="scripts"
    )
    if locale not in service.SCRIPT_LOCALES:
        locale = "zh-CN" if viewer.locale == "zh-CN" else "en-US"
    found = service.library(session, institution_id=institution.id, locale=locale)
    until = clock.local_today(institution.timezone) + timedelta(days=1)
    since = until - timedelta(days=DEFAULT_PERIOD_DAYS)
    performance = [
        {
            "script": row.script,
            "outcomes": row.outcomes,
            "promise_rate": percent(row.rates.promise_rate),
            "kept_rate": percent(row.rates.kept_rate),
        }
        for row in service.script_performance(
            session, institution_id=institution.id, since=since, until=until
        )
        if row.outcomes.attempts
    ]
    context: dict[str, Any] = {
        "locale_shown": locale,
        "locales": service.SCRIPT_LOCALES,
        "sections": [
            {
                "situation": situation.value,
                "scripts": [
                    {"script": script, "guidance": service.guidance_points(script.guidance)}
                    for script in found[situation]
                ],
            }
            for situation in ScriptSituation
        ],
        "approved": sum(len(scripts) for scripts in found.values()),
        "performance": performance,
        "period_days": DEFAULT_PERIOD_DAYS,
    }
    return render(viewer, "scripts/library.html", context, active_nav="scripts")


def suggestion_context(
    viewer: Viewer,
    session: Session,
    *,
    case_id: int,
    answered: Answered | None = None,
    locale: str = "",
    selected_script_id: str = "",
    can_work: bool = True,
) -> dict[str, Any]:
    """Return what the case page's script panel shows: the suggestion rendered for the case,
    its guidance and the approved scripts the agent may pick instead for the contact form
    (``selected_script_id``: the one a refused form had chosen; else the suggestion's)."""
    assert viewer.principal is not None
    institution = institutions_repository.require_callers(
        session, viewer.principal.institution_id, what="cases"
    )
    if locale not in service.SCRIPT_LOCALES:
        locale = "zh-CN" if viewer.locale == "zh-CN" else "en-US"
    suggestion = service.suggest_script(
        session,
        institution_id=institution.id,
        case_id=case_id,
        locale=locale,
        answered=answered,
        agent_name=viewer.display_name or viewer.principal.username,
        principal=viewer.principal,
    )
    library = service.library(session, institution_id=institution.id, locale=locale)
    chosen = suggestion.script.id if suggestion.script else None
    if selected_script_id.isdigit():
        chosen = int(selected_script_id)
    return {
        "suggestion": suggestion,
        "chosen_script_id": chosen,
        "can_work": can_work,
        "answered": answered.value if answered else "",
        "answered_options": [option.value for option in Answered],
        "script_locale": locale,
        "script_choices": [
            {"situation": situation.value, "script": script}
            for situation, scripts in library.items()
            for script in scripts
        ],
    }


@router.get("/cases/{case_id}/script", response_class=HTMLResponse)
def script_suggestion(
    viewer: WorkCases,
    session: SessionDep,
    case_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    answered: Answered | None = None,
    locale: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """The case page's script panel: the suggested script and its guidance (HTMX partial)."""
    context = suggestion_context(viewer, session, case_id=case_id, answered=answered, locale=locale)
    return render(viewer, "scripts/_suggestion.html", context, partial=True)
