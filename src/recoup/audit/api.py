"""Browse the audit trail under ``/api/v1/audit``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from recoup.audit import schemas, service
from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get(
    "/audit",
    response_model=Paginated[schemas.AuditEvent],
    dependencies=[Depends(authorize("audit:read"))],
)
def list_events(
    principal: CurrentPrincipal,
    session: SessionDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[datetime | None, Query(description="from this moment (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="up to this moment (exclusive)")] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Paginated[schemas.AuditEvent]:
    """List audit events newest first, filtered by action, actor and date range."""
    result = service.browse(
        session,
        principal=principal,
        page=PageRequest(page, size),
        action=action,
        actor=actor,
        since=since,
        until=until,
    )
    return Paginated[schemas.AuditEvent].of(result, schemas.AuditEvent.model_validate)
