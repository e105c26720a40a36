"""The model registry (versioned, hashed artifacts) and the scores written by scoring runs."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, Id, IdPk, Minor, TenantMixin, TimestampMixin


class ModelState(StrEnum):
    candidate = "candidate"
    champion = "champion"
    retired = "retired"


class ModelVersion(TimestampMixin, Base):
    """One trained model: its artifact, hash, metrics and lifecycle state."""

    __tablename__ = "model_versions"
    __table_args__ = (Index("ix_model_versions_institution_state", "institution_id", "state"),)

    id: Mapped[IdPk]
    version: Mapped[str] = mapped_column(String(64), unique=True)
    # NULL for models trained on an external file outside any institution's portfolio.
    institution_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("institutions.id", ondelete="RESTRICT"), index=True
    )
    family: Mapped[str] = mapped_column(String(16))
    state: Mapped[ModelState] = mapped_column(String(16), default=ModelState.candidate)
    source: Mapped[str] = mapped_column(String(255))
    target: Mapped[str] = mapped_column(String(128))
    positive_label: Mapped[str] = mapped_column(String(128))
    event_is_favourable: Mapped[bool] = mapped_column(default=False)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    trained_by: Mapped[str] = mapped_column(String(128))
    trained_at: Mapped[datetime]
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_size: Mapped[int] = mapped_column(Integer)
    # The artifact is kept in the row; a path is for artifacts too large for the database.
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary)
    artifact_path: Mapped[str | None] = mapped_column(String(1024))
    promoted_at: Mapped[datetime | None]
    promoted_by: Mapped[str | None] = mapped_column(String(128))
    retired_at: Mapped[datetime | None]


class AccountScore(TenantMixin, Base):
    """An account's score as of a date from one model version, with its reasons."""

    __tablename__ = "account_scores"
    __table_args__ = (
        UniqueConstraint("account_id", "model_version_id", "as_of"),
        Index("ix_account_scores_institution_as_of", "institution_id", "as_of"),
        # An account's scores by date: its last score by a day is one seek, however many
        # daily scores it has (the KPI snapshot's segment moves read it for every account).
        Index("ix_account_scores_account_as_of", "account_id", "as_of"),
    )

    id: Mapped[IdPk]
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("accounts.id", ondelete="CASCADE"))
    model_version_id: Mapped[int] = mapped_column(
        Id, ForeignKey("model_versions.id", ondelete="RESTRICT"), index=True
    )
    model_version: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date]
    scored_at: Mapped[datetime]
    # Probability of paying (the favourable outcome), whatever label the model was trained on.
    probability: Mapped[float] = mapped_column(Float)
    points: Mapped[float] = mapped_column(Float)
    grade: Mapped[str] = mapped_column(String(1))
    expected_recovery: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Segment (stage-propensity-band), its working channel and expected recovery per unit of
    # that channel's contact cost; NULL on scores written before segmentation existed.
    segment: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[float | None] = mapped_column(Float)
    # What the priority is worth: ``propensity`` (expected recovery), ``uplift`` (the extra
    # recovery a contact buys, ``uplift_recovery``), or why uplift was asked for and not used
    # (``no_uplift_model``, ``channel_not_learnt``); NULL on scores written before it existed.
    priority_basis: Mapped[str | None] = mapped_column(String(32))
    # Estimated extra recovery from contact on the segment's channel (minor units), when the
    # priority is on uplift: max(P(pay | contacted) − P(pay | not), 0) × overdue amount.
    uplift_recovery: Mapped[int | None] = mapped_column(Minor, nullable=True)


class ScoringRun(TenantMixin, Base):
    """One batch scoring run: its drift against training and, later, its realised performance."""

    __tablename__ = "scoring_runs"
    __table_args__ = (
        UniqueConstraint("institution_id", "model_version_id", "as_of"),
        Index("ix_scoring_runs_institution_scored_at", "institution_id", "scored_at"),
    )

    id: Mapped[IdPk]
    model_version_id: Mapped[int] = mapped_column(
        Id, ForeignKey("model_versions.id", ondelete="RESTRICT"), index=True
    )
    model_version: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date]
    scored_at: Mapped[datetime]
    accounts_scored: Mapped[int] = mapped_column(Integer)
    score_psi: Mapped[float] = mapped_column(Float)
    # Feature name → PSI against the training reference.
    feature_psi: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    # Scorecard characteristic → average points moved (empty for boosters).
    characteristic_shift: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    # Filled once the outcome window after ``as_of`` has passed (realised_performance).
    realised_at: Mapped[datetime | None]
    realised_horizon_days: Mapped[int | None] = mapped_column(Integer)
    realised_payment_share: Mapped[float | None] = mapped_column(Float)
    realised_count: Mapped[int | None] = mapped_column(Integer)
    realised_events: Mapped[int | None] = mapped_column(Integer)
    realised_auc: Mapped[float | None] = mapped_column(Float)
    realised_ks: Mapped[float | None] = mapped_column(Float)
