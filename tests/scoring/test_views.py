"""Model pages without a browser: empty states, the promote form's CSRF, the account panel."""

from __future__ import annotations

import re

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from recoup.identity.dependencies import CSRF_FIELD, SESSION_COOKIE, login_session
from recoup.models import User
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
