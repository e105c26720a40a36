"""Who is making a request: a signed-in user or an API key, with the permissions they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from recoup.identity.permissions import permissions_of_role, permissions_of_scopes, require_known

if TYPE_CHECKING:
    from recoup.models.identity import ApiKey, User


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a route; what authorization and tenant scoping decide on."""

    kind: Literal["user", "api_key", "system"]
    user_id: int | None
    username: str
    role: str | None
    institution_id: int | None
    permissions: frozenset[str]
    is_platform_admin: bool = False
    api_key_id: int | None = None
    scopes: frozenset[str] = frozenset()

    def can(self, permission: str) -> bool:
        """Tell whether this caller holds ``permission``."""
        return require_known(permission) in self.permissions

    @property
    def actor(self) -> str:
        """The name written to the audit trail for this caller."""
        return f"apikey:{self.username}" if self.kind == "api_key" else self.username

    @property
    def is_agent(self) -> bool:
        """Agents only see the accounts (and their debtors) assigned to them."""
        return self.kind == "user" and self.role == "agent"


def principal_for_user(user: User) -> Principal:
    """Return the principal of a signed-in user."""
    role = str(user.role)
    return Principal(
        kind="user",
        user_id=user.id,
        username=user.username,
        role=role,
        institution_id=user.institution_id,
        permissions=permissions_of_role(role),
        is_platform_admin=user.institution_id is None and role == "admin",
    )


def principal_for_api_key(api_key: ApiKey) -> Principal:
    """Return the principal of a request made with an API key."""
    scopes = frozenset(api_key.scopes or [])
    return Principal(
        kind="api_key",
        user_id=None,
        username=api_key.prefix,
        role=None,
        institution_id=api_key.institution_id,
        permissions=permissions_of_scopes(scopes),
        api_key_id=api_key.id,
        scopes=scopes,
    )
