"""Institutions: the tenants of a Recoup installation."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, IdPk, TimestampMixin


class Jurisdiction(StrEnum):
    """Whose rules bind an institution: the code of a rule pack (``compliance/packs``)."""

    CN = "CN"
    # China, with the stricter local practice of no collection calls after 21:00.
    CN_LOCAL = "CN-LOCAL"
    US = "US"


class Preset(StrEnum):
    consumer_finance = "consumer_finance"
    commercial_bank = "commercial_bank"


class Institution(TimestampMixin, Base):
    """A lender using Recoup; every tenant row points at one."""

    __tablename__ = "institutions"

    id: Mapped[IdPk]
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[Jurisdiction] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    preset: Mapped[Preset] = mapped_column(String(32))
    # Per-institution settings from the preset, overridable (waterfall, grades, costs…).
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
