"""KPIs of a small hand-computed portfolio (see conftest.py), in SQL on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.orm import Session

from recoup.analytics import service
from recoup.analytics.rules import (
    BucketCount,
    Cell,
    Cohort,
    Collected,
    ContactCounts,
    PlanOutcomes,
    PromiseOutcomes,
    Rate,
)
from recoup.identity.scoping import institution_scope
from recoup.institutions.service import update_settings
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.models import Institution
from recoup.models.workbench import PromiseStatus
from recoup.portfolio.schemas import PaymentInput, ReversalInput
from recoup.portfolio.service import record_payment, reverse_payments
from tests.analytics.conftest import MARCH_END, March
from tests.analytics.helpers import Outcome, account, noon, plan, promise, score, state
from tests.factories import make_institution, make_model_version


def report(
    session: Session, institution: Institution, as_of: date = MARCH_END, **kwargs: object
) -> service.KpiReport:
    return service.kpi_report(
        session,
        principal=institution_scope(institution.id),
        as_of=as_of,
        **kwargs,  # type: ignore[arg-type]
    )


class TestTheMonth:
    def test_portfolio_by_bucket_as_of_the_date(self, session: Session, march: March) -> None:
        total = report(session, march.institution).total
        buckets = {item.bucket: item for item in total.buckets}
        assert buckets["M0"] == BucketCount("M0", 2, 9_000)  # A and F
        assert buckets["M1"] == BucketCount("M1", 1, 30_000)  # C
        assert buckets["M3"] == BucketCount("M3", 1, 20_000)  # B
        assert buckets["M2"] == BucketCount("M2", 0, 0)  # an empty bucket
        # Settled (E) and charged off (D) accounts have left the portfolio.
        assert (total.accounts, total.balance) == (4, 59_000)

    def test_roll_rate_matrix_and_cure_rate(self, session: Session, march: March) -> None:
        total = report(session, march.institution).total
        assert total.transitions == (
            Cell("M0", "M0", 1, 1_000),
            Cell("M0", "M1", 1, 30_000),
            Cell("M1", "M0", 1, 10_000),
            Cell("M1", "settled", 1, 6_000),
            Cell("M2", "M3", 1, 20_000),
        )
        m1 = next(row for row in total.roll_rates if row.from_bucket == "M1")
        assert m1.by_count["cure"] == Rate(1, 2)
        assert m1.by_count["left"] == Rate(1, 2)
        assert m1.by_balance["cure"] == Rate(10_000, 16_000)
        # Paying off (E) is not a cure; the charged-off account (D) is not in the matrix.
        assert total.cure_rate_by_count == Rate(1, 3)
        assert total.cure_rate_by_balance == Rate(10_000, 36_000)

    def test_recovery_liquidation_and_what_was_collected(
        self, session: Session, march: March
    ) -> None:
        total = report(session, march.institution).total
        # A, B and E owed 36,000 on 1 March and paid 2,000 + 5,000 (partial) + 6,000.
        assert total.delinquent_at_start == Cohort(3, 36_000, 13_000)
        assert total.recovery_rate == Rate(13_000, 36_000)
        # C turned delinquent on 5 March owing 30,000; its 1,000 of 2 March came before.
        assert total.placed == Cohort(1, 30_000, 3_000)
        assert total.liquidation_rate.value == 0.1
        # Everything received, the charged-off account's 4,000 included and shown apart.
        assert total.collected == Collected(21_000, 6, 4_000)

    def test_days_to_cure(self, session: Session, march: March) -> None:
        total = report(session, march.institution).total
        # A: 10 days past due on 20 February, current 18 days later.
        assert (total.average_days_to_cure.count, total.average_days_to_cure.value) == (1, 28)

    def test_promises_due_in_the_month(self, session: Session, march: March) -> None:
        total = report(session, march.institution).total
        # Kept (A), partially kept (B), and C's due on the 31st still within its grace days;
        # the cancelled one does not count, the one due on 2 April belongs to April.
        assert total.promises_due == PromiseOutcomes(kept=1, partially_kept=1, awaiting=1)
        assert total.promise_kept_rate == Rate(1, 2)
        assert total.promise_partially_kept_rate == Rate(1, 2)

    def test_promise_forecast(self, session: Session, march: March) -> None:
        result = report(session, march.institution)
        # Decided in the 90 days to 31 March: kept (M1), partially kept (M3), broken (M0).
        assert result.kept_probability.overall == Rate(1, 3)
        assert result.kept_history.start == date(2026, 1, 1)
        forecast = result.total.promise_forecast
        assert (forecast.promises, forecast.amount) == (1, 3_000)  # C's, made in M1
        line = forecast.lines[0]
        assert (line.bucket, line.source, line.expected) == ("M1", "institution", 1_000)
        assert forecast.expected == 1_000

    def test_a_bucket_with_enough_history_uses_its_own_kept_rate(
        self, session: Session, march: March
    ) -> None:
        update_settings(
            session,
            institution=march.institution,
            changes={"analytics": {"min_promises_per_bucket": 1}},
            actor="test",
        )
        line = report(session, march.institution).total.promise_forecast.lines[0]
        assert (line.probability, line.source, line.expected) == (Rate(1, 1), "bucket", 3_000)


class TestPromisesAcrossMonthEnds:
    def test_a_promise_due_on_the_last_day_waits_for_its_grace_days(
        self, session: Session, march: March
    ) -> None:
        february = report(session, march.institution, as_of=date(2026, 2, 28)).total
        assert february.promises_due == PromiseOutcomes(awaiting=1)
        assert february.promise_kept_rate.value is None
        # Read again at the end of March, February's promise was broken.
        again = report(
            session, march.institution, start=date(2026, 2, 1), end=date(2026, 2, 28)
        ).total
        assert again.promises_due == PromiseOutcomes(broken=1)
        assert again.promise_kept_rate == Rate(0, 1)

    def test_a_promise_made_in_march_due_in_april_counts_in_april(
        self, session: Session, march: March
    ) -> None:
        april = report(session, march.institution, as_of=date(2026, 4, 30)).total
        assert april.promises_due == PromiseOutcomes(kept=1)

    def test_a_promise_reconciled_late_counts_as_of_when_its_window_closed(
        self, session: Session, march: March
    ) -> None:
        promise(
            session,
            march.f,
            800,
            promised_on=date(2026, 2, 2),
            due_date=date(2026, 2, 10),
            outcome=Outcome(PromiseStatus.broken, date(2026, 4, 5)),
        )
        february = report(session, march.institution, as_of=date(2026, 2, 28)).total
        assert february.promises_due == PromiseOutcomes(broken=1, awaiting=1)


class TestPaymentAfterChargeOff:
    def test_counts_as_collected_apart_and_never_as_a_cure_or_recovery(
        self, session: Session
    ) -> None:
        institution = make_institution(session, timezone="Asia/Shanghai")
        written_off = account(session, institution)
        written_off.external_id = "WO-1"
        written_off.status = "charged_off"
        written_off.days_past_due = 200
        written_off.overdue_amount = 5_000
        written_off.principal, written_off.interest, written_off.fees = 40_000, 0, 0
        written_off.penalty = 0
        state(
            session,
            written_off,
            date(2026, 1, 31),
            days_past_due=200,
            balance=40_000,
            status="charged_off",
        )
        record_payment(
            session,
            institution=institution,
            payment=PaymentInput(
                "WO-PAY", "WO-1", 5_000, "CNY", datetime(2026, 3, 15, 4, tzinfo=UTC)
            ),
        )
        total = report(session, institution).total
        assert total.collected == Collected(5_000, 1, 5_000)
        # A payment the core system reversed is not money collected.
        (reversed_outcome,) = reverse_payments(
            session,
            institution=institution,
            reversals=[
                ReversalInput("WO-PAY", datetime(2026, 3, 20, 4, tzinfo=UTC), "cheque bounced")
            ],
        )
        assert reversed_outcome.status == "reversed"
        assert report(session, institution).total.collected == Collected(0, 0, 0)
        record_payment(
            session,
            institution=institution,
            payment=PaymentInput(
                "WO-PAY-2", "WO-1", 5_000, "CNY", datetime(2026, 3, 21, 4, tzinfo=UTC)
            ),
        )
        total = report(session, institution).total
        assert total.collected == Collected(5_000, 1, 5_000)
        assert total.delinquent_at_start == Cohort()
        assert total.recovery_rate.value is None
        assert total.cure_rate_by_count.value is None
        assert total.average_days_to_cure.count == 0
        assert total.accounts == 0


class TestReversedPayment:
    def test_a_cure_by_a_payment_reversed_since_is_neither_recovery_nor_a_cure(
        self, session: Session
    ) -> None:
        institution = make_institution(session, timezone="Asia/Shanghai")
        late = account(session, institution)  # 45 days past due, 1,000.00 overdue
        late.external_id = "REV-1"
        state(session, late, date(2026, 2, 28), days_past_due=45, balance=late.balance)
        owed = late.balance
        (paid,) = [
            record_payment(
                session,
                institution=institution,
                payment=PaymentInput("REV-PAY", "REV-1", 100_000, "CNY", noon(date(2026, 3, 10))),
            )
        ]
        assert paid.status == "applied"
        assert late.status == "current"
        total = report(session, institution).total
        assert total.collected == Collected(100_000, 1, 0)
        assert total.recovery_rate == Rate(100_000, owed)
        assert total.cure_rate_by_count == Rate(1, 1)
        (outcome,) = reverse_payments(
            session,
            institution=institution,
            reversals=[ReversalInput("REV-PAY", noon(date(2026, 3, 12)), "cheque bounced")],
        )
        assert outcome.status == "reversed"
        total = report(session, institution).total
        assert total.collected == Collected(0, 0, 0)
        assert total.delinquent_at_start == Cohort(1, owed, 0)
        assert total.recovery_rate == Rate(0, owed)
        assert total.cure_rate_by_count == Rate(0, 1)
        assert total.average_days_to_cure.count == 0


class TestPlans:
    def test_plans_completed_over_plans_that_ended_in_the_period(
        self, session: Session, march: March
    ) -> None:
        plan(
            session,
            march.a,
            9_000,
            made_on=date(2026, 3, 1),
            status="completed",
            ended_on=date(2026, 3, 20),
        )
        plan(
            session,
            march.b,
            20_000,
            made_on=date(2026, 3, 9),
            status="broken",
            ended_on=date(2026, 3, 25),
        )
        plan(session, march.c, 30_000, made_on=date(2026, 3, 6))  # still running
        plan(
            session,
            march.e,
            6_000,
            made_on=date(2026, 1, 5),
            status="completed",
            ended_on=date(2026, 2, 27),
        )
        plan(
            session,
            march.f,
            1_000,
            made_on=date(2026, 3, 2),
            status="cancelled",
            ended_on=date(2026, 3, 3),
        )
        total = report(session, march.institution).total
        assert total.plans_ended == PlanOutcomes(completed=1, broken=1)
        assert total.plan_kept_rate == Rate(1, 2)
        by_bucket = report(session, march.institution, group_by=["bucket"])
        ended = {
            group.cuts["bucket"]: group.kpis.plans_ended
            for group in by_bucket.groups
            if group.kpis.plans_ended != PlanOutcomes()
        }
        # A was in M1 when its plan was made; B in M3.
        assert ended == {"M1": PlanOutcomes(completed=1), "M3": PlanOutcomes(broken=1)}

    def test_no_plan_ended_is_no_data(self, session: Session, march: March) -> None:
        assert report(session, march.institution).total.plan_kept_rate.value is None


class TestContacts:
    def test_attempts_made_in_the_month_and_whom_they_reached(
        self, session: Session, march: March
    ) -> None:
        total = report(session, march.institution).total
        # Calls to A and B (×2), a text to C, a call about F's debtor; not the planned,
        # cancelled, inbound or April ones, nor the dollar account's or the other lender's.
        assert total.contacts == ContactCounts(5, 3, 2, 2, {"call": 4, "sms": 1})
        assert total.contact_rate == Rate(3, 5)
        assert total.right_party_contact_rate == Rate(2, 5)
        assert total.promise_rate == Rate(2, 2)

    def test_cost_per_amount_collected_at_the_institutions_channel_costs(
        self, session: Session, march: March
    ) -> None:
        total = report(session, march.institution).total
        assert total.contact_cost == 605  # 4 calls × ¥1.50 + 1 text × ¥0.05
        assert total.cost_per_amount_collected == Rate(605, 21_000)
        update_settings(
            session,
            institution=march.institution,
            changes={"analytics": {"contact_cost": {"call": "2.00", "sms": "0.10"}}},
            actor="test",
        )
        assert report(session, march.institution).total.contact_cost == 810

    def test_a_channel_without_a_cost_makes_the_cost_unknown(
        self, session: Session, march: March
    ) -> None:
        update_settings(
            session,
            institution=march.institution,
            changes={"analytics": {"contact_cost": {"sms": "0.05"}}},
            actor="test",
        )
        total = report(session, march.institution).total
        assert total.contact_cost is None
        assert total.cost_per_amount_collected is None

    def test_by_channel_promises_and_contacts_split_the_rest_has_none(
        self, session: Session, march: March
    ) -> None:
        result = report(session, march.institution, group_by=["channel"])
        groups = {group.cuts["channel"]: group.kpis for group in result.groups}
        assert list(groups) == ["call", "sms", None]
        assert groups["call"].contacts.attempts == 4
        assert groups["call"].promise_kept_rate == Rate(1, 2)  # promises were made by call
        assert groups["sms"].contact_rate == Rate(0, 1)  # a delivered text reaches nobody
        assert groups[None].accounts == 4
        assert groups[None].collected.amount == 21_000
        assert groups[None].contacts.attempts == 0

    def test_by_bucket_when_the_attempt_happened(self, session: Session, march: March) -> None:
        result = report(session, march.institution, group_by=["bucket"])
        attempts = {
            group.cuts["bucket"]: group.kpis.contacts.attempts
            for group in result.groups
            if group.kpis.contacts.attempts
        }
        # A in M1 on 3 Mar (current by the end), B in M3 since 8 Mar, C in M1 on 20 Mar, F's
        # debtor-wide call without a bucket.
        assert attempts == {"M1": 2, "M3": 2, None: 1}

    def test_a_debtor_wide_attempt_counts_in_the_debtors_region(
        self, session: Session, march: March
    ) -> None:
        result = report(session, march.institution, group_by=["province"])
        attempts = {group.cuts["province"]: group.kpis.contacts.attempts for group in result.groups}
        assert attempts == {"广东省": 3, "浙江省": 1, None: 1}


class TestGroups:
    def test_by_product_the_groups_add_up_to_the_total(
        self, session: Session, march: March
    ) -> None:
        result = report(session, march.institution, group_by=["product"])
        groups = {group.cuts["product"]: group.kpis for group in result.groups}
        # The call about F's debtor as a whole has no account: no product.
        assert list(groups) == ["consumer_loan", "credit_card", None]
        assert groups[None].accounts == 0
        assert groups[None].contacts.attempts == 1
        cards, loans = groups["credit_card"], groups["consumer_loan"]
        assert (cards.accounts, cards.balance) == (2, 28_000)
        assert cards.cure_rate_by_count == Rate(1, 2)
        assert cards.recovery_rate == Rate(7_000, 30_000)
        assert cards.promise_kept_rate == Rate(1, 2)
        assert cards.promise_forecast.expected == 0
        assert loans.cure_rate_by_count == Rate(0, 1)
        assert loans.placed == Cohort(1, 30_000, 3_000)
        assert loans.collected == Collected(14_000, 4, 4_000)
        assert loans.promise_kept_rate.value is None  # only one still in grace
        assert loans.promise_forecast.expected == 1_000
        assert cards.accounts + loans.accounts == result.total.accounts
        assert cards.recovery_rate + loans.recovery_rate == result.total.recovery_rate

    def test_by_bucket_each_kpi_uses_its_own_moment(self, session: Session, march: March) -> None:
        result = report(session, march.institution, group_by=["bucket"])
        groups = {group.cuts["bucket"]: group.kpis for group in result.groups}
        # Portfolio: the bucket as of the date. Recovery: the bucket at the start.
        assert groups["M3"].accounts == 1
        assert groups["M1"].delinquent_at_start == Cohort(2, 16_000, 8_000)  # A and E
        assert groups["M2"].delinquent_at_start == Cohort(1, 20_000, 5_000)  # B
        assert groups["M2"].accounts == 0
        assert sum(kpis.collected.amount for kpis in groups.values()) == 21_000
        assert sum(kpis.accounts for kpis in groups.values()) == result.total.accounts

    def test_by_province_and_city_an_unknown_region_is_a_group_of_its_own(
        self, session: Session, march: March
    ) -> None:
        result = report(session, march.institution, group_by=["province", "city"])
        keys = [(group.cuts["province"], group.cuts["city"]) for group in result.groups]
        assert keys == [
            ("广东省", "广州市"),
            ("广东省", "深圳市"),
            ("浙江省", "杭州市"),
            (None, None),
        ]
        unknown = result.groups[-1].kpis
        assert (unknown.accounts, unknown.balance) == (1, 1_000)  # F

    def test_by_segment_of_the_latest_score_on_or_before_the_date(
        self, session: Session, march: March
    ) -> None:
        model = make_model_version(
            session, march.institution.id, version=f"kpi-test-{march.institution.id}"
        )
        for scored, as_of, segment in [
            (march.b, date(2026, 3, 1), "mid-low-large"),
            (march.b, date(2026, 4, 1), "late-low-large"),  # after the date: not read
            (march.c, date(2026, 3, 20), "early-high-large"),
        ]:
            score(session, scored, model, as_of, segment)
        session.flush()
        result = report(session, march.institution, group_by=["segment"])
        accounts = {group.cuts["segment"]: group.kpis.accounts for group in result.groups}
        assert accounts == {"early-high-large": 1, "mid-low-large": 1, None: 2}


class TestScopeAndRefusals:
    def test_an_institution_without_data_has_no_data_not_zeros(self, session: Session) -> None:
        total = report(session, make_institution(session)).total
        assert total.accounts == 0
        assert all(item.accounts == 0 for item in total.buckets)
        for rate in (
            total.cure_rate_by_count,
            total.recovery_rate,
            total.liquidation_rate,
            total.promise_kept_rate,
        ):
            assert rate.value is None
        assert total.average_days_to_cure.value is None
        assert total.promise_forecast.expected == 0

    def test_the_period_and_cuts_are_checked(self, session: Session, march: March) -> None:
        with pytest.raises(ValidationFailed) as refused:
            report(
                session,
                march.institution,
                start=date(2026, 3, 20),
                end=date(2026, 3, 10),
                group_by=["agent"],
            )
        fields = [item["field"] for item in refused.value.extra["errors"]]
        assert fields == ["group_by", "from"]

    def test_a_caller_without_an_institution_finds_none(self, session: Session) -> None:
        from dataclasses import replace

        platform = replace(institution_scope(1), institution_id=None)
        with pytest.raises(NotFound):
            service.kpi_report(session, principal=platform, as_of=MARCH_END)
