"""Strategy reasons as a code and values (rendered in the reader's language).

Rows written before keep their English ``reason``; their code is empty.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 03:35:17.024741
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_strategy_states", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reason_code", sa.String(length=32), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("reason_params", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )

    with op.batch_alter_table("case_strategy_steps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reason_code", sa.String(length=32), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("reason_params", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("case_strategy_steps", schema=None) as batch_op:
        batch_op.drop_column("reason_params")
        batch_op.drop_column("reason_code")

    with op.batch_alter_table("case_strategy_states", schema=None) as batch_op:
        batch_op.drop_column("reason_params")
        batch_op.drop_column("reason_code")
