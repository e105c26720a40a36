"""Migration 0007 moves stored rows: reservations into the contact log, flags into consents."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from recoup.db import make_engine
from recoup.db_cli import alembic_config
from tests.conftest import IN_CI, POSTGRES_URL

_T = "'2025-03-03 02:00:00+00:00'"


def _seed(engine: Engine) -> None:
    """Write rows as revision 0006 stored them: flags on contact points, reservations."""
    with engine.begin() as connection:
        run = connection.execute
        run(
            text(
                "INSERT INTO institutions (id, code, name, jurisdiction, timezone, currency, "
                "preset, settings) VALUES (1, 'I1', 'One', 'CN', 'Asia/Shanghai', 'CNY', "
                "'consumer_finance', '{}')"
            )
        )
        run(
            text(
                "INSERT INTO debtors (id, institution_id, external_id, kind, name, name_index, "
                "timezone, language, deceased, bankrupt, disputed, cease_contact, "
                "attorney_represented, hardship) VALUES (1, 1, 'D1', 'individual', 'x', 'x', "
                "'Asia/Shanghai', 'zh-CN', false, false, false, false, false, false)"
            )
        )
        for number, (opt_call, opt_sms, consent) in enumerate(
            [(True, False, True), (False, True, False)], start=1
        ):
            run(
                text(
                    "INSERT INTO contact_points (id, institution_id, external_id, debtor_id, "
                    "kind, value, value_index, relation, third_party, status, source, "
                    "opt_out_call, opt_out_sms, opt_out_email, consent_automated, "
                    "consent_recorded_at, consent_source) VALUES (:id, 1, :external, 1, "
                    "'mobile', 'x', 'x', 'self', :third, 'valid', 'import', :call, :sms, false, "
                    f":consent, {_T if consent else 'NULL'}, :source)"
                ),
                {
                    "id": number,
                    "external": f"C{number}",
                    "third": number == 2,
                    "call": opt_call,
                    "sms": opt_sms,
                    "consent": consent,
                    "source": "loan_agreement" if consent else None,
                },
            )
        reservations = [
            # id, channel, party, status, outcome, effective
            (1, "call", "debtor", "used", "conversation", True),
            (2, "call", "third_party", "used", "refused", True),
            (3, "sms", "debtor", "used", "failed", False),
            (4, "call", "debtor", "released", "not_made", False),
            (5, "call", "debtor", "reserved", None, True),
            (6, "call", "third_party", "used", "conversation", True),
        ]
        for number, channel, party, status, outcome, effective in reservations:
            run(
                text(
                    "INSERT INTO compliance_decisions (id, institution_id, debtor_id, channel, "
                    "party, planned_at, allowed, rule_ids, reasons, timezones, inputs, "
                    "pack_code, pack_version, policy_name, policy_version, actor) VALUES "
                    f"(:id, 1, 1, :channel, :party, {_T}, true, '[]', '[]', '[]', '{{}}', 'CN', "
                    "'1', 'p', '1', 'agent7')"
                ),
                {"id": number, "channel": channel, "party": party},
            )
            run(
                text(
                    "INSERT INTO compliance_reservations (id, institution_id, decision_id, "
                    "debtor_id, channel, party, planned_at, expires_at, status, outcome, "
                    f"effective, happened_at) VALUES (:id, 1, :id, 1, :channel, :party, {_T}, "
                    f"{_T}, :status, :outcome, :effective, {_T})"
                ),
                {
                    "id": number,
                    "channel": channel,
                    "party": party,
                    "status": status,
                    "outcome": outcome,
                    "effective": effective,
                },
            )
        run(
            text(
                "INSERT INTO compliance_slot_claims (id, institution_id, reservation_id, "
                "debtor_id, slot_key) VALUES (1, 1, 5, 1, 'CN-FREQ-V/effective/1')"
            )
        )


def _check_upgraded(engine: Engine) -> None:
    with engine.connect() as connection:
        attempts = connection.execute(
            text(
                "SELECT id, status, outcome, effective, actor, direction, decision_id, "
                "started_at IS NOT NULL FROM contact_attempts ORDER BY id"
            )
        ).all()
        assert [tuple(row[:3]) for row in attempts] == [
            (1, "made", "right_party"),
            (2, "made", "refused_contact"),
            (3, "made", "message_failed"),
            (4, "cancelled", None),
            (5, "planned", None),
            (6, "made", "third_party"),
        ]
        assert {row[4] for row in attempts} == {"agent7"}
        assert {row[5] for row in attempts} == {"outbound"}
        assert [row[6] for row in attempts] == [1, 2, 3, 4, 5, 6]
        assert [bool(row[7]) for row in attempts] == [True, True, True, False, False, True]
        claims = connection.execute(text("SELECT attempt_id FROM compliance_slot_claims")).all()
        assert claims == [(5,)]
        consents = connection.execute(
            text(
                "SELECT contact_point_id, channel, kind, source, recorded_at IS NOT NULL "
                "FROM contact_point_consents ORDER BY contact_point_id, kind, channel"
            )
        ).all()
        assert [tuple(row[:3]) for row in consents] == [
            (1, "ai_call", "consent"),
            (1, "call", "consent"),
            (1, "sms", "consent"),
            (1, "ai_call", "opt_out"),
            (1, "call", "opt_out"),
            (2, "sms", "opt_out"),
        ]
        assert {(row[2], row[3], bool(row[4])) for row in consents} == {
            ("consent", "loan_agreement", True),
            ("opt_out", "import", False),
        }
        # New rows get ids after the moved ones.
        connection.execute(
            text(
                "INSERT INTO contact_attempts (institution_id, debtor_id, channel, party, "
                "direction, status, effective, actor) VALUES (1, 1, 'web', 'debtor', "
                "'inbound', 'made', false, 'portal')"
            )
        )
        assert connection.execute(text("SELECT MAX(id) FROM contact_attempts")).scalar() == 7
        connection.rollback()


def _check_downgraded(engine: Engine) -> None:
    with engine.connect() as connection:
        reservations = connection.execute(
            text("SELECT id, status, outcome FROM compliance_reservations ORDER BY id")
        ).all()
        assert [tuple(row) for row in reservations][3:5] == [
            (4, "released", "not_made"),
            (5, "reserved", None),
        ]
        flags = connection.execute(
            text(
                "SELECT id, opt_out_call, opt_out_sms, consent_automated, consent_source "
                "FROM contact_points ORDER BY id"
            )
        ).all()
        assert [(row[0], bool(row[1]), bool(row[2]), bool(row[3]), row[4]) for row in flags] == [
            (1, True, False, True, "loan_agreement"),
            (2, False, True, False, None),
        ]
        claims = connection.execute(text("SELECT reservation_id FROM compliance_slot_claims"))
        assert claims.all() == [(5,)]


def _round_trip(url: str) -> None:
    config = alembic_config(url)
    command.upgrade(config, "0006")
    engine = make_engine(url)
    try:
        _seed(engine)
        command.upgrade(config, "0007")
        _check_upgraded(engine)
        command.downgrade(config, "0006")
        _check_downgraded(engine)
        command.upgrade(config, "head")
    finally:
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    schema = f"recoup_mig_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {error}")
        pytest.skip(f"PostgreSQL not reachable: {error}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class TestContactLogMigration:
    def test_sqlite_moves_reservations_and_flags(self, tmp_path: Path) -> None:
        _round_trip(f"sqlite:///{tmp_path / 'm.db'}")

    def test_postgresql_moves_reservations_and_flags(self, postgres_url: str) -> None:
        _round_trip(postgres_url)


# --- 0010: the agents of accounts become the owners of cases --------------------------------


def _seed_assignments(engine: Engine) -> None:
    """Accounts with agents as revision 0009 stored them, and one case already owned."""
    with engine.begin() as connection:
        run = connection.execute
        run(
            text(
                "INSERT INTO institutions (id, code, name, jurisdiction, timezone, currency, "
                "preset, settings) VALUES (1, 'I1', 'One', 'CN', 'Asia/Shanghai', 'CNY', "
                "'consumer_finance', '{}')"
            )
        )
        for user in (1, 2):
            run(
                text(
                    "INSERT INTO users (id, institution_id, username, display_name, "
                    "password_hash, role, active, failed_logins, session_version) VALUES "
                    "(:id, 1, :name, '', 'x', 'agent', true, 0, 1)"
                ),
                {"id": user, "name": f"agent{user}"},
            )
        for debtor in (1, 2, 3):
            run(
                text(
                    "INSERT INTO debtors (id, institution_id, external_id, kind, name, "
                    "name_index, timezone, language, deceased, bankrupt, disputed, "
                    "cease_contact, attorney_represented, hardship) VALUES (:id, 1, :external, "
                    "'individual', 'x', 'x', 'Asia/Shanghai', 'zh-CN', false, false, false, "
                    "false, false, false)"
                ),
                {"id": debtor, "external": f"D{debtor}"},
            )
        accounts = [
            # id, debtor, status, days past due, agent
            (1, 1, "delinquent", 40, 1),
            (2, 1, "delinquent", 10, 1),
            (3, 1, "charged_off", 200, 2),
            (4, 2, "current", 0, 2),  # owes nothing due: the assignment lapses
            (5, 3, "delinquent", 70, 1),  # its debtor's case already has an owner
            (6, 3, "delinquent", 70, None),
        ]
        for number, debtor, status, dpd, agent in accounts:
            run(
                text(
                    "INSERT INTO accounts (id, institution_id, external_id, debtor_id, product, "
                    "currency, principal, interest, fees, penalty, minimum_due, overdue_amount, "
                    "days_past_due, bucket, status, assigned_agent_id) VALUES (:id, 1, :external, "
                    ":debtor, 'cash_loan', 'CNY', 100, 0, 0, 0, 0, 0, :dpd, 'M1', :status, :agent)"
                ),
                {
                    "id": number,
                    "external": f"A{number}",
                    "debtor": debtor,
                    "dpd": dpd,
                    "status": status,
                    "agent": agent,
                },
            )
        run(
            text(
                "INSERT INTO cases (id, institution_id, debtor_id, live_debtor_id, state, "
                f"opened_at, owner_id, expected_recovery, priority, refusals) VALUES (7, 1, 3, 3, "
                f"'open', {_T}, 2, 0, 0, 0)"
            )
        )
        run(
            text(
                "INSERT INTO case_accounts (institution_id, case_id, account_id, added_at) "
                f"VALUES (1, 7, 6, {_T})"
            )
        )


def _check_owners(engine: Engine) -> None:
    with engine.connect() as connection:
        cases = connection.execute(
            text("SELECT debtor_id, owner_id, state FROM cases ORDER BY debtor_id")
        ).all()
        assert [tuple(row) for row in cases] == [(1, 1, "open"), (3, 2, "open")]
        members = connection.execute(
            text(
                "SELECT c.debtor_id, m.account_id FROM case_accounts m "
                "JOIN cases c ON c.id = m.case_id ORDER BY m.account_id"
            )
        ).all()
        assert [tuple(row) for row in members] == [(1, 1), (1, 2), (1, 3), (3, 5), (3, 6)]
        history = connection.execute(
            text("SELECT event, to_owner_id, actor FROM case_events ORDER BY id")
        ).all()
        assert [tuple(row) for row in history] == [
            ("opened", None, "migration 0010"),
            ("assigned", 1, "migration 0010"),
        ]


def _round_trip_owners(url: str) -> None:
    config = alembic_config(url)
    command.upgrade(config, "0009")
    engine = make_engine(url)
    try:
        _seed_assignments(engine)
        command.upgrade(config, "0010")
        _check_owners(engine)
        command.downgrade(config, "0009")
        with engine.connect() as connection:
            agents = connection.execute(
                text("SELECT id, assigned_agent_id FROM accounts ORDER BY id")
            ).all()
        # Back from the cases: each account in a live case has its case's owner.
        assert [tuple(row) for row in agents] == [
            (1, 1), (2, 1), (3, 1), (4, None), (5, 2), (6, 2)
        ]  # fmt: skip
        command.upgrade(config, "head")
    finally:
        engine.dispose()


def test_account_agents_become_case_owners_on_sqlite(tmp_path: Path) -> None:
    _round_trip_owners(f"sqlite:///{tmp_path / 'owners.db'}")


def test_account_agents_become_case_owners_on_postgres(postgres_url: str) -> None:
    _round_trip_owners(postgres_url)
