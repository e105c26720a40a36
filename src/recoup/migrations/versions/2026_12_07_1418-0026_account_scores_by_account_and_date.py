"""account scores by account and date

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 14:18:18.701541
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("account_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_scores_account_id"))
        batch_op.create_index(
            "ix_account_scores_account_as_of", ["account_id", "as_of"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("account_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_account_scores_account_as_of")
        batch_op.create_index(
            batch_op.f("ix_account_scores_account_id"), ["account_id"], unique=False
        )
