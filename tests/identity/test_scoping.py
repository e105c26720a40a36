import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.identity.principal import principal_for_user
from recoup.identity.scoping import get_scoped, scoped
from recoup.kit.errors import NotFound
from recoup.models import Account, ContactPoint, Debtor, Institution
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
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
        my_account.assigned_agent_id = agent_user.id
        other_account = make_account(session, other_debtor)
        other_account.assigned_agent_id = colleague.id
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
