"""Campaigns queue in a job: status, progress, where a retry resumes, blocks per rule.

Campaigns sent before read as fully queued.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 03:51:12.472204
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="queued", nullable=False)
        )
        batch_op.add_column(sa.Column("total", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("progress", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("last_account_id", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("blocked_by_rule", sa.JSON(), server_default="{}", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_campaigns", schema=None) as batch_op:
        batch_op.drop_column("blocked_by_rule")
        batch_op.drop_column("last_account_id")
        batch_op.drop_column("progress")
        batch_op.drop_column("total")
        batch_op.drop_column("status")
