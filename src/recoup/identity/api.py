"""Sign-in, the caller's profile, users and API keys under ``/api/v1``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm

from recoup.config import get_settings
from recoup.db import keeps_refusals
from recoup.deps import SessionDep
from recoup.identity import schemas, service
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.principal import Principal
from recoup.kit.errors import RecoupError, TooManyRequests, ValidationFailed
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated

router = APIRouter(prefix="/api/v1", tags=["identity"])

PROBLEM = "application/problem+json"
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def client_address(request: Request) -> str:
    """Return the caller's address as the app sees it (behind a proxy: as the server reports it)."""
    return request.client.host if request.client else "unknown"


def _refusal(error: RecoupError) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status_code,
        "detail": error.message,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="recoup"'} if error.status_code == 401 else {}
    if isinstance(error, TooManyRequests):
        headers.update(error.headers)
    return JSONResponse(body, status_code=error.status_code, media_type=PROBLEM, headers=headers)


@router.post(
    "/auth/token",
    response_model=schemas.Token,
    responses={401: {"description": "wrong credentials"}, 429: {"description": "locked out"}},
)
@keeps_refusals
def issue_token(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> schemas.Token | JSONResponse:
    """Exchange a username and password for a bearer token."""
    try:
        user = service.authenticate(
            session, username=form.username, password=form.password, ip=client_address(request)
        )
    except (service.LoginFailed, service.LoginLocked) as error:
        # The failed attempt and its audit event outlive the refusal (keeps_refusals).
        return _refusal(error)
    token, _expires_at = service.issue_access_token(user)
    return schemas.Token(access_token=token, expires_in=get_settings().access_token_minutes * 60)


@router.get("/me", response_model=schemas.Me)
def me(principal: Annotated[Principal, Depends(authorize("profile:read"))]) -> schemas.Me:
    """Tell the caller who they are and what they may do."""
    return schemas.Me(
        kind=principal.kind,
        username=principal.username,
        role=principal.role,
        institution_id=principal.institution_id,
        is_platform_admin=principal.is_platform_admin,
        permissions=sorted(principal.permissions),
    )


@router.get(
    "/users",
    response_model=Paginated[schemas.User],
    dependencies=[Depends(authorize("users:manage"))],
)
def list_users(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Paginated[schemas.User]:
    """List the users of the caller's institution."""
    result = service.list_users(session, principal=principal, page=PageRequest(page, size))
    return Paginated[schemas.User].of(result, schemas.User.model_validate)


@router.post(
    "/users",
    response_model=schemas.User,
    status_code=201,
    dependencies=[Depends(authorize("users:manage"))],
)
def create_user(
    body: schemas.UserCreate, principal: CurrentPrincipal, session: SessionDep
) -> schemas.User:
    """Add a user to the caller's institution (a platform admin names the institution)."""
    user = service.create_user(
        session,
        username=body.username,
        role=body.role,
        institution_id=body.institution_id
        if body.institution_id is not None
        else principal.institution_id,
        password=body.password,
        display_name=body.display_name,
        actor=principal,
    )
    return schemas.User.model_validate(user)


@router.get(
    "/apikeys",
    response_model=list[schemas.ApiKey],
    dependencies=[Depends(authorize("apikeys:manage"))],
)
def list_api_keys(principal: CurrentPrincipal, session: SessionDep) -> list[schemas.ApiKey]:
    """List the institution's API keys (never their secrets)."""
    return [
        schemas.ApiKey.model_validate(key)
        for key in service.list_api_keys(session, principal=principal)
    ]


@router.post(
    "/apikeys",
    response_model=schemas.ApiKeyCreated,
    status_code=201,
    dependencies=[Depends(authorize("apikeys:manage"))],
)
def create_api_key(
    body: schemas.ApiKeyCreate, principal: CurrentPrincipal, session: SessionDep
) -> schemas.ApiKeyCreated:
    """Create an API key; the response carries its secret, which is not shown again."""
    institution_id = (
        body.institution_id if body.institution_id is not None else principal.institution_id
    )
    if institution_id is None:
        raise ValidationFailed("name the institution the key belongs to (institution_id)")
    plaintext, api_key = service.create_api_key(
        session, institution_id=institution_id, name=body.name, scopes=body.scopes, actor=principal
    )
    return schemas.ApiKeyCreated(
        **schemas.ApiKey.model_validate(api_key).model_dump(), key=plaintext
    )


@router.delete(
    "/apikeys/{api_key_id}", status_code=204, dependencies=[Depends(authorize("apikeys:manage"))]
)
def revoke_api_key(api_key_id: RowId, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Revoke an API key; requests using it are refused from now on."""
    service.revoke_api_key(session, api_key_id=api_key_id, actor=principal)
    return Response(status_code=204)
