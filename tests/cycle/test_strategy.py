"""The daily cycle with a strategy in force: states written in bulk, actions on its steps."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from recoup.cases import service as cases
from recoup.cycle import runner
from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit.clock import utcnow
from recoup.models.cases import Case, Queue
from recoup.models.cycle import CycleAction, CycleRun
from recoup.models.debtor import Debtor
from recoup.models.strategy import CaseStrategyState, CaseStrategyStep
from recoup.strategy import rules as strategy_rules
from recoup.strategy import service as strategy_service
from recoup.strategy import tasks as strategy_tasks
from recoup.strategy.presets import preset_text
from tests.cycle.helpers import portfolio, today_of
from tests.strategy.test_service import approve_preset_templates


def _count(model: type) -> int:
    with unit_of_work(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_active_strategy_places_every_case_and_its_step_drives_the_action(
    live_database: str,
) -> None:
    with unit_of_work() as session:
        institution = portfolio(session)
        day = today_of(institution)
        approve_preset_templates(session, institution)
        strategy, _ = strategy_service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        version = strategy_service.activate(
            session, institution=institution, strategy=strategy, number=1, actor="m"
        )
        version_id = version.id
        document = version.document
        # The first debtor's case is open and disputed before the cycle runs.
        cases.sync_cases(session, institution_id=institution.id, now=utcnow())
        disputed = session.execute(
            select(Case.id)
            .join(Debtor, Debtor.id == Case.debtor_id)
            .where(Debtor.external_id == "CYC-D0")
        ).scalar_one()
        strategy_tasks.on_event(
            session,
            {"institution_id": institution.id, "case_id": disputed, "event": "dispute"},
        )

    report = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")

    assert report.status == "completed"
    segmentation = report.stages["segmentation"].counts
    assert segmentation["strategy"] == "cf v1"
    assert (segmentation["states_new"], segmentation["held"]) == (5, 1)
    compiled = strategy_rules.compile_strategy(document)
    steps = {(step.segment, step.code): step for step in compiled.steps}
    with unit_of_work(write=False) as session:
        states = {
            state.case_id: state
            for state in session.execute(select(CaseStrategyState)).scalars().all()
        }
        actions = {
            action.case_id: action
            for action in session.execute(select(CycleAction)).scalars().all()
        }
        queues = {queue.code: queue.id for queue in session.execute(select(Queue)).scalars()}
    assert len(states) == len(actions) == 6
    held = states[disputed]
    assert (held.step, held.contact_stopped, held.source) == ("hold", True, "dispute")
    assert (actions[disputed].status, actions[disputed].step) == ("none", "held:hold")
    for case_id, state in states.items():
        assert state.strategy_version_id == version_id
        assert state.segment in compiled.segment_codes
        assert state.as_of == day
        if case_id == disputed:
            continue
        assert state.step is not None
        step = steps[(state.segment, state.step)]
        assert state.entered_on == state.step_on == day
        assert state.reason == (
            f"segment {state.segment}, arm {state.arm}: day 0 on the path, "
            f"step {step.code} from day 0"
        )
        action = actions[case_id]
        assert (action.segment, action.step, action.channel) == (
            state.segment,
            state.step,
            step.channel,
        )
        assert action.strategy == "cf v1"
        assert action.template == step.template
        if step.queue in queues:
            assert action.queue_id == queues[step.queue]
        assert action.status in {"handed_off", "blocked"}
    handoff = report.stages["handoff"].counts
    # The portfolio's debtors have no phone on file: their messages are counted, not queued.
    assert (
        report.tasks_created + report.messages_queued + sum(handoff["messages_not_queued"].values())
        == report.stages["gate"].counts["allowed"]
    )

    before = {model: _count(model) for model in (CaseStrategyState, CaseStrategyStep, CycleAction)}
    again = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")
    assert again.to_json() == report.to_json()
    with unit_of_work() as session:
        again_assigned = strategy_service.assign_cases(
            session,
            institution=institutions.require_by_code(session, "CYC"),
            as_of=day,
            now=utcnow(),
        )
    assert again_assigned is not None
    assert (again_assigned.counts["states_new"], again_assigned.counts["states_changed"]) == (0, 0)
    assert {model: _count(model) for model in before} == before


def test_cases_no_segment_takes_are_recorded_and_get_no_action(live_database: str) -> None:
    text = preset_text("consumer_finance")
    # Only business debtors have a segment: everyone else meets none.
    head, _, _rest = text.partition("  - code: high_value")
    events = text[text.index("events:") :]
    with unit_of_work() as session:
        institution = portfolio(session)
        day = today_of(institution)
        approve_preset_templates(session, institution)
        strategy, _ = strategy_service.create_strategy(
            session,
            institution=institution,
            code="biz",
            name="Business only",
            actor="m",
            document=head + events,
        )
        strategy_service.activate(
            session, institution=institution, strategy=strategy, number=1, actor="m"
        )

    report = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")

    assert report.stages["segmentation"].counts["no_segment"] == 6
    assert report.stages["strategy"].counts["no_segment"] == 6
    with unit_of_work(write=False) as session:
        states = session.execute(select(CaseStrategyState)).scalars().all()
        actions = session.execute(select(CycleAction)).scalars().all()
    assert {(state.segment, state.step, state.reason) for state in states} == {
        ("", None, "no segment")
    }
    assert len(states) == 6
    assert {(action.status, action.step) for action in actions} == {("none", "no segment")}


def test_days_on_the_path_move_a_case_to_its_next_step_queue_and_template(
    live_database: str,
) -> None:
    with unit_of_work() as session:
        institution = portfolio(session)
        day = today_of(institution)
        session.add(Queue(institution_id=institution.id, code="standard", name="Standard"))
        approve_preset_templates(session, institution)
        strategy, _ = strategy_service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        strategy_service.activate(
            session, institution=institution, strategy=strategy, number=1, actor="m"
        )
        standard = session.execute(select(Queue.id).where(Queue.code == "standard")).scalar_one()

    first = day - timedelta(days=5)
    runner.run_cycle(institution_code="CYC", as_of=first, actor="test")
    runner.run_cycle(institution_code="CYC", as_of=day, actor="test")

    with unit_of_work(write=False) as session:
        states = session.execute(select(CaseStrategyState)).scalars().all()
        actions = (
            session.execute(
                select(CycleAction)
                .join(CycleRun, CycleRun.id == CycleAction.run_id)
                .where(CycleRun.as_of == day)
            )
            .scalars()
            .all()
        )
        history = session.execute(
            select(CaseStrategyStep.case_id, CaseStrategyStep.step, CaseStrategyStep.as_of)
        ).all()
    on_standard = [state for state in states if state.segment == "standard"]
    assert on_standard
    for state in on_standard:
        assert (state.entered_on, state.step_on, state.step) == (first, day, "agent_call")
        assert state.reason == (
            "segment standard, arm champion: day 5 on the path, step agent_call from day 5"
        )
        assert (state.case_id, "reminder_sms", first) in history
        assert (state.case_id, "agent_call", day) in history
    stepped = {action.case_id: action for action in actions}
    for state in on_standard:
        action = stepped[state.case_id]
        assert (action.step, action.channel, action.queue_id) == ("agent_call", "call", standard)
        assert action.template == "逾期首次电话话术"


def test_an_event_step_stays_until_the_next_event(live_database: str) -> None:
    with unit_of_work() as session:
        institution = portfolio(session)
        day = today_of(institution)
        approve_preset_templates(session, institution)
        strategy, _ = strategy_service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        strategy_service.activate(
            session, institution=institution, strategy=strategy, number=1, actor="m"
        )
        institution_id = institution.id
    first = day - timedelta(days=3)
    runner.run_cycle(institution_code="CYC", as_of=first, actor="test")
    with unit_of_work() as session:
        case_id = session.execute(
            select(Case.id)
            .join(Debtor, Debtor.id == Case.debtor_id)
            .where(Debtor.external_id == "CYC-D1")
        ).scalar_one()
        strategy_tasks.on_event(
            session,
            {"institution_id": institution_id, "case_id": case_id, "case_event": "promise_broken"},
        )
        escalated = session.execute(
            select(CaseStrategyState).where(CaseStrategyState.case_id == case_id)
        ).scalar_one()
        assert (escalated.step, escalated.source) == ("promise_follow_up", "promise_broken")
        reason = escalated.reason

    report = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")

    assert report.stages["segmentation"].counts["event_steps_kept"] == 1
    with unit_of_work(write=False) as session:
        state = session.execute(
            select(CaseStrategyState).where(CaseStrategyState.case_id == case_id)
        ).scalar_one()
        action = session.execute(
            select(CycleAction)
            .join(CycleRun, CycleRun.id == CycleAction.run_id)
            .where(CycleRun.as_of == day, CycleAction.case_id == case_id)
        ).scalar_one()
        others = (
            session.execute(
                select(CaseStrategyState.step).where(CaseStrategyState.case_id != case_id)
            )
            .scalars()
            .all()
        )
    # The escalation holds: the case is called on it, not moved on along its path.
    assert (state.step, state.source, state.reason) == (
        "promise_follow_up",
        "promise_broken",
        reason,
    )
    assert (action.step, action.channel) == ("promise_follow_up", "call")
    assert "promise_follow_up" not in others

    # The next event moves it: a second broken promise in a row goes a level further.
    with unit_of_work() as session:
        strategy_tasks.on_event(
            session,
            {"institution_id": institution_id, "case_id": case_id, "case_event": "promise_broken"},
        )
    with unit_of_work(write=False) as session:
        state = session.execute(
            select(CaseStrategyState).where(CaseStrategyState.case_id == case_id)
        ).scalar_one()
    assert state.step == "next_level"
