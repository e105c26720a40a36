"""Pages for signing in and out and for administering users and API keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from recoup.db import keeps_refusals
from recoup.deps import SessionDep
from recoup.identity import service
from recoup.identity.api import client_address
from recoup.identity.dependencies import (
    OptionalWebPrincipal,
    csrf_protect,
    login_session,
    logout_session,
)
from recoup.identity.permissions import API_KEY_SCOPES, ROLES
from recoup.kit.errors import NotFound, PermissionDenied, RecoupError, ValidationFailed
from recoup.kit.pagination import MAX_PAGE, PageRequest
from recoup.models.identity import User
from recoup.web.templating import (
    Flash,
    Viewer,
    anonymous_viewer,
    page_url_for,
    redirect,
    render,
    safe_next,
    viewer_with,
)

router = APIRouter(include_in_schema=False)

ManageUsers = Annotated[Viewer, viewer_with("users:manage")]
ManageKeys = Annotated[Viewer, viewer_with("apikeys:manage")]
CsrfChecked = Depends(csrf_protect)


async def _csrf_ok(request: Request) -> bool:
    """Check the login form's CSRF token, reporting a stale form instead of a 403 page."""
    try:
        await csrf_protect(request)
    except PermissionDenied:
        return False
    return True


def _login_page(
    request: Request, *, next_path: str, username: str = "", error: str = "", status_code: int = 200
) -> HTMLResponse:
    viewer = anonymous_viewer(request)
    context = {"next_path": next_path, "username": username, "error": error}
    return render(viewer, "login.html", context, status_code=status_code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, principal: OptionalWebPrincipal, next: str = "/") -> Response:
    """Show the sign-in form (or go straight on when already signed in)."""
    next_path = safe_next(next)
    if principal is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, next_path=next_path)


@router.post("/login", response_class=HTMLResponse)
@keeps_refusals
def login(
    request: Request,
    session: SessionDep,
    csrf_ok: Annotated[bool, Depends(_csrf_ok)],
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Sign the browser in, or say what went wrong without telling whether the user exists."""
    next_path = safe_next(next)
    viewer = anonymous_viewer(request)
    if not csrf_ok:
        return _login_page(
            request,
            next_path=next_path,
            username=username,
            error=viewer.text("login.csrf"),
            status_code=403,
        )
    try:
        user = service.authenticate(
            session, username=username.strip(), password=password, ip=client_address(request)
        )
    except (service.LoginLocked, service.LoginFailed) as refusal:
        # The failed attempt and its audit event outlive the refusal (keeps_refusals).
        locked = isinstance(refusal, service.LoginLocked)
        page = _login_page(
            request,
            next_path=next_path,
            username=username,
            error=viewer.text("login.locked" if locked else "login.failed"),
            status_code=refusal.status_code,
        )
        if isinstance(refusal, service.LoginLocked):
            page.headers.update(refusal.headers)
        return page
    response = redirect(
        next_path,
        request=request,
        message=Flash("flash.signed_in", params={"name": user.display_name or user.username}),
    )
    login_session(response, user)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, principal: OptionalWebPrincipal, session: SessionDep) -> Response:
    """Sign this browser out."""
    if principal is not None:
        service.record_logout(session, principal=principal)
    response = redirect("/login", request=request, message=Flash("flash.signed_out", level="info"))
    logout_session(response)
    return response


def _users_page(
    viewer: Viewer,
    session: SessionDep,
    *,
    page: int = 1,
    form: dict[str, str] | None = None,
    form_error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    assert viewer.principal is not None
    users = service.list_users(session, principal=viewer.principal, page=PageRequest(page, 50))
    context: dict[str, Any] = {
        "page": users,
        "page_url": page_url_for(viewer.request),
        "roles": ROLES,
        "viewer_user_id": viewer.principal.user_id,
        "form": form or {"username": "", "display_name": "", "role": "agent"},
        "form_error": form_error,
    }
    return render(viewer, "admin/users.html", context, active_nav="admin", status_code=status_code)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(
    viewer: ManageUsers, session: SessionDep, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1
) -> HTMLResponse:
    """List the institution's users, with a form to add one."""
    return _users_page(viewer, session, page=page)


@router.post("/admin/users", response_class=HTMLResponse, dependencies=[CsrfChecked])
def create_user(
    viewer: ManageUsers,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    role: Annotated[str, Form(max_length=32)],
    display_name: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Add a user to the admin's institution."""
    assert viewer.principal is not None
    try:
        user = service.create_user(
            session,
            username=username.strip(),
            role=role,
            institution_id=viewer.principal.institution_id,
            password=password,
            display_name=display_name,
            actor=viewer.principal,
        )
    except RecoupError as error:
        session.rollback()  # the page shown below must not read the refused change
        form = {"username": username, "display_name": display_name, "role": role}
        return _users_page(
            viewer, session, form=form, form_error=error.message, status_code=error.status_code
        )
    message = Flash("flash.user_created", params={"username": user.username})
    return redirect("/admin/users", request=viewer.request, message=message)


UserId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _user_change(viewer: Viewer, change: Callable[[], User], done: str) -> Response:
    """Apply one admin change to a user and return to the list saying how it went.

    A refusal comes back as an error message, and its redirect rolls the request back.
    """
    try:
        user = change()
    except NotFound:
        raise  # another institution's user is not there: the 404 page, not a refusal
    except RecoupError as error:
        refused = Flash("flash.user_refused", level="error", params={"message": error.message})
        return redirect("/admin/users", request=viewer.request, message=refused)
    params = {"username": user.username, "role": viewer.text(f"role.{user.role}")}
    return redirect("/admin/users", request=viewer.request, message=Flash(done, params=params))


@router.post("/admin/users/{user_id}/password", dependencies=[CsrfChecked])
def reset_password(
    viewer: ManageUsers,
    session: SessionDep,
    user_id: UserId,
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Give a user a new password and end their sessions (audited)."""
    assert viewer.principal is not None
    principal = viewer.principal
    return _user_change(
        viewer,
        lambda: service.reset_password(
            session, user_id=user_id, password=password, actor=principal
        ),
        "flash.user_password_reset",
    )


@router.post("/admin/users/{user_id}/deactivate", dependencies=[CsrfChecked])
def deactivate_user(viewer: ManageUsers, session: SessionDep, user_id: UserId) -> Response:
    """Stop a user from signing in and end their sessions (audited)."""
    assert viewer.principal is not None
    principal = viewer.principal
    return _user_change(
        viewer,
        lambda: service.deactivate_user(session, user_id=user_id, actor=principal),
        "flash.user_deactivated",
    )


@router.post("/admin/users/{user_id}/activate", dependencies=[CsrfChecked])
def activate_user(viewer: ManageUsers, session: SessionDep, user_id: UserId) -> Response:
    """Let a deactivated user sign in again (audited)."""
    assert viewer.principal is not None
    principal = viewer.principal
    return _user_change(
        viewer,
        lambda: service.activate_user(session, user_id=user_id, actor=principal),
        "flash.user_activated",
    )


@router.post("/admin/users/{user_id}/role", dependencies=[CsrfChecked])
def set_role(
    viewer: ManageUsers,
    session: SessionDep,
    user_id: UserId,
    role: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Change a user's role; their sessions end so it applies at once (audited)."""
    assert viewer.principal is not None
    principal = viewer.principal
    return _user_change(
        viewer,
        lambda: service.set_role(session, user_id=user_id, role=role, actor=principal),
        "flash.user_role_changed",
    )


def _keys_page(
    viewer: Viewer,
    session: SessionDep,
    *,
    new_key: dict[str, str] | None = None,
    form_error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    assert viewer.principal is not None
    context: dict[str, Any] = {
        "keys": service.list_api_keys(session, principal=viewer.principal),
        "scopes": sorted(API_KEY_SCOPES),
        "new_key": new_key,
        "form_error": form_error,
    }
    return render(
        viewer, "admin/apikeys.html", context, active_nav="admin", status_code=status_code
    )


@router.get("/admin/apikeys", response_class=HTMLResponse)
def api_keys_page(viewer: ManageKeys, session: SessionDep) -> HTMLResponse:
    """List the institution's API keys, with a form to create one."""
    return _keys_page(viewer, session)


@router.post("/admin/apikeys", response_class=HTMLResponse, dependencies=[CsrfChecked])
def create_api_key(
    viewer: ManageKeys,
    session: SessionDep,
    name: Annotated[str, Form(max_length=128)] = "",
    scopes: Annotated[list[str] | None, Form(max_length=32)] = None,
) -> HTMLResponse:
    """Create an API key and show its secret this once (the page is not cached)."""
    assert viewer.principal is not None
    try:
        if viewer.principal.institution_id is None:
            raise ValidationFailed("a platform admin creates API keys through the API or the CLI")
        plaintext, api_key = service.create_api_key(
            session,
            institution_id=viewer.principal.institution_id,
            name=name,
            scopes=list(scopes or []),
            actor=viewer.principal,
        )
    except RecoupError as error:
        session.rollback()  # the page shown below must not read the refused change
        return _keys_page(viewer, session, form_error=error.message, status_code=error.status_code)
    new_key = {"name": api_key.name, "secret": plaintext}
    return _keys_page(viewer, session, new_key=new_key, status_code=201)


@router.post("/admin/apikeys/{api_key_id}/revoke", dependencies=[CsrfChecked])
def revoke_api_key(viewer: ManageKeys, session: SessionDep, api_key_id: int) -> Response:
    """Revoke an API key; systems using it are refused from now on."""
    assert viewer.principal is not None
    api_key = service.revoke_api_key(session, api_key_id=api_key_id, actor=viewer.principal)
    message = Flash("flash.key_revoked", params={"name": api_key.name})
    return redirect("/admin/apikeys", request=viewer.request, message=message)
