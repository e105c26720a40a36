"""compliance decisions by planned time

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 19:35:11.954780
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("compliance_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_compliance_decisions_institution_planned",
            ["institution_id", "planned_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("compliance_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_compliance_decisions_institution_planned")
