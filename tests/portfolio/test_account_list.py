"""The accounts list: exact search through the keyed hashes, filters, sort, columns and pages."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime

from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from tests.factories import (
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
    make_model_version,
)
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

from recoup.identity.dependencies import SESSION_COOKIE, login_session
from recoup.models import Account, Institution, User
from recoup.models.scoring import AccountScore, ModelVersion

ENGLISH = {"Accept-Language": "en"}
_versions = itertools.count(1)


def _sign_in(client: TestClient, user: User) -> None:
    response = Response()
    login_session(response, user)
    match = re.search(rf"{SESSION_COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert match
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, match.group(1))


def _model(session: Session, institution: Institution) -> ModelVersion:
    version = make_model_version(
        session,
        institution.id,
        version=f"list-test-{next(_versions)}-{institution.id}",
        trained_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    return version


def _score(
    session: Session,
    account: Account,
    model: ModelVersion,
    *,
    probability: float,
    grade: str,
    segment: str,
    priority: float,
    as_of: date = date(2026, 11, 30),
) -> None:
    session.add(
        AccountScore(
            institution_id=account.institution_id,
            account_id=account.id,
            model_version_id=model.id,
            model_version=model.version,
            as_of=as_of,
            scored_at=datetime.combine(as_of, datetime.min.time(), tzinfo=UTC),
            probability=probability,
            points=600.0,
            grade=grade,
            expected_recovery=1000,
            currency="CNY",
            reasons=[],
            segment=segment,
            channel="call",
            priority=priority,
        )
    )
    session.flush()


class Portfolio:
    """Three accounts of three debtors, two scored, one assigned to an agent."""

    def __init__(self, session: Session) -> None:
        self.institution = make_institution(session)
        self.agent = make_user(session, self.institution, role="agent")
        self.manager = make_user(session, self.institution, role="manager")
        zhang = make_debtor(
            session, self.institution, name="张伟", national_id="110101199003074477"
        )
        make_contact_point(session, zhang, value="13812345678")
        li = make_debtor(session, self.institution, name="李娜", national_id="11010119850101002X")
        make_contact_point(session, li, value="13900001111")
        wang = make_debtor(session, self.institution, name="王芳", national_id=None)
        self.zhang = make_account(
            session, zhang, external_id="ACC-ZHANG", principal=500_000, days_past_due=10
        )
        self.li = make_account(
            session, li, external_id="ACC-LI", principal=90_000, days_past_due=95
        )
        self.wang = make_account(
            session, wang, external_id="ACC-WANG", principal=2_000_000, days_past_due=40
        )
        give_to_agent(session, self.li, self.agent.id)
        self.li.status = "promised"
        model = _model(session, self.institution)
        # An older score of ACC-ZHANG must not count: only the latest one does.
        _score(
            session,
            self.zhang,
            model,
            probability=0.1,
            grade="E",
            segment="early-low-medium",
            priority=0.5,
            as_of=date(2026, 10, 31),
        )
        _score(
            session,
            self.zhang,
            model,
            probability=0.8,
            grade="A",
            segment="early-high-medium",
            priority=9.5,
        )
        _score(
            session,
            self.li,
            model,
            probability=0.3,
            grade="D",
            segment="late-low-small",
            priority=2.0,
        )
        session.flush()


def _external_ids(client: TestClient, user: User, query: str) -> list[str]:
    response = client.get(f"/api/v1/accounts?{query}", headers=bearer(user))
    assert response.status_code == 200, response.text
    return [item["external_id"] for item in response.json()["items"]]


class TestSearch:
    def test_finds_an_account_by_external_id_name_phone_or_id_number(
        self, session: Session
    ) -> None:
        book = Portfolio(session)
        with client_for(session) as client:
            assert _external_ids(client, book.manager, "q=ACC-LI") == ["ACC-LI"]
            assert _external_ids(client, book.manager, "q=王芳") == ["ACC-WANG"]
            assert _external_ids(client, book.manager, "q=139 0000 1111") == ["ACC-LI"]
            assert _external_ids(client, book.manager, "q=11010119850101002x") == ["ACC-LI"]
            assert _external_ids(client, book.manager, "q=李") == []

    def test_an_agent_finds_only_their_own_cases(self, session: Session) -> None:
        book = Portfolio(session)
        with client_for(session) as client:
            assert _external_ids(client, book.agent, "q=张伟") == []
            assert _external_ids(client, book.agent, "q=李娜") == ["ACC-LI"]
            assert _external_ids(client, book.agent, "") == ["ACC-LI"]

    def test_another_institution_is_never_found(self, session: Session) -> None:
        book = Portfolio(session)
        stranger = make_user(session, make_institution(session), role="manager")
        with client_for(session) as client:
            assert _external_ids(client, stranger, "q=ACC-ZHANG") == []
            assert _external_ids(client, stranger, "q=张伟") == []
            assert _external_ids(client, book.manager, "q=张伟") == ["ACC-ZHANG"]
            foreign = client.get(
                f"/api/v1/accounts?debtor_id={book.zhang.debtor_id}", headers=bearer(stranger)
            )
            assert foreign.status_code == 404


class TestFilters:
    def test_each_filter_narrows_the_list(self, session: Session) -> None:
        book = Portfolio(session)
        manager = book.manager
        with client_for(session) as client:
            assert _external_ids(client, manager, "bucket=M4") == ["ACC-LI"]
            assert _external_ids(client, manager, "status=promised") == ["ACC-LI"]
            assert _external_ids(client, manager, f"agent={book.agent.id}") == ["ACC-LI"]
            assert _external_ids(client, manager, "agent=none") == ["ACC-ZHANG", "ACC-WANG"]
            assert _external_ids(client, manager, "grade=A") == ["ACC-ZHANG"]
            assert _external_ids(client, manager, "grade=E") == []
            assert _external_ids(client, manager, "segment=late-low-small") == ["ACC-LI"]
            assert _external_ids(client, manager, "bucket=&status=&grade=") == [
                "ACC-ZHANG",
                "ACC-LI",
                "ACC-WANG",
            ]

    def test_unknown_values_are_refused_naming_the_field(self, session: Session) -> None:
        book = Portfolio(session)
        with client_for(session) as client:
            for query, field in [
                ("bucket=M9", "bucket"),
                ("status=happy", "status"),
                ("grade=Z", "grade"),
                ("segment=somewhere", "segment"),
                ("agent=bob", "agent"),
                ("sort=name", "sort"),
                ("direction=up", "direction"),
            ]:
                response = client.get(f"/api/v1/accounts?{query}", headers=bearer(book.manager))
                body = assert_problem(response, 422)
                assert f"query.{field}" in str(body["detail"]), (query, body)

    def test_the_list_carries_score_grade_segment_priority_and_agent(
        self, session: Session
    ) -> None:
        book = Portfolio(session)
        with client_for(session) as client:
            response = client.get("/api/v1/accounts?q=ACC-LI", headers=bearer(book.manager))
        item = response.json()["items"][0]
        assert (item["grade"], item["segment"], item["priority"], item["score"]) == (
            "D",
            "late-low-small",
            2.0,
            0.3,
        )
        assert item["agent_username"] == book.agent.username


class TestSort:
    def test_sorts_by_priority_score_balance_or_days_past_due(self, session: Session) -> None:
        book = Portfolio(session)
        manager = book.manager
        with client_for(session) as client:
            assert _external_ids(client, manager, "sort=priority") == [
                "ACC-ZHANG",
                "ACC-LI",
                "ACC-WANG",  # unscored accounts come last
            ]
            assert _external_ids(client, manager, "sort=score&direction=asc") == [
                "ACC-LI",
                "ACC-ZHANG",
                "ACC-WANG",
            ]
            assert _external_ids(client, manager, "sort=balance") == [
                "ACC-WANG",
                "ACC-ZHANG",
                "ACC-LI",
            ]
            assert _external_ids(client, manager, "sort=dpd&direction=asc") == [
                "ACC-ZHANG",
                "ACC-WANG",
                "ACC-LI",
            ]


class TestPage:
    def test_the_page_searches_filters_and_shows_the_work_columns(self, session: Session) -> None:
        book = Portfolio(session)
        with client_for(session) as client:
            _sign_in(client, book.manager)
            page = client.get("/accounts?q=李娜&sort=priority", headers=ENGLISH)
            nothing = client.get("/accounts?q=nobody", headers=ENGLISH)
            refused = client.get("/accounts?bucket=M9")
        assert page.status_code == 200
        assert 'data-account="ACC-LI"' in page.text
        assert 'data-account="ACC-ZHANG"' not in page.text
        assert book.agent.username in page.text
        assert ">2.0<" in page.text
        assert "No accounts match" in nothing.text
        assert refused.status_code == 422
        assert "query.bucket" in refused.text

    def test_page_numbers_reach_the_last_page(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        for number in range(26 * 8):
            make_account(session, debtor, external_id=f"PAGE-{number:04}")
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            _sign_in(client, manager)
            first = client.get("/accounts", headers=ENGLISH)
            last = client.get("/accounts?page=9", headers=ENGLISH)
        assert 'rel="last">9</a>' in first.text
        assert 'rel="first">1</a>' in last.text
        assert 'aria-current="page">9<' in last.text
