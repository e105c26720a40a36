"""KPI snapshots (the month's account facts by every cut) and delinquency events by time.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 03:41:57.870810
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_kpi_snapshots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column(
            "institution_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_analytics_kpi_snapshots_institution_id_institutions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_kpi_snapshots")),
        sa.UniqueConstraint(
            "institution_id",
            "period_start",
            name=op.f("uq_analytics_kpi_snapshots_institution_id_period_start"),
        ),
    )
    with op.batch_alter_table("analytics_kpi_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_kpi_snapshots_institution_id"),
            ["institution_id"],
            unique=False,
        )

    with op.batch_alter_table("delinquency_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delinquency_events_institution_effective",
            ["institution_id", "effective_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("delinquency_events", schema=None) as batch_op:
        batch_op.drop_index("ix_delinquency_events_institution_effective")

    with op.batch_alter_table("analytics_kpi_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_kpi_snapshots_institution_id"))

    op.drop_table("analytics_kpi_snapshots")
