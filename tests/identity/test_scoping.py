from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.identity.principal import principal_for_user
from recoup.identity.scoping import acting, get_scoped, institution_scope, scoped
from recoup.kit.errors import NotFound
from recoup.models import Account, ContactPoint, Debtor, Institution, User
from recoup.models.compliance import ContactDecision
from tests.factories import (
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.identity.helpers import make_user


class TestTenantScoping:
    def test_a_tenant_sees_only_its_rows(self, session: Session) -> None:
        mine, theirs = make_institution(session), make_institution(session)
        my_debtor = make_debtor(session, mine)
        their_debtor = make_debtor(session, theirs)
        manager = principal_for_user(make_user(session, mine, role="manager"))
        seen = session.scalars(scoped(select(Debtor), Debtor, manager)).all()
        assert seen == [my_debtor]
        assert get_scoped(session, Debtor, my_debtor.id, manager) is my_debtor
        with pytest.raises(NotFound, match=f"no debtor {their_debtor.id}"):
            get_scoped(session, Debtor, their_debtor.id, manager)

    def test_a_platform_admin_reads_no_portfolio(self, session: Session) -> None:
        make_debtor(session, make_institution(session))
        platform = principal_for_user(make_user(session, None, role="admin"))
        assert platform.is_platform_admin
        assert session.scalars(scoped(select(Debtor), Debtor, platform)).all() == []

    def test_non_tenant_models_are_refused(self, session: Session) -> None:
        manager = principal_for_user(make_user(session, make_institution(session), role="manager"))
        with pytest.raises(TypeError):
            scoped(select(Institution), Institution, manager)


class TestAgentScoping:
    def test_an_agent_sees_only_assigned_accounts_and_their_debtors(self, session: Session) -> None:
        institution = make_institution(session)
        agent_user = make_user(session, institution, role="agent")
        colleague = make_user(session, institution, role="agent")
        mine_debtor, other_debtor = (
            make_debtor(session, institution),
            make_debtor(session, institution),
        )
        my_account = make_account(session, mine_debtor)
        give_to_agent(session, my_account, agent_user.id)
        other_account = make_account(session, other_debtor)
        give_to_agent(session, other_account, colleague.id)
        my_contact = make_contact_point(session, mine_debtor)
        make_contact_point(session, other_debtor, value="13900000000")
        session.flush()
        agent = principal_for_user(agent_user)
        assert session.scalars(scoped(select(Account), Account, agent)).all() == [my_account]
        assert session.scalars(scoped(select(Debtor), Debtor, agent)).all() == [mine_debtor]
        assert session.scalars(scoped(select(ContactPoint), ContactPoint, agent)).all() == [
            my_contact
        ]
        with pytest.raises(NotFound):
            get_scoped(session, Account, other_account.id, agent)
        with pytest.raises(NotFound):
            get_scoped(session, Debtor, other_debtor.id, agent)

    def test_a_team_lead_sees_the_whole_institution(self, session: Session) -> None:
        institution = make_institution(session)
        make_account(session, make_debtor(session, institution))
        lead = principal_for_user(make_user(session, institution, role="team_lead"))
        assert len(session.scalars(scoped(select(Account), Account, lead)).all()) == 1


def _decision(session: Session, debtor: Debtor, account: Account | None) -> ContactDecision:
    row = ContactDecision(
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        account_id=account.id if account else None,
        channel="call",
        party="debtor",
        planned_at=datetime(2025, 3, 3, 2, tzinfo=UTC),
        allowed=True,
        rule_ids=[],
        reasons=[],
        timezones=[],
        inputs={},
        pack_code="CN",
        pack_version="1",
        policy_name="p",
        policy_version="1",
        actor="test",
    )
    session.add(row)
    session.flush()
    return row


class TestRowsAboutADebtor:
    def test_an_agent_sees_decisions_of_their_cases_accounts_and_of_their_debtors_as_a_whole(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        agent_user = make_user(session, institution, role="agent")
        colleague = make_user(session, institution, role="agent")
        shared = make_debtor(session, institution)
        mine = make_account(session, shared)
        give_to_agent(session, mine, agent_user.id)
        # The debtor's account that is in no case (it is current) is nobody's work.
        theirs = make_account(session, shared, days_past_due=0, status="current")
        elsewhere = make_debtor(session, institution)
        give_to_agent(session, make_account(session, elsewhere), colleague.id)
        session.flush()
        on_mine, on_theirs = _decision(session, shared, mine), _decision(session, shared, theirs)
        whole_debtor, other_debtor = (
            _decision(session, shared, None),
            _decision(session, elsewhere, None),
        )
        agent = principal_for_user(agent_user)
        seen = session.scalars(scoped(select(ContactDecision), ContactDecision, agent)).all()
        assert {row.id for row in seen} == {on_mine.id, whole_debtor.id}
        for hidden in (on_theirs, other_debtor):
            with pytest.raises(NotFound, match=f"no compliance decision {hidden.id}"):
                get_scoped(session, ContactDecision, hidden.id, agent)


class TestUsers:
    def test_users_are_scoped_to_the_institution_and_an_agent_sees_only_itself(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        agent_user = make_user(session, institution, role="agent")
        colleague = make_user(session, institution, role="agent")
        stranger = make_user(session, make_institution(session), role="agent")
        manager = principal_for_user(make_user(session, institution, role="manager"))
        assert get_scoped(session, User, colleague.id, manager) is colleague
        with pytest.raises(NotFound, match=f"no user {stranger.id}"):
            get_scoped(session, User, stranger.id, manager)
        agent = principal_for_user(agent_user)
        assert get_scoped(session, User, agent_user.id, agent) is agent_user
        with pytest.raises(NotFound):
            get_scoped(session, User, colleague.id, agent)


class TestTrustedCallers:
    def test_an_institution_scope_sees_its_institution_only(self, session: Session) -> None:
        institution, other = make_institution(session), make_institution(session)
        debtor = make_debtor(session, institution)
        foreign = make_debtor(session, other)
        scope = institution_scope(institution.id)
        assert get_scoped(session, Debtor, debtor.id, scope) is debtor
        with pytest.raises(NotFound):
            get_scoped(session, Debtor, foreign.id, scope)

    def test_acting_is_the_caller_and_never_for_another_institution(self, session: Session) -> None:
        institution, other = make_institution(session), make_institution(session)
        manager = principal_for_user(make_user(session, institution, role="manager"))
        assert acting(manager, institution.id) is manager
        assert acting(None, other.id).institution_id == other.id
        with pytest.raises(NotFound):
            acting(manager, other.id)
