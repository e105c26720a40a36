"""KPI formulas on small hand-computed portfolios, with their edge cases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoup.analytics import rules
from recoup.analytics.rules import (
    NO_DATA,
    Average,
    BucketCount,
    Cell,
    Cohort,
    Collected,
    GroupFacts,
    PendingPromises,
    PromiseOutcomes,
    Rate,
)
from recoup.portfolio.rules import BUCKETS
from tests.analytics.helpers import group_facts


class TestRate:
    def test_a_rate_keeps_what_it_was_computed_from(self) -> None:
        rate = Rate(1, 4)
        assert rate.value == 0.25
        assert (rate.numerator, rate.denominator) == (1, 4)

    def test_nothing_to_count_among_is_no_data_not_zero(self) -> None:
        assert Rate(0, 0).value is None
        assert NO_DATA.value is None
        assert Average(0, 0).value is None

    def test_rates_of_groups_add_up_to_the_rate_of_all(self) -> None:
        assert Rate(1, 4) + Rate(2, 6) == Rate(3, 10)
        assert Average(30, 2) + Average(10, 1) == Average(40, 3)


class TestPeriod:
    def test_the_default_period_is_the_month_up_to_as_of(self) -> None:
        assert rules.period_for(date(2026, 3, 17), None, None) == rules.Period(
            date(2026, 3, 1), date(2026, 3, 17)
        )

    def test_a_period_without_a_start_begins_on_its_end_month_first_day(self) -> None:
        assert rules.period_for(date(2026, 3, 31), None, date(2026, 2, 28)) == rules.Period(
            date(2026, 2, 1), date(2026, 2, 28)
        )
        assert rules.period_for(date(2026, 3, 31), date(2026, 1, 15), None) == rules.Period(
            date(2026, 1, 15), date(2026, 3, 31)
        )

    def test_from_after_to_names_from(self) -> None:
        problems = rules.period_problems(date(2026, 3, 31), date(2026, 3, 20), date(2026, 3, 10))
        assert [problem.field for problem in problems] == ["from"]
        assert "2026-03-20 is after to 2026-03-10" in problems[0].message

    def test_a_period_ending_after_as_of_names_to(self) -> None:
        problems = rules.period_problems(date(2026, 3, 10), None, date(2026, 3, 31))
        assert [problem.field for problem in problems] == ["to"]

    def test_a_one_day_period_is_fine(self) -> None:
        day = date(2026, 2, 28)
        assert rules.period_problems(day, day, day) == []


class TestCuts:
    def test_repeated_and_comma_separated_cuts_once_each_in_order(self) -> None:
        cuts, problems = rules.parse_cuts(["product, bucket", "city", "product", ""])
        assert cuts == ("product", "bucket", "city")
        assert problems == []

    def test_an_unknown_cut_lists_the_allowed_ones(self) -> None:
        _cuts, problems = rules.parse_cuts(["product,agent", "colour"])
        assert [problem.field for problem in problems] == ["group_by"]
        message = problems[0].message
        assert "'agent', 'colour'" in message
        assert "product, bucket, province, city, segment, channel" in message


class TestPortfolioByBucket:
    def test_every_bucket_in_order_empty_ones_as_zeros(self) -> None:
        buckets = rules.portfolio_by_bucket(
            [
                BucketCount("M3", 1, 20_000),
                BucketCount("M0", 2, 9_000),
                BucketCount("M0", 1, 1_000),  # another group's M0
            ]
        )
        assert [item.bucket for item in buckets] == list(BUCKETS)
        assert buckets[0] == BucketCount("M0", 3, 10_000)
        assert buckets[3] == BucketCount("M3", 1, 20_000)
        assert buckets[1] == BucketCount("M1", 0, 0)


class TestMoves:
    @pytest.mark.parametrize(
        ("from_bucket", "to_state", "move"),
        [
            ("M1", "M0", "cure"),
            ("M4", "M0", "cure"),
            ("M3", "M1", "roll_back"),
            ("M2", "M2", "stay"),
            ("M0", "M0", "stay"),
            ("M0", "M1", "forward"),
            ("M1", "M3", "forward"),
            ("M6", "M6+", "forward"),
            ("M2", "charged_off", "forward"),
            ("M1", "settled", "left"),
            ("M0", "closed", "left"),
        ],
    )
    def test_each_move(self, from_bucket: str, to_state: str, move: str) -> None:
        assert rules.move_of(from_bucket, to_state) == move


# A month of a small portfolio (the example of docs/kpis.md): the accounts of M1 at the start
# (40,000) went 1 to M0, 1 to M2, 1 settled; the M2 one rolled to M3; two current stayed,
# one current turned M1.
CELLS = [
    Cell("M0", "M0", 2, 3_000),
    Cell("M0", "M1", 1, 30_000),
    Cell("M1", "M0", 1, 10_000),
    Cell("M1", "M2", 1, 24_000),
    Cell("M1", "settled", 1, 6_000),
    Cell("M2", "M3", 1, 20_000),
]


class TestRollSummary:
    def test_shares_per_from_bucket_by_count_and_balance(self) -> None:
        summary = {row.from_bucket: row for row in rules.roll_summary(CELLS)}
        m1 = summary["M1"]
        assert (m1.accounts, m1.balance) == (3, 40_000)
        assert m1.by_count == {
            "forward": Rate(1, 3),
            "stay": Rate(0, 3),
            "roll_back": Rate(0, 3),
            "cure": Rate(1, 3),
            "left": Rate(1, 3),
        }
        assert m1.by_balance["forward"] == Rate(24_000, 40_000)
        assert m1.by_balance["cure"].value == 0.25
        assert summary["M0"].by_count["stay"] == Rate(2, 3)
        assert summary["M0"].by_balance["forward"] == Rate(30_000, 33_000)
        assert summary["M2"].by_count["forward"].value == 1.0

    def test_an_empty_bucket_has_no_data_not_zero_percent(self) -> None:
        summary = {row.from_bucket: row for row in rules.roll_summary(CELLS)}
        assert summary["M5"].accounts == 0
        assert all(rate.value is None for rate in summary["M5"].by_count.values())
        assert all(rate.value is None for rate in summary["M5"].by_balance.values())

    def test_nothing_at_all(self) -> None:
        assert all(row.by_count["cure"] == NO_DATA for row in rules.roll_summary([]))

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(
            st.builds(
                Cell,
                st.sampled_from(BUCKETS),
                st.sampled_from([*BUCKETS, "settled", "closed", "charged_off"]),
                st.integers(1, 50),
                st.integers(0, 10**9),
            ),
            max_size=30,
        )
    )
    def test_shares_of_a_bucket_add_up_to_it(self, cells: list[Cell]) -> None:
        for row in rules.roll_summary(cells):
            assert sum(rate.numerator for rate in row.by_count.values()) == row.accounts
            assert sum(rate.numerator for rate in row.by_balance.values()) == row.balance
            assert {rate.denominator for rate in row.by_count.values()} == {row.accounts}
        by_count, _by_balance = rules.cure_rate(cells)
        cured = sum(
            row.by_count["cure"].numerator
            for row in rules.roll_summary(cells)
            if row.from_bucket != "M0"
        )
        assert by_count.numerator == cured


class TestCureRate:
    def test_delinquent_at_the_start_current_at_the_end(self) -> None:
        by_count, by_balance = rules.cure_rate(CELLS)
        assert by_count == Rate(1, 4)  # of M1 ×3 and M2 ×1, one went to M0
        assert by_balance == Rate(10_000, 60_000)

    def test_settling_is_not_a_cure_and_current_accounts_do_not_count(self) -> None:
        by_count, _ = rules.cure_rate([Cell("M1", "settled", 1, 500), Cell("M0", "M0", 5, 900)])
        assert by_count == Rate(0, 1)

    def test_no_delinquent_accounts_is_no_data(self) -> None:
        by_count, by_balance = rules.cure_rate([Cell("M0", "M0", 5, 900)])
        assert by_count.value is None
        assert by_balance.value is None


class TestRecoveryAndLiquidation:
    def test_recovery_is_collected_over_the_delinquent_balance_at_the_start(self) -> None:
        # Paid 2,000 + 5,000 + 6,000 by accounts owing 10,000 + 20,000 + 6,000 on day one.
        assert rules.recovery_rate(Cohort(3, 36_000, 13_000)) == Rate(13_000, 36_000)

    def test_liquidation_is_collected_over_the_balance_placed(self) -> None:
        assert rules.liquidation_rate(Cohort(1, 30_000, 3_000)).value == 0.1

    def test_partial_payments_count_as_paid(self) -> None:
        assert rules.recovery_rate(Cohort(1, 10_000, 1)).value == 0.0001

    def test_no_delinquent_balance_is_no_data(self) -> None:
        assert rules.recovery_rate(Cohort()).value is None
        assert rules.liquidation_rate(Cohort()).value is None


class TestDaysToCure:
    def test_days_past_due_then_plus_the_days_since(self) -> None:
        # M1 at 10 days past due on 20 February, current on 10 March: 10 + 18.
        assert rules.days_to_cure(days_past_due_before=10, days_since=18) == 28

    def test_average_over_cures(self) -> None:
        assert (Average(28, 1) + Average(62, 2)).value == 30


class TestPromiseKeptRate:
    def test_kept_over_decided_partially_kept_apart(self) -> None:
        outcomes = PromiseOutcomes().adding("kept", 1).adding("partially_kept", 1)
        outcomes = outcomes.adding("pending", 1)  # due on the last day, still in grace
        assert outcomes == PromiseOutcomes(kept=1, partially_kept=1, broken=0, awaiting=1)
        assert rules.promise_kept_rate(outcomes) == Rate(1, 2)
        assert rules.promise_partially_kept_rate(outcomes) == Rate(1, 2)

    def test_only_promises_still_in_grace_is_no_data(self) -> None:
        assert rules.promise_kept_rate(PromiseOutcomes(awaiting=4)).value is None


class TestForecast:
    def test_each_bucket_with_enough_history_uses_its_own_kept_rate(self) -> None:
        probability = rules.kept_probability(
            {
                "M1": PromiseOutcomes(kept=3, broken=1),
                "M3": PromiseOutcomes(kept=1, partially_kept=1),
                None: PromiseOutcomes(broken=4),
            },
            minimum=4,
        )
        assert probability.overall == Rate(4, 10)
        assert probability.for_bucket("M1") == (Rate(3, 4), "bucket")
        assert probability.for_bucket("M3") == (Rate(4, 10), "institution")
        assert probability.for_bucket(None) == (Rate(4, 10), "institution")
        forecast = rules.promise_forecast(
            [
                PendingPromises("M1", 2, 10_000),
                PendingPromises("M3", 1, 5_000),
                PendingPromises("M1", 1, 2_000),
            ],
            probability,
        )
        assert [line.bucket for line in forecast.lines] == ["M1", "M3"]
        assert forecast.lines[0].expected == 9_000  # 12,000 × 3/4
        assert forecast.lines[1].expected == 2_000  # 5,000 × 4/10
        assert (forecast.promises, forecast.amount, forecast.expected) == (4, 17_000, 11_000)

    def test_expected_cash_is_rounded_half_up_in_minor_units(self) -> None:
        assert rules.share_of(333, Rate(1, 2)) == 167
        assert rules.share_of(1, Rate(1, 3)) == 0

    def test_no_promise_history_is_no_forecast_not_zero(self) -> None:
        probability = rules.kept_probability({}, minimum=30)
        forecast = rules.promise_forecast([PendingPromises("M2", 1, 8_000)], probability)
        assert forecast.expected is None
        assert forecast.lines[0].source == "none"

    def test_no_open_promises_expects_nothing(self) -> None:
        forecast = rules.promise_forecast([], rules.kept_probability({}, minimum=30))
        assert (forecast.promises, forecast.expected) == (0, 0)


class TestContactKpis:
    def test_contact_and_right_party_rates_are_per_attempt(self) -> None:
        assert rules.contact_rate(attempts=200, contacts=80).value == 0.4
        assert rules.right_party_contact_rate(attempts=200, right_party_contacts=50).value == 0.25
        assert rules.contact_rate(attempts=0, contacts=0).value is None

    def test_promise_rate_is_per_right_party_contact(self) -> None:
        assert rules.promise_rate(right_party_contacts=50, promises=10) == Rate(10, 50)

    def test_plan_kept_rate(self) -> None:
        assert rules.plan_kept_rate(rules.PlanOutcomes(completed=3, broken=1)).value == 0.75
        assert rules.plan_kept_rate(rules.PlanOutcomes()).value is None

    def test_cost_per_amount_collected(self) -> None:
        pricing = rules.Pricing({"call": Decimal("1.50"), "sms": Decimal("0.05")}, minor_digits=2)
        cost = rules.collection_cost({"call": 10, "sms": 100}, pricing)
        assert cost == 2_000  # ¥15.00 + ¥5.00
        assert rules.cost_per_amount_collected(cost=cost, collected=100_000).value == 0.02
        assert rules.cost_per_amount_collected(cost=cost, collected=0).value is None

    def test_fractions_of_a_cent_round_half_up(self) -> None:
        pricing = rules.Pricing({"sms": Decimal("0.005")}, minor_digits=2)
        assert rules.collection_cost({"sms": 3}, pricing) == 2

    def test_a_channel_used_without_a_cost_makes_the_cost_unknown_not_free(self) -> None:
        pricing = rules.Pricing({"sms": Decimal("0.05")}, minor_digits=2)
        assert rules.collection_cost({"visit": 1, "sms": 2}, pricing) is None
        assert rules.collection_cost({"visit": 0, "sms": 2}, pricing) == 10

    def test_contact_counts_of_groups_add_up(self) -> None:
        total = rules.ContactCounts(3, 2, 1, 1, {"call": 3}) + rules.ContactCounts(
            2, 1, 1, 0, {"call": 1, "sms": 1}
        )
        assert total == rules.ContactCounts(5, 3, 2, 1, {"call": 4, "sms": 1})


class TestKpisOf:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(groups=st.lists(group_facts(), max_size=8))
    def test_the_total_is_the_groups_added_one_to_the_next(self, groups: list[GroupFacts]) -> None:
        added = GroupFacts()
        for item in groups:
            added = added + item
        assert rules.total_of(iter(groups)) == added

    def test_the_total_of_groups_is_the_kpis_of_all_their_facts(self) -> None:
        credit_card = GroupFacts(
            buckets=(BucketCount("M0", 1, 8_000), BucketCount("M3", 1, 20_000)),
            transitions=(Cell("M1", "M0", 1, 10_000), Cell("M2", "M3", 1, 20_000)),
            delinquent_at_start=Cohort(2, 30_000, 7_000),
            collected=Collected(7_000, 2, 0),
            cures=Average(28, 1),
            promises_due=PromiseOutcomes(kept=1, partially_kept=1),
            contacts=rules.ContactCounts(3, 2, 2, 2, {"call": 3}),
        )
        consumer_loan = GroupFacts(
            buckets=(BucketCount("M1", 1, 30_000),),
            transitions=(Cell("M0", "M1", 1, 30_000), Cell("M1", "settled", 1, 6_000)),
            delinquent_at_start=Cohort(1, 6_000, 6_000),
            placed=Cohort(1, 30_000, 3_000),
            collected=Collected(14_000, 4, 4_000),
            promises_due=PromiseOutcomes(awaiting=1),
            pending_promises=(PendingPromises("M1", 1, 3_000),),
            contacts=rules.ContactCounts(2, 1, 0, 0, {"sms": 1, "call": 1}),
        )
        probability = rules.kept_probability({"M1": PromiseOutcomes(kept=1, broken=2)}, minimum=30)
        pricing = rules.Pricing({"call": Decimal("1.50"), "sms": Decimal("0.05")}, minor_digits=2)
        total = rules.kpis_of(rules.total_of([credit_card, consumer_loan]), probability, pricing)
        assert (total.accounts, total.balance) == (3, 58_000)
        assert total.cure_rate_by_count == Rate(1, 3)
        assert total.recovery_rate == Rate(13_000, 36_000)
        assert total.liquidation_rate == Rate(3_000, 30_000)
        assert total.collected == Collected(21_000, 6, 4_000)
        assert total.average_days_to_cure.value == 28
        assert total.promise_kept_rate == Rate(1, 2)
        assert total.promise_forecast.expected == 1_000
        assert total.contact_rate == Rate(3, 5)
        assert total.right_party_contact_rate == Rate(2, 5)
        assert total.promise_rate == Rate(2, 2)
        assert total.contact_cost == 605
        assert total.cost_per_amount_collected == Rate(605, 21_000)
        parts = [
            rules.kpis_of(facts, probability, pricing) for facts in (credit_card, consumer_loan)
        ]
        assert sum(part.accounts for part in parts) == total.accounts
        assert parts[1].cure_rate_by_count == Rate(0, 1)
        assert parts[1].promise_kept_rate.value is None
        assert parts[1].promise_rate.value is None  # no right-party contact


class TestCountAccount:
    """One account's facts counted over its own events and payments, as the statements do."""

    # Days of March as moments (any ordered values will do: the database's own).
    EVENTS = (
        rules.AccountEvent(1, 1, "M1", "delinquent", 10_000, 10),  # the state at the start
        rules.AccountEvent(5, 2, "M0", "current", 9_000, 0),  # a cure: 10 + 4 days
        rules.AccountEvent(5, 3, "M1", "delinquent", 9_000, 1),  # late again, the same moment
        rules.AccountEvent(20, 4, "M2", "delinquent", 9_500, 35),
    )
    PAYMENTS = (
        rules.AccountPayment(4, 1_000, False, None),
        rules.AccountPayment(6, 700, True, 25),  # reversed on the 25th
        rules.AccountPayment(30, 300, False, None),  # after the period
    )

    @staticmethod
    def _facts(
        end: int, *, reversed_before: int | None = None, sign: int = 1
    ) -> dict[tuple[str | None, ...], GroupFacts]:
        tally = rules.FactsTally()
        rules.count_account(
            tally,
            rules.AccountGroup(("consumer_loan", ""), 1),
            TestCountAccount.EVENTS,
            TestCountAccount.PAYMENTS,
            rules.CountedSpan(
                start=2,
                end=end,
                buckets_at=end,
                reversed_before=reversed_before,
                facts=frozenset(
                    {
                        "buckets",
                        "transitions",
                        "delinquent_at_start",
                        "placed",
                        "collected",
                        "cures",
                    }
                ),
            ),
            sign=sign,
            whole_days=lambda start, end: end - start,
        )
        return tally.facts()

    def test_the_facts_of_a_period(self) -> None:
        facts = self._facts(21)
        m1, m2 = facts[("consumer_loan", "M1")], facts[("consumer_loan", "M2")]
        assert m1.delinquent_at_start == Cohort(1, 10_000, 1_000)
        assert m1.transitions == (Cell("M1", "M2", 1, 10_000),)
        assert m1.collected == Collected(1_000, 1, 0)
        assert m1.cures == Average(14, 1)
        assert m1.placed == Cohort()  # delinquent at the start: not placed
        assert m2.buckets == (BucketCount("M2", 1, 9_500),)

    def test_a_payment_reversed_after_the_moment_still_counts(self) -> None:
        assert self._facts(21)[("consumer_loan", "M1")].collected == Collected(1_000, 1, 0)
        counted = self._facts(21, reversed_before=25)[("consumer_loan", "M1")]
        assert counted.collected == Collected(1_700, 2, 700)
        assert counted.delinquent_at_start == Cohort(1, 10_000, 1_700)

    def test_taken_out_cancels_added(self) -> None:
        added = self._facts(21)
        taken_out = self._facts(21, sign=-1)
        for key, item in added.items():
            assert rules.settled(item + taken_out[key]) is None

    def test_the_exit_states_are_the_portfolio_s(self) -> None:
        from recoup.portfolio.repository import EXIT_STATUSES

        assert {str(status) for status in EXIT_STATUSES} == rules.EXIT_STATES
