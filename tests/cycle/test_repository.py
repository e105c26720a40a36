"""The cycle's set-based moves of a day's actions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cycle import repository
from recoup.models.cases import Case
from recoup.models.cycle import CycleAction, CycleRun
from tests.analytics.helpers import account, score
from tests.factories import make_debtor, make_institution, make_model_version


def _actions(session: Session, channels: list[str | None]) -> tuple[int, list[int]]:
    institution = make_institution(session, code="MOV")
    now = datetime(2027, 3, 1, tzinfo=UTC)
    run = CycleRun(institution_id=institution.id, as_of=now.date(), started_at=now, actor="t")
    session.add(run)
    ids = []
    for number, channel in enumerate(channels):
        debtor = make_debtor(session, institution, external_id=f"MOV-D{number}")
        case = Case(institution_id=institution.id, debtor_id=debtor.id, opened_at=now)
        session.add(case)
        session.flush()
        action = CycleAction(
            institution_id=institution.id,
            run_id=run.id,
            case_id=case.id,
            debtor_id=debtor.id,
            case_state="open",
            segment=f"s{number % 2}",
            channel=channel,
            status="held" if number == 0 else "stepped",
            rule_ids=[],
        )
        session.add(action)
        session.flush()
        ids.append(action.id)
    return run.id, ids


def test_each_value_takes_its_columns_and_the_rest_stay(session: Session) -> None:
    run_id, ids = _actions(session, ["call", "call", "sms", None, "visit", "call"])
    at = datetime(2027, 3, 2, 1, 30, tzinfo=UTC)

    counts = repository.count_values(session, run_id=run_id, status="stepped", column="channel")
    moved = repository.move_actions_by(
        session,
        run_id=run_id,
        status="stepped",
        column="channel",
        values={
            "call": {"status": "planned", "kind": "task", "planned_at": at},
            "sms": {"status": "planned", "kind": "message"},
            None: {"status": "none"},
        },
    )

    assert counts == {"call": 2, "sms": 1, None: 1, "visit": 1}
    assert moved == 4
    session.expire_all()
    rows = session.execute(
        select(CycleAction.status, CycleAction.kind, CycleAction.planned_at)
        .where(CycleAction.id.in_(ids))
        .order_by(CycleAction.id)
    ).all()
    assert [tuple(row) for row in rows] == [
        ("held", None, None),  # another status: untouched though its channel is listed
        ("planned", "task", at),
        ("planned", "message", None),
        ("none", None, None),
        ("stepped", None, None),  # a value not listed: untouched
        ("planned", "task", at),
    ]


def test_nothing_to_move_writes_nothing(session: Session) -> None:
    run_id, _ids = _actions(session, ["call"])
    assert (
        repository.move_actions_by(
            session, run_id=run_id, status="stepped", column="channel", values={}
        )
        == 0
    )


def test_the_days_scores_come_in_the_order_written(session: Session) -> None:
    """``scores_on`` gives every score of the day in id order, so an account's last row is its
    newest (the segmentation stage keeps it); other days' scores are not read."""
    institution = make_institution(session, code="SCO")
    made = account(session, institution)
    other = account(session, institution)
    first = make_model_version(session, institution.id, version="first")
    second = make_model_version(session, institution.id, version="second")
    day = date(2027, 3, 1)
    score(session, made, first, day, "early")
    score(session, other, first, day, "other")
    session.flush()
    score(session, made, second, day, "late")
    score(session, made, second, day - timedelta(days=1), "yesterday")
    session.flush()

    rows = repository.scores_on(session, institution_id=institution.id, as_of=day)
    assert [(row[0], row[2]) for row in rows] == [
        (made.id, "early"),
        (other.id, "other"),
        (made.id, "late"),
    ]
