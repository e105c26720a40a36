"""contact log and per-channel consents

The gate's reservations become planned (or made, or cancelled) rows of the contact log,
keeping their ids so the slot claims point at the same contacts; their outcomes are read
as outcome codes. Each contact point's opt-out and consent columns become one row per
channel in contact_point_consents.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WRITTEN = "('sms', 'email', 'letter')"
_VOICE = "('call', 'ai_call')"
# A stored reservation outcome as an outcome code (see recoup.contact.rules.read_report).
_OUTCOME = f"""
    CASE
        WHEN r.outcome = 'conversation' AND r.party = 'debtor' THEN 'right_party'
        WHEN r.outcome = 'conversation' THEN 'third_party'
        WHEN r.outcome = 'refused' THEN 'refused_contact'
        WHEN r.outcome IN ('unreachable', 'failed') AND r.channel IN {_WRITTEN}
            THEN 'message_failed'
        WHEN r.outcome IN ('unreachable', 'failed') AND r.channel IN {_VOICE} THEN 'switched_off'
        WHEN r.outcome IN ('unreachable', 'failed') THEN 'no_answer'
        WHEN r.outcome = 'delivered' AND r.channel IN {_WRITTEN} THEN 'message_delivered'
        WHEN r.outcome IN ('no_answer', 'busy', 'voicemail', 'wrong_number') THEN r.outcome
        ELSE NULL
    END
"""
# The contact import's flag columns and the (channel, kind) rows each one stands for.
_FLAGS = (
    ("opt_out_call", "opt_out", ("call", "ai_call")),
    ("opt_out_sms", "opt_out", ("sms",)),
    ("opt_out_email", "opt_out", ("email",)),
    ("consent_automated", "consent", ("call", "ai_call", "sms")),
)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "contact_attempts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("debtor_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("contact_point_id", _ID, nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decision_id", _ID, nullable=True),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("effective", sa.Boolean(), nullable=False),
        sa.Column("agent_id", _ID, nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        *_timestamps(),
        sa.Column("institution_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_contact_attempts_account_id_accounts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["users.id"],
            name=op.f("fk_contact_attempts_agent_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["contact_point_id"],
            ["contact_points.id"],
            name=op.f("fk_contact_attempts_contact_point_id_contact_points"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["debtor_id"],
            ["debtors.id"],
            name=op.f("fk_contact_attempts_debtor_id_debtors"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["compliance_decisions.id"],
            name=op.f("fk_contact_attempts_decision_id_compliance_decisions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_contact_attempts_institution_id_institutions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_attempts")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_contact_attempts_decision_id")),
    )
    with op.batch_alter_table("contact_attempts") as batch:
        batch.create_index(
            "ix_contact_attempts_institution_debtor", ["institution_id", "debtor_id"]
        )
        batch.create_index(batch.f("ix_contact_attempts_institution_id"), ["institution_id"])
        batch.create_index("ix_contact_attempts_status_expires_at", ["status", "expires_at"])

    op.create_table(
        "contact_point_consents",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("contact_point_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        *_timestamps(),
        sa.Column("institution_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_point_id"],
            ["contact_points.id"],
            name=op.f("fk_contact_point_consents_contact_point_id_contact_points"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_contact_point_consents_institution_id_institutions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_point_consents")),
        sa.UniqueConstraint(
            "contact_point_id",
            "channel",
            "kind",
            name=op.f("uq_contact_point_consents_contact_point_id_channel_kind"),
        ),
    )
    with op.batch_alter_table("contact_point_consents") as batch:
        batch.create_index(batch.f("ix_contact_point_consents_institution_id"), ["institution_id"])

    _move_reservations()
    _move_consents()


def _move_reservations() -> None:
    """Copy each reservation into the contact log under its own id; point the slots at it."""
    op.execute(
        f"""
        INSERT INTO contact_attempts (
            id, institution_id, debtor_id, account_id, contact_point_id, channel, party,
            direction, status, decision_id, planned_at, expires_at, started_at, outcome,
            effective, actor, created_at, updated_at
        )
        SELECT
            r.id, r.institution_id, r.debtor_id, r.account_id, r.contact_point_id, r.channel,
            r.party, 'outbound',
            CASE r.status WHEN 'reserved' THEN 'planned' WHEN 'used' THEN 'made'
                ELSE 'cancelled' END,
            r.decision_id, r.planned_at, r.expires_at,
            CASE WHEN r.status = 'used' THEN r.happened_at END,
            {_OUTCOME},
            r.effective, d.actor, r.created_at, r.updated_at
        FROM compliance_reservations r
        JOIN compliance_decisions d ON d.id = r.decision_id
        """
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('contact_attempts', 'id'), "
            "COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM contact_attempts"
        )
    with op.batch_alter_table("compliance_slot_claims") as batch:
        batch.add_column(sa.Column("attempt_id", _ID, nullable=True))
    op.execute("UPDATE compliance_slot_claims SET attempt_id = reservation_id")
    with op.batch_alter_table("compliance_slot_claims") as batch:
        batch.drop_index("ix_compliance_slot_claims_reservation_id")
        batch.drop_constraint(
            batch.f("fk_compliance_slot_claims_reservation_id_compliance_reservations"),
            type_="foreignkey",
        )
        batch.drop_column("reservation_id")
        batch.alter_column("attempt_id", existing_type=_ID, nullable=False)
        batch.create_foreign_key(
            batch.f("fk_compliance_slot_claims_attempt_id_contact_attempts"),
            "contact_attempts",
            ["attempt_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(batch.f("ix_compliance_slot_claims_attempt_id"), ["attempt_id"])
    with op.batch_alter_table("compliance_reservations") as batch:
        batch.drop_index("ix_compliance_reservations_institution_debtor")
        batch.drop_index("ix_compliance_reservations_institution_id")
    op.drop_table("compliance_reservations")


def _move_consents() -> None:
    """Write one consent or opt-out row per channel each flag column stood for; drop them."""
    for flag, kind, channels in _FLAGS:
        consent = kind == "consent"
        for channel in channels:
            op.execute(
                sa.text(
                    f"""
                    INSERT INTO contact_point_consents (
                        institution_id, contact_point_id, channel, kind, source, recorded_at,
                        recorded_by, created_at, updated_at
                    )
                    SELECT institution_id, id, :channel, :kind,
                        {"consent_source" if consent else "'import'"},
                        {"consent_recorded_at" if consent else "NULL"},
                        'migration', updated_at, updated_at
                    FROM contact_points
                    WHERE {flag} = :yes
                    """
                ).bindparams(channel=channel, kind=kind, yes=True)
            )
    _drop_contact_point_flags()


_FLAG_COLUMNS = (
    "opt_out_call",
    "opt_out_sms",
    "opt_out_email",
    "consent_automated",
    "consent_recorded_at",
    "consent_source",
)


def _drop_contact_point_flags() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Rebuilding contact_points (batch mode) would trip the foreign keys pointing at it;
        # SQLite drops a plain column in place.
        for column in _FLAG_COLUMNS:
            op.execute(f"ALTER TABLE contact_points DROP COLUMN {column}")
        return
    with op.batch_alter_table("contact_points") as batch:
        for column in _FLAG_COLUMNS:
            batch.drop_column(column)


def downgrade() -> None:
    # Added in place (not in batch mode): rebuilding contact_points would cascade to the
    # consent rows still to be read.
    for flag in ("opt_out_call", "opt_out_sms", "opt_out_email", "consent_automated"):
        op.add_column(
            "contact_points",
            sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false()),
        )
    op.add_column(
        "contact_points",
        sa.Column("consent_recorded_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "contact_points", sa.Column("consent_source", sa.String(length=64), nullable=True)
    )
    for flag, kind, channels in _FLAGS:
        op.execute(
            sa.text(
                f"""
                UPDATE contact_points SET {flag} = :yes WHERE id IN (
                    SELECT contact_point_id FROM contact_point_consents
                    WHERE kind = :kind AND channel = :channel
                )
                """
            ).bindparams(yes=True, kind=kind, channel=channels[0])
        )
    op.execute(
        """
        UPDATE contact_points SET
            consent_recorded_at = (
                SELECT c.recorded_at FROM contact_point_consents c
                WHERE c.contact_point_id = contact_points.id AND c.kind = 'consent'
                    AND c.channel = 'call'
            ),
            consent_source = (
                SELECT c.source FROM contact_point_consents c
                WHERE c.contact_point_id = contact_points.id AND c.kind = 'consent'
                    AND c.channel = 'call'
            )
        """
    )
    with op.batch_alter_table("contact_point_consents") as batch:
        batch.drop_index(batch.f("ix_contact_point_consents_institution_id"))
    op.drop_table("contact_point_consents")

    op.create_table(
        "compliance_reservations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("decision_id", _ID, nullable=False),
        sa.Column("debtor_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("contact_point_id", _ID, nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("effective", sa.Boolean(), nullable=False),
        sa.Column("happened_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.Column("institution_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_compliance_reservations_account_id_accounts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["contact_point_id"],
            ["contact_points.id"],
            name=op.f("fk_compliance_reservations_contact_point_id_contact_points"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["debtor_id"],
            ["debtors.id"],
            name=op.f("fk_compliance_reservations_debtor_id_debtors"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["compliance_decisions.id"],
            name=op.f("fk_compliance_reservations_decision_id_compliance_decisions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_compliance_reservations_institution_id_institutions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_reservations")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_compliance_reservations_decision_id")),
    )
    with op.batch_alter_table("compliance_reservations") as batch:
        batch.create_index(
            "ix_compliance_reservations_institution_debtor", ["institution_id", "debtor_id"]
        )
        batch.create_index(batch.f("ix_compliance_reservations_institution_id"), ["institution_id"])
    # Inbound contacts had no reservation; outcome codes stay as they are.
    op.execute(
        """
        INSERT INTO compliance_reservations (
            id, institution_id, decision_id, debtor_id, account_id, contact_point_id, channel,
            party, planned_at, expires_at, status, outcome, effective, happened_at, created_at,
            updated_at
        )
        SELECT id, institution_id, decision_id, debtor_id, account_id, contact_point_id,
            channel, party, planned_at, expires_at,
            CASE status WHEN 'made' THEN 'used' WHEN 'cancelled' THEN 'released'
                ELSE 'reserved' END,
            CASE WHEN status = 'cancelled' THEN 'not_made' ELSE SUBSTR(outcome, 1, 16) END,
            effective, started_at, created_at, updated_at
        FROM contact_attempts
        WHERE decision_id IS NOT NULL
        """
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('compliance_reservations', 'id'), "
            "COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM compliance_reservations"
        )
    with op.batch_alter_table("compliance_slot_claims") as batch:
        batch.add_column(sa.Column("reservation_id", _ID, nullable=True))
    op.execute(
        "DELETE FROM compliance_slot_claims WHERE attempt_id NOT IN "
        "(SELECT id FROM compliance_reservations)"
    )
    op.execute("UPDATE compliance_slot_claims SET reservation_id = attempt_id")
    with op.batch_alter_table("compliance_slot_claims") as batch:
        batch.drop_index(batch.f("ix_compliance_slot_claims_attempt_id"))
        batch.drop_constraint(
            batch.f("fk_compliance_slot_claims_attempt_id_contact_attempts"), type_="foreignkey"
        )
        batch.drop_column("attempt_id")
        batch.alter_column("reservation_id", existing_type=_ID, nullable=False)
        batch.create_foreign_key(
            batch.f("fk_compliance_slot_claims_reservation_id_compliance_reservations"),
            "compliance_reservations",
            ["reservation_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(batch.f("ix_compliance_slot_claims_reservation_id"), ["reservation_id"])
    with op.batch_alter_table("contact_attempts") as batch:
        batch.drop_index("ix_contact_attempts_status_expires_at")
        batch.drop_index(batch.f("ix_contact_attempts_institution_id"))
        batch.drop_index("ix_contact_attempts_institution_debtor")
    op.drop_table("contact_attempts")
