"""Every query of strategies, their versions and case states, scoped by institution."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from recoup.contact.rules import FAILED_TO_REACH, RIGHT_PARTY_CODES, AttemptStatus, Direction
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account, Payment
from recoup.models.cases import Case, CaseAccount, CaseEvent
from recoup.models.compliance import ContactDecision, MessageTemplate
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import Debtor
from recoup.models.outbox import OutboxMessage
from recoup.models.plans import PaymentPlan
from recoup.models.scoring import AccountScore
from recoup.models.strategy import CaseStrategyState, CaseStrategyStep, Strategy, StrategyVersion
from recoup.models.workbench import Promise
from recoup.outbox.rules import OutboxStatus


def strategies_page(session: Session, *, institution_id: int, page: PageRequest) -> Page[Strategy]:
    """The institution's strategies, by code."""
    where = Strategy.institution_id == institution_id
    total = session.scalar(select(func.count()).select_from(Strategy).where(where)) or 0
    items = list(
        session.execute(
            select(Strategy)
            .where(where)
            .order_by(Strategy.code)
            .offset(page.offset)
            .limit(page.size)
        ).scalars()
    )
    return Page(items=items, total=total, page=page.page, size=page.size)


def strategy_by_code(session: Session, *, institution_id: int, code: str) -> Strategy | None:
    return session.execute(
        select(Strategy).where(Strategy.institution_id == institution_id, Strategy.code == code)
    ).scalar_one_or_none()


def versions(session: Session, *, strategy_id: int) -> list[StrategyVersion]:
    """A strategy's versions, newest first."""
    return list(
        session.execute(
            select(StrategyVersion)
            .where(StrategyVersion.strategy_id == strategy_id)
            .order_by(StrategyVersion.version.desc())
        ).scalars()
    )


def version(session: Session, *, strategy_id: int, number: int) -> StrategyVersion | None:
    return session.execute(
        select(StrategyVersion).where(
            StrategyVersion.strategy_id == strategy_id, StrategyVersion.version == number
        )
    ).scalar_one_or_none()


def latest_version(session: Session, *, strategy_id: int) -> StrategyVersion | None:
    return session.execute(
        select(StrategyVersion)
        .where(StrategyVersion.strategy_id == strategy_id)
        .order_by(StrategyVersion.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def active_version(session: Session, *, institution_id: int) -> StrategyVersion | None:
    """The version in force at the institution, if one was activated."""
    return session.execute(
        select(StrategyVersion).where(
            StrategyVersion.institution_id == institution_id, StrategyVersion.status == "active"
        )
    ).scalar_one_or_none()


def active_versions(session: Session, *, institution_id: int) -> list[StrategyVersion]:
    return list(
        session.execute(
            select(StrategyVersion)
            .where(
                StrategyVersion.institution_id == institution_id,
                StrategyVersion.status == "active",
            )
            .with_for_update()
        ).scalars()
    )


def templates_by_status(session: Session, *, institution_id: int) -> list[tuple[str, str, str]]:
    """Every template's name, channel and status (newest first, so approved ones win)."""
    rows = session.execute(
        select(MessageTemplate.name, MessageTemplate.channel, MessageTemplate.status)
        .where(MessageTemplate.institution_id == institution_id)
        .order_by(MessageTemplate.id.desc())
    ).all()
    return [(str(name), str(channel), str(status)) for name, channel, status in rows]


# -- facts of live cases' accounts -----------------------------------------------------------

FACT_COLUMNS = (
    "account_id",
    "case_id",
    "bucket",
    "days_past_due",
    "balance",
    "product",
    "customer_type",
    "birth_date",
    "region",
    "case_state",
    "grade",
    "propensity",
    "promise_state",
    "plan_state",
)


def account_facts(
    session: Session, *, institution_id: int, case_id: int | None = None
) -> dict[str, list[Any]]:
    """The facts strategies read, one row per account of a live case (columns of lists)."""
    latest_score = (
        select(AccountScore.account_id, func.max(AccountScore.id).label("score_id"))
        .where(AccountScore.institution_id == institution_id)
        .group_by(AccountScore.account_id)
        .subquery()
    )
    latest_promise = (
        select(Promise.account_id, func.max(Promise.id).label("promise_id"))
        .where(Promise.institution_id == institution_id)
        .group_by(Promise.account_id)
        .subquery()
    )
    latest_plan = (
        select(PaymentPlan.account_id, func.max(PaymentPlan.id).label("plan_id"))
        .where(PaymentPlan.institution_id == institution_id)
        .group_by(PaymentPlan.account_id)
        .subquery()
    )
    statement = (
        select(
            Account.id,
            CaseAccount.case_id,
            Account.bucket,
            Account.days_past_due,
            Account.principal + Account.interest + Account.fees + Account.penalty,
            Account.product,
            Debtor.kind,
            Debtor.birth_date,
            Debtor.province,
            Case.state,
            AccountScore.grade,
            AccountScore.probability,
            Promise.status,
            PaymentPlan.status,
        )
        .join(CaseAccount, CaseAccount.account_id == Account.id)
        .join(Case, Case.id == CaseAccount.case_id)
        .join(Debtor, Debtor.id == Account.debtor_id)
        .outerjoin(latest_score, latest_score.c.account_id == Account.id)
        .outerjoin(AccountScore, AccountScore.id == latest_score.c.score_id)
        .outerjoin(latest_promise, latest_promise.c.account_id == Account.id)
        .outerjoin(Promise, Promise.id == latest_promise.c.promise_id)
        .outerjoin(latest_plan, latest_plan.c.account_id == Account.id)
        .outerjoin(PaymentPlan, PaymentPlan.id == latest_plan.c.plan_id)
        .where(
            Account.institution_id == institution_id,
            CaseAccount.removed_at.is_(None),
            Case.live_debtor_id.is_not(None),
        )
        .order_by(Account.id)
    )
    if case_id is not None:
        statement = statement.where(CaseAccount.case_id == case_id)
    columns: dict[str, list[Any]] = {name: [] for name in FACT_COLUMNS}
    for row in session.execute(statement):
        for name, value in zip(FACT_COLUMNS, row, strict=True):
            columns[name].append(value)
    return columns


# The facts read from the contact log and the outbox, each only when a strategy reads it.
CONTACT_FACTS = ("failed_attempts", "unanswered_messages")


def contact_facts(
    session: Session,
    *,
    institution_id: int,
    names: Collection[str],
    case_id: int | None = None,
) -> dict[str, dict[int, int]]:
    """Per live case, the contact facts asked for (a case with none is absent: zero).

    ``failed_attempts``: contacts made on the case's current path (since it entered its
    segment, or since the case opened) that reached nobody. ``unanswered_messages``: messages
    sent to the debtor after the last time they answered (a right-party contact, or a contact
    they started) and with no payment since.
    """
    found: dict[str, dict[int, int]] = {}
    live = [Case.institution_id == institution_id, Case.live_debtor_id.is_not(None)]
    if case_id is not None:
        live.append(Case.id == case_id)
    if "failed_attempts" in names:
        since = func.coalesce(CaseStrategyState.entered_on, func.date(Case.opened_at))
        rows = session.execute(
            select(Case.id, func.count(ContactAttempt.id))
            .join(ContactAttempt, ContactAttempt.debtor_id == Case.live_debtor_id)
            .outerjoin(CaseStrategyState, CaseStrategyState.case_id == Case.id)
            .where(
                *live,
                ContactAttempt.institution_id == institution_id,
                ContactAttempt.status == AttemptStatus.MADE.value,
                ContactAttempt.outcome.in_(sorted(FAILED_TO_REACH)),
                func.date(ContactAttempt.started_at) >= since,
            )
            .group_by(Case.id)
        )
        found["failed_attempts"] = {int(case): int(count) for case, count in rows}
    if "unanswered_messages" in names:
        answered = (
            select(
                ContactAttempt.debtor_id.label("debtor_id"),
                func.max(ContactAttempt.started_at).label("at"),
            )
            .where(
                ContactAttempt.institution_id == institution_id,
                ContactAttempt.status == AttemptStatus.MADE.value,
                or_(
                    ContactAttempt.direction == Direction.INBOUND.value,
                    ContactAttempt.outcome.in_(sorted(RIGHT_PARTY_CODES)),
                ),
            )
            .group_by(ContactAttempt.debtor_id)
            .subquery()
        )
        paid_since = exists(
            select(Payment.id)
            .join(Account, Account.id == Payment.account_id)
            .where(
                Account.debtor_id == OutboxMessage.debtor_id,
                Payment.paid_at >= OutboxMessage.sent_at,
                Payment.reversed_at.is_(None),
            )
        )
        rows = session.execute(
            select(Case.id, func.count(OutboxMessage.id))
            .join(OutboxMessage, OutboxMessage.debtor_id == Case.live_debtor_id)
            .outerjoin(answered, answered.c.debtor_id == OutboxMessage.debtor_id)
            .where(
                *live,
                OutboxMessage.institution_id == institution_id,
                OutboxMessage.status.in_([OutboxStatus.SENT.value, OutboxStatus.DELIVERED.value]),
                OutboxMessage.sent_at.is_not(None),
                or_(answered.c.at.is_(None), OutboxMessage.sent_at > answered.c.at),
                ~paid_since,
            )
            .group_by(Case.id)
        )
        found["unanswered_messages"] = {int(case): int(count) for case, count in rows}
    return found


# -- case states -----------------------------------------------------------------------------


def case_state(session: Session, *, institution_id: int, case_id: int) -> CaseStrategyState | None:
    return session.execute(
        select(CaseStrategyState).where(
            CaseStrategyState.institution_id == institution_id,
            CaseStrategyState.case_id == case_id,
        )
    ).scalar_one_or_none()


def case_steps(
    session: Session, *, institution_id: int, case_id: int, limit: int = 50
) -> list[CaseStrategyStep]:
    """A case's step history, newest first."""
    return list(
        session.execute(
            select(CaseStrategyStep)
            .where(
                CaseStrategyStep.institution_id == institution_id,
                CaseStrategyStep.case_id == case_id,
            )
            .order_by(CaseStrategyStep.at.desc(), CaseStrategyStep.id.desc())
            .limit(limit)
        ).scalars()
    )


def live_case(session: Session, *, institution_id: int, case_id: int) -> Case | None:
    return session.execute(
        select(Case).where(
            Case.institution_id == institution_id,
            Case.id == case_id,
        )
    ).scalar_one_or_none()


def pending_promise_due(session: Session, *, institution_id: int, case_id: int) -> date | None:
    """The latest due date of the case's pending promises."""
    return session.scalar(
        select(func.max(Promise.due_date))
        .join(CaseAccount, CaseAccount.account_id == Promise.account_id)
        .where(
            Promise.institution_id == institution_id,
            CaseAccount.case_id == case_id,
            Promise.status == "pending",
        )
    )


def cases_paid_since_their_state(session: Session, *, institution_id: int) -> list[int]:
    """Live cases with a payment recorded after their strategy state was last written."""
    return list(
        session.execute(
            select(CaseStrategyState.case_id)
            .join(CaseAccount, CaseAccount.case_id == CaseStrategyState.case_id)
            .join(Payment, Payment.account_id == CaseAccount.account_id)
            .join(Case, Case.id == CaseStrategyState.case_id)
            .where(
                CaseStrategyState.institution_id == institution_id,
                Case.live_debtor_id.is_not(None),
                # A payment recorded, or reversed, since the case was last routed.
                or_(
                    Payment.created_at > CaseStrategyState.updated_at,
                    Payment.reversed_at > CaseStrategyState.updated_at,
                ),
            )
            .distinct()
        ).scalars()
    )


# -- experiment outcomes ---------------------------------------------------------------------


def arm_outcomes(
    session: Session, *, institution_id: int, version_id: int, costs: Mapping[str, int]
) -> Sequence[tuple[str, str, int, int, int, int, int, int, int, int]]:
    """Per segment and arm: cases, cases that paid, cases closed cured or paid, amount paid,
    contacts made and their cost (minor units, by ``costs`` per channel), complaints and gate
    blocks since each case entered its path.
    """
    state = CaseStrategyState
    entered = state.entered_on
    unit_cost = (
        case(
            *((ContactAttempt.channel == channel, cost) for channel, cost in costs.items()),
            else_=0,
        )
        if costs
        else literal(0)
    )
    paid = (
        select(
            CaseAccount.case_id.label("case_id"),
            func.coalesce(func.sum(Payment.amount), 0).label("amount"),
        )
        .join(Payment, Payment.account_id == CaseAccount.account_id)
        .join(state, state.case_id == CaseAccount.case_id)
        .where(
            state.institution_id == institution_id,
            state.strategy_version_id == version_id,
            func.date(Payment.paid_at) >= entered,
            Payment.reversed_at.is_(None),
        )
        .group_by(CaseAccount.case_id)
        .subquery()
    )
    contacts = (
        select(
            Case.id.label("case_id"),
            func.count(ContactAttempt.id).label("made"),
            func.sum(unit_cost).label("cost"),
        )
        .join(ContactAttempt, ContactAttempt.debtor_id == Case.debtor_id)
        .join(state, state.case_id == Case.id)
        .where(
            state.institution_id == institution_id,
            state.strategy_version_id == version_id,
            ContactAttempt.status == "made",
            func.date(ContactAttempt.created_at) >= entered,
        )
        .group_by(Case.id)
        .subquery()
    )
    complaints = (
        select(CaseEvent.case_id.label("case_id"), func.count(CaseEvent.id).label("count"))
        .join(state, state.case_id == CaseEvent.case_id)
        .where(
            state.institution_id == institution_id,
            state.strategy_version_id == version_id,
            CaseEvent.event == "complaint",
        )
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    blocks = (
        select(Case.id.label("case_id"), func.count(ContactDecision.id).label("count"))
        .join(ContactDecision, ContactDecision.debtor_id == Case.debtor_id)
        .join(state, state.case_id == Case.id)
        .where(
            state.institution_id == institution_id,
            state.strategy_version_id == version_id,
            ContactDecision.allowed.is_(False),
            func.date(ContactDecision.created_at) >= entered,
        )
        .group_by(Case.id)
        .subquery()
    )
    cured = case(
        (and_(Case.state == "closed", Case.reason.in_(("cured", "paid", "settled"))), 1), else_=0
    )
    amount = func.coalesce(paid.c.amount, 0)
    rows = session.execute(
        select(
            state.segment,
            state.arm,
            func.count(state.id),
            func.sum(case((amount > 0, 1), else_=0)),
            func.sum(cured),
            func.sum(amount),
            func.coalesce(func.sum(contacts.c.made), 0),
            func.coalesce(func.sum(contacts.c.cost), 0),
            func.coalesce(func.sum(complaints.c.count), 0),
            func.coalesce(func.sum(blocks.c.count), 0),
        )
        .join(Case, Case.id == state.case_id)
        .outerjoin(paid, paid.c.case_id == state.case_id)
        .outerjoin(contacts, contacts.c.case_id == state.case_id)
        .outerjoin(complaints, complaints.c.case_id == state.case_id)
        .outerjoin(blocks, blocks.c.case_id == state.case_id)
        .where(state.institution_id == institution_id, state.strategy_version_id == version_id)
        .group_by(state.segment, state.arm)
        .order_by(state.segment, state.arm)
    ).all()
    return [
        (
            str(segment),
            str(arm),
            int(count or 0),
            int(recovered or 0),
            int(cured_count or 0),
            int(collected or 0),
            int(made or 0),
            int(cost or 0),
            int(complaint_count or 0),
            int(block_count or 0),
        )
        for (
            segment,
            arm,
            count,
            recovered,
            cured_count,
            collected,
            made,
            cost,
            complaint_count,
            block_count,
        ) in rows
    ]


def collected_per_case(
    session: Session, *, institution_id: int, version_id: int, segment: str, arm: str
) -> list[int]:
    """What each case of one arm paid since it entered its path (zeros included)."""
    state = CaseStrategyState
    paid = func.coalesce(
        select(func.sum(Payment.amount))
        .join(CaseAccount, CaseAccount.account_id == Payment.account_id)
        .where(
            CaseAccount.case_id == state.case_id,
            func.date(Payment.paid_at) >= state.entered_on,
            Payment.reversed_at.is_(None),
        )
        .scalar_subquery(),
        0,
    )
    return [
        int(value)
        for value in session.execute(
            select(paid).where(
                state.institution_id == institution_id,
                state.strategy_version_id == version_id,
                state.segment == segment,
                state.arm == arm,
            )
        ).scalars()
    ]


def state_counts(
    session: Session, *, institution_id: int, version_id: int
) -> list[tuple[str, str | None, int]]:
    """How many cases are on each segment's steps."""
    rows = session.execute(
        select(CaseStrategyState.segment, CaseStrategyState.step, func.count())
        .where(
            CaseStrategyState.institution_id == institution_id,
            CaseStrategyState.strategy_version_id == version_id,
        )
        .group_by(CaseStrategyState.segment, CaseStrategyState.step)
    ).all()
    return [(str(segment), step, int(count)) for segment, step, count in rows]


def touch(state: CaseStrategyState, *, now: datetime) -> None:
    state.updated_at = now


def live_case_of_debtor(session: Session, *, institution_id: int, debtor_id: int) -> int | None:
    """The id of the debtor's live case, if any."""
    return session.scalar(
        select(Case.id).where(
            Case.institution_id == institution_id, Case.live_debtor_id == debtor_id
        )
    )


# -- the daily cycle's bulk writes -----------------------------------------------------------

STATE_COLUMNS = (
    "case_id",
    "id",
    "strategy_version_id",
    "segment",
    "arm",
    "step",
    "entered_on",
    "step_on",
    "paused_until",
    "contact_stopped",
    "broken_promises",
    "reason",
    "source",
    "reason_code",
    "reason_params",
)


def case_states(session: Session, *, institution_id: int) -> dict[int, tuple[Any, ...]]:
    """Every case state of the institution as a tuple of ``STATE_COLUMNS``, by case id."""
    rows = session.execute(
        select(*(getattr(CaseStrategyState, name) for name in STATE_COLUMNS)).where(
            CaseStrategyState.institution_id == institution_id
        )
    )
    return {int(row[0]): tuple(row) for row in rows}


def reasons_on(
    session: Session, *, institution_id: int, case_ids: Collection[int], as_of: date
) -> dict[int, tuple[str, dict[str, Any]]]:
    """Each case's reason code and values of its latest step change on or before a day."""
    if not case_ids:
        return {}
    latest = (
        select(func.max(CaseStrategyStep.id))
        .where(
            CaseStrategyStep.institution_id == institution_id,
            CaseStrategyStep.case_id.in_(sorted(case_ids)),
            CaseStrategyStep.as_of <= as_of,
        )
        .group_by(CaseStrategyStep.case_id)
    )
    rows = session.execute(
        select(
            CaseStrategyStep.case_id, CaseStrategyStep.reason_code, CaseStrategyStep.reason_params
        ).where(CaseStrategyStep.id.in_(latest))
    )
    return {int(case): (str(code), dict(params or {})) for case, code, params in rows if code}


def add_case_states(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert case states in one statement; return how many."""
    if rows:
        session.execute(insert(CaseStrategyState), list(rows))
    return len(rows)


def update_case_states(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Update case states by primary key (each row holds ``id``) in one executemany."""
    if rows:
        session.execute(update(CaseStrategyState), list(rows))
    return len(rows)


def add_case_steps(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert step history rows in one statement; return how many."""
    if rows:
        session.execute(insert(CaseStrategyStep), list(rows))
    return len(rows)


# -- experiment arms as uplift training data -------------------------------------------------


def experiment_entries(
    session: Session, *, institution_id: int
) -> Sequence[tuple[int, int, str, str, date]]:
    """Each account's first day on each segment and arm it was placed on, from step history:
    (account, strategy version, segment, arm, day)."""
    step = CaseStrategyStep
    rows = session.execute(
        select(
            CaseAccount.account_id,
            step.strategy_version_id,
            step.segment,
            step.arm,
            func.min(step.as_of),
        )
        .join(CaseAccount, CaseAccount.case_id == step.case_id)
        .where(step.institution_id == institution_id)
        .group_by(CaseAccount.account_id, step.strategy_version_id, step.segment, step.arm)
    )
    return [(int(a), int(v), str(s), str(arm), day) for a, v, s, arm, day in rows]


def version_documents(session: Session, *, version_ids: Collection[int]) -> dict[int, str]:
    """Strategy version id → its document."""
    if not version_ids:
        return {}
    rows = session.execute(
        select(StrategyVersion.id, StrategyVersion.document).where(
            StrategyVersion.id.in_(list(version_ids))
        )
    )
    return {int(version_id): str(document) for version_id, document in rows}


def scores_by_day(
    session: Session, *, institution_id: int, account_ids: Collection[int]
) -> Sequence[tuple[int, date, float]]:
    """Every stored score's (account, day, probability to pay) of some accounts."""
    if not account_ids:
        return []
    rows = session.execute(
        select(AccountScore.account_id, AccountScore.as_of, AccountScore.probability).where(
            AccountScore.institution_id == institution_id,
            AccountScore.account_id.in_(list(account_ids)),
        )
    )
    return [(int(a), day, float(p)) for a, day, p in rows]
