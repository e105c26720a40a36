"""case owners replace account agents

An agent works the cases they own: each delinquent account's agent becomes the owner of the
debtor's live case (opened here when the hourly sync has not opened it yet); an assignment of an
account that owes nothing lapses, as there is no work in it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 23:00:44.340712
"""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

ACTOR = "migration 0010"

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_accounts = sa.table(
    "accounts",
    sa.column("id", sa.Integer),
    sa.column("institution_id", sa.Integer),
    sa.column("debtor_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("days_past_due", sa.Integer),
    sa.column("assigned_agent_id", sa.Integer),
)
_cases = sa.table(
    "cases",
    sa.column("id", sa.Integer),
    sa.column("institution_id", sa.Integer),
    sa.column("debtor_id", sa.Integer),
    sa.column("live_debtor_id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("opened_at", sa.DateTime(timezone=True)),
    sa.column("closed_at", sa.DateTime(timezone=True)),
    sa.column("owner_id", sa.Integer),
    sa.column("expected_recovery", sa.BigInteger),
    sa.column("priority", sa.Integer),
    sa.column("refusals", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_members = sa.table(
    "case_accounts",
    sa.column("institution_id", sa.Integer),
    sa.column("case_id", sa.Integer),
    sa.column("account_id", sa.Integer),
    sa.column("added_at", sa.DateTime(timezone=True)),
    sa.column("removed_at", sa.DateTime(timezone=True)),
)
_events = sa.table(
    "case_events",
    sa.column("institution_id", sa.Integer),
    sa.column("case_id", sa.Integer),
    sa.column("event", sa.String),
    sa.column("to_state", sa.String),
    sa.column("from_owner_id", sa.Integer),
    sa.column("to_owner_id", sa.Integer),
    sa.column("note", sa.String),
    sa.column("actor", sa.String),
    sa.column("at", sa.DateTime(timezone=True)),
)
_FINISHED = ("settled", "closed")


def _delinquent(status: str, days_past_due: int) -> bool:
    # As the case rules decide it: charged-off debts are still collected.
    return status not in _FINISHED and (status != "current" or days_past_due > 0)


def _cases_for_assigned_accounts(bind: sa.Connection, now: datetime) -> None:
    assigned = bind.execute(
        sa.select(
            _accounts.c.id,
            _accounts.c.institution_id,
            _accounts.c.debtor_id,
            _accounts.c.status,
            _accounts.c.days_past_due,
            _accounts.c.assigned_agent_id,
        )
        .where(_accounts.c.assigned_agent_id.is_not(None))
        .order_by(_accounts.c.id)
    ).all()
    live = {
        (institution, debtor): (case_id, owner)
        for case_id, institution, debtor, owner in bind.execute(
            sa.select(
                _cases.c.id, _cases.c.institution_id, _cases.c.live_debtor_id, _cases.c.owner_id
            ).where(_cases.c.live_debtor_id.is_not(None))
        )
    }
    members = {
        (case_id, account_id)
        for case_id, account_id in bind.execute(
            sa.select(_members.c.case_id, _members.c.account_id).where(
                _members.c.removed_at.is_(None)
            )
        )
    }
    votes: dict[int, Counter[int]] = {}
    institutions: dict[int, int] = {}
    for account_id, institution, debtor, status, days_past_due, agent in assigned:
        if not _delinquent(status, days_past_due):
            continue
        if (institution, debtor) not in live:
            case_id = bind.execute(
                sa.insert(_cases)
                .values(
                    institution_id=institution,
                    debtor_id=debtor,
                    live_debtor_id=debtor,
                    state="open",
                    opened_at=now,
                    expected_recovery=0,
                    priority=0,
                    refusals=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(_cases.c.id)
            ).scalar_one()
            bind.execute(
                sa.insert(_events).values(
                    institution_id=institution,
                    case_id=case_id,
                    event="opened",
                    to_state="open",
                    actor=ACTOR,
                    at=now,
                )
            )
            live[(institution, debtor)] = (case_id, None)
        case_id, _owner = live[(institution, debtor)]
        institutions[case_id] = institution
        if (case_id, account_id) not in members:
            bind.execute(
                sa.insert(_members).values(
                    institution_id=institution, case_id=case_id, account_id=account_id, added_at=now
                )
            )
            members.add((case_id, account_id))
        votes.setdefault(case_id, Counter())[agent] += 1
    owners = dict(live.values())
    for case_id, counter in votes.items():
        if owners.get(case_id) is not None:
            continue  # a case already given to an agent keeps them
        agent = counter.most_common(1)[0][0]
        bind.execute(
            sa.update(_cases).where(_cases.c.id == case_id).values(owner_id=agent, updated_at=now)
        )
        bind.execute(
            sa.insert(_events).values(
                institution_id=institutions[case_id],
                case_id=case_id,
                event="assigned",
                from_owner_id=None,
                to_owner_id=agent,
                note="the agent its accounts were assigned to",
                actor=ACTOR,
                at=now,
            )
        )


def upgrade() -> None:
    _cases_for_assigned_accounts(op.get_bind(), datetime.now(UTC))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_assigned_agent_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_accounts_assigned_agent_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("assigned_agent_id")


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "assigned_agent_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_accounts_assigned_agent_id_users"),
            "users",
            ["assigned_agent_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            batch_op.f("ix_accounts_assigned_agent_id"), ["assigned_agent_id"], unique=False
        )
    # Each account in a live case goes back to the case's owner.
    owner = (
        sa.select(_cases.c.owner_id)
        .join(_members, _members.c.case_id == _cases.c.id)
        .where(
            _members.c.account_id == _accounts.c.id,
            _members.c.removed_at.is_(None),
            _cases.c.closed_at.is_(None),
        )
        .limit(1)
        .scalar_subquery()
    )
    op.get_bind().execute(sa.update(_accounts).values(assigned_agent_id=owner))
