"""Strategy API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from recoup.kit.schemas import CleanText
from recoup.strategy.document import CODE_PATTERN, MAX_DOCUMENT_CHARS


class StrategyCreate(BaseModel):
    """A new strategy: from a preset (the institution's own by default) or a document."""

    code: str = Field(pattern=CODE_PATTERN, examples=["cf_2026"])
    name: CleanText = Field(min_length=1, max_length=128)
    preset: str | None = Field(default=None, max_length=32, examples=["consumer_finance"])
    document: str | None = Field(default=None, max_length=MAX_DOCUMENT_CHARS)


class DraftUpdate(BaseModel):
    """The edited document of the strategy's draft (YAML or JSON)."""

    document: str = Field(min_length=1, max_length=MAX_DOCUMENT_CHARS)
    note: CleanText | None = Field(default=None, max_length=500)


class DocumentCheck(BaseModel):
    document: str = Field(min_length=1, max_length=MAX_DOCUMENT_CHARS)


class PromoteRequest(BaseModel):
    """Make a challenger the champion of its segment (in a new draft)."""

    segment: str = Field(pattern=CODE_PATTERN)
    arm: str = Field(pattern=CODE_PATTERN)


class VersionRead(BaseModel):
    id: int
    version: int
    status: str
    sha256: str
    author: str
    note: str | None
    created_at: datetime
    activated_at: datetime | None
    activated_by: str | None


class VersionDetail(VersionRead):
    document: str


class StrategyRead(BaseModel):
    id: int
    code: str
    name: str
    preset: str | None
    created_by: str
    latest: VersionRead | None
    active: VersionRead | None


class StrategyDetail(StrategyRead):
    versions: list[VersionRead]


class ProblemRead(BaseModel):
    line: int | None
    field: str
    message: str


class FindingRead(BaseModel):
    severity: str
    code: str
    line: int | None
    field: str
    message: str
    params: dict[str, str]


class SegmentPreviewRead(BaseModel):
    code: str
    name: str
    matching: int
    assigned: int
    arms: dict[str, int]


class PreviewRead(BaseModel):
    accounts: int
    unsegmented: int
    segments: list[SegmentPreviewRead]


class CheckRead(BaseModel):
    """What the editor shows: problems by line, findings, and today's segment counts."""

    can_activate: bool
    problems: list[ProblemRead]
    findings: list[FindingRead]
    preview: PreviewRead | None


class IntervalRead(BaseModel):
    value: float
    low: float
    high: float


class ArmResultRead(BaseModel):
    arm: str
    share: float
    accounts: int
    recovery_rate: IntervalRead
    cure_rate: IntervalRead
    collected_per_account: IntervalRead
    contacts_per_account: float
    cost_per_collected: float | None
    complaints: int
    gate_blocks: int
    difference: IntervalRead | None
    p_value: float | None
    significance: str
    still_needed: int | None


class ExperimentRead(BaseModel):
    segment: str
    experiment: str
    arms: list[ArmResultRead]


class CaseStepRead(BaseModel):
    segment: str
    arm: str
    step: str | None
    reason: str
    # The reason as a code and its values (``strategy.reason.<code>`` in the catalogs).
    reason_code: str = ""
    reason_params: dict[str, Any] = {}
    source: str
    at: datetime


class CaseStrategyRead(BaseModel):
    """Where a case stands on its strategy and why."""

    case_id: int
    strategy_version_id: int | None
    segment: str | None
    arm: str | None
    step: str | None
    reason: str | None
    reason_code: str | None = None
    reason_params: dict[str, Any] | None = None
    paused_until: str | None
    contact_stopped: bool
    history: list[CaseStepRead]
