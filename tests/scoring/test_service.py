"""The model registry and batch scoring against a real database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.models import Account, Institution, Payment
from recoup.models.audit import AuditEvent
from recoup.models.scoring import AccountScore, ModelState
from recoup.scoring import service
from recoup.scoring.errors import ArtifactHashMismatch, FeatureColumnsMissing
from recoup.scoring.features import FEATURE_NAMES
from recoup.scoring.spec import TrainedModel
from recoup.scoring.training import train_model
from tests.factories import make_account, make_contact_point, make_debtor, make_institution

AS_OF = date(2025, 6, 30)
LateAccounts = tuple[Institution, Account, Account, Account]


def make_feature_frame(rows: int = 1500, *, seed: int = 4) -> pd.DataFrame:
    """Synthetic collection features where later and silent accounts pay less often."""
    rng = np.random.default_rng(seed)
    days = rng.integers(1, 200, rows).astype(float)
    ratio = rng.uniform(0, 0.6, rows)
    frame = pd.DataFrame(
        {
            "days_past_due": days,
            "bucket": np.minimum(np.ceil(days / 30), 7),
            "balance": rng.lognormal(13, 0.7, rows),
            "utilisation": rng.uniform(0, 1.2, rows),
            "months_on_book": rng.uniform(1, 60, rows),
            "product": rng.choice(["cash_loan", "consumer_loan", "credit_card"], rows),
            "payment_ratio_1m": ratio / 3,
            "payment_ratio_3m": ratio,
            "payment_ratio_6m": ratio * 1.5,
            "months_delinquent_12m": rng.integers(0, 12, rows).astype(float),
            "days_since_last_payment": rng.uniform(1, 300, rows),
            "last_payment_amount": rng.lognormal(10, 1, rows),
            "valid_self_contact": rng.integers(0, 2, rows).astype(float),
            "age_band": rng.choice(["25-34", "35-44", "unknown"], rows),
            "region": rng.choice(["广东省", "山东省", "河南省"], rows),
            "customer_type": "individual",
        }
    )
    log_odds = 1.0 - days / 50 + 4 * ratio + 0.8 * frame["valid_self_contact"]
    frame["pays"] = (rng.random(rows) < 1 / (1 + np.exp(-log_odds))).astype(int)
    return frame


@pytest.fixture(scope="module")
def portfolio_model() -> TrainedModel:
    model = train_model(make_feature_frame(), target="pays", event_is_favourable=True, seed=0)
    assert set(model.feature_names) <= set(FEATURE_NAMES)
    return model


@pytest.fixture
def late_accounts(session: Session) -> LateAccounts:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    make_contact_point(session, debtor)
    early = make_account(session, debtor, days_past_due=10)
    deep = make_account(session, debtor, days_past_due=150)
    current = make_account(session, debtor, days_past_due=0, status="current")
    session.add(
        Payment(
            institution_id=institution.id,
            external_id="P-early",
            account_id=early.id,
            amount=80_000,
            currency="CNY",
            paid_at=datetime(2025, 6, 20, 3, tzinfo=UTC),
        )
    )
    session.flush()
    return institution, early, deep, current


class TestRegistry:
    def test_registered_model_is_a_hashed_candidate_that_loads_back(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution = make_institution(session)
        version = service.register_model(
            session, model=portfolio_model, institution_id=institution.id, source="test", actor="ds"
        )
        assert version.state == ModelState.candidate
        assert version.version.endswith(version.artifact_sha256[:12])
        assert version.metrics["auc"] == pytest.approx(portfolio_model.evaluation.auc)
        assert version.features == list(portfolio_model.feature_names)
        assert len(version.metrics["deciles"]) == 10
        assert service.load_registered_model(version) == portfolio_model
        assert [
            item.version for item in service.list_models(session, institution_id=institution.id)
        ] == [version.version]

    def test_promotion_retires_the_previous_champion_and_is_audited(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution = make_institution(session)
        other = train_model(
            make_feature_frame(seed=9), target="pays", event_is_favourable=True, family="gbm"
        )
        first = service.register_model(
            session, model=portfolio_model, institution_id=institution.id, source="t", actor="ds"
        )
        second = service.register_model(
            session, model=other, institution_id=institution.id, source="t", actor="ds"
        )
        service.promote_model(session, version=first.version, actor="alice")
        service.promote_model(session, version=second.version, actor="bob")
        assert first.state == ModelState.retired
        assert first.retired_at is not None
        assert second.state == ModelState.champion
        assert second.promoted_by == "bob"
        actions = session.execute(
            select(AuditEvent.action, AuditEvent.actor, AuditEvent.object_id).where(
                AuditEvent.action == "models.promote"
            )
        ).all()
        assert [(row.actor, row.object_id) for row in actions] == [
            ("alice", first.version),
            ("bob", second.version),
        ]

    def test_a_tampered_artifact_is_never_promoted(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        version = service.register_model(
            session, model=portfolio_model, institution_id=None, source="t", actor="ds"
        )
        assert version.artifact is not None
        version.artifact = version.artifact.replace(b'"points":', b'"points":1', 1)
        session.flush()
        with pytest.raises(ArtifactHashMismatch):
            service.promote_model(session, version=version.version, actor="mallory")
        assert version.state == ModelState.candidate


class TestBatchScoring:
    def test_every_delinquent_account_gets_a_score_with_reasons(
        self, session: Session, portfolio_model: TrainedModel, late_accounts: LateAccounts
    ) -> None:
        institution, early, deep, _current = late_accounts
        version = service.register_model(
            session, model=portfolio_model, institution_id=institution.id, source="t", actor="ds"
        )
        service.promote_model(session, version=version.version, actor="ds")
        run = service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        assert run.accounts_scored == 2
        assert run.model_version == version.version
        scores = {
            score.account_id: score for score in session.execute(select(AccountScore)).scalars()
        }
        assert set(scores) == {early.id, deep.id}
        assert scores[early.id].probability > scores[deep.id].probability
        assert scores[early.id].grade < scores[deep.id].grade
        assert "days_past_due" in scores[deep.id].reasons
        assert 0 <= scores[deep.id].expected_recovery <= deep.overdue_amount
        assert scores[deep.id].currency == "CNY"
        assert scores[deep.id].model_version == version.version

    def test_a_rerun_replaces_rather_than_duplicates(
        self, session: Session, portfolio_model: TrainedModel, late_accounts: LateAccounts
    ) -> None:
        institution, *_ = late_accounts
        version = service.register_model(
            session, model=portfolio_model, institution_id=institution.id, source="t", actor="ds"
        )
        for _ in range(2):
            service.score_delinquent_accounts(
                session, institution=institution, as_of=AS_OF, version=version.version
            )
        assert len(session.execute(select(AccountScore)).scalars().all()) == 2

    def test_one_account_can_be_rescored_on_its_own(
        self, session: Session, portfolio_model: TrainedModel, late_accounts: LateAccounts
    ) -> None:
        institution, early, *_ = late_accounts
        version = service.register_model(
            session, model=portfolio_model, institution_id=institution.id, source="t", actor="ds"
        )
        service.promote_model(session, version=version.version, actor="ds")
        run = service.score_account(
            session, institution=institution, account_id=early.id, as_of=AS_OF
        )
        assert run.accounts_scored == 1

    def test_no_champion_is_a_clear_error(
        self, session: Session, late_accounts: LateAccounts
    ) -> None:
        institution, *_ = late_accounts
        with pytest.raises(Exception, match="has no champion model"):
            service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)

    def test_a_model_trained_on_other_columns_cannot_score_the_portfolio(
        self, session: Session, late_accounts: LateAccounts, scorecard_model: TrainedModel
    ) -> None:
        institution, *_ = late_accounts
        version = service.register_model(
            session, model=scorecard_model, institution_id=institution.id, source="t", actor="ds"
        )
        with pytest.raises(FeatureColumnsMissing, match="months_late"):
            service.score_delinquent_accounts(
                session, institution=institution, as_of=AS_OF, version=version.version
            )


class TestDemoPortfolio:
    def test_train_promote_and_score_the_demo_institution(self, session: Session) -> None:
        from recoup.demo.service import seed_demo
        from recoup.institutions import repository as institutions

        seed_demo(session, accounts=800, seed=5, as_of=AS_OF)
        institution = institutions.require_by_code(session, "DEMO-CF")
        outcome = service.train_from_portfolio(
            session, institution=institution, as_of=AS_OF, snapshots=4, actor="ds"
        )
        assert outcome.model.summary.split == "time"
        assert outcome.model.summary.event_is_favourable
        assert outcome.model.evaluation.auc > 0.65
        assert outcome.model_version.source.startswith("portfolio:DEMO-CF:as_of=2025-06-30")
        again = service.register_model(
            session, model=outcome.model, institution_id=institution.id, source="again", actor="ds"
        )
        assert again.id == outcome.model_version.id

        service.promote_model(session, version=outcome.model_version.version, actor="ds")
        run = service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        assert run.accounts_scored > 100
        assert set(run.grades) <= {"A", "B", "C", "D", "E"}
        assert run.expected_recovery > 0
