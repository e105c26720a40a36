"""Promise-history features: as-of counts, kept ratio, broken recency and runs; training without
any promise still works."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from recoup.models.workbench import Promise, PromiseStatus
from recoup.scoring.features import PortfolioTables, compute_features, tables_from_rows
from recoup.scoring.reasons import reason_text
from recoup.scoring.repository import load_portfolio_tables
from recoup.scoring.training import train_model
from tests.factories import make_account, make_debtor, make_institution
from tests.scoring.test_features import account_row
from tests.scoring.test_service import make_feature_frame
from tests.workbench.helpers import add_promise

AS_OF = date(2025, 6, 30)
PROMISE_FEATURES = (
    "promises_made_90d",
    "promises_broken_180d",
    "promise_kept_ratio",
    "days_since_broken_promise",
    "consecutive_broken_promises",
)


def resolved(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=2, tzinfo=UTC)


@pytest.fixture
def tables() -> PortfolioTables:
    """Account 1 broke two in a row after a kept one; 2 kept its last; 3 made none; 4 only a
    pending and a cancelled promise; 5's last promise is broken only after the as-of date."""
    d = date.fromisoformat
    return tables_from_rows(
        accounts=[account_row(number) for number in range(1, 6)],
        events=[],
        payments=[],
        valid_self_contacts=[],
        promises=[
            (1, d("2024-11-01"), d("2024-11-10"), "kept", resolved("2024-11-09")),
            (1, d("2025-04-01"), d("2025-04-10"), "broken", resolved("2025-04-14")),
            (1, d("2025-06-01"), d("2025-06-10"), "broken", resolved("2025-06-14")),
            (2, d("2024-10-01"), d("2024-10-05"), "broken", resolved("2024-10-09")),
            (2, d("2025-05-01"), d("2025-05-05"), "partially_kept", resolved("2025-05-09")),
            (2, d("2025-06-20"), d("2025-06-25"), "kept", resolved("2025-06-24")),
            (4, d("2025-06-28"), d("2025-07-05"), "pending", None),
            (4, d("2025-06-01"), d("2025-06-05"), "cancelled", resolved("2025-06-02")),
            (5, d("2025-06-20"), d("2025-06-27"), "broken", resolved("2025-07-01")),
            (5, d("2025-07-02"), d("2025-07-09"), "kept", resolved("2025-07-03")),
        ],
    )


def test_promise_history_as_of_a_date(tables: PortfolioTables) -> None:
    features = compute_features(tables, as_of=AS_OF)[list(PROMISE_FEATURES)]
    expected = pd.DataFrame(
        {
            # April 1st is the 91st day back: outside the window.
            "promises_made_90d": [1, 2, 0, 2, 1],
            "promises_broken_180d": [2, 0, 0, 0, 0],
            "promise_kept_ratio": [1 / 3, 1 / 3, np.nan, np.nan, np.nan],
            # Broken at 02:00 on June 14th; the as-of date ends at midnight after June 30th.
            "days_since_broken_promise": [16 + 22 / 24, 264 + 22 / 24, np.nan, np.nan, np.nan],
            "consecutive_broken_promises": [2, 0, 0, 0, 0],
        },
        index=pd.Index([1, 2, 3, 4, 5], name="account_id"),
    )
    pd.testing.assert_frame_equal(features, expected, check_dtype=False)


def test_an_earlier_snapshot_sees_only_what_was_known_then(tables: PortfolioTables) -> None:
    features = compute_features(tables, as_of=date(2025, 6, 12)).loc[1]
    assert features["promises_broken_180d"] == 1
    assert features["consecutive_broken_promises"] == 1
    assert features["promise_kept_ratio"] == pytest.approx(0.5)
    assert features["promises_made_90d"] == 2  # made on June 1st, still unresolved


def test_tables_without_promises_mean_no_history() -> None:
    empty = tables_from_rows(
        accounts=[account_row(1)], events=[], payments=[], valid_self_contacts=[]
    )
    row = compute_features(empty, as_of=AS_OF).loc[1]
    assert row["promises_made_90d"] == 0
    assert row["consecutive_broken_promises"] == 0
    assert np.isnan(row["promise_kept_ratio"])
    assert np.isnan(row["days_since_broken_promise"])


def test_every_promise_feature_has_reason_wording() -> None:
    for feature in PROMISE_FEATURES:
        assert not reason_text(feature, locale="zh").startswith(feature)
        assert not reason_text(feature, locale="en").startswith(feature)


@pytest.mark.parametrize("family", ["scorecard", "gbm"])
def test_training_without_any_promise_drops_the_empty_columns(family: str) -> None:
    frame = make_feature_frame(rows=1200).assign(
        promises_made_90d=0.0,
        promises_broken_180d=0.0,
        promise_kept_ratio=np.nan,
        days_since_broken_promise=np.nan,
        consecutive_broken_promises=0.0,
    )
    model = train_model(
        frame,
        target="pays",
        event_is_favourable=True,
        family=family,  # type: ignore[arg-type]
        seed=0,
    )
    assert not set(model.feature_names) & set(PROMISE_FEATURES)
    dropped = {column.name for column in model.summary.dropped_columns}
    assert set(PROMISE_FEATURES) <= dropped


def test_promises_are_read_from_the_database_as_of_the_date(session: Session) -> None:
    institution = make_institution(session)
    account = make_account(session, make_debtor(session, institution))
    add_promise(
        session,
        account,
        amount=100,
        promised_on=date(2025, 6, 1),
        due_date=date(2025, 6, 5),
        status=PromiseStatus.broken,
        resolved_at=resolved("2025-06-09"),
    )
    add_promise(
        session, account, amount=100, promised_on=date(2025, 7, 2), due_date=date(2025, 7, 5)
    )
    other = make_account(session, make_debtor(session, make_institution(session)))
    add_promise(session, other, amount=100, promised_on=date(2025, 6, 1), due_date=AS_OF)
    tables = load_portfolio_tables(
        session,
        institution_id=institution.id,
        until=datetime(2025, 7, 1, tzinfo=UTC),
    )
    assert tables.promises["account_id"].tolist() == [account.id]
    row = compute_features(tables, as_of=AS_OF).loc[account.id]
    assert row["consecutive_broken_promises"] == 1
    assert row["promises_made_90d"] == 1


def test_the_demo_institution_trains_with_and_without_promises(session: Session) -> None:
    from recoup.demo.service import seed_demo
    from recoup.institutions import repository as institutions
    from recoup.scoring import service

    seed_demo(session, accounts=800, seed=5, as_of=AS_OF)
    institution = institutions.require_by_code(session, "DEMO-CF")
    tables = load_portfolio_tables(
        session, institution_id=institution.id, until=datetime(2025, 7, 1, tzinfo=UTC)
    )
    features = compute_features(tables, as_of=AS_OF)
    assert features["promises_made_90d"].sum() > 0
    assert features["promise_kept_ratio"].notna().any()

    session.execute(delete(Promise).where(Promise.institution_id == institution.id))
    outcome = service.train_from_portfolio(
        session, institution=institution, as_of=AS_OF, snapshots=4, actor="ds"
    )
    assert not set(outcome.model.feature_names) & set(PROMISE_FEATURES)
    assert outcome.model.evaluation.auc > 0.6
