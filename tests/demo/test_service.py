"""Seeding the demo institutions into a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from recoup.db import make_engine, unit_of_work
from recoup.demo.service import DEMO_ROLES, seed_demo, split_accounts
from recoup.kit.crypto import blind_index
from recoup.kit.errors import ValidationFailed
from recoup.models import (
    Account,
    AuditEvent,
    Base,
    ContactPoint,
    Debtor,
    DelinquencyEvent,
    Institution,
    Payment,
    User,
)
from recoup.models.cases import AgentProfile, Case, Queue
from recoup.models.contact import ContactPointConsent
from recoup.models.plans import PaymentPlan

AS_OF = date(2026, 11, 28)
USERS_PER_INSTITUTION = sum(count for _, count, _ in DEMO_ROLES)


def _count(session: Session, model: type, institution_id: int) -> int:
    statement = (
        select(func.count()).select_from(model).where(model.institution_id == institution_id)
    )  # type: ignore[attr-defined]
    return int(session.execute(statement).scalar_one())


@pytest.fixture
def seeded(session: Session):  # type: ignore[no-untyped-def]
    result = seed_demo(session, accounts=300, seed=5, as_of=AS_OF)
    institutions = {
        institution.code: institution for institution in session.scalars(select(Institution)).all()
    }
    return result, institutions


class TestSeedDemo:
    def test_both_institutions_get_their_share_of_rows(self, session: Session, seeded) -> None:  # type: ignore[no-untyped-def]
        result, institutions = seeded
        shares = split_accounts(300)
        assert shares == {"DEMO-CF": 250, "DEMO-BANK": 50}
        for outcome in result.institutions:
            institution = institutions[outcome.code]
            assert outcome.seeded
            assert (
                _count(session, Account, institution.id)
                == shares[outcome.code]
                == outcome.counts["accounts"]
            )
            assert _count(session, Debtor, institution.id) == outcome.counts["debtors"]
            assert _count(session, ContactPoint, institution.id) == outcome.counts["contact_points"]
            assert (
                _count(session, ContactPointConsent, institution.id)
                == outcome.counts["contact_point_consents"]
                > 0
            )
            assert _count(session, Payment, institution.id) == outcome.counts["payments"]
            assert (
                _count(session, DelinquencyEvent, institution.id)
                == outcome.counts["delinquency_events"]
            )
        assert institutions["DEMO-CF"].preset == "consumer_finance"
        assert institutions["DEMO-BANK"].preset == "commercial_bank"
        assert institutions["DEMO-CF"].name == "演示消费金融"

    def test_pii_is_encrypted_at_rest_and_found_by_blind_index(
        self, session: Session, seeded
    ) -> None:  # type: ignore[no-untyped-def]
        debtor = session.scalars(select(Debtor).order_by(Debtor.id).limit(1)).one()
        raw_name, raw_id = session.execute(
            text("SELECT name, national_id FROM debtors WHERE id = :id"), {"id": debtor.id}
        ).one()
        assert debtor.name not in raw_name
        assert debtor.national_id is not None
        assert debtor.national_id not in raw_id
        found = session.scalars(
            select(Debtor).where(
                Debtor.national_id_index
                == blind_index(debtor.national_id, context="debtors.national_id")
            )
        ).all()
        assert debtor.id in [row.id for row in found]
        contact = session.scalars(
            select(ContactPoint).where(ContactPoint.debtor_id == debtor.id).limit(1)
        ).one()
        assert contact.value_index == blind_index(contact.value, context="contact_points.value")

    def test_dates_and_times_read_back_as_written(self, session: Session, seeded) -> None:  # type: ignore[no-untyped-def]
        payment = session.scalars(select(Payment).order_by(Payment.id).limit(1)).one()
        assert payment.paid_at.year in {2025, 2026}
        account = session.scalars(select(Account).where(Account.days_past_due > 0).limit(1)).one()
        assert account.due_date is not None
        assert (AS_OF - account.due_date).days == account.days_past_due

    def test_each_role_gets_a_user_and_agents_get_a_queue(self, session: Session, seeded) -> None:  # type: ignore[no-untyped-def]
        result, institutions = seeded
        assert len(result.credentials) == 2 * USERS_PER_INSTITUTION
        for code, institution in institutions.items():
            users = session.scalars(select(User).where(User.institution_id == institution.id)).all()
            assert sorted({user.role for user in users}) == sorted(
                role for role, _, _ in DEMO_ROLES
            )
            agents = [user for user in users if user.role == "agent"]
            team_lead = next(user for user in users if user.role == "team_lead")
            assert len(agents) == 3
            for agent in agents:
                assert agent.team_lead_id == team_lead.id
                queue = session.execute(
                    select(func.count())
                    .select_from(Case)
                    .where(Case.owner_id == agent.id, Case.closed_at.is_(None))
                ).scalar_one()
                assert queue > 0, f"{code} agent {agent.username} has an empty queue"

    def test_passwords_are_returned_once_and_stored_only_as_hashes(
        self, session: Session, seeded
    ) -> None:  # type: ignore[no-untyped-def]
        result, _ = seeded
        hasher = PasswordHasher()
        for credential in result.credentials:
            assert credential.password is not None
            assert credential.password not in repr(credential)
            user = session.scalars(select(User).where(User.username == credential.username)).one()
            assert credential.password not in user.password_hash
            assert hasher.verify(user.password_hash, credential.password)
        assert len({credential.password for credential in result.credentials}) == len(
            result.credentials
        )

    def test_seeding_is_audited_without_pii(self, session: Session, seeded) -> None:  # type: ignore[no-untyped-def]
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "demo.seed")).all()
        assert len(events) == 2
        assert all(set(event.details) >= {"seed", "accounts", "debtors"} for event in events)


class TestIdempotency:
    def test_a_second_seed_skips_institutions_that_hold_data(
        self, session: Session, seeded
    ) -> None:  # type: ignore[no-untyped-def]
        _, institutions = seeded
        before = {
            code: _count(session, Account, institution.id)
            for code, institution in institutions.items()
        }
        users_before = session.execute(select(func.count()).select_from(User)).scalar_one()
        again = seed_demo(session, accounts=300, seed=6, as_of=AS_OF)
        assert [outcome.seeded for outcome in again.institutions] == [False, False]
        assert all("skipped" in outcome.message for outcome in again.institutions)
        assert again.credentials == []
        after = {
            code: _count(session, Account, institution.id)
            for code, institution in institutions.items()
        }
        assert after == before
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == users_before

    def test_an_existing_empty_institution_is_filled(self, session: Session) -> None:
        from recoup.institutions.service import create_institution

        create_institution(
            session,
            code="DEMO-BANK",
            name="演示商业银行",
            jurisdiction="CN",
            timezone="Asia/Shanghai",
            currency="CNY",
            preset="commercial_bank",
        )
        result = seed_demo(session, accounts=60, seed=1, as_of=AS_OF)
        assert [outcome.seeded for outcome in result.institutions] == [True, True]

    def test_the_same_seed_writes_the_same_portfolio(self, session: Session) -> None:
        seed_demo(session, accounts=60, seed=9, as_of=AS_OF)
        first = _fingerprint(session)
        session.rollback()
        seed_demo(session, accounts=60, seed=9, as_of=AS_OF)
        assert _fingerprint(session) == first


def _fingerprint(session: Session) -> list[tuple[object, ...]]:
    rows = session.execute(
        select(
            Account.external_id, Account.principal, Account.bucket, Debtor.name, Debtor.national_id
        )
        .join(Debtor, Debtor.id == Account.debtor_id)
        .order_by(Account.external_id, Account.institution_id)
    ).all()
    return [tuple(row) for row in rows]


class TestSmallestSeeds:
    def test_one_account_goes_to_the_consumer_lender_and_the_bank_gets_users_only(
        self, session: Session
    ) -> None:
        result = seed_demo(session, accounts=1, seed=1, as_of=AS_OF)
        outcomes = {outcome.code: outcome for outcome in result.institutions}
        assert outcomes["DEMO-CF"].counts["accounts"] == 1
        assert outcomes["DEMO-BANK"].message == "users only"
        assert len(result.credentials) == 2 * USERS_PER_INSTITUTION

    def test_zero_accounts_is_refused(self, session: Session) -> None:
        with pytest.raises(ValidationFailed):
            seed_demo(session, accounts=0, seed=1)


class TestSeedThroughAnEngine:
    def test_commits_each_institution_and_leaves_no_plaintext_pii_in_the_file(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "demo.db"
        engine = make_engine(f"sqlite:///{path}")
        Base.metadata.create_all(engine)
        result = seed_demo(engine, accounts=120, seed=2, as_of=AS_OF)
        assert [outcome.seeded for outcome in result.institutions] == [True, True]

        with unit_of_work(engine) as session:
            debtors = session.scalars(select(Debtor)).all()
            contacts = session.scalars(select(ContactPoint)).all()
            assert len(debtors) == sum(outcome.counts["debtors"] for outcome in result.institutions)
            plaintext = {value for debtor in debtors for value in (debtor.name, debtor.national_id)}
            plaintext |= {contact.value for contact in contacts}
            plaintext |= {contact.contact_name for contact in contacts if contact.contact_name}
        plaintext.discard(None)  # type: ignore[arg-type]

        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        stored = b"".join(part.read_bytes() for part in tmp_path.glob("demo.db*"))
        leaked = [value for value in plaintext if value and value.encode() in stored]
        assert leaked == []


def test_the_demo_has_queues_profiles_and_cases_with_owners(session: Session) -> None:
    seed_demo(session, accounts=40, seed=5, as_of=date(2026, 6, 30))
    institution = session.scalars(select(Institution).where(Institution.code == "DEMO-CF")).one()
    assert (
        session.scalar(
            select(func.count()).select_from(Queue).where(Queue.institution_id == institution.id)
        )
        == 3
    )
    assert (
        session.scalar(
            select(func.count())
            .select_from(AgentProfile)
            .where(AgentProfile.institution_id == institution.id)
        )
        == 3
    )
    owners = session.execute(
        select(Case.owner_id, Case.queue_id).where(Case.institution_id == institution.id)
    ).all()
    assert owners
    assert any(owner is not None for owner, _ in owners)
    assert any(queue is not None for _, queue in owners)
    # The three plans agents propose on first start; the simulated past agreed others.
    statuses = session.execute(
        select(PaymentPlan.status).where(
            PaymentPlan.institution_id == institution.id, PaymentPlan.created_by == "demo"
        )
    ).scalars()
    assert sorted(statuses) == ["active", "active", "pending_approval"]
