"""Tenant and case scoping of every tenant query, in one place.

``scoped`` narrows a ``select`` to the caller's institution and, for agents, to the accounts
assigned to them and the debtors, contact points and payments of those accounts.
``get_scoped`` loads one row the same way and answers ``NotFound`` for anything outside —
another tenant's id is indistinguishable from an id that does not exist.
"""

from __future__ import annotations

from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from recoup.identity.principal import Principal
from recoup.kit.errors import NotFound
from recoup.models.account import Account
from recoup.models.debtor import Debtor

T = TypeVar("T")
Columns = TypeVarTuple("Columns")


def _assigned_accounts(principal: Principal) -> Select[int]:
    return select(Account.id).where(
        Account.institution_id == principal.institution_id,
        Account.assigned_agent_id == principal.user_id,
    )


def _assigned_debtors(principal: Principal) -> Select[int]:
    return select(Account.debtor_id).where(
        Account.institution_id == principal.institution_id,
        Account.assigned_agent_id == principal.user_id,
    )


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
    if model is Account:
        return statement.where(Account.assigned_agent_id == principal.user_id)
    if model is Debtor:
        return statement.where(Debtor.id.in_(_assigned_debtors(principal)))
    if hasattr(model, "account_id"):
        return statement.where(model.account_id.in_(_assigned_accounts(principal)))
    if hasattr(model, "debtor_id"):
        return statement.where(model.debtor_id.in_(_assigned_debtors(principal)))
    return statement


def get_scoped(session: Session, model: type[T], row_id: int, principal: Principal) -> T:
    """Return the ``model`` row ``row_id`` if ``principal`` may see it; else raise ``NotFound``."""
    primary_key = getattr(model, "id")  # noqa: B009 - every tenant model names its key ``id``
    statement = scoped(select(model).where(primary_key == row_id), model, principal)
    row = session.execute(statement).scalar_one_or_none()
    if row is None:
        label = getattr(model, "__tablename__", model.__name__).rstrip("s").replace("_", " ")
        raise NotFound(f"no {label} {row_id}")
    return row
