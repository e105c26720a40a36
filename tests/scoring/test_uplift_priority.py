"""Priority on uplift: the setting, the registered uplift model, and the fall back to propensity."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import repository as cases_repository
from recoup.institutions.rules import preset_settings
from recoup.institutions.settings import validate_settings
from recoup.kit.errors import ValidationFailed
from recoup.models import Institution
from recoup.models.scoring import AccountScore
from recoup.scoring import rules, service, uplift
from recoup.scoring.spec import TrainedModel
from recoup.scoring.training import train_model
from tests.scoring.test_runs import AS_OF, _champion, _portfolio
from tests.scoring.test_service import make_feature_frame
from tests.scoring.test_uplift import planted


@pytest.fixture(scope="module")
def portfolio_model() -> TrainedModel:
    return train_model(make_feature_frame(), target="pays", event_is_favourable=True, seed=0)


@pytest.fixture(scope="module")
def call_uplift() -> uplift.UpliftModel:
    # Contact moves cases more than 60 days past due only (the first feature).
    return uplift.fit({"call": planted(6000, 1)})


def _ask_for_uplift(session: Session, institution: Institution) -> None:
    institution.settings = {**(institution.settings or {}), "allocation": {"priority": "uplift"}}
    session.flush()


def _scores(session: Session, institution: Institution) -> list[AccountScore]:
    return list(
        session.execute(
            select(AccountScore)
            .where(AccountScore.institution_id == institution.id)
            .order_by(AccountScore.account_id)
        ).scalars()
    )


class TestTheSetting:
    def test_propensity_is_the_default_and_uplift_may_be_asked_for(self) -> None:
        assert validate_settings({}).allocation.priority == "propensity"
        assert validate_settings({"allocation": {"priority": "uplift"}}).allocation.priority == (
            "uplift"
        )

    def test_another_value_is_refused_naming_the_field_and_the_choices(self) -> None:
        with pytest.raises(ValidationFailed) as refused:
            validate_settings({"allocation": {"priority": "balance"}})
        assert "allocation.priority" in refused.value.message
        assert "'propensity' or 'uplift'" in refused.value.message


class TestTheBasisRule:
    def test_uplift_needs_the_setting_a_model_and_the_channel(self) -> None:
        assert rules.priority_basis(asked="propensity", has_model=True, channel_learnt=True) == (
            "propensity"
        )
        assert rules.priority_basis(asked="uplift", has_model=False, channel_learnt=False) == (
            "no_uplift_model"
        )
        assert rules.priority_basis(asked="uplift", has_model=True, channel_learnt=False) == (
            "channel_not_learnt"
        )
        assert rules.priority_basis(asked="uplift", has_model=True, channel_learnt=True) == (
            "uplift"
        )

    def test_a_negative_uplift_is_worth_nothing(self) -> None:
        assert rules.uplift_recovery(uplift=-0.2, overdue_minor=10_000) == 0
        assert rules.uplift_recovery(uplift=0.25, overdue_minor=10_000) == 2_500
        with pytest.raises(ValueError, match=r"\[-1, 1\]"):
            rules.uplift_recovery(uplift=1.5, overdue_minor=10_000)


class TestThePresets:
    @pytest.mark.parametrize(
        ("preset", "basis"),
        [("commercial_bank", "no_uplift_model"), ("consumer_finance", "propensity")],
    )
    def test_the_bank_asks_for_uplift_and_without_a_model_scores_on_propensity(
        self, session: Session, portfolio_model: TrainedModel, preset: str, basis: str
    ) -> None:
        institution, _ = _portfolio(session)
        _champion(session, institution, portfolio_model)
        institution.settings = preset_settings(preset)
        session.flush()
        service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        scores = _scores(session, institution)
        assert scores
        assert {score.priority_basis for score in scores} == {basis}
        policy = service.segment_policy(institution)
        for score in scores:
            assert score.uplift_recovery is None
            assert score.priority == pytest.approx(
                score.expected_recovery / policy.contact_costs[score.channel or ""]
            )


class TestPriorityOnUplift:
    def test_without_the_setting_priority_stays_on_propensity(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution, _ = _portfolio(session)
        _champion(session, institution, portfolio_model)
        service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        scores = _scores(session, institution)
        assert {score.priority_basis for score in scores} == {"propensity"}
        assert all(score.uplift_recovery is None for score in scores)

    def test_asked_for_without_a_model_it_falls_back_and_says_why(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution, _ = _portfolio(session)
        _champion(session, institution, portfolio_model)
        _ask_for_uplift(session, institution)
        service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        scores = _scores(session, institution)
        assert {score.priority_basis for score in scores} == {"no_uplift_model"}
        policy = service.segment_policy(institution)
        for score in scores:
            assert score.uplift_recovery is None
            assert score.priority == pytest.approx(
                score.expected_recovery / policy.contact_costs[score.channel or ""]
            )

    def test_with_a_registered_model_calls_are_worth_their_uplift(
        self, session: Session, portfolio_model: TrainedModel, call_uplift: uplift.UpliftModel
    ) -> None:
        institution, accounts = _portfolio(session)
        _champion(session, institution, portfolio_model)
        _ask_for_uplift(session, institution)
        registered = service.register_uplift_model(
            session,
            institution=institution,
            model=call_uplift,
            metrics={"learner": "x"},
            data_fingerprint="test",
            source="test",
            actor="ds",
        )
        assert registered.family == "uplift"
        service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        scores = _scores(session, institution)
        on_call = [score for score in scores if score.channel == "call"]
        elsewhere = [score for score in scores if score.channel != "call"]
        assert on_call
        assert elsewhere  # sms, ai_call, visit segments: the model learnt calls only
        assert {score.priority_basis for score in on_call} == {"uplift"}
        assert {score.priority_basis for score in elsewhere} == {"channel_not_learnt"}
        policy = service.segment_policy(institution)
        for score in on_call:
            assert score.uplift_recovery is not None
            assert score.priority == pytest.approx(
                score.uplift_recovery / policy.contact_costs["call"]
            )
        # Cases (and so allocation) take the uplift as their value where priority is on it.
        values = cases_repository.latest_scores(session, institution_id=institution.id)
        for score in scores:
            worth = score.uplift_recovery if score.priority_basis == "uplift" else None
            expected = score.expected_recovery if worth is None else worth
            assert values[score.account_id][0] == expected
        # The planted effect moves cases more than 60 days late; a call earlier buys little.
        days = {account.id: account.days_past_due for account in accounts}
        moved = [s.uplift_recovery or 0 for s in on_call if days[s.account_id] > 60]
        unmoved = [s.uplift_recovery or 0 for s in on_call if days[s.account_id] <= 60]
        assert moved
        assert unmoved
        assert min(moved) > 2 * max(max(unmoved), 1)

    def test_an_uplift_model_is_never_promoted(
        self, session: Session, call_uplift: uplift.UpliftModel
    ) -> None:
        institution, _ = _portfolio(session)
        registered = service.register_uplift_model(
            session,
            institution=institution,
            model=call_uplift,
            metrics={},
            data_fingerprint="test",
            source="test",
            actor="ds",
        )
        with pytest.raises(ValidationFailed, match="uplift model: it is not promoted"):
            service.promote_model(session, version=registered.version, actor="ds")

    def test_a_tampered_artifact_is_refused(
        self, session: Session, call_uplift: uplift.UpliftModel
    ) -> None:
        institution, _ = _portfolio(session)
        registered = service.register_uplift_model(
            session,
            institution=institution,
            model=call_uplift,
            metrics={},
            data_fingerprint="test",
            source="test",
            actor="ds",
        )
        registered.artifact = (registered.artifact or b"").replace(b"learner", b"learneR")
        with pytest.raises(service.ArtifactHashMismatch):
            service.load_uplift_model(registered)
        assert np.isfinite(call_uplift.predict(planted(10, 3).features, "call")).all()
