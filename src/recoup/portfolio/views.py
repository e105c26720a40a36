"""Pages for debtors and accounts: tenant- and case-scoped, PII masked, reveal audited."""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import HTMLResponse, Response

from recoup.deps import SessionDep
from recoup.enums import AccountStatus
from recoup.identity.dependencies import csrf_protect
from recoup.identity.pii import Revealed, reveal_debtor
from recoup.identity.scoping import get_scoped
from recoup.kit.crypto import blind_index
from recoup.kit.errors import NotFound, RecoupError, ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account
from recoup.models.debtor import Debtor
from recoup.portfolio import repository, service
from recoup.portfolio.api import (
    AccountFiltersDep,
    account_item,
    account_read,
    contact_point_read,
    debtor_read,
)
from recoup.portfolio.rules import BUCKETS
from recoup.portfolio.schemas import AccountRead, AccountSort, DebtorRead
from recoup.scoring.rules import BANDS, PROPENSITIES, STAGES
from recoup.scoring.spec import GRADES
from recoup.scoring.views import SCORE_COMMAND, account_score_panel, segment_label
from recoup.web.templating import Flash, Viewer, page_url_for, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ReadDebtors = Annotated[Viewer, viewer_with("debtors:read")]
ReadAccounts = Annotated[Viewer, viewer_with("accounts:read")]
RevealPii = Annotated[Viewer, viewer_with("pii:reveal")]
# 15- or 18-character resident id numbers (the last may be X); anything else is a phone or email.
_NATIONAL_ID = re.compile(r"^(\d{15}|\d{17}[\dXx])$")
_FLAGS = ("deceased", "bankrupt", "disputed", "cease_contact", "hardship")


def _debtor_row(debtor: DebtorRead) -> dict[str, Any]:
    return {
        **debtor.model_dump(),
        "region": " ".join(part for part in (debtor.province, debtor.city) if part),
        "flags": [flag for flag in _FLAGS if getattr(debtor, flag)],
    }


@router.get("/debtors", response_class=HTMLResponse)
def debtor_list(
    viewer: ReadDebtors,
    session: SessionDep,
    q: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """List debtors (masked); a phone number or id number finds exact matches by keyed hash."""
    assert viewer.principal is not None
    query = "".join(q.split())
    is_national_id = bool(_NATIONAL_ID.match(query))
    result = repository.debtors_page(
        session,
        principal=viewer.principal,
        page=PageRequest(page, PAGE_SIZE),
        phone_index=(
            blind_index(query, context="contact_points.value")
            if query and not is_national_id
            else None
        ),
        national_id_index=(
            blind_index(query, context="debtors.national_id") if is_national_id else None
        ),
    )
    rows = [_debtor_row(debtor_read(debtor)) for debtor in result.items]
    context = {
        "page": _with_items(result, rows),
        "page_url": page_url_for(viewer.request),
        "query": query,
    }
    return render(viewer, "debtors/list.html", context, active_nav="debtors")


def _debtor_page(
    viewer: Viewer,
    session: SessionDep,
    debtor_id: int,
    *,
    revealed: Revealed | None = None,
    reveal_error: str = "",
    status_code: int = 200,
    partial: bool = False,
) -> HTMLResponse:
    assert viewer.principal is not None
    debtor = get_scoped(session, Debtor, debtor_id, viewer.principal)
    contacts = repository.debtor_contact_points(
        session, principal=viewer.principal, debtor_id=debtor.id
    )
    context: dict[str, Any] = {
        "debtor": _debtor_row(debtor_read(debtor)),
        "contact_points": [contact_point_read(contact).model_dump() for contact in contacts],
        "can_reveal": viewer.allows("pii:reveal"),
        "revealed": _revealed_values(revealed) if revealed is not None else None,
        "reveal_error": reveal_error,
    }
    if partial:
        return render(
            viewer, "debtors/_pii_panels.html", context, partial=True, status_code=status_code
        )
    accounts = repository.debtor_accounts(session, principal=viewer.principal, debtor_id=debtor.id)
    owners = repository.account_owners(session, account_ids=[account.id for account in accounts])
    context["accounts"] = [
        account_read(account, agent_id=owners[account.id]).model_dump() for account in accounts
    ]
    return render(
        viewer, "debtors/detail.html", context, active_nav="debtors", status_code=status_code
    )


def _revealed_values(revealed: Revealed) -> dict[str, Any]:
    debtor = revealed.debtor
    return {
        "name": debtor.name,
        "national_id": debtor.national_id,
        "employer": debtor.employer,
        "contacts": {contact.id: contact.value for contact in revealed.contact_points},
    }


@router.get("/debtors/{debtor_id}", response_class=HTMLResponse)
def debtor_detail(viewer: ReadDebtors, session: SessionDep, debtor_id: RowId) -> HTMLResponse:
    """Open one debtor: masked profile, contact points and the accounts the viewer may see."""
    return _debtor_page(viewer, session, debtor_id)


@router.post(
    "/debtors/{debtor_id}/reveal",
    response_class=HTMLResponse,
    dependencies=[Depends(csrf_protect)],
)
def reveal(
    viewer: RevealPii,
    session: SessionDep,
    debtor_id: RowId,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> HTMLResponse:
    """Show a debtor's personal data in the clear once a reason is given (audited)."""
    assert viewer.principal is not None
    partial = viewer.request.headers.get("hx-request") == "true"
    try:
        revealed = reveal_debtor(
            session, principal=viewer.principal, debtor_id=debtor_id, reason=reason
        )
    except ValidationFailed:
        return _debtor_page(
            viewer,
            session,
            debtor_id,
            reveal_error=viewer.text("pii.reason_required"),
            status_code=422,
            partial=partial,
        )
    return _debtor_page(viewer, session, debtor_id, revealed=revealed, partial=partial)


@router.get("/accounts", response_class=HTMLResponse)
def account_list(
    viewer: ReadAccounts,
    session: SessionDep,
    filters: AccountFiltersDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """List the accounts the viewer may see: searched, filtered and sorted."""
    assert viewer.principal is not None
    result = repository.account_list(
        session, principal=viewer.principal, page=PageRequest(page, PAGE_SIZE), filters=filters
    )
    rows = [
        {**account_item(row).model_dump(), "segment_label": segment_label(viewer, row.segment)}
        for row in result.items
    ]
    segments = [
        f"{stage}-{propensity}-{band}"
        for stage in STAGES
        for propensity in PROPENSITIES
        for band in BANDS
    ]
    context = {
        "page": _with_items(result, rows),
        "page_url": page_url_for(viewer.request),
        "filters": filters,
        # An agent sees only their own accounts: a column of their own name says nothing.
        "show_agent": not viewer.principal.is_agent,
        "options": {
            "buckets": BUCKETS,
            "statuses": [str(status) for status in AccountStatus],
            "grades": GRADES,
            "segments": [(segment, segment_label(viewer, segment)) for segment in segments],
            "agents": repository.agents(session, principal=viewer.principal),
            "sorts": get_args(AccountSort),
        },
        "filtered": any(
            value is not None
            for value in (
                filters.search,
                filters.bucket,
                filters.status,
                filters.agent_id,
                filters.grade,
                filters.segment,
                filters.debtor_id,
            )
        ),
    }
    return render(viewer, "accounts/list.html", context, active_nav="accounts")


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account_detail(viewer: ReadAccounts, session: SessionDep, account_id: RowId) -> HTMLResponse:
    """Open one account with its balance broken down."""
    assert viewer.principal is not None
    account = get_scoped(session, Account, account_id, viewer.principal)
    owners = repository.account_owners(session, account_ids=[account.id])
    row = {
        **_account_row(account_read(account, agent_id=owners[account.id])),
        "credit_limit": account.credit_limit,
        "opened_on": account.opened_on,
        "updated_at": account.updated_at,
    }
    score = account_score_panel(viewer, session, account_id=account.id)
    context = {"account": row, "score": score, "score_command": SCORE_COMMAND}
    return render(viewer, "accounts/detail.html", context, active_nav="accounts")


def _account_row(account: AccountRead) -> dict[str, Any]:
    return account.model_dump()


def _with_items(page: Page[Any], items: list[dict[str, Any]]) -> Page[dict[str, Any]]:
    return Page(items=items, total=page.total, page=page.page, size=page.size)


# Assigning an account to an agent (a panel on the account page)

ManageQueues = Annotated[Viewer, viewer_with("queues:manage")]


@router.get("/accounts/{account_id}/assign", response_class=HTMLResponse)
def account_assign_form(
    viewer: ManageQueues, session: SessionDep, account_id: RowId
) -> HTMLResponse:
    """Show the assign form of an account: a choice of agents with a valid certificate."""
    assert viewer.principal is not None
    account = get_scoped(session, Account, account_id, viewer.principal)
    context = {
        "assign_account": account,
        "assign_owner_id": repository.account_owners(session, account_ids=[account.id])[account.id],
        "assign_agents": service.certified_agents(session, institution_id=account.institution_id),
    }
    if viewer.request.headers.get("hx-request") == "true":
        return render(viewer, "accounts/_assign_form.html", context, partial=True)
    return render(viewer, "accounts/assign.html", context, active_nav="accounts")


@router.post("/accounts/{account_id}/assign", dependencies=[Depends(csrf_protect)])
def account_assign(
    viewer: ManageQueues,
    session: SessionDep,
    account_id: RowId,
    agent_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Assign the account to the chosen agent; refused unless they hold a valid certificate."""
    assert viewer.principal is not None
    back = f"/accounts/{account_id}"
    try:
        account = get_scoped(session, Account, account_id, viewer.principal)
        if not agent_id.isdigit():
            raise ValidationFailed(viewer.text("accounts.assign.choose_agent"))
        service.assign_accounts(
            session,
            institution_id=account.institution_id,
            agent_id=int(agent_id),
            account_ids=[account.id],
            actor=viewer.principal.actor,
            principal=viewer.principal,
        )
    except NotFound:
        # An account or agent out of the caller's scope is a 404, as for any id.
        raise
    except RecoupError as error:
        refused = Flash("accounts.assign.refused", level="error", params={"message": error.message})
        return redirect(back, request=viewer.request, message=refused)
    message = Flash("accounts.assign.done", params={"account": account.external_id})
    return redirect(back, request=viewer.request, message=message)
