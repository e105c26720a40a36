"""The cycle's hand-off: messages into the outbox (and out through it), tasks onto cases and
agents' worklists; handing the same day over again creates nothing."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import ConsentKind
from recoup.cycle import runner
from recoup.db import unit_of_work
from recoup.kit.clock import aware
from recoup.models.cases import Case
from recoup.models.compliance import ContactDecision
from recoup.models.contact import ContactAttempt
from recoup.models.cycle import CycleAction, CycleRun
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.jobs import Job
from recoup.models.outbox import OutboxMessage
from recoup.models.workspace import CaseTask
from recoup.outbox import dispatch
from recoup.strategy import service as strategy_service
from tests.cycle.helpers import portfolio, today_of
from tests.factories import certify, make_contact_point
from tests.identity.helpers import make_user
from tests.strategy.test_service import approve_preset_templates

COUNTED = (OutboxMessage, ContactAttempt, CaseTask, Job, CycleAction)


def _counts() -> dict[str, int]:
    with unit_of_work(write=False) as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in COUNTED
        }


def strategy_portfolio(*, phones: bool = True, agent: bool = True) -> date:
    """The cycle portfolio under the consumer-finance preset, phones on file, one agent."""
    with unit_of_work() as session:
        institution = portfolio(session)
        day = today_of(institution)
        approve_preset_templates(session, institution)
        if phones:
            for number, debtor in enumerate(session.execute(select(Debtor)).scalars()):
                make_contact_point(session, debtor, value=f"1381234{number:04d}")
        if agent:
            certify(session, make_user(session, institution, role="agent", username="agent1"))
        strategy, _ = strategy_service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        strategy_service.activate(
            session, institution=institution, strategy=strategy, number=1, actor="m"
        )
        return day


def test_messages_reach_the_outbox_and_leave_through_it(live_database: str) -> None:
    day = strategy_portfolio()

    report = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")

    handoff = report.stages["handoff"].counts
    allowed = report.stages["gate"].counts["allowed"]
    assert report.messages_queued > 0
    assert report.messages_queued == handoff["messages_queued"]
    assert (
        report.tasks_created + report.messages_queued + sum(handoff["messages_not_queued"].values())
        == allowed
    )
    with unit_of_work(write=False) as session:
        messages = session.execute(select(OutboxMessage)).scalars().all()
        actions = {
            action.id: action
            for action in session.execute(
                select(CycleAction).where(CycleAction.kind == "message")
            ).scalars()
        }
        run_id = session.execute(select(CycleRun.id)).scalar_one()
        planned = (
            session.execute(select(ContactAttempt).where(ContactAttempt.status == "planned"))
            .scalars()
            .all()
        )
        jobs = session.execute(select(Job).where(Job.name == "outbox.dispatch")).scalars().all()
    assert len(messages) == report.messages_queued
    for message in messages:
        action_id = int(message.idempotency_key.rsplit(":", 1)[1])
        action = actions[action_id]
        assert message.idempotency_key == f"cycle:{run_id}:{action.id}"
        # The gate decision that allowed the action, the step's approved template, rendered.
        assert message.decision_id == action.decision_id
        assert (message.channel, message.debtor_id) == (action.channel, action.debtor_id)
        assert action.planned_at is not None
        assert aware(message.scheduled_at) == aware(action.planned_at)
        assert message.status == "queued"
        assert message.body
        assert len(message.template_version) == 16
        assert action.status == "handed_off"
    # Each queued message holds a planned contact on its decision; one dispatch job, due first.
    assert {attempt.decision_id for attempt in planned} == {m.decision_id for m in messages}
    assert len(jobs) == 1
    assert aware(jobs[0].available_at) == min(aware(m.scheduled_at) for m in messages)

    before = _counts()
    again = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")
    assert again.to_json() == report.to_json()
    assert _counts() == before

    send_at = min(aware(m.scheduled_at) for m in messages) + timedelta(minutes=5)
    with unit_of_work() as session:
        sent = dispatch.dispatch(session, now=send_at)
    assert sent.sent == len(messages)
    with unit_of_work(write=False) as session:
        statuses = session.execute(select(OutboxMessage.status)).scalars().all()
        made = session.execute(
            select(func.count()).select_from(ContactAttempt).where(ContactAttempt.status == "made")
        ).scalar_one()
    assert set(statuses) <= {"sent", "delivered"}
    # The contact log holds each send: it counts against the debtor's later contacts.
    assert made == len(messages)


def test_messages_without_a_way_to_send_them_are_counted_by_reason(live_database: str) -> None:
    day = strategy_portfolio(phones=False)

    report = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")

    handoff = report.stages["handoff"].counts
    assert report.messages_queued == 0
    assert handoff["messages_not_queued"]["no_contact_point"] > 0
    assert _counts()["outbox_messages"] == 0


def test_call_tasks_go_to_their_queue_onto_the_case_and_to_an_agent(live_database: str) -> None:
    day = strategy_portfolio()
    first = day - timedelta(days=5)
    runner.run_cycle(institution_code="CYC", as_of=first, actor="test")

    report = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")

    handoff = report.stages["handoff"].counts
    assert report.tasks_created > 0
    assert handoff["allocated"] > 0
    assert handoff["agents"] == 1
    with unit_of_work(write=False) as session:
        tasks = session.execute(select(CaseTask)).scalars().all()
        run_id = session.execute(select(CycleRun.id).where(CycleRun.as_of == day)).scalar_one()
        calls = (
            session.execute(
                select(CycleAction).where(
                    CycleAction.run_id == run_id,
                    CycleAction.kind == "task",
                    CycleAction.status == "handed_off",
                )
            )
            .scalars()
            .all()
        )
        cases = {case.id: case for case in session.execute(select(Case)).scalars()}
        agent_id = session.execute(
            select(Case.owner_id).where(Case.owner_id.is_not(None)).limit(1)
        ).scalar_one()
    assert len(calls) == report.tasks_created == len(tasks)
    by_case = {task.case_id: task for task in tasks}
    for action in calls:
        task = by_case[action.case_id]
        assert action.planned_at is not None
        assert (task.kind, aware(task.due_at)) == (action.channel, aware(action.planned_at))
        assert task.done_at is None
        # On the agent's worklist: the case is theirs, and so is its task.
        assert cases[action.case_id].owner_id == agent_id == task.owner_id
        if action.queue_id is not None:
            assert cases[action.case_id].queue_id == action.queue_id

    before = _counts()
    runner.run_cycle(institution_code="CYC", as_of=day, actor="test")
    assert _counts() == before


def test_a_text_to_a_mobile_that_opted_out_is_blocked_by_the_gate_not_queued(
    live_database: str,
) -> None:
    day = strategy_portfolio()
    with unit_of_work() as session:
        ceased = session.execute(select(Debtor.id).where(Debtor.cease_contact)).scalar_one()
        points = session.execute(select(ContactPoint).order_by(ContactPoint.id)).scalars().all()
        opted_out = {point.debtor_id for point in points[::2]} - {ceased}
        for point in points[::2]:
            contact_service.record_consent(
                session, contact_point=point, channel=Channel.SMS,
                kind=ConsentKind.OPT_OUT, actor="test", source="replied TD",
            )  # fmt: skip

    report = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")

    with unit_of_work(write=False) as session:
        actions = session.execute(select(CycleAction)).scalars().all()
        texts = {action.debtor_id: action for action in actions if action.channel == "sms"}
        reasons = {
            decision.id: [reason["code"] for reason in decision.reasons]
            for decision in session.execute(select(ContactDecision)).scalars()
        }
        queued = set(
            session.execute(
                select(OutboxMessage.debtor_id).where(OutboxMessage.channel == "sms")
            ).scalars()
        )
    stopped = set(texts) & opted_out
    reachable = set(texts) - opted_out - {ceased}
    assert stopped, "the preset texts some of the debtors whose mobile opted out"
    assert reachable, "and some whose mobile did not"
    for debtor_id in stopped:
        action = texts[debtor_id]
        assert action.status == "blocked"
        assert action.rule_ids == ["CN-STOP"]
        assert reasons[action.decision_id] == ["channel_opt_out"]
    assert not queued & opted_out
    assert reachable <= queued
    # CN-STOP counts the opted-out texts and whatever the ceased debtor was planned.
    ceased_actions = sum(1 for action in actions if action.debtor_id == ceased and action.kind)
    assert report.blocked_by_rule["CN-STOP"] == len(stopped) + ceased_actions
