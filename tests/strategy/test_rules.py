"""Segments, steps, arms and events: the column form always agrees with the one-case form."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recoup.strategy.document import StrategyEvent, load_document
from recoup.strategy.presets import PRESETS, preset_text
from recoup.strategy.rules import (
    CHAMPION,
    NO_SEGMENT,
    NO_STEP,
    CaseFacts,
    EventFacts,
    arms_of,
    assign_arm,
    assign_arms,
    columns_of,
    compile_strategy,
    route_event,
    segment_for,
    segment_of,
    step_for,
    step_for_event,
    step_indexes,
)

BUCKETS = ["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+"]

MIXED = """\
name: Mixed
segments:
  - code: a
    name: A
    when:
      any:
        - {field: bucket, op: in, value: [M1, M2]}
        - {not: {field: grade, op: eq, value: A}}
    steps: [{code: s, day: 0, channel: sms}]
  - code: b
    name: B
    when:
      all:
        - {field: balance, op: between, value: [1000, 50000]}
        - {field: customer_type, op: ne, value: business}
        - {field: propensity, op: ge, value: 0.3}
    steps: [{code: s, day: 0, channel: sms}, {code: c, day: 3, channel: call}]
    exits:
      - when: {field: failed_attempts, op: gt, value: 4}
        action: skip_trace
  - code: c
    name: C
    when: {field: age_band, op: in, value: [18-24, 25-34]}
    steps: [{code: s, day: 1, channel: email}]
"""

COMPILED = compile_strategy(MIXED)

rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "bucket": st.one_of(st.none(), st.sampled_from(BUCKETS)),
            "grade": st.one_of(st.none(), st.sampled_from(["A", "B", "C", "D", "E"])),
            "balance": st.one_of(st.none(), st.integers(0, 100_000)),
            "customer_type": st.one_of(st.none(), st.sampled_from(["individual", "business"])),
            "propensity": st.one_of(st.none(), st.floats(0, 1)),
            "age": st.one_of(st.none(), st.integers(18, 90)),
            "failed_attempts": st.integers(0, 8),
            "days_on_path": st.integers(0, 10),
        }
    ),
    min_size=1,
    max_size=40,
)


def as_columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    columns: dict[str, np.ndarray] = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        if name in {"bucket", "grade", "customer_type"}:
            columns[name] = np.array(values, dtype=object)
        else:
            columns[name] = np.array(values, dtype=float)
    return columns


class TestSegments:
    @settings(max_examples=150, deadline=None)
    @given(rows_strategy)
    def test_columns_and_single_cases_agree(self, rows: list[dict[str, Any]]) -> None:
        vector = segment_of(COMPILED, as_columns(rows))
        for row, index in zip(rows, vector, strict=True):
            segment = segment_for(COMPILED, row)
            assert (segment.index if segment else NO_SEGMENT) == index

    @settings(max_examples=100, deadline=None)
    @given(rows_strategy)
    def test_steps_on_columns_and_for_single_cases_agree(self, rows: list[dict[str, Any]]) -> None:
        columns = as_columns(rows)
        segments = segment_of(COMPILED, columns)
        indexes = step_indexes(COMPILED, segments, columns)
        for row, segment, index in zip(rows, segments, indexes, strict=True):
            if segment == NO_SEGMENT:
                assert index == NO_STEP
                continue
            step = step_for(
                COMPILED, int(segment), CaseFacts(days_on_path=row["days_on_path"], values=row)
            )
            assert (step.index if step else NO_STEP) == index

    def test_first_match_wins_and_unknown_facts_match_nothing(self) -> None:
        rows = {
            "bucket": np.array(["M1", None, None], dtype=object),
            "grade": np.array(["A", "A", None], dtype=object),
            "age": np.array([20, 20, np.nan]),
            "balance": np.array([np.nan, np.nan, 2000]),
        }
        # Row 3: an unknown grade is not "grade A", so ``not`` holds; ``ne`` would not.
        assert segment_of(COMPILED, rows).tolist() == [0, 2, 0]
        rows["grade"] = np.array(["A", "A", "A"], dtype=object)
        assert segment_of(COMPILED, rows).tolist() == [0, 2, NO_SEGMENT]

    def test_pandas_frames_with_missing_values_work(self) -> None:
        pandas = pytest.importorskip("pandas")
        frame = pandas.DataFrame({"bucket": ["M3", None], "grade": ["A", "B"], "age": [30, None]})
        assert segment_of(COMPILED, frame).tolist() == [2, 0]

    def test_bands_come_from_balance_and_age(self) -> None:
        compiled = compile_strategy(preset_text("consumer_finance"))
        facts = {"customer_type": "individual", "balance": 5_000_000, "age": 40}
        assert segment_for(compiled, facts).code == "high_value"
        facts = {"customer_type": "individual", "balance": 50_000, "age": 45}
        assert segment_for(compiled, facts).code == "low_balance"
        facts = {"customer_type": "individual", "balance": 500_000, "age": 24}
        assert segment_for(compiled, {**facts, "unanswered_messages": 0}).code == "young_digital"
        # Young, but ignoring the messages: off the digital-only path.
        assert segment_for(compiled, {**facts, "unanswered_messages": 5}).code == "standard"


class TestSteps:
    def test_the_last_step_whose_day_has_come(self) -> None:
        segment = COMPILED.segment("b")
        assert step_for(COMPILED, segment, CaseFacts(days_on_path=2)).code == "s"
        step = step_for(COMPILED, segment, CaseFacts(days_on_path=3))
        assert step.code == "c"
        assert step.channel == "call"
        assert "day 3" in step.reason
        assert step_for(COMPILED, "c", CaseFacts(days_on_path=0)) is None

    def test_an_exit_wins_over_the_path(self) -> None:
        step = step_for(COMPILED, "b", CaseFacts(days_on_path=5, values={"failed_attempts": 5}))
        assert step.action == "skip_trace"
        assert step.queue == "skip_trace"
        assert "exit 1" in step.reason

    def test_legal_review_exit_of_the_presets(self) -> None:
        compiled = compile_strategy(preset_text("consumer_finance"))
        values = {"days_past_due": 95, "balance": 6_000_000, "customer_type": "individual"}
        step = step_for(compiled, "high_value", CaseFacts(days_on_path=3, values=values))
        assert step.action == "legal_review"
        assert step.channel == "legal"

    def test_a_paused_case_takes_no_step(self) -> None:
        facts = CaseFacts(days_on_path=9, paused_until=date(2026, 3, 5), as_of=date(2026, 3, 4))
        assert step_for(COMPILED, "b", facts) is None

    def test_an_arm_runs_its_own_path(self) -> None:
        compiled = compile_strategy(preset_text("consumer_finance"))
        step = step_for(compiled, "young_digital", CaseFacts(days_on_path=0, arm="email_first"))
        assert step.channel == "email"
        assert step.arm == "email_first"

    def test_triggered_steps(self) -> None:
        compiled = compile_strategy(preset_text("consumer_finance"))
        step = step_for_event(compiled, "standard", StrategyEvent.PROMISE_BROKEN, CHAMPION)
        assert step.code == "promise_follow_up"
        assert step.channel == "call"
        assert (
            step_for_event(compiled, "young_digital", StrategyEvent.PROMISE_BROKEN, CHAMPION)
            is None
        )


class TestArms:
    EXPERIMENT = (
        compile_strategy(preset_text("consumer_finance")).segment("young_digital").experiment
    )

    def test_assignment_is_stable_and_the_same_on_columns(self) -> None:
        ids = np.arange(1, 5001)
        arms = assign_arms(ids, self.EXPERIMENT)
        assert arms.tolist() == [assign_arm(int(i), self.EXPERIMENT) for i in ids]
        assert assign_arms(ids, self.EXPERIMENT).tolist() == arms.tolist()

    def test_shares_follow_the_percentages(self) -> None:
        arms = assign_arms(np.arange(200_000), self.EXPERIMENT)
        values, counts = np.unique(arms, return_counts=True)
        shares = dict(zip(values.tolist(), (counts / len(arms)).tolist(), strict=True))
        assert shares["control"] == pytest.approx(0.10, abs=0.005)
        assert shares["email_first"] == pytest.approx(0.20, abs=0.005)
        assert shares[CHAMPION] == pytest.approx(0.70, abs=0.005)

    def test_another_experiment_splits_independently(self) -> None:
        other = self.EXPERIMENT.model_copy(update={"code": "other_trial"})
        ids = np.arange(20_000)
        same = assign_arms(ids, self.EXPERIMENT) == assign_arms(ids, other)
        # Independent splits agree about as often as chance says (0.1² + 0.2² + 0.7²).
        assert same.mean() == pytest.approx(0.54, abs=0.02)

    def test_rows_outside_experiments_stay_on_the_champion(self) -> None:
        compiled = compile_strategy(preset_text("consumer_finance"))
        segments = np.array([compiled.segment("standard").index] * 100)
        assert set(arms_of(compiled, segments, np.arange(100)).tolist()) == {CHAMPION}


class TestEvents:
    COMPILED = compile_strategy(preset_text("consumer_finance"))
    TODAY = date(2026, 3, 1)

    def route(self, event: StrategyEvent, **facts: Any) -> Any:
        return route_event(self.COMPILED, event, EventFacts(as_of=self.TODAY, **facts))

    def test_payment_cures_or_reevaluates(self) -> None:
        assert self.route(StrategyEvent.PAYMENT_RECEIVED, cured=True).action == "stop"
        assert self.route(StrategyEvent.PAYMENT_RECEIVED).action == "reevaluate"

    def test_a_promise_pauses_until_due_plus_grace(self) -> None:
        reroute = self.route(StrategyEvent.PROMISE_MADE, promise_due=date(2026, 3, 10))
        assert reroute.paused_until == date(2026, 3, 13)

    def test_two_broken_promises_in_a_row_go_a_level_further(self) -> None:
        assert not self.route(StrategyEvent.PROMISE_BROKEN, broken_in_a_row=1).next_level
        assert self.route(StrategyEvent.PROMISE_BROKEN, broken_in_a_row=2).next_level

    @pytest.mark.parametrize(
        ("event", "action", "queue", "stops"),
        [
            (StrategyEvent.DISPUTE, "hold", "dispute", True),
            (StrategyEvent.WRONG_NUMBER, "skip_trace", "skip_trace", False),
            (StrategyEvent.UNREACHABLE, "skip_trace", "skip_trace", False),
            (StrategyEvent.HARDSHIP, "offer_plan", "hardship", True),
            (StrategyEvent.CEASE_REQUEST, "stop", None, True),
            (StrategyEvent.COMPLAINT, "review", "complaint_review", True),
        ],
    )
    def test_each_event_re_routes(
        self, event: StrategyEvent, action: str, queue: str | None, stops: bool
    ) -> None:
        reroute = self.route(event)
        assert (reroute.action, reroute.queue, reroute.stop_contact) == (action, queue, stops)

    def test_a_document_can_change_an_event_rule(self) -> None:
        text = preset_text("consumer_finance").replace("grace_days: 3", "grace_days: 7")
        compiled = compile_strategy(text)
        reroute = route_event(
            compiled,
            StrategyEvent.PROMISE_MADE,
            EventFacts(as_of=self.TODAY, promise_due=date(2026, 3, 10)),
        )
        assert reroute.paused_until == date(2026, 3, 17)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_segment_a_million_rows_in_seconds(name: str) -> None:
    compiled = compile_strategy(load_document(preset_text(name)))
    generator = np.random.default_rng(7)
    size = 200_000
    rows = {
        "customer_type": generator.choice(np.array(["individual", "business"], dtype=object), size),
        "balance": generator.integers(0, 10_000_000, size),
        "age": generator.integers(18, 80, size),
        "product": generator.choice(np.array(["credit_card", "mortgage"], dtype=object), size),
        "bucket": generator.choice(np.array(["M1", "M2", "M4"], dtype=object), size),
        "days_past_due": generator.integers(1, 200, size),
        "failed_attempts": generator.integers(0, 8, size),
        "unanswered_messages": generator.integers(0, 6, size),
        "days_on_path": generator.integers(0, 40, size),
    }
    segments = segment_of(compiled, rows)
    assert (segments != NO_SEGMENT).all()
    arms = arms_of(compiled, segments, np.arange(size))
    steps = step_indexes(compiled, segments, rows, arms=arms)
    assert (steps != NO_STEP).all()


def test_normalised_columns_can_be_passed_on() -> None:
    compiled = compile_strategy(preset_text("consumer_finance"))
    rows = {
        "balance": np.array([50_000, 5_000_000]),
        "customer_type": np.array(["individual", "business"], dtype=object),
        "days_on_path": np.array([2, 7]),
    }
    columns, size = columns_of(compiled, rows)
    assert size == 2
    segments = segment_of(compiled, columns)
    assert segments.tolist() == segment_of(compiled, rows).tolist()
    assert (
        step_indexes(compiled, segments, columns).tolist()
        == step_indexes(compiled, segments, rows).tolist()
    )
    with pytest.raises(KeyError, match="days_on_path"):
        step_indexes(compiled, segments, {"balance": rows["balance"]})
