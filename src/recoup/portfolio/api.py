"""The portfolio read API: debtors and accounts, tenant- and case-scoped, PII masked."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from recoup.deps import SessionDep
from recoup.enums import AccountStatus
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.pii import NO_STORE_HEADERS, reveal_debtor
from recoup.identity.scoping import get_scoped
from recoup.kit.crypto import blind_index
from recoup.kit.errors import PermissionDenied, ValidationFailed
from recoup.kit.masking import mask_name, mask_national_id, mask_text
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, BadCursor, PageRequest, decode_cursor
from recoup.kit.schemas import Paginated
from recoup.models.account import Account
from recoup.models.debtor import ContactPoint, Debtor
from recoup.portfolio import repository, service
from recoup.portfolio.schemas import (
    AccountAssignment,
    AccountAssignmentResult,
    AccountFilters,
    AccountListItem,
    AccountRead,
    AccountSort,
    ContactPointRead,
    DebtorDetail,
    DebtorRead,
    DebtorRevealed,
    RevealedContactPoint,
    RevealRequest,
    SortDirection,
)

router = APIRouter(prefix="/api/v1", tags=["portfolio"])

PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
SearchValue = Annotated[str | None, Query(min_length=1, max_length=64)]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="next_cursor of the previous page: the rows after it (instead of page)",
    ),
]


def page_request(page: int, size: int, cursor: str | None) -> PageRequest:
    """Return the page asked for by number or, with a cursor, the rows after it."""
    if cursor is None:
        return PageRequest(page, size)
    try:
        return PageRequest(1, size, after=decode_cursor(cursor))
    except BadCursor as error:
        raise ValidationFailed(
            f"cursor: {error}", errors=[{"field": "query.cursor", "message": str(error)}]
        ) from None


RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def debtor_read(debtor: Debtor) -> DebtorRead:
    """Return the debtor as the API shows it, PII masked."""
    return DebtorRead(
        id=debtor.id,
        external_id=debtor.external_id,
        kind=debtor.kind,
        name=mask_name(debtor.name),
        national_id=mask_national_id(debtor.national_id) if debtor.national_id else None,
        id_kind=debtor.id_kind,
        province=debtor.province,
        city=debtor.city,
        timezone=debtor.timezone,
        language=debtor.language,
        deceased=debtor.deceased,
        bankrupt=debtor.bankrupt,
        disputed=debtor.disputed,
        cease_contact=debtor.cease_contact,
        hardship=debtor.hardship,
    )


def contact_point_read(contact: ContactPoint) -> ContactPointRead:
    """Return the contact point as the API shows it, its value masked."""
    return ContactPointRead(
        id=contact.id,
        kind=contact.kind,
        value=mask_text(contact.value, contact.kind),
        relation=contact.relation,
        third_party=contact.third_party,
        status=contact.status,
    )


def account_read(account: Account, *, agent_id: int | None = None) -> AccountRead:
    """Return the account as the API shows it, with the agent working its case."""
    return AccountRead(
        id=account.id,
        external_id=account.external_id,
        debtor_id=account.debtor_id,
        product=account.product,
        currency=account.currency,
        principal=account.principal,
        interest=account.interest,
        fees=account.fees,
        penalty=account.penalty,
        balance=account.balance,
        minimum_due=account.minimum_due,
        overdue_amount=account.overdue_amount,
        due_date=account.due_date,
        days_past_due=account.days_past_due,
        bucket=account.bucket,
        status=account.status,
        assigned_agent_id=agent_id,
    )


@router.get(
    "/debtors",
    response_model=Paginated[DebtorRead],
    dependencies=[Depends(authorize("debtors:read"))],
)
def list_debtors(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageNumber = 1,
    size: PageSize = 50,
    phone: SearchValue = None,
    national_id: SearchValue = None,
    cursor: Cursor = None,
) -> Paginated[DebtorRead]:
    """List debtors (masked); ``phone`` / ``national_id`` find exact matches via the keyed hash.

    Read by ``page`` or, for syncing a whole portfolio, by ``cursor`` (``next_cursor``).
    """
    result = repository.debtors_page(
        session,
        principal=principal,
        page=page_request(page, size, cursor),
        phone_index=blind_index(phone, context="contact_points.value") if phone else None,
        national_id_index=(
            blind_index(national_id, context="debtors.national_id") if national_id else None
        ),
    )
    return Paginated[DebtorRead].of(result, debtor_read)


@router.get(
    "/debtors/{debtor_id}",
    response_model=DebtorDetail,
    dependencies=[Depends(authorize("debtors:read"))],
)
def get_debtor(debtor_id: RowId, principal: CurrentPrincipal, session: SessionDep) -> DebtorDetail:
    """Open one debtor with masked contact points and the accounts the caller may see."""
    debtor = get_scoped(session, Debtor, debtor_id, principal)
    contacts = repository.debtor_contact_points(session, principal=principal, debtor_id=debtor.id)
    accounts = repository.debtor_accounts(session, principal=principal, debtor_id=debtor.id)
    owners = repository.account_owners(session, account_ids=[account.id for account in accounts])
    return DebtorDetail(
        **debtor_read(debtor).model_dump(),
        contact_points=[contact_point_read(contact) for contact in contacts],
        accounts=[account_read(account, agent_id=owners[account.id]) for account in accounts],
    )


@router.post(
    "/debtors/{debtor_id}/reveal",
    response_model=DebtorRevealed,
    dependencies=[Depends(authorize("pii:reveal"))],
)
def reveal(
    debtor_id: RowId,
    body: RevealRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
) -> DebtorRevealed:
    """Show a debtor's personal data in the clear; the reason is kept in the audit trail."""
    revealed = reveal_debtor(session, principal=principal, debtor_id=debtor_id, reason=body.reason)
    response.headers.update(NO_STORE_HEADERS)
    debtor = revealed.debtor
    return DebtorRevealed(
        id=debtor.id,
        name=debtor.name,
        national_id=debtor.national_id,
        employer=debtor.employer,
        contact_points=[
            RevealedContactPoint(
                id=contact.id,
                kind=contact.kind,
                value=contact.value,
                contact_name=contact.contact_name,
            )
            for contact in revealed.contact_points
        ],
    )


Empty = Literal[""]
BucketName = Literal["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+"]
GradeName = Literal["A", "B", "C", "D", "E"]
_SEGMENT = r"^((early|mid|late)-(high|medium|low)-(small|medium|large))?$"


def account_filters(
    q: Annotated[
        str | None,
        Query(max_length=64, description="exact external id, debtor name, phone or id number"),
    ] = None,
    debtor_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    bucket: Annotated[BucketName | Empty | None, Query()] = None,
    status: Annotated[AccountStatus | Empty | None, Query()] = None,
    agent: Annotated[
        str | None,
        Query(pattern=r"^(none|[1-9]\d{0,17})?$", description="an agent's user id, or none"),
    ] = None,
    grade: Annotated[GradeName | Empty | None, Query()] = None,
    segment: Annotated[str | None, Query(pattern=_SEGMENT, description="e.g. early-high-small")] = (
        None
    ),
    sort: Annotated[AccountSort, Query()] = "id",
    direction: Annotated[SortDirection | Empty | None, Query()] = None,
) -> AccountFilters:
    """Read an accounts list's search, filters and order from the query (blank: no filter)."""
    search = "".join((q or "").split())
    return AccountFilters(
        search=search or None,
        debtor_id=debtor_id,
        bucket=bucket or None,
        status=status or None,
        agent_id=(0 if agent == "none" else int(agent)) if agent else None,
        grade=grade or None,
        segment=segment or None,
        sort=sort,
        direction=direction or None,
    )


AccountFiltersDep = Annotated[AccountFilters, Depends(account_filters)]


def account_item(row: repository.AccountListRow) -> AccountListItem:
    """Return the list shape of an account with its latest score and agent."""
    return AccountListItem(
        **account_read(row.account, agent_id=row.agent_id).model_dump(),
        score=row.score,
        grade=row.grade,
        segment=row.segment,
        priority=row.priority,
        agent_username=row.agent_username,
        agent_name=row.agent_name,
    )


@router.get(
    "/accounts",
    response_model=Paginated[AccountListItem],
    dependencies=[Depends(authorize("accounts:read"))],
)
def list_accounts(
    principal: CurrentPrincipal,
    session: SessionDep,
    filters: AccountFiltersDep,
    page: PageNumber = 1,
    size: PageSize = 50,
    cursor: Cursor = None,
) -> Paginated[AccountListItem]:
    """List the accounts the caller may see: searched, filtered and sorted like the page.

    In the id order, ``next_cursor`` reads on after a page (pass it as ``cursor``).
    """
    result = repository.account_list(
        session, principal=principal, page=page_request(page, size, cursor), filters=filters
    )
    return Paginated[AccountListItem].of(result, account_item)


@router.get(
    "/accounts/{account_id}",
    response_model=AccountRead,
    dependencies=[Depends(authorize("accounts:read"))],
)
def get_account(account_id: RowId, principal: CurrentPrincipal, session: SessionDep) -> AccountRead:
    """Open one account."""
    account = get_scoped(session, Account, account_id, principal)
    owners = repository.account_owners(session, account_ids=[account.id])
    return account_read(account, agent_id=owners[account.id])


@router.post(
    "/accounts/assign",
    response_model=AccountAssignmentResult,
    dependencies=[Depends(authorize("queues:manage"))],
)
def assign_accounts(
    body: AccountAssignment, principal: CurrentPrincipal, session: SessionDep
) -> AccountAssignmentResult:
    """Assign accounts to an active agent with a valid compliance certificate (audited)."""
    if principal.institution_id is None:
        raise PermissionDenied("accounts belong to an institution; sign in as its user")
    accounts = service.assign_accounts(
        session,
        institution_id=principal.institution_id,
        agent_id=body.agent_id,
        account_ids=body.account_ids,
        actor=principal.actor,
        principal=principal,
    )
    return AccountAssignmentResult(
        agent_id=body.agent_id, account_ids=[account.id for account in accounts]
    )
