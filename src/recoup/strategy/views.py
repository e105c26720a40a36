"""Strategy pages: the list, the editor (document, findings by line, today's segment counts,
each treatment path as a flow), activation, and experiment results with intervals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.identity.scoping import get_scoped
from recoup.institutions import repository as institutions
from recoup.kit.errors import RecoupError
from recoup.kit.pagination import MAX_PAGE, PageRequest
from recoup.models.account import Account
from recoup.models.institution import Institution
from recoup.models.strategy import Strategy, StrategyVersion
from recoup.strategy import repository, rules, service
from recoup.strategy.api import MANAGE, READ
from recoup.strategy.document import (
    MAX_DOCUMENT_CHARS,
    AllOf,
    AnyOf,
    NotOf,
    Predicate,
    StrategyEvent,
)
from recoup.strategy.experiments import Significance
from recoup.strategy.presets import PRESETS
from recoup.strategy.validation import Finding
from recoup.web import labels
from recoup.web.templating import Flash, Viewer, page_url_for, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

ReadStrategies = Annotated[Viewer, viewer_with(READ)]
ReadAccounts = Annotated[Viewer, viewer_with("accounts:read")]
ManageStrategies = Annotated[Viewer, viewer_with(MANAGE)]
CsrfChecked = Depends(csrf_protect)
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]
PAGE_SIZE = 25
STATUS_BADGES = {
    "draft": "badge badge-warning",
    "active": "badge badge-success",
    "retired": "badge",
}
SIGNIFICANCE_BADGES = {
    Significance.BASELINE: "badge",
    Significance.SIGNIFICANT: "badge badge-success",
    Significance.NOT_YET: "badge badge-warning",
    Significance.NO_DATA: "badge",
}


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    return institutions.require_callers(session, viewer.principal.institution_id, what="strategies")


def _strategy(session: Session, viewer: Viewer, strategy_id: int) -> Strategy:
    assert viewer.principal is not None
    return get_scoped(session, Strategy, strategy_id, viewer.principal)


@router.get("/strategies", response_class=HTMLResponse)
def strategies_page(
    viewer: ReadStrategies,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> HTMLResponse:
    """The institution's strategies, and a form to start one from a preset."""
    institution = _institution(session, viewer)
    result = service.list_strategies(
        session, institution_id=institution.id, page=PageRequest(page, PAGE_SIZE)
    )
    rows = []
    for strategy in result.items:
        versions = service.versions_of(session, strategy=strategy)
        active = next((v for v in versions if v.status == service.ACTIVE), None)
        rows.append((strategy, versions[0] if versions else None, active))
    context: dict[str, Any] = {
        "rows": rows,
        "result": result,
        "page_url": page_url_for(viewer.request),
        "badges": STATUS_BADGES,
        "presets": PRESETS,
        "default_preset": str(institution.preset) if str(institution.preset) in PRESETS else "",
        "can_manage": viewer.allows(MANAGE),
    }
    return render(viewer, "strategy/index.html", context, active_nav="strategies")


@router.post("/strategies", response_class=HTMLResponse, dependencies=[CsrfChecked])
def create_strategy(
    viewer: ManageStrategies,
    session: SessionDep,
    code: Annotated[str, Form(max_length=64)],
    name: Annotated[str, Form(max_length=128)],
    preset: Annotated[str, Form(max_length=32)],
) -> Response:
    """Copy a preset into a new strategy and open its editor."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    try:
        strategy, _ = service.create_strategy(
            session,
            institution=institution,
            code=code,
            name=name,
            preset=preset,
            actor=viewer.principal.actor,
        )
    except RecoupError as error:
        return _refused(viewer, "/strategies", error)
    return redirect(
        f"/strategies/{strategy.id}",
        request=viewer.request,
        message=Flash("strategy.created", params={"code": strategy.code}),
    )


def _refused(viewer: Viewer, path: str, error: RecoupError) -> Response:
    return redirect(
        path,
        request=viewer.request,
        message=Flash(
            "strategy.refused",
            level="error",
            params={"message": labels.refusal(error, viewer.locale, lead=False)},
        ),
    )


def _flows(compiled: rules.CompiledStrategy) -> list[dict[str, Any]]:
    """Each segment's paths as boxes: day steps in order, triggered steps, exits."""
    flows = []
    for segment in compiled.segments:
        paths = []
        for arm, path in segment.paths.items():
            day_steps = [compiled.steps[index] for index in path.step_indexes]
            triggered = [compiled.steps[index] for index in path.trigger_steps.values()]
            paths.append({"arm": arm, "steps": day_steps, "triggered": triggered})
        exits = [
            {"step": compiled.steps[index], "condition": _condition_text(condition)}
            for condition, index in segment.exits
        ]
        flows.append(
            {
                "code": segment.code,
                "name": segment.name,
                "when": _condition_text(segment.when) if segment.when is not None else None,
                "paths": paths,
                "exits": exits,
            }
        )
    return flows


_OPS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥", "in": "∈"}


def _condition_text(condition: Any) -> str:
    """A condition in symbols (field names stay codes: they are what the document says)."""
    if isinstance(condition, Predicate):
        value = condition.value
        if condition.op == "between" and isinstance(value, list):
            return f"{value[0]} ≤ {condition.field} ≤ {value[1]}"
        shown = "[" + ", ".join(str(v) for v in value) + "]" if isinstance(value, list) else value
        return f"{condition.field} {_OPS[condition.op]} {shown}"
    if isinstance(condition, AllOf):
        return " ∧ ".join(f"({_condition_text(part)})" for part in condition.all)
    if isinstance(condition, AnyOf):
        return " ∨ ".join(f"({_condition_text(part)})" for part in condition.any)
    assert isinstance(condition, NotOf)
    return f"¬({_condition_text(condition.not_)})"


def _finding_text(viewer: Viewer, finding: Finding) -> Markup:
    """A finding in the reader's language; codes and names from the document stay as written."""
    params = {
        name: Markup('<span class="mono" translate="no">{}</span>').format(value)
        for name, value in finding.params.items()
    }
    return Markup(viewer.text(f"strategy.finding.{finding.code}", **params))


def _editor(
    viewer: Viewer,
    session: Session,
    strategy: Strategy,
    version: StrategyVersion,
    *,
    document: str | None = None,
    status_code: int = 200,
    checked: bool = False,
) -> HTMLResponse:
    institution = _institution(session, viewer)
    text = version.document if document is None else document
    check = service.check_document(session, institution=institution, document=text)
    versions = service.versions_of(session, strategy=strategy)
    latest = versions[0]
    context: dict[str, Any] = {
        "strategy": strategy,
        "version": version,
        "versions": versions,
        "latest": latest,
        "document": text,
        "max_chars": MAX_DOCUMENT_CHARS,
        "check": check,
        "checked": checked,
        "flows": _flows(check.compiled) if check.compiled else [],
        "badges": STATUS_BADGES,
        "can_manage": viewer.allows(MANAGE),
        "can_activate": (
            viewer.allows(MANAGE)
            and version.status == service.DRAFT
            and document is None
            and check.can_activate
        ),
        "has_experiments": bool(
            check.compiled and any(s.experiment for s in check.compiled.segments)
        ),
        "errors": [f for f in check.findings if f.severity.value == "error"],
        "warnings": [f for f in check.findings if f.severity.value == "warning"],
        "finding_text": lambda finding: _finding_text(viewer, finding),
    }
    return render(
        viewer, "strategy/editor.html", context, active_nav="strategies", status_code=status_code
    )


@router.get("/strategies/{strategy_id}", response_class=HTMLResponse)
def strategy_page(
    viewer: ReadStrategies,
    session: SessionDep,
    strategy_id: RowId,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> HTMLResponse:
    """The editor: a version's document, its findings by line, today's counts and its flows."""
    strategy = _strategy(session, viewer, strategy_id)
    row = service.get_version(session, strategy=strategy, number=version)
    return _editor(viewer, session, strategy, row)


@router.post(
    "/strategies/{strategy_id}/check", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def check_page(
    viewer: ReadStrategies,
    session: SessionDep,
    strategy_id: RowId,
    document: Annotated[str, Form(max_length=MAX_DOCUMENT_CHARS)],
) -> HTMLResponse:
    """Check the edited text without saving it."""
    strategy = _strategy(session, viewer, strategy_id)
    row = service.get_version(session, strategy=strategy)
    return _editor(viewer, session, strategy, row, document=document, checked=True)


@router.post(
    "/strategies/{strategy_id}/draft", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def save_page(
    viewer: ManageStrategies,
    session: SessionDep,
    strategy_id: RowId,
    document: Annotated[str, Form(max_length=MAX_DOCUMENT_CHARS)],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Save the text as the draft; a text that does not read stays in the editor with its lines."""
    assert viewer.principal is not None
    strategy = _strategy(session, viewer, strategy_id)
    institution = _institution(session, viewer)
    try:
        draft = service.save_draft(
            session,
            institution=institution,
            strategy=strategy,
            document=document,
            note=note.strip() or None,
            actor=viewer.principal.actor,
        )
    except RecoupError:
        row = service.get_version(session, strategy=strategy)
        return _editor(
            viewer, session, strategy, row, document=document, status_code=422, checked=True
        )
    return redirect(
        f"/strategies/{strategy.id}?version={draft.version}",
        request=viewer.request,
        message=Flash("strategy.saved", params={"version": str(draft.version)}),
    )


@router.post(
    "/strategies/{strategy_id}/versions/{version}/activate",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def activate_page(
    viewer: ManageStrategies, session: SessionDep, strategy_id: RowId, version: VersionNumber
) -> Response:
    """Put a version in force (audited)."""
    assert viewer.principal is not None
    strategy = _strategy(session, viewer, strategy_id)
    institution = _institution(session, viewer)
    path = f"/strategies/{strategy.id}?version={version}"
    try:
        service.activate(
            session,
            institution=institution,
            strategy=strategy,
            number=version,
            actor=viewer.principal.actor,
        )
    except RecoupError as error:
        return _refused(viewer, path, error)
    return redirect(
        path,
        request=viewer.request,
        message=Flash("strategy.activated", params={"version": str(version)}),
    )


@router.get("/strategies/{strategy_id}/experiments", response_class=HTMLResponse)
def experiments_page(
    viewer: ReadStrategies,
    session: SessionDep,
    strategy_id: RowId,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> HTMLResponse:
    """Each experiment's arms: rates with 95% intervals, significance and the sample needed."""
    strategy = _strategy(session, viewer, strategy_id)
    institution = _institution(session, viewer)
    versions = service.versions_of(session, strategy=strategy)
    chosen = (
        service.get_version(session, strategy=strategy, number=version)
        if version
        else next((v for v in versions if v.status == service.ACTIVE), versions[0])
    )
    reports = service.experiment_results(session, institution=institution, version=chosen)
    charts = []
    for report in reports:
        arms = [arm.arm for arm in report.arms]
        charts.append(
            {
                "x": arms,
                "y_name": viewer.text("strategy.results.recovery_rate"),
                "percent": True,
                "series": [
                    {
                        "name": viewer.text("strategy.results.recovery_rate"),
                        "type": "bar",
                        "data": [round(a.recovery_rate.value * 100, 1) for a in report.arms],
                    },
                    {
                        "name": viewer.text("strategy.results.low"),
                        "dashed": True,
                        "data": [round(a.recovery_rate.low * 100, 1) for a in report.arms],
                    },
                    {
                        "name": viewer.text("strategy.results.high"),
                        "dashed": True,
                        "data": [round(a.recovery_rate.high * 100, 1) for a in report.arms],
                    },
                ],
            }
        )
    context: dict[str, Any] = {
        "strategy": strategy,
        "version": chosen,
        "versions": versions,
        "reports": list(zip(reports, charts, strict=True)),
        "badges": SIGNIFICANCE_BADGES,
        "can_manage": viewer.allows(MANAGE),
        "champion": rules.CHAMPION,
    }
    return render(viewer, "strategy/experiments.html", context, active_nav="strategies")


@router.post(
    "/strategies/{strategy_id}/promote", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def promote_page(
    viewer: ManageStrategies,
    session: SessionDep,
    strategy_id: RowId,
    segment: Annotated[str, Form(max_length=32)],
    arm: Annotated[str, Form(max_length=32)],
) -> Response:
    """Make a challenger its segment's champion in a new draft (audited)."""
    assert viewer.principal is not None
    strategy = _strategy(session, viewer, strategy_id)
    institution = _institution(session, viewer)
    try:
        draft = service.promote_challenger(
            session,
            institution=institution,
            strategy=strategy,
            segment=segment,
            arm=arm,
            actor=viewer.principal.actor,
        )
    except RecoupError as error:
        return _refused(viewer, f"/strategies/{strategy.id}/experiments", error)
    return redirect(
        f"/strategies/{strategy.id}?version={draft.version}",
        request=viewer.request,
        message=Flash("strategy.promoted", params={"arm": arm, "version": str(draft.version)}),
    )


@router.get("/accounts/{account_id}/strategy", response_class=HTMLResponse)
def account_strategy_panel(
    viewer: ReadAccounts, session: SessionDep, account_id: RowId
) -> HTMLResponse:
    """The step the account's case is on and why (loaded into the account page)."""
    assert viewer.principal is not None
    account = get_scoped(session, Account, account_id, viewer.principal)
    case_id = repository.live_case_of_debtor(
        session, institution_id=account.institution_id, debtor_id=account.debtor_id
    )
    view = (
        service.case_strategy(session, institution_id=account.institution_id, case_id=case_id)
        if case_id is not None
        else None
    )
    strategy = session.get(Strategy, view.version.strategy_id) if view and view.version else None
    context: dict[str, Any] = {
        "view": view,
        "strategy": strategy,
        "events": {event.value for event in StrategyEvent},
    }
    return render(viewer, "strategy/_case_panel.html", context, partial=True)
