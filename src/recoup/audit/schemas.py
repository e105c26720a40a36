"""API shapes of the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEvent(BaseModel):
    """One event of the chain, as an auditor browses it."""

    model_config = ConfigDict(from_attributes=True)

    sequence: int
    occurred_at: datetime
    institution_id: int | None
    actor: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]
    hash: str
