"""The promises panel of the account page: list with status, record a promise, cancel one."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import HTMLResponse, Response

from recoup.deps import SessionDep
from recoup.enums import FINISHED_STATUSES
from recoup.identity.dependencies import csrf_protect
from recoup.identity.scoping import get_scoped
from recoup.kit.errors import Conflict, RecoupError, ValidationFailed
from recoup.kit.money import AmountRefused, parse_payable_amount
from recoup.kit.pagination import PageRequest
from recoup.models.account import Account
from recoup.models.institution import Institution
from recoup.models.workbench import Promise
from recoup.web.templating import Flash, Viewer, redirect, render, viewer_with
from recoup.workbench import rules, service
from recoup.workbench.api import WRITE

router = APIRouter(include_in_schema=False)

PANEL_SIZE = 20
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ReadAccounts = Annotated[Viewer, viewer_with("accounts:read")]
WritePromises = Annotated[Viewer, viewer_with(WRITE)]
CsrfChecked = Depends(csrf_protect)
STATUS_BADGES = {
    "pending": "badge",
    "kept": "badge badge-success",
    "partially_kept": "badge badge-warning",
    "broken": "badge badge-danger",
    "cancelled": "badge",
}


def _panel(
    viewer: Viewer,
    session: SessionDep,
    account: Account,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    institution = session.get(Institution, account.institution_id)
    assert institution is not None
    today = service.local_today(institution)
    try:
        horizon = service.promise_settings(institution).horizon_days
    except ValidationFailed:
        horizon = rules.DEFAULT_HORIZON_DAYS
    page = service.account_promises(
        session,
        institution_id=institution.id,
        account_id=account.id,
        page=PageRequest(1, PANEL_SIZE),
    )
    can_write = viewer.allows(WRITE)
    has_pending = any(promise.status == rules.PENDING for promise in page.items)
    context: dict[str, Any] = {
        "account": account,
        "promises": [_row(promise) for promise in page.items],
        "total": page.total,
        "can_write": can_write,
        "show_form": can_write and not has_pending and account.status not in FINISHED_STATUSES,
        "channels": rules.CHANNELS,
        "today": today.isoformat(),
        "latest_due": (today + timedelta(days=horizon)).isoformat(),
        "form": form
        or {"amount": "", "due_date": (today + timedelta(days=7)).isoformat(), "channel": "call"},
        "errors": errors or {},
        "message": message,
    }
    return render(
        viewer, "workbench/_promises.html", context, partial=True, status_code=status_code
    )


def _row(promise: Promise) -> dict[str, Any]:
    return {
        "id": promise.id,
        "amount": promise.amount,
        "paid_amount": promise.paid_amount,
        "currency": promise.currency,
        "promised_on": promise.promised_on,
        "due_date": promise.due_date,
        "channel": str(promise.channel),
        "status": str(promise.status),
        "badge": STATUS_BADGES.get(str(promise.status), "badge"),
        "note": promise.note,
    }


def _is_htmx(viewer: Viewer) -> bool:
    return viewer.request.headers.get("hx-request") == "true"


@router.get("/accounts/{account_id}/promises", response_class=HTMLResponse)
def promises_panel(viewer: ReadAccounts, session: SessionDep, account_id: RowId) -> HTMLResponse:
    """Show an account's promises (loaded into the account page)."""
    assert viewer.principal is not None
    account = get_scoped(session, Account, account_id, viewer.principal)
    return _panel(viewer, session, account)


@router.post(
    "/accounts/{account_id}/promises", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def record_promise(
    viewer: WritePromises,
    session: SessionDep,
    account_id: RowId,
    amount: Annotated[str, Form(max_length=32)] = "",
    due_date: Annotated[str, Form(max_length=10)] = "",
    channel: Annotated[str, Form(max_length=16)] = "call",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Record a promise from the panel's form; problems are shown next to their fields."""
    assert viewer.principal is not None
    account = get_scoped(session, Account, account_id, viewer.principal)
    institution = session.get(Institution, account.institution_id)
    assert institution is not None
    form = {"amount": amount, "due_date": due_date, "channel": channel, "note": note}
    errors: dict[str, str] = {}
    minor = 0
    try:
        # A form field: the spaces a person types around a number are not part of it.
        minor = parse_payable_amount(amount.strip(), account.currency)
    except AmountRefused:
        errors["amount"] = viewer.text("promises.error.amount_invalid")
    try:
        due = date.fromisoformat(due_date)
    except ValueError:
        errors["due_date"] = viewer.text("promises.error.due_date_invalid")
    if not errors:
        try:
            service.record_promise(
                session,
                institution=institution,
                account=account,
                terms=rules.PromiseTerms(
                    amount=minor, currency=account.currency, due_date=due, channel=channel
                ),
                actor=viewer.principal.actor,
                user_id=viewer.principal.user_id,
                note=note,
            )
        except (ValidationFailed, Conflict) as error:
            for problem in error.extra.get("errors", []):
                key = "account" if problem["field"] == "account_id" else problem["field"]
                errors.setdefault(key, viewer.text(f"promises.error.{problem['code']}"))
            # A refusal without field problems comes from the institution's promise settings.
            errors = errors or {"account": viewer.text("promises.error.settings")}
    if errors:
        return _panel(viewer, session, account, form=form, errors=errors, status_code=422)
    if not _is_htmx(viewer):
        return redirect(
            f"/accounts/{account.id}",
            request=viewer.request,
            message=Flash(key="promises.recorded"),
        )
    return _panel(viewer, session, account, message=viewer.text("promises.recorded"))


@router.post(
    "/promises/{promise_id}/cancel", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def cancel_promise(viewer: WritePromises, session: SessionDep, promise_id: RowId) -> Response:
    """Cancel a pending promise from the panel."""
    assert viewer.principal is not None
    promise = get_scoped(session, Promise, promise_id, viewer.principal)
    account = get_scoped(session, Account, promise.account_id, viewer.principal)
    institution = session.get(Institution, account.institution_id)
    assert institution is not None
    message = viewer.text("promises.cancelled")
    try:
        service.cancel_promise(
            session, institution=institution, promise=promise, actor=viewer.principal.actor
        )
    except RecoupError:
        message = viewer.text("promises.error.not_pending")
    if not _is_htmx(viewer):
        return redirect(f"/accounts/{account.id}", request=viewer.request)
    return _panel(viewer, session, account, message=message)
