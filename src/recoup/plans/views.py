"""The payment plans panel of the account page: schedule and standing, propose, approve, cancel."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from recoup.deps import SessionDep
from recoup.enums import FINISHED_STATUSES
from recoup.identity.dependencies import csrf_protect
from recoup.identity.scoping import get_scoped
from recoup.kit import clock
from recoup.kit.errors import RecoupError
from recoup.kit.money import AmountRefused, parse_payable_amount
from recoup.kit.pagination import PageRequest
from recoup.models.account import Account
from recoup.models.institution import Institution
from recoup.models.plans import PaymentPlan
from recoup.plans import service
from recoup.plans.api import APPROVE, WRITE
from recoup.plans.rules import Frequency
from recoup.web import labels
from recoup.web.templating import Viewer, render, viewer_with

router = APIRouter(include_in_schema=False)

PANEL_SIZE = 10
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ReadAccounts = Annotated[Viewer, viewer_with("accounts:read")]
WritePlans = Annotated[Viewer, viewer_with(WRITE)]
ApprovePlans = Annotated[Viewer, viewer_with(APPROVE)]
CsrfChecked = Depends(csrf_protect)
STATUS_BADGES = {
    "pending_approval": "badge badge-warning",
    "active": "badge badge-success",
    "completed": "badge badge-success",
    "broken": "badge badge-danger",
    "cancelled": "badge",
    "rejected": "badge",
}


def _institution(session: Session, account: Account) -> Institution:
    institution = session.get(Institution, account.institution_id)
    assert institution is not None
    return institution


def _panel(
    viewer: Viewer,
    session: Session,
    account: Account,
    *,
    form: dict[str, str] | None = None,
    error: str = "",
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    institution = _institution(session, account)
    today = clock.local_today(institution.timezone)
    page = service.account_plans(
        session,
        institution_id=institution.id,
        account_id=account.id,
        page=PageRequest(1, PANEL_SIZE),
    )
    limits = service.limits_of(institution)
    live = any(view.plan.status in ("pending_approval", "active") for view in page.items)
    context: dict[str, Any] = {
        "account": account,
        "plans": page.items,
        "total": page.total,
        "badges": STATUS_BADGES,
        "can_write": viewer.allows(WRITE),
        "can_approve": viewer.allows(APPROVE),
        "user_id": viewer.principal.user_id if viewer.principal else None,
        "show_form": viewer.allows(WRITE) and not live and account.status not in FINISHED_STATUSES,
        "frequencies": [str(frequency) for frequency in Frequency],
        "limits": limits,
        "today": today.isoformat(),
        "form": form
        or {
            "instalments": "3",
            "start_on": today.isoformat(),
            "frequency": "monthly",
            "discount": "0",
            "down_payment": "0",
            "note": "",
        },
        "error": error,
        "message": message,
    }
    return render(viewer, "plans/_panel.html", context, partial=True, status_code=status_code)


@router.get("/accounts/{account_id}/plans", response_class=HTMLResponse)
def plans_panel(viewer: ReadAccounts, session: SessionDep, account_id: RowId) -> HTMLResponse:
    """Show an account's payment plans (loaded into the account page)."""
    assert viewer.principal is not None
    account = get_scoped(session, Account, account_id, viewer.principal)
    return _panel(viewer, session, account)


@router.post(
    "/accounts/{account_id}/plans", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def propose_plan(
    viewer: WritePlans,
    session: SessionDep,
    account_id: RowId,
    instalments: Annotated[str, Form(max_length=4)] = "",
    start_on: Annotated[str, Form(max_length=10)] = "",
    frequency: Annotated[str, Form(max_length=16)] = "monthly",
    discount: Annotated[str, Form(max_length=32)] = "0",
    down_payment: Annotated[str, Form(max_length=32)] = "0",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Propose a plan from the panel; a refusal is shown above the form, nothing is kept."""
    assert viewer.principal is not None
    account = get_scoped(session, Account, account_id, viewer.principal)
    institution = _institution(session, account)
    form = {
        "instalments": instalments,
        "start_on": start_on,
        "frequency": frequency,
        "discount": discount,
        "down_payment": down_payment,
        "note": note,
    }
    try:
        count = int(instalments) if instalments.strip().isdigit() else 0
        first = date.fromisoformat(start_on) if start_on else None
        if first is None:
            return _panel(
                viewer,
                session,
                account,
                form=form,
                error=viewer.text("plans.error.start_on"),
                status_code=422,
            )
        plan = service.propose_plan(
            session,
            institution=institution,
            account=account,
            instalments=count,
            start_on=first,
            frequency=Frequency(frequency)
            if frequency in {str(item) for item in Frequency}
            else Frequency.MONTHLY,
            discount=parse_payable_amount(discount.strip() or "0", account.currency),
            down_payment=parse_payable_amount(down_payment.strip() or "0", account.currency),
            actor=viewer.principal.actor,
            user_id=viewer.principal.user_id,
            note=note.strip() or None,
        )
    except ValueError:
        session.rollback()
        return _panel(
            viewer,
            session,
            account,
            form=form,
            error=viewer.text("plans.error.start_on"),
            status_code=422,
        )
    except (AmountRefused, RecoupError) as error:
        session.rollback()
        text = (
            labels.refusal(error, viewer.locale)
            if isinstance(error, RecoupError)
            else f"{viewer.text('plans.error.amount')} {error}"
        )
        return _panel(viewer, session, account, form=form, error=text, status_code=422)
    key = "plans.proposed_pending" if plan.status == "pending_approval" else "plans.proposed"
    return _panel(viewer, session, account, message=viewer.text(key))


def _plan_account(session: Session, viewer: Viewer, plan_id: int) -> tuple[PaymentPlan, Account]:
    assert viewer.principal is not None
    plan = get_scoped(session, PaymentPlan, plan_id, viewer.principal)
    account = get_scoped(session, Account, plan.account_id, viewer.principal)
    return plan, account


@router.post("/plans/{plan_id}/approve", response_class=HTMLResponse, dependencies=[CsrfChecked])
def approve_plan(viewer: ApprovePlans, session: SessionDep, plan_id: RowId) -> Response:
    """Approve a plan waiting for a manager (not one's own)."""
    return _decide(viewer, session, plan_id, approve=True)


@router.post("/plans/{plan_id}/reject", response_class=HTMLResponse, dependencies=[CsrfChecked])
def reject_plan(viewer: ApprovePlans, session: SessionDep, plan_id: RowId) -> Response:
    """Reject a plan waiting for a manager."""
    return _decide(viewer, session, plan_id, approve=False)


def _decide(viewer: Viewer, session: Session, plan_id: int, *, approve: bool) -> Response:
    assert viewer.principal is not None
    plan, account = _plan_account(session, viewer, plan_id)
    try:
        service.decide_plan(
            session,
            institution=_institution(session, account),
            plan=plan,
            approve=approve,
            actor=viewer.principal.actor,
            user_id=viewer.principal.user_id,
        )
    except RecoupError as error:
        session.rollback()
        return _panel(
            viewer, session, account, error=labels.refusal(error, viewer.locale), status_code=409
        )
    key = "plans.approved" if approve else "plans.rejected"
    return _panel(viewer, session, account, message=viewer.text(key))


@router.post("/plans/{plan_id}/cancel", response_class=HTMLResponse, dependencies=[CsrfChecked])
def cancel_plan(viewer: WritePlans, session: SessionDep, plan_id: RowId) -> Response:
    """Cancel a running or waiting plan."""
    assert viewer.principal is not None
    plan, account = _plan_account(session, viewer, plan_id)
    try:
        service.cancel_plan(
            session,
            institution=_institution(session, account),
            plan=plan,
            actor=viewer.principal.actor,
        )
    except RecoupError as error:
        session.rollback()
        return _panel(
            viewer, session, account, error=labels.refusal(error, viewer.locale), status_code=409
        )
    return _panel(viewer, session, account, message=viewer.text("plans.cancelled"))
