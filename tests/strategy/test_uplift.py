"""Uplift training data from the strategy engine's real experiment arms."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import service as cases
from recoup.kit.clock import utcnow
from recoup.kit.errors import ValidationFailed
from recoup.models import Account, Institution, Payment
from recoup.models.account import DelinquencyEvent
from recoup.models.cases import CaseAccount
from recoup.models.strategy import CaseStrategyStep
from recoup.strategy import service as strategy_service
from recoup.strategy import uplift
from tests.factories import make_account, make_debtor, make_institution

AS_OF = date(2026, 12, 1)
ENTERED = AS_OF - timedelta(days=40)
DOCUMENT = """
name: call experiment
segments:
  - code: everyone
    name: Everyone
    steps:
      - {code: first, day: 0, channel: call}
    experiment:
      code: exp_call
      control:
        code: holdout
        percent: 50
        steps:
          - {code: later, day: 3650, channel: letter}
"""


def _at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _pay(session: Session, account: Account, day: date) -> None:
    session.add(
        Payment(
            institution_id=account.institution_id,
            external_id=f"P-{account.id}-{day:%Y%m%d}",
            account_id=account.id,
            amount=10_000,
            currency="CNY",
            paid_at=_at(day),
        )
    )


def _experiment(session: Session, arms: list[str]) -> tuple[Institution, list[Account]]:
    """One account per arm, each entered on the champion path or the control arm 40 days ago."""
    institution = make_institution(session)
    accounts = [
        make_account(session, make_debtor(session, institution), days_past_due=70) for _ in arms
    ]
    cases.sync_cases(session, institution_id=institution.id, now=utcnow())
    _, version = strategy_service.create_strategy(
        session, institution=institution, code="exp", name="Exp", actor="m", document=DOCUMENT
    )
    case_of = dict(
        session.execute(
            select(CaseAccount.account_id, CaseAccount.case_id).where(
                CaseAccount.account_id.in_([account.id for account in accounts])
            )
        ).all()
    )
    for account, arm in zip(accounts, arms, strict=True):
        for day in (ENTERED, ENTERED + timedelta(days=7)):  # the first day counts
            session.add(
                CaseStrategyStep(
                    institution_id=institution.id,
                    case_id=case_of[account.id],
                    strategy_version_id=version.id,
                    segment="everyone",
                    arm=arm,
                    step="first",
                    reason="test",
                    source="cycle",
                    as_of=day,
                    at=_at(day),
                )
            )
    session.flush()
    return institution, accounts


class TestExperimentData:
    def test_arms_outcomes_and_features_are_those_of_the_day_of_entry(
        self, session: Session
    ) -> None:
        institution, accounts = _experiment(
            session, ["champion", "holdout", "champion", "holdout", "challenger"]
        )
        paid_in_window, paid_late, paid_before, _unpaid, _challenger = accounts
        _pay(session, paid_in_window, ENTERED + timedelta(days=10))
        _pay(session, paid_late, ENTERED + timedelta(days=45))
        _pay(session, paid_before, ENTERED - timedelta(days=2))
        # Its history says 30 days past due and ¥5,000 on the day it entered; 70 days today.
        session.add(
            DelinquencyEvent(
                institution_id=institution.id,
                account_id=paid_in_window.id,
                effective_at=_at(ENTERED - timedelta(days=1)),
                recorded_at=_at(ENTERED - timedelta(days=1)),
                days_past_due=30,
                bucket="M1",
                status="delinquent",
                balance=500_000,
                cause="cycle",
            )
        )
        session.flush()
        data = uplift.experiment_data(session, institution=institution, as_of=AS_OF, days=30)
        assert set(data) == {"call"}
        calls = data["call"]
        # The challenger's account is neither the champion path nor the control arm.
        assert len(calls.paid) == 4
        assert calls.treated.tolist() == [True, False, True, False]
        assert calls.paid.tolist() == [True, False, False, False]
        assert calls.features[0, 0] == 30
        assert calls.features[0, 1] == pytest.approx(np.log1p(500_000))
        assert calls.features[2, 0] == 70  # no history: its account row

    def test_accounts_that_entered_too_recently_wait(self, session: Session) -> None:
        institution, _ = _experiment(session, ["champion", "holdout"])
        data = uplift.experiment_data(
            session, institution=institution, as_of=ENTERED + timedelta(days=29), days=30
        )
        assert data == {}

    def test_training_without_enough_arms_is_refused_with_the_reason(
        self, session: Session
    ) -> None:
        institution, accounts = _experiment(session, ["champion", "holdout"] * 3)
        _pay(session, accounts[0], ENTERED + timedelta(days=3))
        session.flush()
        with pytest.raises(ValidationFailed, match=r"call: the (contacted|control) arm has"):
            uplift.train_uplift_on_experiments(session, institution=institution, as_of=AS_OF)
        empty = make_institution(session)
        with pytest.raises(ValidationFailed, match="no experiment with a control arm"):
            uplift.train_uplift_on_experiments(session, institution=empty, as_of=AS_OF)
