"""The permission matrix: which roles and API-key scopes hold which permission (pure data).

This is the only place permissions are granted. Routes declare the permission they need
with ``authorize("debtors:read")`` (API) or ``require_page("debtors:read")`` (pages);
``docs/security.md`` carries the same table and a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ROLES: tuple[str, ...] = (
    "admin",
    "manager",
    "team_lead",
    "agent",
    "compliance_officer",
    "auditor",
    "data_scientist",
)

ALL_ROLES = frozenset(ROLES)


@dataclass(frozen=True, slots=True)
class Grant:
    """One permission: what it allows, the roles holding it, and whether an API key may hold it."""

    description: str
    roles: frozenset[str]
    api_scope: bool = False


def _grant(description: str, roles: Iterable[str], *, api_scope: bool = False) -> Grant:
    return Grant(description, frozenset(roles), api_scope)


_WORKERS = ("manager", "team_lead", "agent")

MATRIX: dict[str, Grant] = {
    "profile:read": _grant("See one's own profile (`/api/v1/me`)", ROLES),
    "dashboard:read": _grant("Open the home page and navigation", ROLES),
    "institutions:read": _grant("See the institution's name and settings", ROLES),
    "institutions:manage": _grant("Change institution settings", ["admin"]),
    "users:manage": _grant("List, create, deactivate users; change roles", ["admin"]),
    "apikeys:manage": _grant("Create and revoke API keys", ["admin"]),
    "audit:read": _grant("Browse and filter the audit trail", ["admin", "auditor"]),
    "debtors:read": _grant(
        "List and open debtors (PII masked)",
        ["admin", *_WORKERS, "compliance_officer", "auditor"],
        api_scope=True,
    ),
    "accounts:read": _grant(
        "List and open accounts",
        ["admin", *_WORKERS, "compliance_officer", "auditor"],
        api_scope=True,
    ),
    "pii:reveal": _grant(
        "Reveal unmasked PII of a debtor one can see, with a reason (audited)",
        [*_WORKERS, "compliance_officer"],
    ),
    "exports:write": _grant("Export lists of debtors or accounts (audited)", ["manager"]),
    "dq:read": _grant(
        "See data-quality reports and quarantined rows",
        ["admin", "manager", "team_lead", "data_scientist", "auditor"],
    ),
    "imports:write": _grant(
        "Import debtors, contacts, accounts, payments", ["admin", "manager"], api_scope=True
    ),
    "payments:write": _grant("Record payments", _WORKERS, api_scope=True),
    "contacts:write": _grant("Add or change contact points", _WORKERS, api_scope=True),
    "risk_scores:write": _grant(
        "Send external risk scores for accounts", ["admin", "data_scientist"], api_scope=True
    ),
    "cases:read": _grant("See cases and queues", [*_WORKERS, "compliance_officer", "auditor"]),
    "cases:work": _grant("Work a case: log activities, promises, payment plans", _WORKERS),
    "calls:report": _grant(
        "Report what came of calls on a call list (the dialer's call-result webhook)",
        ["manager", "team_lead"],
        api_scope=True,
    ),
    "plans:approve": _grant(
        "Approve or reject a payment plan whose discount needs a manager (four eyes)",
        ["manager"],
    ),
    "queues:manage": _grant(
        "Rebalance queues and assign cases to agents", ["manager", "team_lead"]
    ),
    "compliance:check": _grant(
        "Ask the compliance gate whether a contact is allowed",
        [*_WORKERS, "compliance_officer"],
        api_scope=True,
    ),
    "compliance:facts": _grant(
        "Record compliance facts: cease contact, dispute, attorney, validation dates (audited)",
        [*_WORKERS, "compliance_officer"],
        api_scope=True,
    ),
    "compliance:read": _grant(
        "See gate decisions, blocked attempts and violations",
        ["manager", "team_lead", "compliance_officer", "auditor"],
    ),
    "policy:manage": _grant("Edit rule packs and institution policy", ["compliance_officer"]),
    "templates:read": _grant(
        "See scripts and message templates", [*_WORKERS, "compliance_officer", "auditor"]
    ),
    "templates:write": _grant(
        "Draft scripts and message templates", ["manager", "compliance_officer"]
    ),
    "templates:review": _grant(
        "Run the template/script review checks", ["manager", "compliance_officer"], api_scope=True
    ),
    "templates:approve": _grant("Approve a script or template for use", ["compliance_officer"]),
    "strategy:read": _grant(
        "See strategies, segments, experiments and the outbox",
        ["manager", "team_lead", "compliance_officer", "data_scientist", "auditor"],
    ),
    "strategy:manage": _grant(
        "Change strategies and experiments; run the cycle; send campaigns, retry dead messages",
        ["manager"],
    ),
    "models:read": _grant(
        "See models, their metrics and drift", ["manager", "data_scientist", "auditor"]
    ),
    "models:train": _grant("Train models", ["data_scientist"]),
    "models:promote": _grant(
        "Promote a model to champion (audited)", ["manager", "data_scientist"]
    ),
    "dashboards:export": _grant(
        "Export dashboard tables to CSV or XLSX (audited; the dashboard's own permission too)",
        ["manager", "team_lead", "compliance_officer", "auditor"],
    ),
    "webhooks:manage": _grant(
        "Subscribe addresses to events, see deliveries, replay dead letters",
        ["admin"],
        api_scope=True,
    ),
    "kpis:read": _grant(
        "See KPIs, roll rates and performance",
        ["admin", "manager", "team_lead", "data_scientist", "auditor"],
        api_scope=True,
    ),
}

PERMISSIONS = frozenset(MATRIX)
API_KEY_SCOPES = frozenset(name for name, grant in MATRIX.items() if grant.api_scope)

# Routes anyone may reach without signing in. A path ending in "/" covers everything under it.
PUBLIC_PATHS: frozenset[str] = frozenset(
    {
        "/healthz",
        "/readyz",
        "/docs",
        "/docs/oauth2-redirect",
        "/docs-assets/",
        "/openapi.json",
        "/login",
        "/logout",
        "/lang",
        "/static/",
        "/favicon.ico",
        "/api/v1/auth/token",
        # Message providers' receipts and replies, authenticated by their signatures.
        "/api/v1/outbox/hooks/",
    }
)


class UnknownPermission(ValueError):
    """A route or role asked about a permission the matrix does not define."""


def require_known(permission: str) -> str:
    """Return ``permission`` if the matrix defines it; raise naming the known ones otherwise."""
    if permission not in MATRIX:
        raise UnknownPermission(
            f"unknown permission {permission!r}: add it to recoup/identity/permissions.py "
            f"(known: {', '.join(sorted(MATRIX))})"
        )
    return permission


def permissions_of_role(role: str) -> frozenset[str]:
    """Return every permission a role holds."""
    return frozenset(name for name, grant in MATRIX.items() if role in grant.roles)


def permissions_of_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Return the permissions an API key with ``scopes`` holds (only API-grantable ones)."""
    return frozenset(scope for scope in scopes if scope in API_KEY_SCOPES)


def role_holds(role: str, permission: str) -> bool:
    """Tell whether ``role`` holds ``permission``."""
    return role in MATRIX[require_known(permission)].roles


def scope_problems(scopes: Iterable[str]) -> list[str]:
    """Return why each of ``scopes`` cannot be given to an API key (empty when all are fine)."""
    problems = []
    for scope in scopes:
        if scope not in MATRIX:
            problems.append(f"unknown scope {scope!r}")
        elif scope not in API_KEY_SCOPES:
            problems.append(f"scope {scope!r} cannot be given to an API key")
    return problems


def is_public_path(path: str) -> bool:
    """Tell whether a route path is on the public allow-list."""
    if path in PUBLIC_PATHS:
        return True
    return any(
        prefix.endswith("/") and (path.startswith(prefix) or path == prefix.rstrip("/"))
        for prefix in PUBLIC_PATHS
    )


def matrix_markdown() -> str:
    """Return the permission matrix as the Markdown table quoted in ``docs/security.md``."""
    header = "| permission | " + " | ".join(ROLES) + " | API key | what it allows |"
    rule = "|---|" + "---|" * len(ROLES) + "---|---|"
    rows = [header, rule]
    for name in sorted(MATRIX):
        grant = MATRIX[name]
        marks = " | ".join("✓" if role in grant.roles else "" for role in ROLES)
        rows.append(
            f"| `{name}` | {marks} | {'✓' if grant.api_scope else ''} | {grant.description} |"
        )
    return "\n".join(rows)
