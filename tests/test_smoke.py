from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.models import Debtor
from tests.factories import make_account, make_debtor, make_institution


def test_portfolio_round_trip(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    make_account(session, debtor)
    session.expire_all()
    loaded = session.execute(select(Debtor)).scalar_one()
    assert loaded.name == "张伟"
    checked, broken = audit.verify(session)
    assert checked == 1
    assert broken is None
