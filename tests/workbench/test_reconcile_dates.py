"""Reconciliation only as of sane dates; promise amounts and notes checked like imports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from httpx import Response
from sqlalchemy.orm import Session

from recoup.kit.clock import utcnow, zone
from recoup.kit.errors import ValidationFailed
from recoup.models.workbench import PromiseStatus
from recoup.workbench import rules, service
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user
from tests.workbench.helpers import add_promise


def _today() -> date:
    return utcnow().astimezone(zone("Asia/Shanghai")).date()


class TestReconcileDateRule:
    TODAY = date(2026, 3, 10)

    def test_today_and_earlier_days_since_the_first_promise_are_fine(self) -> None:
        first = date(2026, 1, 5)
        for as_of in (self.TODAY, first, date(2026, 2, 1)):
            assert (
                rules.reconcile_date_problems(as_of, today=self.TODAY, first_promised_on=first)
                == []
            )

    def test_a_day_after_today_is_refused(self) -> None:
        (problem,) = rules.reconcile_date_problems(
            self.TODAY + timedelta(days=1), today=self.TODAY, first_promised_on=None
        )
        assert (problem.field, problem.code) == ("as_of", "as_of_in_future")

    def test_a_day_before_the_first_promise_is_refused(self) -> None:
        (problem,) = rules.reconcile_date_problems(
            date(1, 1, 1), today=self.TODAY, first_promised_on=date(2026, 1, 5)
        )
        assert problem.code == "as_of_before_data"

    def test_without_promises_any_past_day_is_fine(self) -> None:
        assert (
            rules.reconcile_date_problems(date(1, 1, 1), today=self.TODAY, first_promised_on=None)
            == []
        )


class TestReconcileService:
    def test_tomorrow_is_refused_until_the_institution_reaches_it(self, session: Session) -> None:
        institution = make_institution(session)  # Asia/Shanghai, UTC+8
        account = make_account(session, make_debtor(session, institution))
        add_promise(
            session, account, amount=100, promised_on=date(2026, 3, 1), due_date=date(2026, 3, 2)
        )
        # 23:50 on 10 March in Shanghai: 11 March is still ten minutes away.
        evening = datetime(2026, 3, 10, 15, 50, tzinfo=UTC)
        with pytest.raises(ValidationFailed, match="after the institution's today"):
            service.reconcile_promises(
                session, institution=institution, as_of=date(2026, 3, 11), actor="t", now=evening
            )
        # Two minutes to midnight: within the clock difference we allow, so it runs.
        almost = datetime(2026, 3, 10, 15, 58, tzinfo=UTC)
        result = service.reconcile_promises(
            session, institution=institution, as_of=date(2026, 3, 11), actor="t", now=almost
        )
        assert result.broken == 1


class TestReconcileApi:
    def test_a_far_future_date_is_422_and_breaks_nothing(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        account = make_account(session, make_debtor(session, institution))
        promise = add_promise(
            session,
            account,
            amount=10_000,
            promised_on=_today(),
            due_date=_today() + timedelta(days=7),
        )
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/promises/reconcile",
                json={"as_of": "9999-12-31"},
                headers=bearer(manager),
            )
            body = assert_problem(answer, 422)
            assert body["errors"] == [
                {
                    "field": "as_of",
                    "code": "as_of_in_future",
                    "message": body["errors"][0]["message"],
                }
            ]
            before = client.post(
                "/api/v1/promises/reconcile",
                json={"as_of": "0001-01-01"},
                headers=bearer(manager),
            )
            assert assert_problem(before, 422)["errors"][0]["code"] == "as_of_before_data"
            today = client.post("/api/v1/promises/reconcile", json={}, headers=bearer(manager))
            assert today.status_code == 200, today.text
            assert today.json()["pending"] == 1
        session.expire_all()
        assert promise.status == PromiseStatus.pending
        assert promise.resolved_at is None


class TestPromiseInput:
    def _record(self, session: Session, **changes: str) -> Response:
        institution = make_institution(session)
        lead = make_user(session, institution, role="team_lead")
        account = make_account(session, make_debtor(session, institution))
        body = {
            "amount": "30",
            "due_date": (_today() + timedelta(days=3)).isoformat(),
            "channel": "call",
            **changes,
        }
        with client_for(session) as client:
            answer = client.post(
                f"/api/v1/accounts/{account.id}/promises", json=body, headers=bearer(lead)
            )
            listed = client.get(f"/api/v1/accounts/{account.id}/promises", headers=bearer(lead))
        assert listed.json()["total"] == 0
        return answer

    @pytest.mark.parametrize("amount", ["１２３.４５", "٣٠", "+30", " 30", "30\n", "\t30"])
    def test_amounts_imports_refuse_are_refused(self, session: Session, amount: str) -> None:
        body = assert_problem(self._record(session, amount=amount), 422)
        assert body["errors"][0]["field"] == "amount"

    @pytest.mark.parametrize("note", ["paid\u202e", "paid\x00", "=cmd|' /C calc'!A0"])
    def test_notes_imports_refuse_are_refused(self, session: Session, note: str) -> None:
        detail = str(assert_problem(self._record(session, note=note), 422)["detail"])
        assert "body.note" in detail or "NUL" in detail
