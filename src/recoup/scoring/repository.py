"""Queries of the scoring domain: portfolio columns, the model registry, account scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, Table, delete, or_, select
from sqlalchemy.orm import Session

from recoup import bulk
from recoup.contact import repository as contact_repository
from recoup.enums import ContactStatus, Relation
from recoup.identity.principal import Principal
from recoup.identity.scoping import scoped
from recoup.models.account import Account, DelinquencyEvent, Payment
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.institution import Institution
from recoup.models.plans import PaymentPlan
from recoup.models.scoring import AccountScore, ModelState, ModelVersion, ScoringRun
from recoup.models.workbench import Promise
from recoup.scoring.features import PortfolioTables, tables_from_rows

IdArray = npt.NDArray[np.int64]

# The scores' Core table: a run's rows go in as one executemany, no ORM bookkeeping per row.
_SCORES: Table = AccountScore.__table__  # type: ignore[assignment]


def load_portfolio_tables(
    session: Session,
    *,
    institution_id: int,
    until: datetime,
    account_ids: Sequence[int] | Select[int] | None = None,
) -> PortfolioTables:
    """Read one institution's accounts, history before ``until``, payments and contacts.

    ``account_ids`` is a list of ids or a query of them (``delinquent_accounts``: a whole
    portfolio is named by a query, not a million bound values). Contacts come from the contact
    log, read per debtor so that a debtor's contacts on any account count, including accounts
    outside ``account_ids``. The large tables are read as the driver returns their rows and
    converted a column at a time (``tables_from_rows``), not value by value.
    """
    account_query = (
        select(
            Account.id,
            Account.debtor_id,
            Account.product,
            Account.currency,
            Account.credit_limit,
            Account.principal,
            Account.principal + Account.interest + Account.fees + Account.penalty,
            Account.overdue_amount,
            Account.minimum_due,
            Account.days_past_due,
            Account.bucket,
            Account.status,
            Account.opened_on,
            Debtor.kind,
            Debtor.birth_date,
            Debtor.province,
        )
        .join(Debtor, Debtor.id == Account.debtor_id)
        .where(Account.institution_id == institution_id)
    )
    event_query = select(
        DelinquencyEvent.account_id,
        DelinquencyEvent.effective_at,
        DelinquencyEvent.days_past_due,
        DelinquencyEvent.bucket,
        DelinquencyEvent.balance,
    ).where(
        DelinquencyEvent.institution_id == institution_id,
        DelinquencyEvent.superseded.is_(False),
        DelinquencyEvent.effective_at < until,
    )
    payment_query = select(Payment.account_id, Payment.paid_at, Payment.amount).where(
        Payment.institution_id == institution_id,
        Payment.paid_at < until,
        Payment.reversed_at.is_(None),
    )
    contact_query = select(ContactPoint.debtor_id, ContactPoint.created_at).where(
        ContactPoint.institution_id == institution_id,
        ContactPoint.relation == Relation.self,
        ContactPoint.status == ContactStatus.valid,
    )
    promise_query = select(
        Promise.account_id,
        Promise.promised_on,
        Promise.due_date,
        Promise.status,
        Promise.resolved_at,
    ).where(Promise.institution_id == institution_id, Promise.promised_on < until.date())
    plan_query = select(
        PaymentPlan.account_id,
        PaymentPlan.created_at,
        PaymentPlan.needs_approval,
        PaymentPlan.decided_at,
        PaymentPlan.status,
        PaymentPlan.resolved_at,
    ).where(PaymentPlan.institution_id == institution_id, PaymentPlan.created_at < until)
    if account_ids is not None:
        # Only the contact points of these accounts' debtors matter to their features.
        contact_query = contact_query.where(
            ContactPoint.debtor_id.in_(select(Account.debtor_id).where(Account.id.in_(account_ids)))
        )
        account_query = account_query.where(Account.id.in_(account_ids))
        promise_query = promise_query.where(Promise.account_id.in_(account_ids))
        plan_query = plan_query.where(PaymentPlan.account_id.in_(account_ids))
        event_query = event_query.where(DelinquencyEvent.account_id.in_(account_ids))
        payment_query = payment_query.where(Payment.account_id.in_(account_ids))
    return tables_from_rows(
        accounts=bulk.fetch_rows(session, account_query),
        events=bulk.fetch_rows(session, event_query),
        payments=bulk.fetch_rows(session, payment_query),
        valid_self_contacts=[tuple(row) for row in session.execute(contact_query)],
        contact_attempts=contact_repository.made_contacts(
            session, institution_id=institution_id, until=until, account_ids=account_ids
        ),
        promises=[tuple(row) for row in session.execute(promise_query)],
        plans=[tuple(row) for row in session.execute(plan_query)],
    )


def add_model_version(session: Session, model_version: ModelVersion) -> ModelVersion:
    """Store a new model version."""
    session.add(model_version)
    session.flush()
    return model_version


def get_model_version(session: Session, *, version: str) -> ModelVersion | None:
    """Return the model version with this id, or None."""
    statement = select(ModelVersion).where(ModelVersion.version == version)
    return session.execute(statement).scalar_one_or_none()


def list_model_versions(
    session: Session, *, institution_id: int | None = None
) -> list[ModelVersion]:
    """Return model versions, newest first, of one institution or of all."""
    statement = select(ModelVersion).order_by(
        ModelVersion.trained_at.desc(), ModelVersion.id.desc()
    )
    if institution_id is not None:
        statement = statement.where(ModelVersion.institution_id == institution_id)
    return list(session.execute(statement).scalars())


def latest_uplift_version(
    session: Session, *, institution_id: int, family: str
) -> ModelVersion | None:
    """Return the institution's newest uplift model, or None."""
    statement = (
        select(ModelVersion)
        .where(ModelVersion.institution_id == institution_id, ModelVersion.family == family)
        .order_by(ModelVersion.trained_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )
    return session.execute(statement).scalar_one_or_none()


def champions(session: Session, *, institution_id: int | None) -> list[ModelVersion]:
    """Return the champion model(s) of an institution (None: models outside any institution)."""
    statement = select(ModelVersion).where(ModelVersion.state == ModelState.champion)
    if institution_id is None:
        statement = statement.where(ModelVersion.institution_id.is_(None))
    else:
        statement = statement.where(ModelVersion.institution_id == institution_id)
    return list(session.execute(statement).scalars())


def delete_scores(
    session: Session, *, institution_id: int, model_version_id: int, as_of: date
) -> None:
    """Delete an earlier scoring run of the same model and date (a run replaces it)."""
    session.execute(
        delete(AccountScore).where(
            AccountScore.institution_id == institution_id,
            AccountScore.model_version_id == model_version_id,
            AccountScore.as_of == as_of,
        )
    )


def insert_scores(
    session: Session,
    columns: Mapping[str, Sequence[Any] | bulk.Coded],
    *,
    size: int,
    constants: Mapping[str, Any],
) -> int:
    """Write scores given column by column (``bulk.insert_columns``) in one executemany."""
    return bulk.insert_columns(session, _SCORES, columns, size=size, constants=constants)


def latest_scores(
    session: Session, *, institution_id: int, account_id: int | None = None, limit: int = 100
) -> list[AccountScore]:
    """Return the most recent scores of an institution, optionally for one account."""
    statement = (
        select(AccountScore)
        .where(AccountScore.institution_id == institution_id)
        .order_by(AccountScore.as_of.desc(), AccountScore.scored_at.desc(), AccountScore.id)
        .limit(limit)
    )
    if account_id is not None:
        statement = statement.where(AccountScore.account_id == account_id)
    return list(session.execute(statement).scalars())


def delinquent_account_ids(session: Session, *, institution_id: int) -> IdArray:
    """Return the ids of the institution's accounts currently past due, in order."""
    result = session.connection().execute(
        delinquent_accounts(institution_id=institution_id).order_by(Account.id)
    )
    try:
        return np.fromiter((row[0] for row in result.cursor.fetchall()), dtype=np.int64)
    finally:
        result.close()


def delinquent_accounts(*, institution_id: int) -> Select[int]:
    """Return the query of the institution's accounts currently past due (their ids)."""
    return select(Account.id).where(
        Account.institution_id == institution_id, Account.days_past_due > 0
    )


def visible_model_versions(session: Session, *, principal: Principal) -> list[ModelVersion]:
    """Return the models a caller may see, newest first: its institution's and shared ones."""
    statement = (
        select(ModelVersion)
        .where(
            or_(
                ModelVersion.institution_id == principal.institution_id,
                ModelVersion.institution_id.is_(None),
            )
        )
        .order_by(ModelVersion.trained_at.desc(), ModelVersion.id.desc())
    )
    return list(session.execute(statement).scalars())


def upsert_scoring_run(session: Session, run: ScoringRun) -> ScoringRun:
    """Store a run's drift record, replacing the record of the same model, date and institution."""
    existing = session.execute(
        select(ScoringRun).where(
            ScoringRun.institution_id == run.institution_id,
            ScoringRun.model_version_id == run.model_version_id,
            ScoringRun.as_of == run.as_of,
        )
    ).scalar_one_or_none()
    if existing is not None:
        session.delete(existing)
        session.flush()
    session.add(run)
    session.flush()
    return run


def scoring_runs(session: Session, *, principal: Principal, limit: int = 50) -> list[ScoringRun]:
    """Return the caller's institution's scoring runs, newest first."""
    statement = scoped(
        select(ScoringRun).order_by(ScoringRun.as_of.desc(), ScoringRun.scored_at.desc()),
        ScoringRun,
        principal,
    ).limit(limit)
    return list(session.execute(statement).scalars())


def get_scoring_run(
    session: Session, *, institution_id: int, model_version_id: int, as_of: date
) -> ScoringRun | None:
    """Return the run record of one model and date, or None."""
    statement = select(ScoringRun).where(
        ScoringRun.institution_id == institution_id,
        ScoringRun.model_version_id == model_version_id,
        ScoringRun.as_of == as_of,
    )
    return session.execute(statement).scalar_one_or_none()


def run_scores(
    session: Session, *, institution_id: int, model_version_id: int, as_of: date
) -> list[tuple[int, float]]:
    """Return (account id, probability to pay) of every score of one model and date."""
    statement = select(AccountScore.account_id, AccountScore.probability).where(
        AccountScore.institution_id == institution_id,
        AccountScore.model_version_id == model_version_id,
        AccountScore.as_of == as_of,
    )
    return [(int(row[0]), float(row[1])) for row in session.execute(statement)]


def latest_account_score(
    session: Session, *, principal: Principal, account_id: int
) -> AccountScore | None:
    """Return an account's most recent score if the caller may see the account, else None."""
    statement = scoped(
        select(AccountScore)
        .where(AccountScore.account_id == account_id)
        .order_by(AccountScore.as_of.desc(), AccountScore.scored_at.desc(), AccountScore.id.desc())
        .limit(1),
        AccountScore,
        principal,
    )
    return session.execute(statement).scalar_one_or_none()


def get_institution(session: Session, *, institution_id: int) -> Institution | None:
    """Return the institution a score belongs to."""
    return session.get(Institution, institution_id)
