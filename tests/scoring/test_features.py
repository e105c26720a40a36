"""As-of features and collection labels computed from portfolio columns, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from recoup.scoring.features import (
    FEATURE_NAMES,
    PortfolioTables,
    collection_labels,
    compute_features,
    end_of_day,
    state_as_of,
    tables_from_rows,
    training_snapshots,
)

AS_OF = date(2025, 6, 30)


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def account_row(account_id: int, **changes: object) -> tuple[object, ...]:
    row: dict[str, object] = {
        "account_id": account_id,
        "debtor_id": account_id * 10,
        "product": "cash_loan",
        "currency": "CNY",
        "credit_limit": 2_000_000,
        "principal": 900_000,
        "balance": 1_000_000,
        "overdue_amount": 200_000,
        "minimum_due": 100_000,
        "days_past_due": 45,
        "bucket": "M2",
        "status": "delinquent",
        "opened_on": date(2023, 6, 30),
        "debtor_kind": "individual",
        "birth_date": date(1990, 1, 1),
        "province": "广东省",
    }
    row.update(changes)
    return tuple(row.values())


@pytest.fixture
def tables() -> PortfolioTables:
    """Account 1 is late with some payments; 2 is late and silent; 3 opened after the as-of date."""
    return tables_from_rows(
        accounts=[
            account_row(1),
            account_row(2, province=None, birth_date=None, product="credit_card"),
            account_row(3, days_past_due=10, bucket="M1"),
        ],
        events=[
            (1, at("2025-04-30"), 0, "M0", 950_000),
            (1, at("2025-05-31"), 31, "M2", 980_000),
            (2, at("2025-03-31"), 61, "M3", 1_000_000),
            (3, at("2025-07-05"), 10, "M1", 1_000_000),
            (1, at("2025-07-15"), 0, "M0", 900_000),
        ],
        payments=[
            (1, at("2025-06-10"), 50_000),
            (1, at("2025-04-20"), 100_000),
            (1, at("2025-07-10"), 150_000),
            (3, at("2025-07-06"), 5_000),
        ],
        valid_self_contacts=[(10, at("2024-01-01")), (20, at("2025-07-01"))],
    )


class TestStateAsOf:
    def test_latest_event_before_the_date_wins(self, tables: PortfolioTables) -> None:
        state = state_as_of(tables, end_of_day(AS_OF))
        assert state.days_past_due[:2].tolist() == [31, 61]
        assert state.bucket[:2].tolist() == [2, 3]
        assert state.balance[0] == 980_000

    def test_an_account_whose_history_starts_later_did_not_exist_yet(
        self, tables: PortfolioTables
    ) -> None:
        state = state_as_of(tables, end_of_day(AS_OF))
        assert np.isnan(state.days_past_due[2])


class TestFeatures:
    def test_every_documented_feature_is_computed(self, tables: PortfolioTables) -> None:
        features = compute_features(tables, as_of=AS_OF)
        assert tuple(features.columns) == FEATURE_NAMES
        assert features.index.tolist() == [1, 2, 3]

    def test_payments_and_contacts_after_the_date_are_not_seen(
        self, tables: PortfolioTables
    ) -> None:
        features = compute_features(tables, as_of=AS_OF).loc[1]
        assert features["last_payment_amount"] == 50_000
        assert features["days_since_last_payment"] == pytest.approx(20 + 14 / 24)
        assert features["payment_ratio_1m"] == pytest.approx(50_000 / 980_000)
        assert features["payment_ratio_3m"] == pytest.approx(150_000 / 980_000)
        assert compute_features(tables, as_of=AS_OF).loc[2, "valid_self_contact"] == 0
        assert compute_features(tables, as_of=date(2025, 7, 2)).loc[2, "valid_self_contact"] == 1

    def test_silent_account_has_no_payment_history(self, tables: PortfolioTables) -> None:
        features = compute_features(tables, as_of=AS_OF).loc[2]
        assert np.isnan(features["days_since_last_payment"])
        assert features["payment_ratio_6m"] == 0
        assert features["age_band"] == "unknown"
        assert pd.isna(features["region"])

    def test_months_delinquent_counts_past_month_ends(self, tables: PortfolioTables) -> None:
        features = compute_features(tables, as_of=AS_OF)
        assert features.loc[1, "months_delinquent_12m"] == 2
        assert features.loc[2, "months_delinquent_12m"] == 4

    def test_static_attributes(self, tables: PortfolioTables) -> None:
        features = compute_features(tables, as_of=AS_OF).loc[1]
        assert features["age_band"] == "35-44"
        assert features["utilisation"] == pytest.approx(0.49)
        assert features["months_on_book"] == pytest.approx(24, abs=0.1)
        assert features["customer_type"] == "individual"


class TestLabels:
    def test_paying_half_the_overdue_or_curing_counts_as_paying(
        self, tables: PortfolioTables
    ) -> None:
        labels = collection_labels(tables, as_of=AS_OF, horizon_days=30, payment_share=0.5)
        assert labels[:2].tolist() == [1, 0]

    def test_a_share_above_what_was_paid_and_a_short_window_miss(
        self, tables: PortfolioTables
    ) -> None:
        labels = collection_labels(tables, as_of=AS_OF, horizon_days=5, payment_share=0.5)
        assert labels[0] == 0

    def test_snapshots_keep_only_delinquent_accounts_with_known_outcomes(
        self, tables: PortfolioTables
    ) -> None:
        frame = training_snapshots(
            tables, as_of=date(2025, 7, 30), horizon_days=30, payment_share=0.5, snapshots=2
        )
        assert set(frame["snapshot"]) == {"2025-06-30", "2025-05-31"}
        assert (frame["days_past_due"] > 0).all()
        june = frame[frame["snapshot"] == "2025-06-30"].set_index("account_id")
        assert june["pays"].to_dict() == {1: 1, 2: 0}
