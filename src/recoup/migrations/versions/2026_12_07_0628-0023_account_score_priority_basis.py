"""Account scores record the basis of their priority (propensity or uplift) and the uplift value

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 06:28:36.133251
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("account_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority_basis", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("uplift_recovery", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_scores", schema=None) as batch_op:
        batch_op.drop_column("uplift_recovery")
        batch_op.drop_column("priority_basis")
