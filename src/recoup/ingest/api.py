"""The data-quality report as JSON under ``/api/v1/dq``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from recoup.deps import SessionDep
from recoup.identity.dependencies import authorize
from recoup.identity.principal import Principal
from recoup.ingest import service

router = APIRouter(prefix="/api/v1/dq", tags=["data quality"])


@router.get("/report")
def data_quality_report(
    principal: Annotated[Principal, Depends(authorize("dq:read"))],
    session: SessionDep,
    institution: Annotated[
        str | None, Query(description="Institution code (platform admins only)")
    ] = None,
) -> service.DataQualityReport:
    """Return the data-quality report of the caller's institution."""
    return service.data_quality_report_for(
        session, institution_id=principal.institution_id, institution_code=institution
    )
