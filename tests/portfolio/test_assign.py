"""Assigning accounts to agents: only active, certified agents of the institution."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.factories import agent_of, give_to_agent, make_account, make_debtor, make_institution
from tests.identity.helpers import PASSWORD, assert_problem, bearer, client_for, make_user
from typer.testing import CliRunner

from recoup.cli import app as cli
from recoup.compliance.certifications import service as certifications_service
from recoup.db import unit_of_work
from recoup.kit.clock import utcnow
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.models import Account, Institution, User
from recoup.models.audit import AuditEvent
from recoup.models.identity import Role
from recoup.portfolio import service
from recoup.portfolio.repository import account_owner_id

TODAY = date(2025, 3, 3)


def certify(
    session: Session, institution: Institution, user: User, *, issued: date, expires: date
) -> None:
    certifications_service.grant_certification(
        session,
        institution_id=institution.id,
        user_id=user.id,
        course="collections compliance",
        issued_on=issued,
        expires_on=expires,
        actor="test",
    )


def certified_agent(session: Session, institution: Institution, *, on: date = TODAY) -> User:
    agent = make_user(session, institution, role="agent")
    certify(
        session,
        institution,
        agent,
        issued=on - timedelta(days=10),
        expires=on + timedelta(days=300),
    )
    return agent


class TestAssignService:
    def test_a_certified_agent_gets_the_accounts_and_each_is_audited(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        agent = certified_agent(session, institution)
        previous = make_user(session, institution, role="agent")
        debtor = make_debtor(session, institution)
        first, second = make_account(session, debtor), make_account(session, debtor)
        case = give_to_agent(session, first, previous.id)
        session.flush()
        assigned = service.assign_accounts(
            session, institution_id=institution.id, agent_id=agent.id,
            account_ids=[first.id, second.id, first.id], actor="lead", on=TODAY,
        )  # fmt: skip
        assert [account.id for account in assigned] == [first.id, second.id]
        assert {agent_of(session, first), agent_of(session, second)} == {agent.id}
        events = session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "accounts.assign")
            .order_by(AuditEvent.sequence)
        ).scalars()
        assert [(e.object_id, e.actor, e.details) for e in events] == [
            (
                str(first.id),
                "lead",
                {"agent_id": agent.id, "previous_agent_id": previous.id, "case_id": case.id},
            ),
            (
                str(second.id),
                "lead",
                {"agent_id": agent.id, "previous_agent_id": previous.id, "case_id": case.id},
            ),
        ]

    @pytest.mark.parametrize(
        ("issued", "expires", "why"),
        [
            (TODAY - timedelta(days=400), TODAY - timedelta(days=1), "expired yesterday"),
            (TODAY + timedelta(days=1), TODAY + timedelta(days=300), "not yet issued"),
            (None, None, "never certified"),
        ],
    )
    def test_an_agent_without_a_certificate_valid_that_day_is_refused(
        self, session: Session, issued: date | None, expires: date | None, why: str
    ) -> None:
        institution = make_institution(session)
        agent = make_user(session, institution, role="agent")
        if issued is not None and expires is not None:
            certify(session, institution, agent, issued=issued, expires=expires)
        account = make_account(session, make_debtor(session, institution))
        with pytest.raises(ValidationFailed, match="POL-CERT") as refused:
            service.assign_accounts(
                session, institution_id=institution.id, agent_id=agent.id,
                account_ids=[account.id], actor="lead", on=TODAY,
            )  # fmt: skip
        assert refused.value.extra["errors"][0]["field"] == "agent_id", why
        session.refresh(account)
        assert agent_of(session, account) is None

    def test_the_last_day_of_a_certificate_still_counts(self, session: Session) -> None:
        institution = make_institution(session)
        agent = make_user(session, institution, role="agent")
        certify(session, institution, agent, issued=TODAY - timedelta(days=365), expires=TODAY)
        account = make_account(session, make_debtor(session, institution))
        service.assign_accounts(
            session, institution_id=institution.id, agent_id=agent.id,
            account_ids=[account.id], actor="lead", on=TODAY,
        )  # fmt: skip
        assert agent_of(session, account) == agent.id

    @pytest.mark.parametrize("case", ["manager", "inactive agent"])
    def test_a_user_who_is_not_an_active_agent_here_is_refused(
        self, session: Session, case: str
    ) -> None:
        institution = make_institution(session)
        user = make_user(session, institution, role="agent")
        certify(
            session,
            institution,
            user,
            issued=TODAY - timedelta(days=1),
            expires=TODAY + timedelta(days=9),
        )
        if case == "inactive agent":
            user.active = False
        else:
            user.role = Role.manager
        account = make_account(session, make_debtor(session, institution))
        with pytest.raises(ValidationFailed, match=f"agent_id {user.id}"):
            service.assign_accounts(
                session, institution_id=institution.id, agent_id=user.id,
                account_ids=[account.id], actor="lead", on=TODAY,
            )  # fmt: skip
        assert agent_of(session, account) is None

    @pytest.mark.parametrize("case", ["other institution", "unknown"])
    def test_an_agent_out_of_scope_is_not_found(self, session: Session, case: str) -> None:
        institution = make_institution(session)
        if case == "other institution":
            agent_id = certified_agent(session, make_institution(session)).id
        else:
            agent_id = 987654321
        account = make_account(session, make_debtor(session, institution))
        with pytest.raises(NotFound, match=f"no user {agent_id}"):
            service.assign_accounts(
                session, institution_id=institution.id, agent_id=agent_id,
                account_ids=[account.id], actor="lead", on=TODAY,
            )  # fmt: skip
        assert agent_of(session, account) is None

    def test_unknown_and_other_tenant_accounts_are_named_and_nothing_changes(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        agent = certified_agent(session, institution)
        mine = make_account(session, make_debtor(session, institution))
        foreign = make_account(session, make_debtor(session, make_institution(session)))
        with pytest.raises(NotFound) as refused:
            service.assign_accounts(
                session, institution_id=institution.id, agent_id=agent.id,
                account_ids=[mine.id, foreign.id, 987654321], actor="lead", on=TODAY,
            )  # fmt: skip
        assert refused.value.extra["unknown_account_ids"] == [foreign.id, 987654321]
        session.refresh(mine)
        assert agent_of(session, mine) is None

    def test_certified_agents_lists_only_agents_valid_that_day(self, session: Session) -> None:
        institution = make_institution(session)
        valid = certified_agent(session, institution)
        lapsed = make_user(session, institution, role="agent")
        certify(
            session,
            institution,
            lapsed,
            issued=TODAY - timedelta(days=40),
            expires=TODAY - timedelta(days=1),
        )
        make_user(session, institution, role="agent")
        listed = service.certified_agents(session, institution_id=institution.id, on=TODAY)
        assert [agent.id for agent in listed] == [valid.id]


class TestAssignApi:
    def test_a_team_lead_assigns_and_refusals_are_problems(self, session: Session) -> None:
        institution = make_institution(session)
        today = utcnow().date()
        agent = certified_agent(session, institution, on=today)
        uncertified = make_user(session, institution, role="agent")
        lead = make_user(session, institution, role="team_lead")
        account = make_account(session, make_debtor(session, institution))
        foreign = make_account(session, make_debtor(session, make_institution(session)))
        with client_for(session) as client:
            done = client.post(
                "/api/v1/accounts/assign",
                json={"agent_id": agent.id, "account_ids": [account.id]},
                headers=bearer(lead),
            )
            no_certificate = client.post(
                "/api/v1/accounts/assign",
                json={"agent_id": uncertified.id, "account_ids": [account.id]},
                headers=bearer(lead),
            )
            other_tenant = client.post(
                "/api/v1/accounts/assign",
                json={"agent_id": agent.id, "account_ids": [account.id, foreign.id]},
                headers=bearer(lead),
            )
            empty = client.post(
                "/api/v1/accounts/assign",
                json={"agent_id": agent.id, "account_ids": []},
                headers=bearer(lead),
            )
            by_agent = client.post(
                "/api/v1/accounts/assign",
                json={"agent_id": agent.id, "account_ids": [account.id]},
                headers=bearer(agent),
            )
        assert done.status_code == 200, done.text
        assert done.json() == {"agent_id": agent.id, "account_ids": [account.id]}
        assert "POL-CERT" in str(assert_problem(no_certificate, 422)["detail"])
        problem = assert_problem(other_tenant, 404)
        assert problem["unknown_account_ids"] == [foreign.id]
        assert str(foreign.id) in str(problem["detail"])
        assert "account_ids" in str(assert_problem(empty, 422)["detail"])
        assert_problem(by_agent, 403)
        session.refresh(account)
        assert agent_of(session, account) == agent.id


def test_accounts_assign_cli(cli_db: str) -> None:
    runner = CliRunner()
    today = utcnow().date()
    with unit_of_work() as session:
        institution = make_institution(session, code="CLI-ASSIGN")
        agent = make_user(session, institution, role="agent", username="cli.agent")
        make_user(session, institution, role="agent", username="cli.rookie", password=PASSWORD)
        certify(
            session,
            institution,
            agent,
            issued=today - timedelta(days=1),
            expires=today + timedelta(days=90),
        )
        debtor = make_debtor(session, institution)
        make_account(session, debtor, external_id="ACC-1")
        make_account(session, debtor, external_id="ACC-2")
    base = ["accounts", "assign", "--institution", "CLI-ASSIGN"]
    done = runner.invoke(cli, [*base, "--agent", "cli.agent", "ACC-1", "ACC-2"])
    assert done.exit_code == 0, done.output
    assert "assigned 2 account(s) to cli.agent" in done.output
    refused = runner.invoke(cli, [*base, "--agent", "cli.rookie", "ACC-1"])
    assert refused.exit_code == 1
    assert "POL-CERT" in refused.output
    unknown = runner.invoke(cli, [*base, "--agent", "cli.agent", "ACC-1", "NOPE-9"])
    assert unknown.exit_code == 1
    assert "NOPE-9" in unknown.output
    with unit_of_work() as session:
        owners = session.execute(select(Account.external_id, account_owner_id())).all()
        assert {external_id for external_id, owner in owners if owner == agent.id} == {
            "ACC-1",
            "ACC-2",
        }
