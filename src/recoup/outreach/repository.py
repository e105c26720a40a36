"""Queries of work lists, contact reports and letters, each scoped by institution."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.enums import FINISHED_STATUSES, ContactStatus
from recoup.models.account import Account
from recoup.models.cases import Case, CaseAccount, Queue
from recoup.models.compliance import ComplianceViolation, ContactDecision, MessageTemplate
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.identity import User
from recoup.models.outbox import OutboxMessage
from recoup.models.outreach import ContactReport, WorkList, WorkListEntry

# A list holds at most this many cases: a day's work for one agent or one queue.
MAX_LIST_CASES = 500
USABLE_STATUSES = (ContactStatus.valid, ContactStatus.unverified)


def live_cases(
    session: Session,
    *,
    institution_id: int,
    owner_id: int | None,
    queue_id: int | None,
) -> list[Case]:
    """The live cases an agent owns or a queue holds, highest priority first."""
    statement = select(Case).where(
        Case.institution_id == institution_id, Case.live_debtor_id.is_not(None)
    )
    if owner_id is not None:
        statement = statement.where(Case.owner_id == owner_id)
    if queue_id is not None:
        statement = statement.where(Case.queue_id == queue_id)
    return list(
        session.scalars(statement.order_by(Case.priority.desc(), Case.id).limit(MAX_LIST_CASES))
    )


def debtors_by_id(
    session: Session, *, institution_id: int, ids: Sequence[int]
) -> dict[int, Debtor]:
    """The debtors of ``ids`` at the institution, by id."""
    if not ids:
        return {}
    rows = session.scalars(
        select(Debtor).where(Debtor.institution_id == institution_id, Debtor.id.in_(ids))
    )
    return {debtor.id: debtor for debtor in rows}


def own_contact_points(
    session: Session, *, institution_id: int, debtor_ids: Sequence[int], kinds: Sequence[str]
) -> dict[int, list[ContactPoint]]:
    """The debtors' own usable contact points of ``kinds``, verified ones first, by debtor."""
    if not debtor_ids:
        return {}
    rows = session.scalars(
        select(ContactPoint)
        .where(
            ContactPoint.institution_id == institution_id,
            ContactPoint.debtor_id.in_(debtor_ids),
            ContactPoint.third_party.is_(False),
            ContactPoint.kind.in_(kinds),
            ContactPoint.status.in_(USABLE_STATUSES),
        )
        .order_by(ContactPoint.debtor_id, ContactPoint.status.desc(), ContactPoint.id)
    )
    found: dict[int, list[ContactPoint]] = {}
    for point in rows:
        found.setdefault(point.debtor_id, []).append(point)
    for points in found.values():
        points.sort(key=lambda point: (point.status != ContactStatus.valid, point.id))
    return found


def case_accounts(session: Session, *, case_ids: Sequence[int]) -> dict[int, list[Account]]:
    """The accounts in each case now, by case."""
    if not case_ids:
        return {}
    rows = session.execute(
        select(CaseAccount.case_id, Account)
        .join(Account, Account.id == CaseAccount.account_id)
        .where(CaseAccount.case_id.in_(case_ids), CaseAccount.removed_at.is_(None))
        .order_by(CaseAccount.case_id, Account.id)
    )
    found: dict[int, list[Account]] = {}
    for case_id, account in rows:
        found.setdefault(case_id, []).append(account)
    return found


def queue_by_code(session: Session, *, institution_id: int, code: str) -> Queue | None:
    """The institution's queue with ``code``."""
    return session.scalars(
        select(Queue).where(Queue.institution_id == institution_id, Queue.code == code)
    ).first()


def institution_user(session: Session, *, institution_id: int, user_id: int) -> User | None:
    """The institution's user with ``user_id``."""
    return session.scalars(
        select(User).where(User.institution_id == institution_id, User.id == user_id)
    ).first()


def agents(session: Session, *, institution_id: int) -> list[User]:
    """The institution's active agents, by username."""
    return list(
        session.scalars(
            select(User)
            .where(User.institution_id == institution_id, User.role == "agent")
            .where(User.active.is_(True))
            .order_by(User.username)
        )
    )


def latest_list(
    session: Session, *, institution_id: int, kind: str, agent_id: int | None, day: date | None
) -> WorkList | None:
    """The newest list of ``kind`` for an agent (any agent when None), on ``day`` if given."""
    statement = select(WorkList).where(
        WorkList.institution_id == institution_id, WorkList.kind == kind
    )
    if agent_id is not None:
        statement = statement.where(WorkList.agent_id == agent_id)
    if day is not None:
        statement = statement.where(WorkList.work_day == day)
    return session.scalars(statement.order_by(WorkList.id.desc())).first()


def get_list(session: Session, *, institution_id: int, list_id: int) -> WorkList | None:
    """The institution's work list ``list_id``."""
    return session.scalars(
        select(WorkList).where(WorkList.institution_id == institution_id, WorkList.id == list_id)
    ).first()


def list_entries(session: Session, *, work_list_id: int) -> list[WorkListEntry]:
    """A list's entries in list order."""
    return list(
        session.scalars(
            select(WorkListEntry)
            .where(WorkListEntry.work_list_id == work_list_id)
            .order_by(WorkListEntry.position)
        )
    )


def get_entry(session: Session, *, institution_id: int, entry_id: int) -> WorkListEntry | None:
    """The institution's list entry ``entry_id``."""
    return session.scalars(
        select(WorkListEntry).where(
            WorkListEntry.institution_id == institution_id, WorkListEntry.id == entry_id
        )
    ).first()


def report_by_external_id(
    session: Session, *, institution_id: int, kind: str, external_id: str
) -> ContactReport | None:
    """The report a dialer or field app already sent under ``external_id``."""
    return session.scalars(
        select(ContactReport).where(
            ContactReport.institution_id == institution_id,
            ContactReport.kind == kind,
            ContactReport.external_id == external_id,
        )
    ).first()


def reports_for_entries(
    session: Session, *, entry_ids: Sequence[int]
) -> dict[int, list[ContactReport]]:
    """The reports about each list entry, oldest first, by entry."""
    if not entry_ids:
        return {}
    rows = session.scalars(
        select(ContactReport)
        .where(ContactReport.entry_id.in_(entry_ids))
        .order_by(ContactReport.id)
    )
    found: dict[int, list[ContactReport]] = {}
    for report in rows:
        assert report.entry_id is not None
        found.setdefault(report.entry_id, []).append(report)
    return found


def add_violation(session: Session, violation: ComplianceViolation) -> ComplianceViolation:
    """Queue a violation for the compliance officer."""
    session.add(violation)
    session.flush()
    return violation


def letters_between(
    session: Session,
    *,
    institution_id: int,
    start: datetime,
    end: datetime,
    statuses: Sequence[str],
    by_sent: bool,
) -> list[OutboxMessage]:
    """The institution's letters in the outbox, by when they were released (``by_sent``) or
    are due, in ``[start, end)`` with one of ``statuses``, oldest first."""
    moment = OutboxMessage.sent_at if by_sent else OutboxMessage.scheduled_at
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.institution_id == institution_id,
                OutboxMessage.channel == "letter",
                OutboxMessage.status.in_(statuses),
                moment >= start,
                moment < end,
            )
            .order_by(OutboxMessage.id)
        )
    )


def approved_letter_templates(session: Session, *, institution_id: int) -> list[MessageTemplate]:
    """The institution's approved letter templates, by name."""
    return list(
        session.scalars(
            select(MessageTemplate)
            .where(
                MessageTemplate.institution_id == institution_id,
                MessageTemplate.channel == "letter",
                MessageTemplate.status == "approved",
            )
            .order_by(MessageTemplate.name, MessageTemplate.id)
        )
    )


def accounts_by_id(session: Session, *, ids: Sequence[int]) -> dict[int, Account]:
    """The accounts of ``ids``, by id."""
    if not ids:
        return {}
    return {
        account.id: account
        for account in session.scalars(select(Account).where(Account.id.in_(ids)))
    }


def contact_points_by_id(session: Session, *, ids: Sequence[int]) -> dict[int, ContactPoint]:
    """The contact points of ``ids``, by id."""
    if not ids:
        return {}
    rows = session.scalars(select(ContactPoint).where(ContactPoint.id.in_(ids)))
    return {point.id: point for point in rows}


def decision_times(session: Session, *, ids: Sequence[int]) -> dict[int, datetime]:
    """Return the time each gate decision was asked about (its ``planned_at``), by id."""
    if not ids:
        return {}
    rows = session.execute(
        select(ContactDecision.id, ContactDecision.planned_at).where(
            ContactDecision.id.in_(list(ids))
        )
    ).all()
    return {row.id: row.planned_at for row in rows}


def debtor_by_external_id(
    session: Session, *, institution_id: int, external_id: str
) -> Debtor | None:
    """The institution's debtor of a reference (its external id)."""
    return session.scalars(
        select(Debtor).where(
            Debtor.institution_id == institution_id, Debtor.external_id == external_id
        )
    ).first()


def largest_open_account(
    session: Session, *, institution_id: int, debtor_id: int
) -> Account | None:
    """The debtor's open account with the largest balance (a letter's when none is named)."""
    accounts = session.scalars(
        select(Account).where(
            Account.institution_id == institution_id,
            Account.debtor_id == debtor_id,
            Account.status.not_in(list(FINISHED_STATUSES)),
        )
    ).all()
    return max(accounts, key=lambda account: (account.balance, -account.id), default=None)
