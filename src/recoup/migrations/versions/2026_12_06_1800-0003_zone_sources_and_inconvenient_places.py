"""zone sources and inconvenient places

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("debtors") as batch:
        batch.add_column(sa.Column("timezone_source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("inconvenient_places", sa.JSON(), nullable=True))
    with op.batch_alter_table("contact_points") as batch:
        batch.add_column(sa.Column("timezone_source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact_points") as batch:
        batch.drop_column("timezone_source")
    with op.batch_alter_table("debtors") as batch:
        batch.drop_column("inconvenient_places")
        batch.drop_column("timezone_source")
