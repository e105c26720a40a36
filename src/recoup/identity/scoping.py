"""Tenant and case scoping of every tenant query, in one place.

``scoped`` narrows a ``select`` to the caller's institution and, for agents, to the cases they
own — the accounts in those cases and the debtors, contact points and payments behind them.
``get_scoped`` loads one row the same way and answers ``NotFound`` for anything outside —
another tenant's id is indistinguishable from an id that does not exist. Every id a caller
sends, in a path, a body, a query string or a form, is loaded through here.

Services take the acting principal. A trusted caller without one (a CLI command, the daily
cycle, the demo) acts for a whole institution through ``institution_scope``.
"""

from __future__ import annotations

from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.orm import Session

from recoup.identity.permissions import PERMISSIONS
from recoup.identity.principal import Principal
from recoup.kit.errors import NotFound
from recoup.models.account import Account
from recoup.models.cases import Case, CaseAccount
from recoup.models.debtor import Debtor
from recoup.models.identity import User

T = TypeVar("T")
Columns = TypeVarTuple("Columns")


def _owned_cases(principal: Principal) -> Select[int]:
    return select(Case.id).where(
        Case.institution_id == principal.institution_id,
        Case.owner_id == principal.user_id,
    )


def _assigned_accounts(principal: Principal) -> Select[int]:
    # An agent works the accounts of the cases they own (closed ones keep their last agent).
    return select(CaseAccount.account_id).where(CaseAccount.case_id.in_(_owned_cases(principal)))


def _assigned_debtors(principal: Principal) -> Select[int]:
    return select(Case.debtor_id).where(
        Case.institution_id == principal.institution_id,
        Case.owner_id == principal.user_id,
    )


def institution_scope(institution_id: int, *, actor: str = "system") -> Principal:
    """Return the principal of a trusted caller acting for one whole institution."""
    return Principal(
        kind="system",
        user_id=None,
        username=actor,
        role=None,
        institution_id=institution_id,
        permissions=PERMISSIONS,
    )


def acting(principal: Principal | None, institution_id: int) -> Principal:
    """Return who a service acts as: the caller, or the whole institution for a trusted caller."""
    if principal is None:
        return institution_scope(institution_id)
    if principal.institution_id != institution_id:
        raise NotFound(f"no institution {institution_id} for this caller")
    return principal


def _agent_rows(model: type[Any], principal: Principal) -> Any:
    """The condition an agent's rows of ``model`` meet: those of the cases they own."""
    if model is Account:
        return Account.id.in_(_assigned_accounts(principal))
    if model is Debtor:
        return Debtor.id.in_(_assigned_debtors(principal))
    if model is Case:
        return Case.owner_id == principal.user_id
    account_column = getattr(model, "account_id", None)
    debtor_column = getattr(model, "debtor_id", None)
    case_column = getattr(model, "case_id", None)
    if account_column is None and debtor_column is None and case_column is not None:
        return case_column.in_(_owned_cases(principal))
    if account_column is not None:
        of_account = account_column.in_(_assigned_accounts(principal))
        if debtor_column is None or not model.__table__.c.account_id.nullable:
            return of_account
        # A row about the debtor as a whole (a gate decision without an account) belongs
        # to whoever works one of the debtor's accounts.
        return or_(
            of_account,
            and_(account_column.is_(None), debtor_column.in_(_assigned_debtors(principal))),
        )
    if debtor_column is not None:
        return debtor_column.in_(_assigned_debtors(principal))
    return None


def scoped(statement: Select[*Columns], model: type[Any], principal: Principal) -> Select[*Columns]:
    """Restrict ``statement`` over ``model`` to what ``principal`` may see."""
    institution_column = getattr(model, "institution_id", None)
    if institution_column is None:
        raise TypeError(f"{model.__name__} has no institution_id: it is not tenant data")
    if principal.institution_id is None:
        # A platform admin manages institutions and users; it reads no tenant's portfolio.
        return statement.where(false())
    statement = statement.where(institution_column == principal.institution_id)
    if not principal.is_agent:
        return statement
    if model is User:
        return statement.where(User.id == principal.user_id)
    condition = _agent_rows(model, principal)
    return statement if condition is None else statement.where(condition)


def get_scoped(session: Session, model: type[T], row_id: int, principal: Principal) -> T:
    """Return the ``model`` row ``row_id`` if ``principal`` may see it; else raise ``NotFound``."""
    primary_key = getattr(model, "id")  # noqa: B009 - every tenant model names its key ``id``
    statement = scoped(select(model).where(primary_key == row_id), model, principal)
    row = session.execute(statement).scalar_one_or_none()
    if row is None:
        label = getattr(model, "__tablename__", model.__name__).rstrip("s").replace("_", " ")
        raise NotFound(f"no {label} {row_id}")
    return row
