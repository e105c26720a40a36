"""Payment-plan features: plans broken in the last year and a plan running, as of a date;
models trained before them keep scoring."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from recoup.models.plans import PaymentPlan
from recoup.scoring.features import (
    FEATURE_KINDS,
    PortfolioTables,
    compute_features,
    tables_from_rows,
)
from recoup.scoring.reasons import reason_text
from recoup.scoring.repository import load_portfolio_tables
from recoup.scoring.scorer import compile_scorer
from recoup.scoring.training import train_model
from tests.factories import make_account, make_debtor, make_institution
from tests.scoring.test_features import account_row
from tests.scoring.test_service import make_feature_frame

AS_OF = date(2025, 6, 30)
PLAN_FEATURES = ("plans_broken_365d", "on_plan")


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=2, tzinfo=UTC)


@pytest.fixture
def tables() -> PortfolioTables:
    """Account 1 broke a plan last summer and one this spring and runs a third; 2 completed
    one before the as-of date; 3 had one waiting for approval and one rejected; 4 runs one
    approved only after the as-of date; 5 broke one two years ago; 6 has one that ends after
    the as-of date."""
    return tables_from_rows(
        accounts=[account_row(number) for number in range(1, 7)],
        events=[],
        payments=[],
        valid_self_contacts=[],
        plans=[
            (1, at("2024-05-01"), False, None, "broken", at("2024-07-15")),
            (1, at("2025-01-01"), False, None, "broken", at("2025-03-15")),
            (1, at("2025-04-01"), True, at("2025-04-02"), "active", None),
            (2, at("2025-01-01"), False, None, "completed", at("2025-06-01")),
            (3, at("2025-06-01"), True, None, "pending_approval", None),
            (3, at("2025-05-01"), True, at("2025-05-02"), "rejected", at("2025-05-02")),
            (4, at("2025-06-20"), True, at("2025-07-02"), "active", None),
            (5, at("2023-05-01"), False, None, "broken", at("2023-07-01")),
            (6, at("2025-03-01"), False, None, "broken", at("2025-07-10")),
        ],
    )


def test_plan_history_as_of_a_date(tables: PortfolioTables) -> None:
    features = compute_features(tables, as_of=AS_OF)[list(PLAN_FEATURES)]
    expected = pd.DataFrame(
        {
            "plans_broken_365d": [2, 0, 0, 0, 0, 0],
            "on_plan": [1, 0, 0, 0, 0, 1],
        },
        index=pd.Index([1, 2, 3, 4, 5, 6], name="account_id"),
    )
    pd.testing.assert_frame_equal(features, expected, check_dtype=False)


def test_an_earlier_snapshot_sees_only_what_was_known_then(tables: PortfolioTables) -> None:
    features = compute_features(tables, as_of=date(2025, 3, 1))
    assert features.loc[1, "plans_broken_365d"] == 1
    assert features.loc[1, "on_plan"] == 1  # the second plan, broken only on March 15th
    assert features.loc[2, "on_plan"] == 1


def test_plan_features_are_in_the_spec_with_reason_wording() -> None:
    for feature in PLAN_FEATURES:
        assert FEATURE_KINDS[feature] == "numeric"
        assert not reason_text(feature, locale="zh").startswith(feature)
        assert not reason_text(feature, locale="en").startswith(feature)


def test_tables_without_plans_mean_no_plan_history() -> None:
    empty = tables_from_rows(
        accounts=[account_row(1)], events=[], payments=[], valid_self_contacts=[]
    )
    row = compute_features(empty, as_of=AS_OF).loc[1]
    assert (row["plans_broken_365d"], row["on_plan"]) == (0, 0)


@pytest.mark.parametrize("family", ["scorecard", "gbm"])
def test_a_model_trained_before_the_plan_features_keeps_scoring(family: str) -> None:
    frame = make_feature_frame(rows=1200)
    model = train_model(
        frame,
        target="pays",
        event_is_favourable=True,
        family=family,  # type: ignore[arg-type]
        seed=0,
    )
    assert not set(model.feature_names) & set(PLAN_FEATURES)
    scorer = compile_scorer(model)
    features = frame.drop(columns=["pays"])
    before = scorer.score(features).probability
    with_plans = features.assign(plans_broken_365d=1.0, on_plan=1.0)
    np.testing.assert_array_equal(scorer.score(with_plans).probability, before)


def test_plans_are_read_from_the_database_as_of_the_date(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    account = make_account(session, debtor)
    other = make_account(session, make_debtor(session, make_institution(session)))
    for owner, status, resolved_at in (
        (account, "broken", at("2025-05-01")),
        (account, "active", None),
        (other, "broken", at("2025-05-01")),
    ):
        session.add(
            PaymentPlan(
                institution_id=owner.institution_id,
                account_id=owner.id,
                debtor_id=owner.debtor_id,
                currency="CNY",
                balance=100_000,
                discount=0,
                total=100_000,
                down_payment=0,
                instalment_count=2,
                frequency="monthly",
                start_on=date(2025, 3, 1),
                status=status,
                created_by="test",
                resolved_at=resolved_at,
                created_at=at("2025-03-01") if status == "broken" else at("2025-05-10"),
            )
        )
    session.flush()
    tables = load_portfolio_tables(
        session, institution_id=institution.id, until=datetime(2025, 7, 1, tzinfo=UTC)
    )
    assert tables.plans["account_id"].tolist() == [account.id, account.id]
    row = compute_features(tables, as_of=AS_OF).loc[account.id]
    assert (row["plans_broken_365d"], row["on_plan"]) == (1, 1)
