"""Segments and priority stored with scores, scoring-run drift records, realised performance."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.kit.errors import ValidationFailed
from recoup.models import Account, Institution, Payment
from recoup.models.scoring import AccountScore, ScoringRun
from recoup.scoring import service
from recoup.scoring.spec import TrainedModel
from recoup.scoring.training import train_model
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.scoring.test_service import make_feature_frame

AS_OF = date(2025, 6, 30)
DAYS_LATE = (5, 12, 20, 40, 75, 100, 130, 170)


@pytest.fixture(scope="module")
def portfolio_model() -> TrainedModel:
    return train_model(make_feature_frame(), target="pays", event_is_favourable=True, seed=0)


def _portfolio(
    session: Session, preset: str = "consumer_finance", principal: int = 1_000_000
) -> tuple[Institution, list[Account]]:
    institution = make_institution(session, preset=preset)
    accounts = []
    for days in DAYS_LATE:
        debtor = make_debtor(session, institution, national_id=None)
        make_contact_point(session, debtor)
        accounts.append(make_account(session, debtor, days_past_due=days, principal=principal))
    return institution, accounts


def _champion(session: Session, institution: Institution, model: TrainedModel) -> str:
    version = service.register_model(
        session, model=model, institution_id=institution.id, source="test", actor="ds"
    )
    service.promote_model(session, version=version.version, actor="ds")
    return version.version


def _pay(session: Session, account: Account, amount: int, when: datetime) -> None:
    session.add(
        Payment(
            institution_id=account.institution_id,
            external_id=f"P-{account.id}-{when:%Y%m%d}",
            account_id=account.id,
            amount=amount,
            currency="CNY",
            paid_at=when,
        )
    )
    session.flush()


class TestSegmentsWithScores:
    def test_every_score_carries_a_segment_channel_and_priority(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution, accounts = _portfolio(session)
        _champion(session, institution, portfolio_model)
        run = service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        scores = {
            score.account_id: score for score in session.execute(select(AccountScore)).scalars()
        }
        assert len(scores) == len(accounts)
        assert sum(run.segments.values()) == len(accounts)
        for account in accounts:
            score = scores[account.id]
            assert score.segment is not None
            assert score.segment.split("-")[0] == (
                "early"
                if account.bucket in {"M0", "M1"}
                else "mid"
                if account.bucket in {"M2", "M3"}
                else "late"
            )
            assert score.channel in institution.settings["scoring"]["contact_cost_minor"]
            cost = institution.settings["scoring"]["contact_cost_minor"][score.channel]
            assert score.priority == pytest.approx(score.expected_recovery / cost)

    def test_a_commercial_bank_bands_the_same_balance_lower(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        bands = {}
        shared = service.register_model(
            session, model=portfolio_model, institution_id=None, source="test", actor="ds"
        )
        for preset in ("consumer_finance", "commercial_bank"):
            institution, _ = _portfolio(session, preset, principal=3_000_000)
            service.score_delinquent_accounts(
                session, institution=institution, as_of=AS_OF, version=shared.version
            )
            segments = session.execute(
                select(AccountScore.segment).where(AccountScore.institution_id == institution.id)
            ).scalars()
            bands[preset] = {str(segment).rsplit("-", 1)[1] for segment in segments}
        # Each account owes ¥30,650: large for consumer finance, medium for a commercial bank.
        assert bands == {"consumer_finance": {"large"}, "commercial_bank": {"medium"}}


class TestScoringRunRecords:
    def test_a_batch_run_stores_its_drift_once_per_model_and_date(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution, accounts = _portfolio(session)
        version = _champion(session, institution, portfolio_model)
        for _ in range(2):
            service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        runs = session.execute(select(ScoringRun)).scalars().all()
        assert len(runs) == 1
        run = runs[0]
        assert (run.model_version, run.as_of, run.accounts_scored) == (
            version,
            AS_OF,
            len(accounts),
        )
        assert set(run.feature_psi) == set(portfolio_model.feature_names)
        assert run.score_psi >= 0
        assert run.status in {"stable", "warn", "alert"}
        # Eight accounts are nothing like the training population: the score has moved.
        assert run.status != "stable"
        assert run.characteristic_shift

    def test_rescoring_one_account_leaves_the_run_record_alone(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution, accounts = _portfolio(session)
        _champion(session, institution, portfolio_model)
        service.score_account(
            session, institution=institution, account_id=accounts[0].id, as_of=AS_OF
        )
        assert session.execute(select(ScoringRun)).scalars().all() == []


class TestScoringInParts:
    """A whole portfolio is scored a part at a time; the parts must add up to one pass."""

    @staticmethod
    def _scored(
        session: Session, institution: Institution
    ) -> tuple[list[tuple[object, ...]], object]:
        rows = session.execute(
            select(
                AccountScore.id,
                AccountScore.account_id,
                AccountScore.probability,
                AccountScore.points,
                AccountScore.grade,
                AccountScore.expected_recovery,
                AccountScore.reasons,
                AccountScore.segment,
                AccountScore.channel,
                AccountScore.priority,
                AccountScore.priority_basis,
                AccountScore.uplift_recovery,
            )
            .where(AccountScore.institution_id == institution.id)
            .order_by(AccountScore.id)
        ).all()
        run = session.execute(select(ScoringRun)).scalar_one()
        drift = (
            run.accounts_scored,
            run.score_psi,
            run.feature_psi,
            run.characteristic_shift,
            run.status,
        )
        # Ids are renumbered by each run; their order must follow the accounts'.
        return [tuple(row[1:]) for row in rows], drift

    def test_parts_of_three_accounts_score_and_drift_as_one_pass(
        self, session: Session, portfolio_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        institution = make_institution(session, preset="consumer_finance")
        first_debtor = None
        for index, days in enumerate(DAYS_LATE):
            debtor = make_debtor(session, institution, national_id=None)
            first_debtor = first_debtor or debtor
            make_contact_point(session, debtor)
            account = make_account(
                session, debtor, days_past_due=days, principal=200_000 * (index + 1)
            )
            if index % 3:
                _pay(session, account, 10_000 * index, datetime(2025, 6, 1, 3, tzinfo=UTC))
        # A current account (not scored) and a second account of the first debtor, in a
        # later part than the debtor's first.
        make_account(session, make_debtor(session, institution, national_id=None), days_past_due=0)
        assert first_debtor is not None
        make_account(session, first_debtor, days_past_due=45, principal=500_000)
        _champion(session, institution, portfolio_model)

        monkeypatch.setattr(service, "SCORING_PART_ACCOUNTS", 1_000)
        whole = service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        one_pass = self._scored(session, institution)
        monkeypatch.setattr(service, "SCORING_PART_ACCOUNTS", 3)
        parts = service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)

        assert self._scored(session, institution) == one_pass
        assert len(one_pass[0]) == len(DAYS_LATE) + 1
        assert [row[0] for row in one_pass[0]] == sorted(row[0] for row in one_pass[0])
        assert parts == whole


class TestRealisedPerformance:
    def test_auc_and_ks_against_what_was_paid_after_scoring(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution, accounts = _portfolio(session)
        version = _champion(session, institution, portfolio_model)
        service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        after = datetime(2025, 7, 10, 3, tzinfo=UTC)
        for account in accounts[:3]:
            _pay(session, account, 80_000, after)
        # A payment past the 30-day window does not count.
        _pay(session, accounts[-1], 900_000, datetime(2025, 8, 15, 3, tzinfo=UTC))

        result = service.realised_performance(
            session,
            institution=institution,
            as_of=AS_OF,
            version=version,
            today=AS_OF + timedelta(days=45),
        )
        assert (result.count, result.events) == (len(accounts), 3)
        assert result.auc is not None
        assert result.ks is not None
        assert result.auc > 0.5
        run = session.execute(select(ScoringRun)).scalar_one()
        assert run.realised_auc == pytest.approx(result.auc)
        assert run.realised_count == len(accounts)
        assert run.realised_horizon_days == 30

    def test_outcomes_are_not_known_before_the_window_closes(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution, _ = _portfolio(session)
        version = _champion(session, institution, portfolio_model)
        service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        with pytest.raises(ValidationFailed, match="known from 2025-07-30"):
            service.realised_performance(
                session,
                institution=institution,
                as_of=AS_OF,
                version=version,
                today=AS_OF + timedelta(days=10),
            )

    def test_one_outcome_for_everyone_leaves_auc_undefined(
        self, session: Session, portfolio_model: TrainedModel
    ) -> None:
        institution, _ = _portfolio(session)
        version = _champion(session, institution, portfolio_model)
        service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        result = service.realised_performance(
            session, institution=institution, as_of=AS_OF, version=version, today=date(2025, 9, 1)
        )
        assert (result.events, result.auc, result.ks) == (0, None, None)
