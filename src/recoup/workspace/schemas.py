"""Workspace API models: the next case to work and the cases passed over."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from recoup.cases.schemas import CaseRead


class SkippedCase(BaseModel):
    """A case "next case" passed over: no usable phone, or the gate's reason and next time."""

    case_id: int
    # no_phone or blocked
    code: str
    next_allowed_at: datetime | None
    reasons: list[str]


class NextCaseRead(BaseModel):
    """The caller's next case (null when nothing may be called now) and the cases passed over."""

    case: CaseRead | None
    callback_due: datetime | None
    skipped: list[SkippedCase]
