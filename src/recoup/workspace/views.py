"""The agent workspace pages: my work (next case and my cases), the case page, log a contact."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from recoup.cases.rules import CaseState
from recoup.contact.channels import Channel
from recoup.contact.rules import OUTCOMES, OutcomeCode
from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.identity.pii import reveal_debtor
from recoup.identity.scoping import institution_scope
from recoup.kit import clock
from recoup.kit.errors import NotFound, RecoupError, ValidationFailed
from recoup.kit.masking import mask_text
from recoup.kit.money import AmountRefused, parse_payable_amount
from recoup.kit.pagination import MAX_PAGE, PageRequest
from recoup.models.institution import Institution
from recoup.plans.rules import Frequency
from recoup.portfolio.rules import BUCKETS
from recoup.scoring import repository as scoring
from recoup.scoring.reasons import Locale, reason_text
from recoup.scoring.views import segment_label
from recoup.scripts import views as scripts_views
from recoup.web import labels
from recoup.web import localization as i18n
from recoup.web.templating import Flash, Viewer, page_url_for, redirect, render, viewer_with
from recoup.workspace import rules, service
from recoup.workspace.repository import CaseFilters

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
WORK = "cases:work"
READ = "cases:read"
Work = Annotated[Viewer, viewer_with(WORK)]
ReadCases = Annotated[Viewer, viewer_with(READ)]
RevealPii = Annotated[Viewer, viewer_with("pii:reveal")]
CsrfChecked = Depends(csrf_protect)
STATE_BADGES = {
    "open": "badge",
    "promised": "badge badge-success",
    "on_plan": "badge badge-success",
    "disputed": "badge badge-warning",
    "paused": "badge badge-warning",
    "escalated": "badge badge-danger",
    "closed": "badge",
}


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    return service.institution_of(session, viewer.principal)


def _local(
    moment: datetime | None, zone_name: str | None, fallback: str, locale: str
) -> dict[str, str] | None:
    """A moment in a zone: its time (HH:MM), its date (ISO, and as the reader's language writes
    it) and the zone, for "next allowed" badges."""
    if moment is None:
        return None
    name = zone_name or fallback
    local = clock.aware(moment).astimezone(clock.zone(name))
    return {
        "time": local.strftime("%H:%M"),
        "day": local.date().isoformat(),
        # Non-breaking spaces: the day (Tue, Dec 8) never breaks over lines.
        "day_label": re.sub(r"\s", "\u00a0", i18n.short_day(local.date(), locale)),
        "zone": name,
    }


def _badge(viewer: Viewer, badge: service.Badge | None, *, today: str) -> dict[str, Any] | None:
    if badge is None:
        return None
    local = _local(badge.next_allowed_at, badge.zone, viewer.timezone, viewer.locale)
    reasons = badge.reasons_zh if viewer.locale.startswith("zh") else badge.reasons_en
    return {
        "channel": str(badge.channel),
        "allowed": badge.allowed,
        "next": local,
        "next_today": local is not None and local["day"] == today,
        "reasons": list(reasons),
    }


def _case_row(
    case: Any, queue: str | None, due: datetime | None, accounts: list[tuple[str, int, str]]
) -> dict[str, Any]:
    buckets = sorted(
        {bucket for bucket, _, _ in accounts},
        key=lambda b: BUCKETS.index(b) if b in BUCKETS else 0,
    )
    currency = accounts[0][2] if accounts else None
    return {
        "id": case.id,
        "debtor_id": case.debtor_id,
        "state": case.state,
        "reason": case.reason,
        "queue": queue,
        "priority": case.priority,
        "expected_recovery": case.expected_recovery,
        "bucket": buckets[-1] if buckets else None,
        "balance": sum(balance for _, balance, _ in accounts),
        "currency": currency,
        "callback_due": clock.aware(due) if due else None,
    }


@router.get("/work", response_class=HTMLResponse)
def my_work(
    viewer: Work,
    session: SessionDep,
    state: Annotated[str, Query(max_length=16)] = "",
    bucket: Annotated[str, Query(max_length=4)] = "",
    queue: Annotated[str, Query(max_length=32)] = "",
    callback_due: Annotated[str, Query(max_length=3)] = "",
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> HTMLResponse:
    """My work: the next case to take and my cases, filtered and paginated."""
    return _work_page(
        viewer,
        session,
        state=state,
        bucket=bucket,
        queue=queue,
        callback_due=callback_due,
        page=page,
        next_found=None,
    )


def _work_page(
    viewer: Viewer,
    session: Session,
    *,
    state: str = "",
    bucket: str = "",
    queue: str = "",
    callback_due: str = "",
    page: int = 1,
    next_found: service.NextCase | None,
) -> HTMLResponse:
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    filters = CaseFilters(
        state=state if state in {str(item) for item in CaseState} else None,
        bucket=bucket if bucket in BUCKETS else None,
        queue=queue.strip().upper() or None,
        callback_due=callback_due in ("1", "yes", "on"),
    )
    result = service.my_cases(
        session, principal=viewer.principal, filters=filters, page=PageRequest(page, PAGE_SIZE)
    )
    buckets = service.case_buckets(session, case_ids=[case.id for case, _, _ in result.items])
    rows = [_case_row(case, code, due, buckets[case.id]) for case, code, due in result.items]
    today = clock.local_today(viewer.timezone, now=service.now()).isoformat()
    skipped = []
    if next_found is not None:
        skipped_buckets = service.case_buckets(
            session, case_ids=[item.case.id for item in next_found.skipped]
        )
        skipped = [
            {
                **_case_row(item.case, None, None, skipped_buckets[item.case.id]),
                "code": item.code,
                "badge": _badge(viewer, item.badge, today=today),
            }
            for item in next_found.skipped
        ]
    context = {
        "cases": rows,
        "page": result,
        "page_url": page_url_for(viewer.request),
        "filters": {
            "state": filters.state or "",
            "bucket": filters.bucket or "",
            "queue": filters.queue or "",
            "callback_due": filters.callback_due,
        },
        "states": [str(item) for item in CaseState],
        "buckets": BUCKETS,
        "queues": service.my_queues(session, principal=viewer.principal),
        "badges": STATE_BADGES,
        "nothing_workable": next_found is not None and next_found.case is None,
        "skipped": skipped,
        "institution": institution,
    }
    return render(viewer, "workspace/work.html", context, active_nav="work")


@router.get("/work/next", response_class=HTMLResponse)
def take_next_case(viewer: Work, session: SessionDep) -> Response:
    """Open my highest-priority case the gate allows calling now (or say none is workable)."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    found = service.next_case(session, principal=viewer.principal, institution=institution)
    if found.case is not None:
        return redirect(f"/cases/{found.case.id}?next=1", request=viewer.request)
    return _work_page(viewer, session, next_found=found)


def _score(
    viewer: Viewer, session: Session, case: Any, accounts: list[Any]
) -> dict[str, Any] | None:
    """The score of the case's account that weighs most: highest priority, then balance."""
    scope = institution_scope(case.institution_id)
    best = None
    for account in accounts:
        score = scoring.latest_account_score(session, principal=scope, account_id=account.id)
        if score is None:
            continue
        key = (score.priority or 0.0, account.balance)
        if best is None or key > best[0]:
            best = (key, score, account)
    if best is None:
        return None
    _, score, account = best
    locale: Locale = "zh" if viewer.locale.startswith("zh") else "en"
    return {
        "account": account.external_id,
        "probability": score.probability,
        "grade": score.grade,
        "segment": score.segment,
        "segment_label": segment_label(viewer, score.segment),
        "priority": score.priority,
        "expected_recovery": score.expected_recovery,
        "currency": score.currency,
        "reasons": [reason_text(code, locale=locale) for code in score.reasons[:3]],
    }


def _timeline_row(entry: rules.TimelineEntry) -> dict[str, Any]:
    row: dict[str, Any] = {"at": entry.at, "kind": str(entry.kind)}
    details = entry.details
    if entry.kind is rules.TimelineKind.CONTACT:
        attempt = details["attempt"]
        point = details["contact_point"]
        row.update(
            channel=attempt.channel,
            direction=attempt.direction,
            status=attempt.status,
            outcome=attempt.outcome,
            actor=attempt.actor,
            contact_point=mask_text(point.value, point.kind) if point is not None else None,
        )
    elif entry.kind is rules.TimelineKind.PROMISE:
        promise = details["promise"]
        row.update(
            status=promise.status,
            amount=promise.amount,
            paid=promise.paid_amount,
            currency=promise.currency,
            due=promise.due_date,
            actor=promise.created_by,
        )
    elif entry.kind is rules.TimelineKind.PLAN:
        plan = details["plan"]
        row.update(
            status=plan.status,
            standing=plan.standing,
            total=plan.total,
            count=plan.instalment_count,
            currency=plan.currency,
            actor=plan.created_by,
        )
    elif entry.kind is rules.TimelineKind.PAYMENT:
        payment = details["payment"]
        # A reversed payment stays on the timeline, marked, so the agent sees why the
        # balance went back up; it counts in no total.
        row.update(
            amount=payment.amount,
            currency=payment.currency,
            account=details["account"],
            status="reversed" if payment.reversed_at is not None else "received",
            reversed_at=payment.reversed_at,
            reversal_reason=payment.reversal_reason,
        )
    elif entry.kind is rules.TimelineKind.CASE:
        event = details["event"]
        row.update(
            event=event.event,
            from_state=event.from_state,
            to_state=event.to_state,
            note=event.note,
            actor=event.actor,
        )
    elif entry.kind is rules.TimelineKind.NOTE:
        note = details["note"]
        row.update(body=note.body, actor=note.actor)
    else:
        task = details["task"]
        row.update(
            task_kind=task.kind, due_at=task.due_at, done_at=task.done_at, actor=task.created_by
        )
    return row


def _form_defaults() -> dict[str, str]:
    return {
        "channel": "call",
        "outcome": "",
        "contact_point_id": "",
        "account_id": "",
        "note": "",
        "inbound": "",
        "promise_amount": "",
        "promise_due": "",
        "plan_instalments": "",
        "plan_start": "",
        "plan_frequency": "monthly",
        "callback_at": "",
        "script_id": "",
    }


def _case_page(
    viewer: Viewer,
    session: Session,
    case_id: int,
    *,
    timeline: int | None = None,
    form: dict[str, str] | None = None,
    error: str = "",
    error_field: str = "",
    revealed: Any = None,
    reveal_error: str = "",
    from_next: bool = False,
    status_code: int = 200,
    partial: bool = False,
) -> HTMLResponse:
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    view = service.case_view(
        session,
        principal=viewer.principal,
        institution=institution,
        case_id=case_id,
        timeline_limit=timeline,
    )
    today = clock.local_today(viewer.timezone, now=service.now()).isoformat()
    debtor = view.debtor
    points = [
        {
            "id": item.contact_point.id,
            "kind": str(item.contact_point.kind),
            "value": mask_text(item.contact_point.value, item.contact_point.kind),
            "relation": str(item.contact_point.relation),
            "third_party": item.contact_point.third_party,
            "status": str(item.contact_point.status),
            "source": str(item.contact_point.source),
            "badges": [_badge(viewer, badge, today=today) for badge in item.badges],
        }
        for item in view.contact_points
    ]
    context: dict[str, Any] = {
        "case": view.case,
        "debtor": {
            "id": debtor.id,
            "external_id": debtor.external_id,
            "name": mask_text(debtor.name, "name"),
            "national_id": mask_text(debtor.national_id, "national_id")
            if debtor.national_id
            else None,
            "region": " ".join(part for part in (debtor.province, debtor.city) if part),
            "timezone": debtor.timezone,
            "language": debtor.language,
        },
        "accounts": view.accounts,
        "contact_points": points,
        "can_reveal": viewer.allows("pii:reveal"),
        "revealed": revealed,
        "reveal_error": reveal_error,
        "score": _score(viewer, session, view.case, view.accounts),
        "priority_rank": service.priority_rank(session, case=view.case),
        "timeline": [_timeline_row(entry) for entry in view.timeline],
        "timeline_more": view.more,
        "timeline_next": view.timeline_limit + rules.TIMELINE_STEP,
        "open_tasks": view.open_tasks,
        "strategy": view.strategy,
        "badges": STATE_BADGES,
        "can_work": viewer.allows(WORK) and view.case.state != CaseState.CLOSED,
        "channels": [str(channel) for channel in rules.log_channels()],
        "outcomes": [{"code": str(code), "meaning": meaning} for code, meaning in OUTCOMES.items()],
        "frequencies": [str(item) for item in Frequency],
        "form": form or _form_defaults(),
        "error": error,
        "error_field": error_field,
        "from_next": from_next,
        "last_outcome": next(
            (row.details["attempt"].outcome for row in view.timeline if row.kind == "contact"),
            None,
        ),
        "today": today,
    }
    if not partial and viewer.allows("templates:read"):
        context["script_panel"] = scripts_views.suggestion_context(
            viewer,
            session,
            case_id=view.case.id,
            selected_script_id=context["form"]["script_id"],
            can_work=context["can_work"],
        )
    if partial:
        return render(viewer, "cases/_pii.html", context, partial=True, status_code=status_code)
    return render(viewer, "cases/detail.html", context, active_nav="work", status_code=status_code)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    viewer: ReadCases,
    session: SessionDep,
    case_id: RowId,
    timeline: Annotated[int | None, Query(ge=1, le=rules.TIMELINE_MAX)] = None,
    next: Annotated[str, Query(max_length=1)] = "",
) -> HTMLResponse:
    """One case: debtor (masked), accounts, score, contact points with the gate's badges,
    the timeline, the suggested script and the form to log a contact."""
    return _case_page(viewer, session, case_id, timeline=timeline, from_next=next == "1")


@router.post("/cases/{case_id}/reveal", response_class=HTMLResponse, dependencies=[CsrfChecked])
def reveal(
    viewer: RevealPii,
    session: SessionDep,
    case_id: RowId,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> HTMLResponse:
    """Show the case's debtor in the clear once a reason is given (audited, as elsewhere)."""
    assert viewer.principal is not None
    case = service.load_case(session, principal=viewer.principal, case_id=case_id)
    partial = viewer.request.headers.get("hx-request") == "true"
    try:
        revealed = reveal_debtor(
            session, principal=viewer.principal, debtor_id=case.debtor_id, reason=reason
        )
    except ValidationFailed:
        return _case_page(
            viewer,
            session,
            case_id,
            reveal_error=viewer.text("pii.reason_required"),
            status_code=422,
            partial=partial,
        )
    values = {
        "name": revealed.debtor.name,
        "national_id": revealed.debtor.national_id,
        "contacts": {point.id: point.value for point in revealed.contact_points},
    }
    return _case_page(viewer, session, case_id, revealed=values, partial=partial)


def _parse_form(form: dict[str, str], *, currency: str, zone: str) -> service.ContactForm:
    """Read the posted contact form; a bad field raises ``rules.FormProblem`` naming it."""
    try:
        channel = Channel(form["channel"])
    except ValueError:
        raise rules.FormProblem("channel", "unknown", "choose a channel") from None
    try:
        outcome = OutcomeCode(form["outcome"])
    except ValueError:
        raise rules.FormProblem("outcome", "unknown", "choose an outcome") from None

    def number(name: str, *, largest: int = 2**63 - 1) -> int | None:
        text = form[name].strip()
        if not text:
            return None
        if not text.isdigit() or not 0 < int(text) <= largest:
            raise rules.FormProblem(name, "invalid", f"{name}: give a whole number")
        return int(text)

    def day(name: str) -> date | None:
        text = form[name].strip()
        if not text:
            return None
        try:
            return clock.supported_day(date.fromisoformat(text))
        except ValueError:
            raise rules.FormProblem(
                name, "invalid", f"{name}: give a date like 2026-12-31"
            ) from None

    amount = None
    if form["promise_amount"].strip():
        try:
            amount = parse_payable_amount(form["promise_amount"].strip(), currency)
        except AmountRefused as error:
            raise rules.FormProblem("promise_amount", "invalid", str(error)) from None
    callback_at = None
    if form["callback_at"].strip():
        try:
            naive = datetime.fromisoformat(form["callback_at"].strip())
        except ValueError:
            raise rules.FormProblem(
                "callback_at", "invalid", "callback_at: give a time like 2026-12-31T10:30"
            ) from None
        callback_at = clock.as_utc(
            naive.replace(tzinfo=clock.zone(zone)) if naive.tzinfo is None else naive
        )
    frequency = form["plan_frequency"]
    return service.ContactForm(
        channel=channel,
        outcome=outcome,
        inbound=form["inbound"] in ("1", "on", "yes"),
        contact_point_id=number("contact_point_id"),
        account_id=number("account_id"),
        note=form["note"].strip() or None,
        promise_amount=amount,
        promise_due=day("promise_due"),
        plan_instalments=number("plan_instalments", largest=1000),
        plan_start=day("plan_start"),
        plan_frequency=Frequency(frequency)
        if frequency in {str(item) for item in Frequency}
        else Frequency.MONTHLY,
        callback_at=callback_at,
        script_id=number("script_id"),
    )


@router.post("/cases/{case_id}/contacts", response_class=HTMLResponse, dependencies=[CsrfChecked])
def log_contact(
    viewer: Work,
    session: SessionDep,
    case_id: RowId,
    channel: Annotated[str, Form(max_length=16)] = "call",
    outcome: Annotated[str, Form(max_length=24)] = "",
    contact_point_id: Annotated[str, Form(max_length=20)] = "",
    account_id: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    inbound: Annotated[str, Form(max_length=3)] = "",
    promise_amount: Annotated[str, Form(max_length=32)] = "",
    promise_due: Annotated[str, Form(max_length=10)] = "",
    plan_instalments: Annotated[str, Form(max_length=4)] = "",
    plan_start: Annotated[str, Form(max_length=10)] = "",
    plan_frequency: Annotated[str, Form(max_length=16)] = "monthly",
    callback_at: Annotated[str, Form(max_length=32)] = "",
    script_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Log a contact with its outcome, note and optional promise, plan or call-back (one save),
    and the call script used."""
    assert viewer.principal is not None
    case = service.load_case(session, principal=viewer.principal, case_id=case_id)
    institution = _institution(session, viewer)
    form = {
        "channel": channel,
        "outcome": outcome,
        "contact_point_id": contact_point_id,
        "account_id": account_id,
        "note": note,
        "inbound": inbound,
        "promise_amount": promise_amount,
        "promise_due": promise_due,
        "plan_instalments": plan_instalments,
        "plan_start": plan_start,
        "plan_frequency": plan_frequency,
        "callback_at": callback_at,
        "script_id": script_id,
    }
    try:
        parsed = _parse_form(form, currency=institution.currency, zone=viewer.timezone)
        logged = service.log_contact(
            session,
            principal=viewer.principal,
            institution=institution,
            case_id=case.id,
            form=replace(parsed, locale=viewer.locale),
        )
    except rules.FormProblem as problem:
        session.rollback()
        return _case_page(
            viewer,
            session,
            case_id,
            form=form,
            error=viewer.text(
                "workspace.log.invalid",
                field=labels.field_name(problem.field, viewer.locale),
                detail=str(problem),
            ),
            error_field=problem.field,
            status_code=422,
        )
    except NotFound:
        raise
    except RecoupError as error:
        session.rollback()
        field = ""
        errors = error.extra.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            field = str(errors[0].get("field", ""))
        return _case_page(
            viewer,
            session,
            case_id,
            form=form,
            error=labels.refusal(error, viewer.locale),
            error_field=field,
            status_code=422,
        )
    params = {"outcome": viewer.text(f"contact_log.outcome.{logged.attempt.outcome}")}
    message = Flash("workspace.log.saved", params=params)
    if logged.callback is not None:
        local = _local(logged.callback.due_at, None, viewer.timezone, viewer.locale)
        assert local is not None
        key = "workspace.log.callback_moved" if logged.callback_moved else "workspace.log.callback"
        message = Flash(key, params={**params, "time": f"{local['day_label']} {local['time']}"})
    if logged.violations:
        message = Flash("workspace.log.flagged", level="warning", params=params)
    return redirect(f"/cases/{case.id}", request=viewer.request, message=message)
