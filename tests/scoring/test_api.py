"""The scoring API: models by tenant, promotion by role (audited), account scores by case."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.models import Account, AuditEvent, Institution
from recoup.scoring import service
from recoup.scoring.spec import TrainedModel
from recoup.scoring.training import train_model
from tests.factories import (
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.identity.helpers import assert_problem, bearer, client_for, make_user
from tests.scoring.test_service import make_feature_frame

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="module")
def scorecard() -> TrainedModel:
    return train_model(make_feature_frame(), target="pays", event_is_favourable=True, seed=0)


@pytest.fixture(scope="module")
def booster() -> TrainedModel:
    return train_model(
        make_feature_frame(seed=9), target="pays", event_is_favourable=True, family="gbm", seed=0
    )


def _scored_portfolio(
    session: Session, model: TrainedModel
) -> tuple[Institution, Account, Account, str]:
    institution = make_institution(session)
    accounts = []
    for days in (10, 150):
        debtor = make_debtor(session, institution, national_id=None)
        make_contact_point(session, debtor)
        accounts.append(make_account(session, debtor, days_past_due=days))
    version = service.register_model(
        session, model=model, institution_id=institution.id, source="test", actor="ds"
    )
    service.promote_model(session, version=version.version, actor="ds")
    service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
    return institution, accounts[0], accounts[1], version.version


class TestModels:
    def test_a_data_scientist_lists_its_institutions_and_shared_models_only(
        self, session: Session, scorecard: TrainedModel, booster: TrainedModel
    ) -> None:
        mine, other = make_institution(session), make_institution(session)
        own = service.register_model(
            session, model=scorecard, institution_id=mine.id, source="t", actor="ds"
        )
        theirs = service.register_model(
            session, model=booster, institution_id=other.id, source="t", actor="ds"
        )
        scientist = make_user(session, mine, role="data_scientist")
        with client_for(session) as client:
            listed = client.get("/api/v1/models", headers=bearer(scientist))
            hidden = client.get(f"/api/v1/models/{theirs.version}", headers=bearer(scientist))
        assert listed.status_code == 200
        assert [item["version"] for item in listed.json()] == [own.version]
        assert listed.json()[0]["auc"] == pytest.approx(scorecard.evaluation.auc)
        assert_problem(hidden, 404)

    def test_the_detail_has_a_scorecard_calibration_and_gains(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        institution = make_institution(session)
        version = service.register_model(
            session, model=scorecard, institution_id=institution.id, source="t", actor="ds"
        )
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            body = client.get(f"/api/v1/models/{version.version}", headers=bearer(manager)).json()
        assert body["family"] == "scorecard"
        assert {row["feature"] for row in body["scorecard"]} == set(scorecard.feature_names)
        assert len(body["deciles"]) == 10
        assert body["deciles"][-1]["cumulative_event_share"] == pytest.approx(1.0)
        assert {"mean_probability", "event_rate", "lift"} <= set(body["deciles"][0])

    def test_an_agent_may_not_see_models(self, session: Session) -> None:
        agent = make_user(session, make_institution(session), role="agent")
        with client_for(session) as client:
            assert_problem(client.get("/api/v1/models", headers=bearer(agent)), 403)
            assert_problem(client.get("/api/v1/scoring/runs", headers=bearer(agent)), 403)


class TestPromotion:
    @pytest.mark.parametrize("role", ["manager", "data_scientist"])
    def test_a_manager_or_data_scientist_promotes_and_it_is_audited(
        self, session: Session, scorecard: TrainedModel, booster: TrainedModel, role: str
    ) -> None:
        institution = make_institution(session)
        first = service.register_model(
            session, model=scorecard, institution_id=institution.id, source="t", actor="ds"
        )
        second = service.register_model(
            session, model=booster, institution_id=institution.id, source="t", actor="ds"
        )
        service.promote_model(session, version=first.version, actor="ds")
        user = make_user(session, institution, role=role)
        with client_for(session) as client:
            response = client.post(f"/api/v1/models/{second.version}/promote", headers=bearer(user))
            listed = {
                item["version"]: item["state"]
                for item in client.get("/api/v1/models", headers=bearer(user)).json()
            }
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "champion"
        assert response.json()["promoted_by"] == user.username
        assert listed == {first.version: "retired", second.version: "champion"}
        audited = session.execute(
            select(AuditEvent.actor).where(
                AuditEvent.action == "models.promote", AuditEvent.object_id == second.version
            )
        ).scalars()
        assert list(audited) == [user.username]

    def test_an_auditor_reads_but_may_not_promote(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        institution = make_institution(session)
        version = service.register_model(
            session, model=scorecard, institution_id=institution.id, source="t", actor="ds"
        )
        auditor = make_user(session, institution, role="auditor")
        with client_for(session) as client:
            assert client.get("/api/v1/models", headers=bearer(auditor)).status_code == 200
            refused = client.post(
                f"/api/v1/models/{version.version}/promote", headers=bearer(auditor)
            )
        assert_problem(refused, 403)
        assert version.state == "candidate"

    def test_another_institutions_model_cannot_be_promoted(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        owner, stranger = make_institution(session), make_institution(session)
        version = service.register_model(
            session, model=scorecard, institution_id=owner.id, source="t", actor="ds"
        )
        scientist = make_user(session, stranger, role="data_scientist")
        with client_for(session) as client:
            response = client.post(
                f"/api/v1/models/{version.version}/promote", headers=bearer(scientist)
            )
        assert_problem(response, 404)

    def test_a_shared_model_is_not_an_institutions_champion_from_the_web(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        institution = make_institution(session)
        version = service.register_model(
            session, model=scorecard, institution_id=None, source="file:x.csv", actor="ds"
        )
        scientist = make_user(session, institution, role="data_scientist")
        with client_for(session) as client:
            response = client.post(
                f"/api/v1/models/{version.version}/promote", headers=bearer(scientist)
            )
        assert "--institution" in str(assert_problem(response, 403)["detail"])


class TestAccountScores:
    def test_the_latest_score_with_reasons_in_both_languages(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        institution, _early, deep, version = _scored_portfolio(session, scorecard)
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            response = client.get(f"/api/v1/accounts/{deep.id}/score", headers=bearer(manager))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == version
        assert body["grade"] in "ABCDE"
        assert body["segment"].startswith("late-")
        assert body["priority"] >= 0
        codes = [reason["code"] for reason in body["reasons"]]
        assert "days_past_due" in codes
        reason = body["reasons"][codes.index("days_past_due")]
        assert (reason["zh"], reason["en"]) == ("逾期天数较长", "Many days past due")

    def test_an_agent_sees_only_the_scores_of_assigned_accounts(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        institution, early, deep, _ = _scored_portfolio(session, scorecard)
        agent = make_user(session, institution, role="agent")
        give_to_agent(session, early, agent.id)
        session.flush()
        with client_for(session) as client:
            mine = client.get(f"/api/v1/accounts/{early.id}/score", headers=bearer(agent))
            theirs = client.get(f"/api/v1/accounts/{deep.id}/score", headers=bearer(agent))
        assert mine.status_code == 200
        assert_problem(theirs, 404)

    def test_another_institution_sees_nothing(
        self, session: Session, scorecard: TrainedModel
    ) -> None:
        _, early, _, _ = _scored_portfolio(session, scorecard)
        outsider = make_user(session, make_institution(session), role="manager")
        with client_for(session) as client:
            response = client.get(f"/api/v1/accounts/{early.id}/score", headers=bearer(outsider))
        assert_problem(response, 404)

    def test_an_unscored_account_says_so(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            response = client.get(f"/api/v1/accounts/{account.id}/score", headers=bearer(manager))
        assert "not been scored" in str(assert_problem(response, 404)["detail"])


class TestRuns:
    def test_runs_list_drift_per_feature(self, session: Session, scorecard: TrainedModel) -> None:
        institution, *_, version = _scored_portfolio(session, scorecard)
        other_manager = make_user(session, make_institution(session), role="manager")
        scientist = make_user(session, institution, role="data_scientist")
        with client_for(session) as client:
            runs = client.get("/api/v1/scoring/runs", headers=bearer(scientist)).json()
            foreign = client.get("/api/v1/scoring/runs", headers=bearer(other_manager)).json()
        assert [(run["model_version"], run["as_of"]) for run in runs] == [
            (version, AS_OF.isoformat())
        ]
        assert set(runs[0]["feature_psi"]) == set(scorecard.feature_names)
        assert runs[0]["status"] in {"stable", "warn", "alert"}
        assert foreign == []
