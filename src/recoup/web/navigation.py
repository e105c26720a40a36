"""The main navigation: each entry names the permission that shows it (pure data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NavEntry:
    """One navigation link; ``key`` also names its label (``nav.<key>``) in the catalogs."""

    key: str
    path: str
    permission: str


NAVIGATION: tuple[NavEntry, ...] = (
    NavEntry("dashboard", "/", "dashboard:read"),
    NavEntry("work", "/work", "cases:work"),
    NavEntry("debtors", "/debtors", "debtors:read"),
    NavEntry("accounts", "/accounts", "accounts:read"),
    NavEntry("performance", "/analytics/agents", "kpis:read"),
    NavEntry("allocation", "/allocation", "queues:manage"),
    NavEntry("cycle", "/cycle", "strategy:read"),
    NavEntry("dialer", "/dialer", "cases:work"),
    NavEntry("visits", "/visits", "cases:work"),
    NavEntry("letters", "/letters", "cases:work"),
    NavEntry("strategies", "/strategies", "strategy:read"),
    NavEntry("scripts", "/scripts", "templates:read"),
    NavEntry("imports", "/imports", "dq:read"),
    NavEntry("outbox", "/outbox", "strategy:read"),
    NavEntry("compliance", "/compliance", "compliance:read"),
    NavEntry("models", "/models", "models:read"),
    NavEntry("audit", "/audit", "audit:read"),
    NavEntry("admin", "/admin/users", "users:manage"),
)


def visible_entries(allows: Callable[[str], bool]) -> list[NavEntry]:
    """Return the entries whose permission ``allows`` grants, in menu order."""
    return [entry for entry in NAVIGATION if allows(entry.permission)]
