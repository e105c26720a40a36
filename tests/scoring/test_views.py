"""Model pages without a browser: empty states, the promote form's CSRF, the account panel."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from recoup.identity.dependencies import CSRF_FIELD, SESSION_COOKIE, login_session
from recoup.models import User
from recoup.models.scoring import AccountScore
from recoup.scoring import service
from recoup.scoring.spec import TrainedModel
from recoup.scoring.training import train_model
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import client_for, make_user
from tests.scoring.test_service import make_feature_frame

ENGLISH = {"Accept-Language": "en"}


@pytest.fixture(scope="module")
def scorecard() -> TrainedModel:
    return train_model(make_feature_frame(), target="pays", event_is_favourable=True, seed=0)


def _sign_in(client: TestClient, user: User) -> str:
    response = Response()
    csrf = login_session(response, user)
    match = re.search(rf"{SESSION_COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert match
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, match.group(1))
    return csrf


def _account_pages(
    session: Session, scorecard: TrainedModel, *, priority: float, **score: object
) -> tuple[str, str]:
    """Score a new account with ``scorecard`` (¥1,348.03 expected, SMS) and return its page as
    a manager reads it in English and in Chinese."""
    institution = make_institution(session)
    account = make_account(session, make_debtor(session, institution))
    version = service.register_model(
        session, model=scorecard, institution_id=institution.id, source="t", actor="ds"
    )
    session.add(
        AccountScore(
            institution_id=institution.id,
            account_id=account.id,
            model_version_id=version.id,
            model_version=version.version,
            as_of=date(2026, 11, 30),
            scored_at=datetime(2026, 11, 30, 20, tzinfo=UTC),
            probability=0.5,
            points=600.0,
            grade="B",
            expected_recovery=134_803,
            currency="CNY",
            reasons=[],
            segment="early-high-small",
            channel="sms",
            priority=priority,
            **score,
        )
    )
    session.flush()
    manager = make_user(session, institution, role="manager")
    with client_for(session) as client:
        _sign_in(client, manager)
        english = client.get(f"/accounts/{account.id}", headers=ENGLISH).text
        chinese = client.get(f"/accounts/{account.id}", headers={"Accept-Language": "zh-CN"}).text
    return english, chinese


class TestEmptyStates:
    def test_no_models_shows_how_to_train_one(self, session: Session) -> None:
        scientist = make_user(session, make_institution(session), role="data_scientist")
        with client_for(session) as client:
            _sign_in(client, scientist)
            models = client.get("/models", headers=ENGLISH)
            drift = client.get("/models/drift", headers=ENGLISH)
        assert models.status_code == 200
        assert "No models yet" in models.text
        assert "recoup model train --institution CODE" in models.text
        assert drift.status_code == 200
        assert "No scoring runs yet" in drift.text
        assert "recoup model score --institution CODE" in drift.text

    def test_an_unscored_account_says_how_to_score(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            _sign_in(client, manager)
            page = client.get(f"/accounts/{account.id}", headers=ENGLISH)
        assert page.status_code == 200
        assert 'data-testid="score-empty"' in page.text
        assert "has not been scored yet" in page.text

    def test_comparing_an_unknown_version_names_it(self, session: Session) -> None:
        scientist = make_user(session, make_institution(session), role="data_scientist")
        with client_for(session) as client:
            _sign_in(client, scientist)
            page = client.get("/models/compare?a=nope&b=", headers=ENGLISH)
        assert page.status_code == 200
        assert "No such model: nope" in page.text


class TestPromoteForm:
    def test_promotion_needs_the_pages_csrf_token(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        institution = make_institution(session)
        version = service.register_model(
            session, model=scorecard, institution_id=institution.id, source="t", actor="ds"
        )
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            csrf = _sign_in(client, manager)
            forged = client.post(
                f"/models/{version.version}/promote", data={}, follow_redirects=False
            )
            detail = client.get(f"/models/{version.version}")
            promoted = client.post(
                f"/models/{version.version}/promote",
                data={CSRF_FIELD: csrf},
                follow_redirects=False,
            )
        assert forged.status_code == 403
        assert 'data-testid="promote"' in detail.text
        assert promoted.status_code == 303
        assert promoted.headers["location"] == f"/models/{version.version}"
        assert version.state == "champion"
        assert version.promoted_by == manager.username


class TestPriority:
    def test_priority_has_a_unit_and_its_formula_on_hover(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        english, chinese = _account_pages(session, scorecard, priority=134_803 / 5)
        assert "26,960.6" in english
        assert "expected recovery per unit of contact cost" in english
        assert (
            'title="CN¥1,348.03 expected recovery ÷ CN¥0.05 per contact (SMS) = 26,960.6:'
            in english
        )
        assert "每 1 元联系成本的预期回收" in chinese
        assert 'title="预期回收金额 ¥1,348.03 ÷ 单次短信联系成本 ¥0.05 = 26,960.6' in chinese

    @pytest.mark.parametrize(
        ("basis", "uplift_recovery", "hover"),
        [
            (
                "uplift",
                40_000,
                'title="CN¥400.00 extra recovery a contact buys (uplift model) ÷ CN¥0.05 per '
                "contact (SMS) = 8,000.0:",
            ),
            (
                "no_uplift_model",
                None,
                "(priority on uplift is set, but no uplift model is registered (recoup simulate "
                "uplift-train): priority stays on propensity)",
            ),
            (
                "channel_not_learnt",
                None,
                "(the uplift model has not learnt the SMS channel: priority stays on propensity)",
            ),
        ],
    )
    def test_the_formula_says_whether_priority_is_on_uplift_and_why_not(
        self,
        session: Session,
        scorecard: TrainedModel,
        basis: str,
        uplift_recovery: int | None,
        hover: str,
    ) -> None:
        worth = uplift_recovery if uplift_recovery is not None else 134_803
        english, _ = _account_pages(
            session,
            scorecard,
            priority=worth / 5,
            priority_basis=basis,
            uplift_recovery=uplift_recovery,
        )
        assert hover in english


class TestModelPage:
    def test_the_calibration_error_is_shown_with_the_other_metrics(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        institution = make_institution(session)
        version = service.register_model(
            session, model=scorecard, institution_id=institution.id, source="t", actor="ds"
        )
        scientist = make_user(session, institution, role="data_scientist")
        with client_for(session) as client:
            _sign_in(client, scientist)
            english = client.get(f"/models/{version.version}", headers=ENGLISH).text
            chinese = client.get(
                f"/models/{version.version}", headers={"Accept-Language": "zh-CN"}
            ).text
        assert scorecard.evaluation.ece is not None
        shown = f'data-testid="metric-ece">{scorecard.evaluation.ece:.4f}<'
        assert shown in english
        assert "Calibration error (ECE)" in english
        assert shown in chinese
        assert "校准误差 (ECE)" in chinese
