"""As-of features and collection labels computed from portfolio columns, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.compliance.gate import service as gate_service
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party
from recoup.models import Account, Debtor, Institution
from recoup.models.scoring import AccountScore
from recoup.scoring import service
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
from recoup.scoring.repository import load_portfolio_tables
from recoup.scoring.training import train_model
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.scoring.test_service import make_feature_frame

AS_OF = date(2025, 6, 30)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CONTACT_FEATURES = (
    "contact_attempts_30d",
    "right_party_contacts_90d",
    "days_since_right_party_contact",
)


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


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def call(
    session: Session,
    debtor: Debtor,
    when: datetime,
    outcome: OutcomeCode | None,
    *,
    account: Account | None = None,
) -> bool:
    """Ask the gate for a call to the debtor and record its outcome; return whether allowed."""
    checked = gate_service.check_contact(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        channel=Channel.CALL,
        party=Party.DEBTOR,
        at=when,
        actor="tester",
        account_id=account.id if account else None,
        now=when,
    )
    if checked.decision.allowed and outcome is not None:
        gate_service.record_outcome(
            session,
            institution_id=debtor.institution_id,
            decision_id=checked.record.id,
            outcome=outcome,
            effective=outcome is OutcomeCode.RIGHT_PARTY,
            happened_at=when,
        )
    return checked.decision.allowed


ContactPortfolio = tuple[Institution, Account, Account, Account]


@pytest.fixture
def contact_portfolio(session: Session) -> ContactPortfolio:
    """Debtor A (two accounts) was reached on 10 March and 10 June; debtor B never answered."""
    institution = make_institution(session)
    reached = make_debtor(session, institution)
    silent = make_debtor(session, institution, national_id="110101198001011234")
    make_contact_point(session, reached)
    card = make_account(session, reached)
    loan = make_account(session, reached)
    other = make_account(session, silent)
    assert call(session, reached, local(2025, 3, 10, 10), OutcomeCode.RIGHT_PARTY, account=card)
    assert call(session, reached, local(2025, 5, 20, 10), OutcomeCode.NO_ANSWER, account=loan)
    assert call(session, reached, local(2025, 6, 10, 10), OutcomeCode.RIGHT_PARTY, account=loan)
    assert call(session, reached, local(2025, 6, 25, 10), OutcomeCode.NO_ANSWER, account=card)
    # Allowed but never made, and blocked at night: neither is an attempt.
    assert call(session, reached, local(2025, 6, 28, 10), None, account=card)
    assert not call(session, reached, local(2025, 6, 28, 22), OutcomeCode.NO_ANSWER, account=card)
    assert call(session, reached, local(2025, 7, 5, 10), OutcomeCode.RIGHT_PARTY, account=card)
    assert call(session, silent, local(2025, 6, 20, 10), OutcomeCode.NO_ANSWER)
    assert call(session, silent, local(2025, 6, 21, 10), OutcomeCode.BUSY)
    return institution, card, loan, other


def contact_features(
    session: Session, institution: Institution, as_of: date, account_ids: list[int] | None = None
) -> pd.DataFrame:
    tables = load_portfolio_tables(
        session, institution_id=institution.id, until=end_of_day(as_of), account_ids=account_ids
    )
    return compute_features(tables, as_of=as_of)[list(CONTACT_FEATURES)]


class TestContactHistory:
    def test_counts_and_recency_at_the_end_of_june(
        self, session: Session, contact_portfolio: ContactPortfolio
    ) -> None:
        institution, card, loan, other = contact_portfolio
        features = contact_features(session, institution, AS_OF)
        # Both of debtor A's accounts carry the debtor's history: 10 and 25 June in 30 days.
        for account in (card, loan):
            assert features.loc[account.id, "contact_attempts_30d"] == 2
            assert features.loc[account.id, "right_party_contacts_90d"] == 1
            assert features.loc[account.id, "days_since_right_party_contact"] == pytest.approx(
                20 + 22 / 24
            )
        assert features.loc[other.id, "contact_attempts_30d"] == 2
        assert features.loc[other.id, "right_party_contacts_90d"] == 0
        assert np.isnan(features.loc[other.id, "days_since_right_party_contact"])

    def test_a_conversation_older_than_ninety_days_still_dates_the_last_contact(
        self, session: Session, contact_portfolio: ContactPortfolio
    ) -> None:
        institution, card, _loan, other = contact_portfolio
        features = contact_features(session, institution, date(2025, 6, 9))
        assert features.loc[card.id, "contact_attempts_30d"] == 1
        assert features.loc[card.id, "right_party_contacts_90d"] == 0
        assert features.loc[card.id, "days_since_right_party_contact"] == pytest.approx(
            91 + 22 / 24
        )
        assert features.loc[other.id].tolist()[:2] == [0, 0]

    def test_contacts_after_the_date_are_not_seen(
        self, session: Session, contact_portfolio: ContactPortfolio
    ) -> None:
        institution, card, _loan, _other = contact_portfolio
        before = contact_features(session, institution, date(2025, 7, 4))
        after = contact_features(session, institution, date(2025, 7, 5))
        assert before.loc[card.id, "right_party_contacts_90d"] == 1
        assert after.loc[card.id, "contact_attempts_30d"] == 3
        assert after.loc[card.id, "right_party_contacts_90d"] == 2
        assert after.loc[card.id, "days_since_right_party_contact"] == pytest.approx(22 / 24)
        # The same tables read up to a later date give the same answer as of June.
        everything = load_portfolio_tables(
            session, institution_id=institution.id, until=end_of_day(date(2025, 12, 31))
        )
        assert compute_features(everything, as_of=AS_OF)[list(CONTACT_FEATURES)].equals(
            contact_features(session, institution, AS_OF)
        )

    def test_scoring_one_account_counts_the_debtor_s_other_accounts(
        self, session: Session, contact_portfolio: ContactPortfolio
    ) -> None:
        institution, card, _loan, _other = contact_portfolio
        features = contact_features(session, institution, AS_OF, account_ids=[card.id])
        assert features.index.tolist() == [card.id]
        assert features.loc[card.id, "contact_attempts_30d"] == 2

    def test_tables_without_contact_records_mean_no_contact(self, tables: PortfolioTables) -> None:
        features = compute_features(tables, as_of=AS_OF)
        assert features["contact_attempts_30d"].tolist() == [0, 0, 0]
        assert features["days_since_right_party_contact"].isna().all()


class TestModelsTrainedBeforeContactHistory:
    @pytest.mark.parametrize("family", ["scorecard", "gbm"])
    def test_still_load_and_score_with_their_own_feature_list(
        self, session: Session, contact_portfolio: ContactPortfolio, family: str
    ) -> None:
        institution, card, loan, other = contact_portfolio
        model = train_model(
            make_feature_frame(rows=1200),
            target="pays",
            event_is_favourable=True,
            family=family,  # type: ignore[arg-type]
            seed=0,
        )
        assert not set(model.feature_names) & set(CONTACT_FEATURES)
        version = service.register_model(
            session, model=model, institution_id=institution.id, source="t", actor="ds"
        )
        service.promote_model(session, version=version.version, actor="ds")
        run = service.score_delinquent_accounts(session, institution=institution, as_of=AS_OF)
        assert run.accounts_scored == 3
        scores = session.execute(select(AccountScore)).scalars().all()
        assert {score.account_id for score in scores} == {card.id, loan.id, other.id}
        assert all(0 < score.probability < 1 for score in scores)
        assert all(set(score.reasons) <= set(model.feature_names) for score in scores)
