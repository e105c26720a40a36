"""Render pages: the Jinja2 environment, the viewer a page is drawn for, and flash messages."""

# No ``from __future__ import annotations`` here: FastAPI must see the real ``Depends(guard)``
# in ``viewer_with``'s inner signature, and a string annotation cannot name a closure variable.

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from recoup.config import get_settings
from recoup.db import refuse
from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_token, require_page
from recoup.identity.principal import Principal
from recoup.identity.secret import secret_key
from recoup.kit.clock import utcnow
from recoup.models.identity import User
from recoup.models.institution import Institution
from recoup.web import labels
from recoup.web import localization as i18n
from recoup.web.navigation import visible_entries

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_CURRENCY = "CNY"
FLASH_COOKIE = "recoup_flash"
FLASH_LEVELS = ("info", "success", "warning", "error")
# Pages load only the app's own scripts and styles; inline style attributes are allowed.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@pass_context
def _money_filter(context: Context, minor: int | None, currency: str | None = None) -> str:
    return i18n.money(minor, currency or context["currency"], context["locale"])


@pass_context
def _day_filter(context: Context, value: Any) -> str:
    return i18n.day(value, context["locale"])


@pass_context
def _moment_filter(context: Context, value: Any) -> str:
    return i18n.moment(value, context["locale"], context["timezone"])


environment = Environment(
    loader=PackageLoader("recoup.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["money"] = _money_filter
# A count with thousands separators (12,345), as both languages write it; "—" for none.
environment.filters["count"] = lambda value: "—" if value is None else f"{int(value):,}"
environment.filters["day"] = _day_filter
environment.filters["moment"] = _moment_filter


def _in_locale(words: Callable[[Any, str], str]) -> Callable[..., str]:
    @pass_context
    def in_locale(context: Context, value: Any) -> str:
        return words(value, context["locale"])

    return in_locale


# Codes shown in the reader's words (labels.py): {{ event.action | audit_action }}.
for _name, _words in {
    "policy_name": labels.policy_name,
    "rule_parameter": labels.parameter_name,
    "rule_value": labels.parameter_value,
    "channels": labels.channels,
    "audit_action": labels.audit_action,
    "audit_object": labels.audit_object,
    "field_name": labels.field_name,
    "zone_name": labels.zone_name,
    "zones_named": labels.zones_named,
    "language_name": labels.language_name,
    "reject_code": labels.reject_code,
}.items():
    environment.filters[_name] = _in_locale(_words)


@pass_context
def _reject_reason(context: Context, reason: str, code: str) -> str:
    return labels.reject_reason(reason, code, context["locale"])


environment.filters["reject_reason"] = _reject_reason


@pass_context
def _strategy_reason(context: Context, code: str | None, params: Any = None) -> Markup:
    return labels.strategy_reason(code, params, context["locale"])


# {{ state.reason_code | strategy_reason(state.reason_params) }}
environment.filters["strategy_reason"] = _strategy_reason


@dataclass(frozen=True, slots=True)
class Flash:
    """A one-time message shown on the next page: a catalog key, its parameters and a level."""

    key: str
    level: str = "success"
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a page is drawn for: the signed-in principal (if any), language, zone and tenant."""

    request: Request
    principal: Principal | None
    locale: str
    timezone: str
    currency: str
    institution_name: str | None
    display_name: str | None

    def allows(self, permission: str) -> bool:
        """Tell whether the viewer holds ``permission``."""
        return self.principal is not None and self.principal.can(permission)

    def text(self, key: str, **params: Any) -> str:
        """Return the catalog text of ``key`` in the viewer's language."""
        return i18n.translate(self.locale, key, **params)


def page_locale(request: Request) -> str:
    """Return a request's locale: the language switch cookie, then Accept-Language, then zh-CN."""
    return i18n.negotiate(
        cookie=request.cookies.get(i18n.LOCALE_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


def make_viewer(request: Request, session: Session | None, principal: Principal | None) -> Viewer:
    """Build the viewer of a request, looking up the principal's name and institution."""
    institution = None
    display_name = None
    if principal is not None and session is not None:
        if principal.institution_id is not None:
            institution = session.get(Institution, principal.institution_id)
        user = session.get(User, principal.user_id) if principal.user_id is not None else None
        display_name = (user.display_name or None) if user is not None else None
    return Viewer(
        request=request,
        principal=principal,
        locale=page_locale(request),
        timezone=institution.timezone if institution else DEFAULT_TIMEZONE,
        currency=institution.currency if institution else DEFAULT_CURRENCY,
        institution_name=institution.name if institution else None,
        display_name=display_name or (principal.username if principal else None),
    )


def viewer_with(permission: str) -> Any:
    """Return a dependency giving the ``Viewer`` of a page that needs ``permission``."""
    guard = require_page(permission)

    def dependency(
        request: Request, session: SessionDep, principal: Annotated[Principal, Depends(guard)]
    ) -> Viewer:
        return make_viewer(request, session, principal)

    return Depends(dependency)


async def _posted_form(request: Request) -> FormData:
    return await request.form()


# A page handler that reads its form stays sync (run in the thread pool) by taking this.
PostedForm = Annotated[FormData, Depends(_posted_form)]


def anonymous_viewer(request: Request) -> Viewer:
    """Return the viewer of a public page (the sign-in page)."""
    return make_viewer(request, None, None)


def current_path(request: Request) -> str:
    """Return the path and query of the request, for coming back to it."""
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def page_url_for(request: Request) -> Callable[[int], str]:
    """Return a function giving this list's URL at another page, keeping its filters."""

    def page_url(page: int) -> str:
        url = request.url.include_query_params(page=page)
        return f"{url.path}?{url.query}"

    return page_url


def safe_next(value: str | None, default: str = "/") -> str:
    """Return ``value`` if it is a path on this site, ``default`` otherwise (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def _read_flashes(request: Request) -> list[Flash]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        items = _flash_serializer().loads(raw)
    except BadSignature:
        return []
    flashes = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            level = item.get("level") if item.get("level") in FLASH_LEVELS else "info"
            params = {str(k): str(v) for k, v in dict(item.get("params") or {}).items()}
            flashes.append(Flash(key=item["key"], level=str(level), params=params))
    return flashes


def _flash_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(secret_key(), salt="recoup.web.flash")


def flash(response: Response, request: Request, message: Flash) -> None:
    """Queue ``message`` for the next page the browser opens."""
    queued = [
        {"key": item.key, "level": item.level, "params": dict(item.params)}
        for item in [*_read_flashes(request), message]
    ]
    response.set_cookie(
        FLASH_COOKIE,
        _flash_serializer().dumps(queued),
        httponly=True,
        samesite="lax",
        secure=not get_settings().is_development,
        path="/",
    )


def redirect(path: str, *, request: Request, message: Flash | None = None) -> RedirectResponse:
    """Send the browser to ``path`` (303, so a POST becomes a GET), optionally with a flash.

    A redirect that carries an error message reports a refusal: the request's work rolls back.
    """
    response = RedirectResponse(path, status_code=303)
    if message is not None:
        flash(response, request, message)
        if message.level == "error":
            refuse(request)
    return response


def render(
    viewer: Viewer,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    active_nav: str | None = None,
    status_code: int = 200,
    partial: bool = False,
) -> HTMLResponse:
    """Render ``template`` for ``viewer``; a full page also shows and clears pending flashes."""
    request = viewer.request
    principal = viewer.principal
    flashes = [] if partial else _read_flashes(request)
    values: dict[str, Any] = {
        "request": request,
        "viewer": viewer,
        "principal": principal,
        "principal_name": viewer.display_name,
        "principal_role": principal.role if principal else None,
        "institution_name": viewer.institution_name,
        "locale": viewer.locale,
        "timezone": viewer.timezone,
        "currency": viewer.currency,
        "language_choices": list(i18n.LOCALE_NAMES.items()),
        "current_path": current_path(request),
        "navigation": visible_entries(viewer.allows) if principal else [],
        "active_nav": active_nav,
        "csrf": csrf_token(request),
        "flashes": flashes,
        "now": utcnow(),
        "_": viewer.text,
        **(context or {}),
    }
    body = environment.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code)
    response.headers["Content-Language"] = viewer.locale
    response.headers.update(PAGE_SECURITY_HEADERS)
    if flashes:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response
