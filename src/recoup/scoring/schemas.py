"""API models of the scoring domain: model versions, their reports, account scores, runs."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class ModelVersion(BaseModel):
    """A registered model with its held-out metrics."""

    version: str
    state: str
    family: str
    institution_id: int | None
    source: str
    target: str
    positive_label: str
    event_is_favourable: bool
    auc: float | None
    ks: float | None
    gini: float | None
    brier: float | None
    ece: float | None = Field(
        default=None, description="expected calibration error on held-out rows, by decile"
    )
    n_train: int | None
    n_test: int | None
    trained_by: str
    trained_at: datetime
    promoted_by: str | None
    promoted_at: datetime | None
    sha256: str


class ScorecardRow(BaseModel):
    """One bin of one characteristic of a scorecard."""

    feature: str
    bin: str
    count: int
    event_rate: float
    woe: float
    points: float


class DecileRow(BaseModel):
    """One tenth of the held-out rows, highest predicted probability first."""

    decile: int
    count: int
    events: int
    mean_probability: float = Field(description="average predicted probability of the event")
    event_rate: float = Field(description="observed event rate (calibration: compare the two)")
    cumulative_event_share: float = Field(description="gains: share of all events up to here")
    lift: float
    cumulative_lift: float


class ModelVersionDetail(ModelVersion):
    """A model with its features, scorecard table, calibration and gains by decile."""

    features: list[str]
    data_fingerprint: str
    split: str
    training_seconds: float
    scorecard: list[ScorecardRow]
    deciles: list[DecileRow]


class Reason(BaseModel):
    """A reason code pulling a score down, worded for agents."""

    code: str
    zh: str
    en: str


class AccountScore(BaseModel):
    """An account's latest score."""

    account_id: int
    model_version: str
    as_of: date
    scored_at: datetime
    probability: float = Field(description="probability of paying")
    points: float
    grade: str
    segment: str | None
    channel: str | None
    priority: float | None = Field(description="expected recovery per unit of contact cost")
    expected_recovery: int = Field(description="minor units")
    currency: str
    reasons: list[Reason]


class ScoringRun(BaseModel):
    """One batch scoring run: drift against training and realised performance once known."""

    model_version: str
    as_of: date
    scored_at: datetime
    accounts_scored: int
    score_psi: float
    feature_psi: dict[str, float]
    characteristic_shift: dict[str, float]
    status: str
    realised_auc: float | None
    realised_ks: float | None
    realised_count: int | None
    realised_horizon_days: int | None
