"""Every route of the app, called by every role, a user of another institution, an API key,
a platform admin and an anonymous caller, must answer as the permission matrix says.

A route that declares no permission (``authorize(...)`` / ``require_page(...)`` somewhere in
its dependencies) and is not on ``permissions.PUBLIC_PATHS`` fails this test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Response
from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.orm import Session

from recoup.app import create_app
from recoup.cases import service as cases_service
from recoup.compliance.gate import service as gate_service
from recoup.compliance.templates import service as templates_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.enums import ImportKind
from recoup.identity import service
from recoup.identity.dependencies import (
    CSRF_HEADER,
    SESSION_COOKIE,
    RouteRule,
    login_session,
    route_rules,
)
from recoup.identity.permissions import API_KEY_SCOPES, ROLES, is_public_path, permissions_of_role
from recoup.identity.scoping import institution_scope
from recoup.models import Institution, User
from recoup.models.cycle import CycleRun
from recoup.models.ingest import ImportRun
from recoup.models.outbox import OutboxMessage
from recoup.models.webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from recoup.outreach.dialer import service as dialer_service
from recoup.plans import service as plans_service
from recoup.strategy import service as strategy_service
from recoup.webhooks import service as webhooks_service
from recoup.workbench import service as workbench
from recoup.workbench.rules import PromiseTerms
from tests.factories import (
    certify,
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.identity.helpers import PASSWORD, bearer, client_for, make_user

SECRET_MARK = "TENANT-A-ONLY"


@dataclass
class Caller:
    """One identity the matrix calls every route as."""

    label: str
    permissions: frozenset[str]
    headers: dict[str, str] = field(default_factory=dict)
    cookie: str | None = None
    page_headers: dict[str, str] = field(default_factory=dict)
    same_tenant: bool = True
    can_use_pages: bool = True


def _web_login(user: User) -> tuple[str, str]:
    response = Response()
    csrf = login_session(response, user)
    match = re.search(rf"{SESSION_COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert match
    return match.group(1), csrf


def _user_caller(label: str, user: User, *, same_tenant: bool) -> Caller:
    cookie, csrf = _web_login(user)
    return Caller(
        label=label,
        permissions=permissions_of_role(str(user.role)),
        headers=bearer(user),
        cookie=cookie,
        page_headers={CSRF_HEADER: csrf},
        same_tenant=same_tenant,
    )


def _url(rule: RouteRule, ids: dict[str, int]) -> str:
    def fill(match: re.Match[str]) -> str:
        return str(ids.get(match.group(1), 1))

    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", fill, rule.path)


def _send(
    client: TestClient,
    method: str,
    url: str,
    caller: Caller | None,
    *,
    page: bool,
    body: dict[str, object] | None = None,
    params: dict[str, object] | None = None,
) -> Response:
    client.cookies.clear()
    headers: dict[str, str] = {}
    if caller is not None:
        if page:
            if caller.cookie:
                client.cookies.set(SESSION_COOKIE, caller.cookie)
            headers.update(caller.page_headers)
        else:
            headers.update(caller.headers)
    kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False, "params": params}
    if method in {"POST", "PUT", "PATCH"}:
        kwargs["data" if page else "json"] = body if body is not None else {}
    return client.request(method, url, **kwargs)  # type: ignore[return-value]


def test_every_route_answers_as_the_matrix_says(session: Session) -> None:
    tenant = make_institution(session)
    other_tenant = make_institution(session)
    agent = make_user(session, tenant, role="agent")
    debtor = make_debtor(session, tenant, external_id=f"{SECRET_MARK}-D")
    make_contact_point(session, debtor)
    account = make_account(session, debtor, external_id=f"{SECRET_MARK}-A")
    give_to_agent(session, account, agent.id)
    _, target_key = service.create_api_key(
        session,
        institution_id=tenant.id,
        name=f"{SECRET_MARK}-key",
        scopes=["accounts:read"],
        actor="test",
    )
    caller_key_text, _ = service.create_api_key(
        session,
        institution_id=tenant.id,
        name="caller",
        scopes=sorted(API_KEY_SCOPES),
        actor="test",
    )
    session.flush()

    callers: list[Caller] = []
    for role in ROLES:
        user = agent if role == "agent" else make_user(session, tenant, role=role)
        callers.append(_user_caller(role, user, same_tenant=True))
        callers.append(
            _user_caller(
                f"other-tenant {role}",
                make_user(session, other_tenant, role=role),
                same_tenant=False,
            )
        )
    platform_admin = make_user(session, None, role="admin")
    # A platform admin manages every tenant's users, keys and trail; scoping tests show it
    # reads no tenant's portfolio.
    callers.append(_user_caller("platform admin", platform_admin, same_tenant=True))
    callers.append(
        Caller(
            label="api key",
            permissions=frozenset(API_KEY_SCOPES),
            headers={"Authorization": f"Bearer {caller_key_text}"},
            can_use_pages=False,
        )
    )
    ids = {
        "debtor_id": debtor.id,
        "account_id": account.id,
        "api_key_id": target_key.id,
        # A user of its own, since the admin routes deactivate and demote whoever they target.
        "user_id": make_user(session, tenant, role="agent").id,
        "id": debtor.id,
    }

    failures: list[str] = []
    with client_for(session) as client:
        rules = route_rules(client.app)  # type: ignore[arg-type]
        assert len(rules) > 10
        for rule in rules:
            if is_public_path(rule.path):
                continue
            if not rule.permissions:
                failures.append(
                    f"{sorted(rule.methods)} {rule.path}: declares no permission and is not public"
                )
                continue
            page = rule.kind == "page"
            url = _url(rule, ids)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                where = f"{method} {rule.path}"
                anonymous = _send(client, method, url, None, page=page)
                redirected = anonymous.status_code == 303 and anonymous.headers.get(  # type: ignore[attr-defined]
                    "location", ""
                ).startswith("/login")
                if page and method == "GET":
                    if not redirected:
                        failures.append(
                            f"{where} anonymous: {anonymous.status_code}, expected 303 to /login"
                        )  # type: ignore[attr-defined]
                elif page:
                    # A form post without a session may be refused by its CSRF check first.
                    if not redirected and anonymous.status_code not in {401, 403}:  # type: ignore[attr-defined]
                        failures.append(
                            f"{where} anonymous: {anonymous.status_code}, expected refusal"
                        )  # type: ignore[attr-defined]
                elif anonymous.status_code != 401 or "www-authenticate" not in anonymous.headers:  # type: ignore[attr-defined]
                    failures.append(f"{where} anonymous: {anonymous.status_code}, expected 401")  # type: ignore[attr-defined]
                for caller in callers:
                    if page and not caller.can_use_pages:
                        continue
                    response = _send(client, method, url, caller, page=page)
                    status = response.status_code  # type: ignore[attr-defined]
                    allowed = all(
                        permission in caller.permissions for permission in rule.permissions
                    )
                    if status >= 500:
                        failures.append(f"{where} as {caller.label}: server error {status}")
                    elif not allowed and status != 403:
                        failures.append(f"{where} as {caller.label}: {status}, expected 403")
                    elif allowed and status in {401, 403}:
                        failures.append(
                            f"{where} as {caller.label}: {status}, expected to be allowed"
                        )
                    elif allowed and not caller.same_tenant:
                        has_id = "{" in rule.path
                        if has_id and 200 <= status < 300:
                            failures.append(
                                f"{where} as {caller.label}: {status} for another tenant's record"
                            )
                        if SECRET_MARK in response.text:  # type: ignore[attr-defined]
                            failures.append(
                                f"{where} as {caller.label}: shows another tenant's data"
                            )
    assert not failures, "\n".join(failures)


def test_a_route_without_a_permission_is_caught() -> None:
    app = create_app()

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    rule = next(rule for rule in route_rules(app) if rule.path == "/api/v1/forgotten")
    assert rule.permissions == ()
    assert not is_public_path(rule.path)


# Every id, wherever it arrives -------------------------------------------------------------
#
# The test above sends the tenant's path ids to callers of another tenant. Below, every
# caller of the tenant sends ids that are not theirs — another tenant's rows, a colleague
# agent's rows and ids that exist nowhere — in paths, bodies, query strings and forms.
# Out of scope is a 404 for an API route (and for the page forms that take ids), never a
# 2xx, never a 5xx and never the other party's data.

UNKNOWN_ID = 2**62
CALL_AT = "2025-03-03T10:00:00+08:00"
ID_SUFFIXES = ("_id", "_ids")
# Parameters that carry an id without the suffix in their name.
ID_NAMES = frozenset({"renew"})
# Parameters named like ids that name no row.
NOT_ROW_IDS = {
    ("POST", "/api/v1/auth/token", "form", "client_id"): "the OAuth2 client, not a row",
    ("POST", "/api/v1/compliance/violations/scan", "body", "source_id"): (
        "the caller's own reference of the scanned note, stored as text"
    ),
    ("GET", "/api/v1/compliance/decisions", "query", "rule_id"): "a rule code such as CN-HRS",
    ("GET", "/compliance/decisions", "query", "rule_id"): "a rule code such as CN-HRS",
    ("GET", "/api/v1/debtors", "query", "national_id"): (
        "a search value matched within the caller's scoped debtors"
    ),
    ("POST", "/api/v1/compliance/decisions/{decision_id}/outcome", "body", "provider_message_id"): (
        "the SMS or mail provider's own message reference, stored as text"
    ),
    ("POST", "/api/v1/debtors/{debtor_id}/contacts", "body", "provider_message_id"): (
        "the SMS or mail provider's own message reference, stored as text"
    ),
    ("POST", "/api/v1/dialer/results", "body", "call_id"): (
        "the dialer's own reference of the call, stored as text"
    ),
    ("POST", "/api/v1/visits/results", "body", "visit_id"): (
        "the field app's own reference of the visit, stored as text"
    ),
    ("POST", "/visits/entries/{entry_id}/result", "form", "visit_id"): (
        "the form's own reference of the visit (a fresh token), stored as text"
    ),
    ("POST", "/api/v1/debtors/{debtor_id}/contact-points", "body", "external_id"): (
        "the CRM's own reference of the contact point, stored as text"
    ),
}
# Path parameters that are not row ids: numbers and codes that mean something only inside
# the caller's own institution (its policy versions, its model versions) or everywhere alike.
PATH_NAMES_NOT_ROWS = {
    "code": "a rule pack code (CN, US), the same for every tenant",
    "version": "a policy or model version, looked up within the caller's institution",
}


@dataclass
class Rows:
    """One party's records: a debtor with a contact point, an account, a decision, …"""

    debtor: int
    contact_point: int
    account: int
    decision: int
    promise: int
    plan: int
    case: int
    user: int
    institution: int
    template: int | None = None
    # Scripts belong to the institution, not to an agent: only another tenant's is foreign.
    script: int | None = None
    violation: int | None = None
    api_key: int | None = None
    import_run: int | None = None
    message: int | None = None
    # A draft template of the party's institution, for the ids forms take (not a path id:
    # templates are not agent-scoped, so the path-id matrix uses ``template`` above).
    draft_template: int | None = None
    cycle_run: int | None = None
    work_list: int | None = None
    list_entry: int | None = None
    strategy: int | None = None
    webhook_subscription: int | None = None
    webhook_delivery: int | None = None

    def path_ids(self) -> dict[str, int]:
        ids = {
            "debtor_id": self.debtor,
            "account_id": self.account,
            "decision_id": self.decision,
            "promise_id": self.promise,
            "plan_id": self.plan,
            "case_id": self.case,
            "user_id": self.user,
        }
        if self.template is not None:
            ids["template_id"] = self.template
        if self.script is not None:
            ids["script_id"] = self.script
        if self.violation is not None:
            ids["violation_id"] = self.violation
        if self.api_key is not None:
            ids["api_key_id"] = self.api_key
        if self.import_run is not None:
            ids["run_id"] = self.import_run
        if self.message is not None:
            ids["message_id"] = self.message
        if self.cycle_run is not None:
            ids["cycle_run_id"] = self.cycle_run
        if self.work_list is not None:
            ids["list_id"] = self.work_list
        if self.list_entry is not None:
            ids["entry_id"] = self.list_entry
        if self.strategy is not None:
            ids["strategy_id"] = self.strategy
        if self.webhook_subscription is not None:
            ids["subscription_id"] = self.webhook_subscription
        if self.webhook_delivery is not None:
            ids["delivery_id"] = self.webhook_delivery
        return ids

    def of(self, target: str) -> int:
        return int(getattr(self, target))


@dataclass(frozen=True)
class IdSite:
    """One place outside the path where a route takes an id, with the rest of a valid request."""

    method: str
    path: str
    where: str  # "body", "query" or "form"
    name: str
    target: str  # the Rows field the id names
    rest: dict[str, object] = field(default_factory=dict)
    many: bool = False
    # A row the whole tenant shares (a template): no other agent has one of their own.
    tenant_wide: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.method, self.path, self.where, self.name)


def _id_sites(own: Rows, colleague_certified: int) -> list[IdSite]:
    grant = {"course": "compliance", "issued_on": "2025-01-01", "expires_on": "2026-01-01"}
    return [
        IdSite(
            "POST",
            "/api/v1/users",
            "body",
            "institution_id",
            "institution",
            {"username": "probe.user", "role": "agent", "password": PASSWORD},
        ),
        IdSite(
            "POST",
            "/api/v1/apikeys",
            "body",
            "institution_id",
            "institution",
            {"name": "probe", "scopes": ["accounts:read"]},
        ),
        IdSite("GET", "/api/v1/accounts", "query", "debtor_id", "debtor"),
        IdSite(
            "POST",
            "/api/v1/debtors/{debtor_id}/contacts",
            "body",
            "account_id",
            "account",
            {"channel": "call", "started_at": CALL_AT},
        ),
        IdSite(
            "POST",
            "/api/v1/debtors/{debtor_id}/contacts",
            "body",
            "contact_point_id",
            "contact_point",
            {"channel": "call", "started_at": CALL_AT},
        ),
        IdSite("GET", "/accounts", "query", "debtor_id", "debtor"),
        IdSite(
            "GET",
            "/outbox/campaigns/new",
            "query",
            "template_id",
            "draft_template",
            {"preview": "true", "channel": "sms"},
        ),
        IdSite(
            "POST",
            "/outbox/campaigns",
            "form",
            "template_id",
            "draft_template",
            {"name": "probe", "channel": "sms"},
        ),
        IdSite(
            "POST",
            "/api/v1/debtors/{debtor_id}/contacts",
            "body",
            "script_id",
            "script",
            {"channel": "call", "started_at": CALL_AT},
        ),
        IdSite(
            "POST",
            "/api/v1/compliance/decisions/{decision_id}/outcome",
            "body",
            "script_id",
            "script",
            {"outcome": "right_party", "happened_at": CALL_AT},
        ),
        IdSite(
            "GET", "/api/v1/scripts/suggestion", "query", "case_id", "case", {"locale": "zh-CN"}
        ),
        IdSite(
            "POST",
            "/api/v1/accounts/assign",
            "body",
            "agent_id",
            "user",
            {"account_ids": [own.account]},
        ),
        IdSite(
            "POST",
            "/api/v1/accounts/assign",
            "body",
            "account_ids",
            "account",
            {"agent_id": colleague_certified},
            many=True,
        ),
        IdSite(
            "POST",
            "/api/v1/compliance/check",
            "body",
            "debtor_id",
            "debtor",
            {"channel": "call", "at": CALL_AT},
        ),
        IdSite(
            "POST",
            "/api/v1/compliance/check",
            "body",
            "account_id",
            "account",
            {"debtor_id": own.debtor, "channel": "call", "at": CALL_AT},
        ),
        IdSite(
            "POST",
            "/api/v1/compliance/check",
            "body",
            "contact_point_id",
            "contact_point",
            {"debtor_id": own.debtor, "channel": "call", "at": CALL_AT},
        ),
        IdSite("GET", "/api/v1/compliance/decisions", "query", "debtor_id", "debtor"),
        IdSite(
            "POST",
            "/api/v1/compliance/violations/scan",
            "body",
            "debtor_id",
            "debtor",
            {"text": "we know where you live", "locale": "en-US"},
        ),
        IdSite("POST", "/api/v1/compliance/certifications", "body", "user_id", "user", grant),
        IdSite("POST", "/accounts/{account_id}/assign", "form", "agent_id", "user"),
        IdSite("PUT", "/api/v1/cases/{case_id}/owner", "body", "owner_id", "user"),
        IdSite(
            "POST",
            "/cases/{case_id}/contacts",
            "form",
            "contact_point_id",
            "contact_point",
            {"channel": "call", "outcome": "no_answer"},
        ),
        IdSite(
            "POST",
            "/cases/{case_id}/contacts",
            "form",
            "account_id",
            "account",
            {"channel": "call", "outcome": "no_answer"},
        ),
        IdSite(
            "POST",
            "/cases/{case_id}/contacts",
            "form",
            "script_id",
            "script",
            {"channel": "call", "outcome": "no_answer", "inbound": "1"},
        ),
        IdSite(
            "POST",
            "/allocation/absences",
            "form",
            "user_id",
            "user",
            {"starts_on": "2027-03-01", "ends_on": "2027-03-02"},
        ),
        IdSite(
            "POST",
            "/allocation/queues",
            "form",
            "member_ids",
            "user",
            {"code": "PROBE", "name": "probe"},
            many=True,
        ),
        IdSite("POST", "/compliance/certifications", "form", "user_id", "user", grant),
        IdSite(
            "POST",
            "/api/v1/debtors/{debtor_id}/contact-points",
            "body",
            "replaces_contact_point_id",
            "contact_point",
            {"kind": "mobile", "value": "13912345678"},
        ),
        IdSite(
            "GET", "/api/v1/webhooks/deliveries", "query", "subscription_id", "webhook_subscription"
        ),
        IdSite("GET", "/compliance/certifications", "query", "renew", "user"),
        IdSite("GET", "/dialer", "query", "list_id", "work_list"),
        IdSite("POST", "/dialer", "form", "agent_id", "user", {"day": "2027-03-01"}),
        IdSite("POST", "/api/v1/dialer/lists", "body", "agent_id", "user", {"day": "2027-03-01"}),
        IdSite(
            "POST",
            "/api/v1/dialer/results",
            "body",
            "entry_id",
            "list_entry",
            {"call_id": "probe-1", "started_at": CALL_AT, "outcome": "no_answer"},
        ),
        IdSite("GET", "/visits", "query", "list_id", "work_list"),
        IdSite("POST", "/visits", "form", "agent_id", "user", {"day": "2027-03-01"}),
        IdSite("POST", "/api/v1/visits/lists", "body", "agent_id", "user", {"day": "2027-03-01"}),
        IdSite(
            "POST",
            "/api/v1/visits/results",
            "body",
            "entry_id",
            "list_entry",
            {
                "visit_id": "probe-v",
                "visited_at": CALL_AT,
                "outcome": "no_answer",
                "record_ref": "r",
            },
        ),
        IdSite("POST", "/letters", "form", "debtor_id", "debtor", {"template_id": UNKNOWN_ID}),
        IdSite(
            "POST",
            "/letters",
            "form",
            "template_id",
            "template",
            {"debtor_id": own.debtor},
            tenant_wide=True,
        ),
        IdSite("POST", "/api/v1/letters", "body", "debtor_id", "debtor", {"template_id": 1}),
        IdSite(
            "POST",
            "/api/v1/letters",
            "body",
            "template_id",
            "template",
            {"debtor_id": own.debtor},
            tenant_wide=True,
        ),
        IdSite(
            "POST",
            "/api/v1/letters",
            "body",
            "account_id",
            "account",
            {"debtor_id": own.debtor, "template_id": UNKNOWN_ID},
        ),
        IdSite(
            "GET", "/api/v1/kpis/agents", "query", "team_lead_id", "user", {"as_of": "2026-03-31"}
        ),
        IdSite("GET", "/", "query", "team_lead_id", "user"),
        IdSite("GET", "/analytics/agents", "query", "team_lead_id", "user"),
        IdSite("GET", "/analytics/agent-day", "query", "agent_id", "user"),
        *(
            IdSite(
                "GET", f"/analytics/{board}/export.{fmt}", "query", name, "user", {"table": table}
            )
            for board, name, table in (
                ("home", "team_lead_id", "headlines"),
                ("agents", "team_lead_id", "leaderboard"),
                ("agent-day", "agent_id", "contacts"),
            )
            for fmt in ("csv", "xlsx")
        ),
    ]


def _is_id(name: str) -> bool:
    return name.endswith(ID_SUFFIXES) or name in ID_NAMES


def _parameters(dependant: Dependant) -> Iterator[tuple[str, str]]:
    for parameter in dependant.query_params:
        yield "query", parameter.alias
    for parameter in dependant.body_params:
        annotation = parameter.field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for name in annotation.model_fields:
                yield "body", name
        else:
            yield "form" if isinstance(parameter.field_info, Form) else "body", parameter.alias
    for dependency in dependant.dependencies:
        yield from _parameters(dependency)


def non_path_ids(app: FastAPI) -> set[tuple[str, str, str, str]]:
    """Return every (method, path, where, name) at which a route takes an id outside its path."""
    found = set()
    for context in iter_route_contexts(app.routes):
        dependant = getattr(context, "dependant", None)
        if context.path is None or not isinstance(dependant, Dependant):
            continue
        for where, name in _parameters(dependant):
            if _is_id(name):
                for method in context.methods or ():
                    found.add((method, context.path, where, name))
    return found


@dataclass
class World:
    """The tenant's callers and three parties whose ids they send."""

    callers: list[Caller]
    agent_label: str
    own: Rows
    colleague: Rows
    foreign: Rows
    colleague_certified: int


def _webhook_rows(
    session: Session, institution: Institution
) -> tuple[WebhookSubscription, WebhookDelivery]:
    """A webhook subscription of the institution and a dead delivery to it."""
    subscription = webhooks_service.create_subscription(
        session,
        institution_id=institution.id,
        url="https://crm.example.com/hooks",
        event_types=["payment.received"],
        actor="test",
    ).subscription
    event = WebhookEvent(
        institution_id=institution.id,
        event_id=str(uuid.uuid4()),
        type="payment.received",
        data={"payment_id": 1},
    )
    session.add(event)
    session.flush()
    delivery = WebhookDelivery(
        institution_id=institution.id,
        event_id=event.id,
        subscription_id=subscription.id,
        status=DeliveryStatus.dead,
        attempts=1,
    )
    session.add(delivery)
    session.flush()
    return subscription, delivery


def _rows(session: Session, institution: Institution, agent: User, mark: str) -> Rows:
    debtor = make_debtor(session, institution, external_id=f"{mark}-D")
    contact_point = make_contact_point(session, debtor)
    account = make_account(session, debtor, external_id=f"{mark}-A")
    give_to_agent(session, account, agent.id)
    session.flush()
    decision = gate_service.check_contact(
        session,
        institution_id=institution.id,
        debtor_id=debtor.id,
        channel=Channel.CALL,
        party=Party.DEBTOR,
        at=datetime(2025, 3, 3, 2, tzinfo=UTC),
        actor=f"{mark}-actor",
    ).record
    promise = workbench.record_promise(
        session,
        institution=institution,
        account=account,
        terms=PromiseTerms(
            amount=10_000, currency="CNY", due_date=date.today() + timedelta(days=3), channel="call"
        ),
        actor=f"{mark}-actor",
    )
    plan = plans_service.propose_plan(
        session,
        institution=institution,
        account=make_account(session, debtor, external_id=f"{mark}-A2"),
        instalments=2,
        start_on=date.today() + timedelta(days=3),
        # Above the approval threshold: the plan waits, so approve and reject can reach it.
        discount=200_000,
        actor=f"{mark}-actor",
        user_id=None,
    )
    case = cases_service.case_for_account(
        session,
        institution_id=institution.id,
        account_id=account.id,
        debtor_id=debtor.id,
        status=str(account.status),
        days_past_due=account.days_past_due,
    )
    assert case is not None
    case.owner_id = agent.id
    template = templates_service.create_template(
        session,
        institution_id=institution.id,
        name=f"{mark}-draft",
        channel="sms",
        locale="zh-CN",
        audience="debtor",
        body="您好",
        author="test",
        author_id=None,
    )
    session.flush()
    work_list, views = dialer_service.build_call_list(
        session,
        principal=institution_scope(institution.id),
        institution=institution,
        agent_id=agent.id,
        day=date(2025, 3, 3),
        now=datetime(2025, 3, 3, 2, tzinfo=UTC),
    )
    strategy, _ = strategy_service.create_strategy(
        session,
        institution=institution,
        code="s_" + re.sub(r"[^a-z0-9_]", "_", mark.lower())[:24],
        name=f"{mark} strategy",
        actor=f"{mark}-actor",
    )
    subscription, delivery = _webhook_rows(session, institution)
    return Rows(
        work_list=work_list.id,
        list_entry=views[0].entry.id,
        debtor=debtor.id,
        contact_point=contact_point.id,
        account=account.id,
        decision=decision.id,
        promise=promise.id,
        plan=plan.id,
        case=case.id,
        user=agent.id,
        institution=institution.id,
        draft_template=template.id,
        strategy=strategy.id,
        webhook_subscription=subscription.id,
        webhook_delivery=delivery.id,
    )


def _world(session: Session) -> World:
    tenant, other_tenant = make_institution(session), make_institution(session)
    agent = make_user(session, tenant, role="agent")
    colleague = make_user(session, tenant, role="agent")
    stranger = make_user(session, other_tenant, role="agent")
    for user in (agent, colleague, stranger):
        certify(session, user)
    own = _rows(session, tenant, agent, "OWN")
    colleague_rows = _rows(session, tenant, colleague, SECRET_MARK)
    foreign = _rows(session, other_tenant, stranger, SECRET_MARK)
    template = templates_service.create_template(
        session,
        institution_id=other_tenant.id,
        name=f"{SECRET_MARK}-template",
        channel="sms",
        locale="zh-CN",
        audience="debtor",
        body="您好",
        author="test",
        author_id=None,
    )
    foreign.template = template.id
    script = templates_service.create_template(
        session,
        institution_id=other_tenant.id,
        name=f"{SECRET_MARK}-script",
        channel="call",
        locale="zh-CN",
        audience="debtor",
        kind="script",
        situation="first_contact",
        guidance="语气平和",
        body="您好",
        author="test",
        author_id=None,
    )
    foreign.script = script.id
    # A colleague has no scripts of their own; the institution's are everyone's to use.
    colleague_rows.script = script.id
    foreign.violation = templates_service.scan_for_violations(
        session,
        institution_id=other_tenant.id,
        text=f"{SECRET_MARK}: we know where you live",
        locale="en-US",
        source="call_note",
        source_id=None,
        debtor_id=foreign.debtor,
        actor="test",
    )[0].id
    foreign.api_key = service.create_api_key(
        session,
        institution_id=other_tenant.id,
        name=f"{SECRET_MARK}-key",
        scopes=["accounts:read"],
        actor="test",
    )[1].id
    run = ImportRun(
        institution_id=other_tenant.id,
        kind=ImportKind.debtors,
        file_name=f"{SECRET_MARK}.csv",
        file_format="csv",
        actor="test",
        started_at=datetime(2025, 3, 3, tzinfo=UTC),
    )
    session.add(run)
    session.flush()
    foreign.import_run = run.id
    message = OutboxMessage(
        institution_id=other_tenant.id,
        debtor_id=foreign.debtor,
        contact_point_id=foreign.contact_point,
        channel="sms",
        decision_id=foreign.decision,
        template_id=template.id,
        template_version="0" * 16,
        body=f"{SECRET_MARK} message",
        idempotency_key=f"{SECRET_MARK}-message",
        status="dead",
        scheduled_at=datetime(2025, 3, 3, tzinfo=UTC),
        expires_at=datetime(2025, 3, 5, tzinfo=UTC),
        actor="test",
    )
    session.add(message)
    session.flush()
    foreign.message = message.id
    cycle_run = CycleRun(
        institution_id=other_tenant.id,
        as_of=date(2025, 3, 3),
        started_at=datetime(2025, 3, 3, tzinfo=UTC),
        actor=SECRET_MARK,
    )
    session.add(cycle_run)
    session.flush()
    foreign.cycle_run = cycle_run.id
    caller_key_text, _ = service.create_api_key(
        session,
        institution_id=tenant.id,
        name="caller",
        scopes=sorted(API_KEY_SCOPES),
        actor="test",
    )
    session.flush()
    callers = [
        _user_caller(
            role, agent if role == "agent" else make_user(session, tenant, role=role),
            same_tenant=True,
        )
        for role in ROLES
    ]  # fmt: skip
    callers.append(
        _user_caller("platform admin", make_user(session, None, role="admin"), same_tenant=True)
    )
    callers.append(
        Caller(
            label="api key",
            permissions=frozenset(API_KEY_SCOPES),
            headers={"Authorization": f"Bearer {caller_key_text}"},
            can_use_pages=False,
        )
    )
    return World(callers, "agent", own, colleague_rows, foreign, colleague.id)


def _refused(status: int, *, page: bool, method: str) -> bool:
    """Tell whether an anonymous call was turned away as the route kind requires."""
    if page:
        return status in {303, 401, 403}
    return status == 401


# Valid bodies for API routes with ids in their path, so a 404 comes from scoping and not a
# 422 from a missing field. Page forms get the same from PAGE_FORMS.
STRATEGY_TEXT = (
    "name: probe\nsegments:\n  - {code: a, name: A, steps: [{code: s, day: 0, channel: sms}]}\n"
)
API_BODIES: dict[tuple[str, str], dict[str, object]] = {
    ("PUT", "/api/v1/strategies/{strategy_id}/draft"): {"document": STRATEGY_TEXT},
    ("POST", "/api/v1/strategies/{strategy_id}/promote"): {"segment": "a", "arm": "b"},
    ("POST", "/api/v1/debtors/{debtor_id}/reveal"): {"reason": "verify identity"},
    ("POST", "/api/v1/debtors/{debtor_id}/contacts"): {"channel": "call", "started_at": CALL_AT},
    ("POST", "/api/v1/compliance/decisions/{decision_id}/outcome"): {
        "outcome": "no_answer",
        "effective": False,
        "happened_at": CALL_AT,
    },
    ("POST", "/api/v1/accounts/{account_id}/promises"): {
        "amount": "100.00",
        "due_date": (date.today() + timedelta(days=3)).isoformat(),
        "channel": "call",
    },
    ("POST", "/api/v1/accounts/{account_id}/plans"): {
        "instalments": 2,
        "start_on": (date.today() + timedelta(days=3)).isoformat(),
    },
    ("POST", "/api/v1/cases/{case_id}/events"): {"event": "hardship", "note": "probe"},
    ("PUT", "/api/v1/cases/{case_id}/owner"): {"owner_id": None},
    ("POST", "/api/v1/compliance/violations/{violation_id}/resolve"): {"confirmed": True},
    ("PATCH", "/api/v1/debtors/{debtor_id}/compliance-facts"): {"cease_contact": True},
    ("PATCH", "/api/v1/accounts/{account_id}/compliance-facts"): {"time_barred_on": None},
    ("POST", "/api/v1/dialer/lists/{list_id}/export"): {},
    ("POST", "/api/v1/debtors/{debtor_id}/contact-points"): {
        "kind": "mobile",
        "value": "13912345678",
    },
}
PAGE_FORMS: dict[tuple[str, str], dict[str, object]] = {
    ("POST", "/strategies/{strategy_id}/draft"): {"document": STRATEGY_TEXT},
    ("POST", "/strategies/{strategy_id}/check"): {"document": STRATEGY_TEXT},
    ("POST", "/strategies/{strategy_id}/promote"): {"segment": "a", "arm": "b"},
    ("POST", "/debtors/{debtor_id}/reveal"): {"reason": "verify identity"},
    ("POST", "/accounts/{account_id}/promises"): {
        "amount": "100.00",
        "due_date": (date.today() + timedelta(days=3)).isoformat(),
        "channel": "call",
    },
    ("POST", "/accounts/{account_id}/plans"): {
        "instalments": "2",
        "start_on": (date.today() + timedelta(days=3)).isoformat(),
    },
    ("POST", "/debtors/{debtor_id}/compliance-facts"): {"cease_contact": "on"},
    ("POST", "/compliance/violations/{violation_id}/resolve"): {
        "resolution": "confirm",
        "note": "probe",
    },
    ("POST", "/compliance/templates/{template_id}/decision"): {"decision": "approve"},
    ("POST", "/dialer/lists/{list_id}/export"): {"reason": "load the dialer"},
    ("POST", "/visits/entries/{entry_id}/result"): {
        "visit_id": "probe-v",
        "outcome": "right_party",
        "visited_at": "2025-03-03T10:00",
    },
}


def _expectation(
    caller: Caller, permissions: tuple[str, ...], status: int, text: str, *, out_of_scope: bool
) -> str | None:
    """Say what is wrong with an answer to an id the caller may not reach, or None."""
    if status >= 500:
        return f"server error {status}"
    if not all(permission in caller.permissions for permission in permissions):
        return None if status == 403 else f"{status}, expected 403"
    if status in {401, 403} and not out_of_scope:
        return f"{status}, expected to be allowed"
    if out_of_scope and 200 <= status < 300:
        return f"{status} for an id out of scope"
    if out_of_scope and SECRET_MARK in text:
        return "shows another party's data"
    return None


def test_every_id_outside_a_path_is_listed_here(session: Session) -> None:
    world = _world(session)
    listed = {site.key for site in _id_sites(world.own, world.colleague_certified)}
    found = non_path_ids(create_app())
    missing = found - listed - set(NOT_ROW_IDS)
    assert not missing, f"ids not covered by the scoping matrix: {sorted(missing)}"
    assert not listed - found, f"listed ids no route takes: {sorted(listed - found)}"


def test_every_id_in_a_body_query_or_form_is_scoped(session: Session) -> None:
    world = _world(session)
    failures: list[str] = []
    with client_for(session) as client:
        rules = {
            (method, rule.path): rule
            for rule in route_rules(client.app)  # type: ignore[arg-type]
            for method in rule.methods
        }
        for site in _id_sites(world.own, world.colleague_certified):
            rule = rules[site.method, site.path]
            page = rule.kind == "page"
            url = _url(
                rule,
                {
                    "account_id": world.own.account,
                    "debtor_id": world.own.debtor,
                    "case_id": world.own.case,
                },
            )
            variants = {
                "another tenant": world.foreign.of(site.target),
                "another agent": None if site.tenant_wide else world.colleague.of(site.target),
                "an unknown id": UNKNOWN_ID,
            }
            for variant, row_id in variants.items():
                if row_id is None:
                    continue
                value: object = [row_id] if site.many else row_id
                body = {**site.rest, site.name: value} if site.where != "query" else None
                params = {site.name: value} if site.where == "query" else None
                if site.where == "query" and site.method == "GET" and site.rest:
                    params = {**site.rest, **(params or {})}
                where = f"{site.method} {site.path} {site.where} {site.name} = {variant}"
                anonymous = _send(
                    client, site.method, url, None, page=page, body=body, params=params
                )
                if not _refused(anonymous.status_code, page=page, method=site.method):
                    failures.append(f"{where} anonymous: {anonymous.status_code}")
                for caller in world.callers:
                    if page and not caller.can_use_pages:
                        continue
                    out_of_scope = variant == "an unknown id" or (
                        variant == "another tenant"
                        and not (caller.label == "platform admin" and site.target == "institution")
                    )
                    if variant == "another agent":
                        out_of_scope = caller.label == world.agent_label
                    answer = _send(
                        client, site.method, url, caller, page=page, body=body, params=params
                    )
                    problem = _expectation(
                        caller,
                        rule.permissions,
                        answer.status_code,
                        answer.text,
                        out_of_scope=out_of_scope,
                    )
                    allowed = all(p in caller.permissions for p in rule.permissions)
                    if problem is None and out_of_scope and allowed and answer.status_code != 404:
                        problem = f"{answer.status_code}, expected 404: {answer.text[:200]}"
                    if problem:
                        failures.append(f"{where} as {caller.label}: {problem}")
    assert not failures, "\n".join(failures)


def test_every_path_id_of_another_party_is_scoped(session: Session) -> None:
    world = _world(session)
    failures: list[str] = []
    with client_for(session) as client:
        for rule in route_rules(client.app):  # type: ignore[arg-type]
            if is_public_path(rule.path) or not rule.permissions:
                continue
            page = rule.kind == "page"
            for party, rows, callers in (
                ("another tenant", world.foreign, world.callers),
                (
                    "another agent",
                    world.colleague,
                    [c for c in world.callers if c.label == world.agent_label],
                ),
            ):
                ids = rows.path_ids()
                names = set(re.findall(r"\{([^}:]+)", rule.path))
                unknown = names - set(ids) - set(PATH_NAMES_NOT_ROWS)
                if unknown and party == "another tenant":
                    failures.append(f"{rule.path}: no {party} row for {sorted(unknown)}")
                if not names or not names <= set(ids):
                    continue
                url = _url(rule, ids)
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    key = (method, rule.path)
                    body = PAGE_FORMS.get(key) if page else API_BODIES.get(key)
                    for caller in callers:
                        if page and not caller.can_use_pages:
                            continue
                        if caller.label == "platform admin" and names & {"api_key_id", "user_id"}:
                            continue  # a platform admin manages every tenant's keys and users
                        answer = _send(client, method, url, caller, page=page, body=body)
                        problem = _expectation(
                            caller,
                            rule.permissions,
                            answer.status_code,
                            answer.text,
                            out_of_scope=True,
                        )
                        allowed = all(p in caller.permissions for p in rule.permissions)
                        if (
                            problem is None
                            and allowed
                            and not page
                            and answer.status_code != 404
                            and caller.label != "platform admin"
                        ):
                            problem = f"{answer.status_code}, expected 404: {answer.text[:200]}"
                        if problem:
                            failures.append(
                                f"{method} {rule.path} {party} as {caller.label}: {problem}"
                            )
    assert not failures, "\n".join(failures)
