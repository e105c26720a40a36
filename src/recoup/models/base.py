"""The declarative base, one metadata with a naming convention, and column helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, MetaData, String, func
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

from recoup.kit.clock import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only aliases rowid (fast autoincrement) for an INTEGER primary key.
Id = BigInteger().with_variant(Integer(), "sqlite")
# Money: integer minor units (分 / cents), never a float.
Minor = BigInteger

IdPk = Annotated[int, mapped_column(Id, primary_key=True, autoincrement=True)]
Currency = Annotated[str, mapped_column(String(3))]


class UTCDateTime(TypeDecorator[datetime]):
    """An aware timestamp stored in UTC on every backend, read back aware in UTC.

    SQLite keeps no offset: without this, 22:30+08:00 would be stored as 22:30 and read
    back as 22:30 UTC. A naive datetime is refused, since its zone is unknown.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a time zone (store UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base class of every Recoup table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class TimestampMixin:
    """Creation and modification times, in UTC."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class TenantMixin:
    """Every tenant row belongs to exactly one institution."""

    @declared_attr
    def institution_id(cls) -> Mapped[int]:
        return mapped_column(Id, ForeignKey("institutions.id", ondelete="RESTRICT"), index=True)
