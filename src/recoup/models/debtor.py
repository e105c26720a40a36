"""Debtors and their contact points.

PII columns are encrypted; ``*_index`` columns hold keyed hashes for exact-match search.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recoup.enums import ContactKind, ContactSource, ContactStatus, DebtorKind, IdKind, Relation
from recoup.kit.crypto import BlindIndex, Encrypted
from recoup.models.base import Base, Id, IdPk, TenantMixin, TimestampMixin


class Debtor(TenantMixin, TimestampMixin, Base):
    """A person or business that owes an institution money."""

    __tablename__ = "debtors"
    __table_args__ = (UniqueConstraint("institution_id", "external_id"),)

    id: Mapped[IdPk]
    external_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[DebtorKind] = mapped_column(String(16), default=DebtorKind.individual)
    name: Mapped[str] = mapped_column(Encrypted("debtors.name"))
    name_index: Mapped[str] = mapped_column(BlindIndex(), index=True)
    national_id: Mapped[str | None] = mapped_column(Encrypted("debtors.national_id"))
    national_id_index: Mapped[str | None] = mapped_column(BlindIndex(), index=True)
    id_kind: Mapped[IdKind | None] = mapped_column(String(16))
    birth_date: Mapped[date | None]
    province: Mapped[str | None] = mapped_column(String(32))
    city: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    # Where ``timezone`` came from (a ZoneSource: column, address, institution); None for
    # rows written before sources were kept, read as given by the data.
    timezone_source: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16), default="zh-CN")
    employer: Mapped[str | None] = mapped_column(Encrypted("debtors.employer"))
    deceased: Mapped[bool] = mapped_column(default=False)
    bankrupt: Mapped[bool] = mapped_column(default=False)
    disputed: Mapped[bool] = mapped_column(default=False)
    cease_contact: Mapped[bool] = mapped_column(default=False)
    attorney_represented: Mapped[bool] = mapped_column(default=False)
    hardship: Mapped[bool] = mapped_column(default=False)
    # US-WORK: the employer forbids contact at the debtor's workplace. A server default
    # only, so bulk loaders that do not name the column still write valid rows.
    work_contact_forbidden: Mapped[bool] = mapped_column(server_default=false())
    # US-INCONV: places the debtor said are inconvenient (an InconvenientPlace each).
    inconvenient_places: Mapped[list[str] | None] = mapped_column(JSON)

    contact_points: Mapped[list[ContactPoint]] = relationship(
        back_populates="debtor", lazy="raise", order_by="ContactPoint.id"
    )


class ContactPoint(TenantMixin, TimestampMixin, Base):
    """A way to reach a debtor or one of their contacts (联系人)."""

    __tablename__ = "contact_points"
    __table_args__ = (
        UniqueConstraint("institution_id", "external_id"),
        Index("ix_contact_points_institution_value_index", "institution_id", "value_index"),
    )

    id: Mapped[IdPk]
    external_id: Mapped[str] = mapped_column(String(64))
    debtor_id: Mapped[int] = mapped_column(
        Id, ForeignKey("debtors.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ContactKind] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Encrypted("contact_points.value"))
    value_index: Mapped[str] = mapped_column(BlindIndex())
    relation: Mapped[Relation] = mapped_column(String(24), default=Relation.self)
    third_party: Mapped[bool] = mapped_column(default=False)
    contact_name: Mapped[str | None] = mapped_column(Encrypted("contact_points.contact_name"))
    status: Mapped[ContactStatus] = mapped_column(String(16), default=ContactStatus.unverified)
    source: Mapped[ContactSource] = mapped_column(String(16), default=ContactSource.imported)
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Where ``timezone`` came from: column (given) or phone (the number's area).
    timezone_source: Mapped[str | None] = mapped_column(String(16))
    verified_at: Mapped[datetime | None]
    # Consent and opt-outs per channel are rows of ``contact_point_consents``.

    debtor: Mapped[Debtor] = relationship(back_populates="contact_points", lazy="raise")
