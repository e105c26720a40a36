from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.factories import make_account, make_debtor, make_institution

from recoup.audit import service as audit
from recoup.models import Debtor


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


class TestUtcDateTime:
    def test_an_offset_time_is_stored_as_the_same_instant_in_utc(self, session: Session) -> None:
        from datetime import UTC, datetime, timedelta, timezone

        from recoup.models import AuditEvent

        shanghai = timezone(timedelta(hours=8))
        event = audit.record(session, actor="t", action="x", object_type="t", object_id=1)
        event.occurred_at = datetime(2026, 3, 1, 22, 30, tzinfo=shanghai)
        session.flush()
        session.expire_all()
        loaded = session.get(AuditEvent, event.id)
        assert loaded is not None
        assert loaded.occurred_at == datetime(2026, 3, 1, 14, 30, tzinfo=UTC)
        assert loaded.occurred_at.tzinfo is UTC

    def test_a_naive_time_is_refused(self, session: Session) -> None:
        from datetime import datetime

        import pytest
        from sqlalchemy.exc import StatementError

        event = audit.record(session, actor="t", action="x", object_type="t", object_id=1)
        event.occurred_at = datetime(2026, 3, 1, 22, 30)
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()
