"""Users, passwords, sign-in with lockout, access tokens and API keys. Never commits."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.config import get_settings
from recoup.identity import repository, rules
from recoup.identity.permissions import ROLES, scope_problems
from recoup.identity.principal import Principal
from recoup.identity.secret import secret_key
from recoup.kit.clock import aware, utcnow
from recoup.kit.errors import (
    Conflict,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    ValidationFailed,
)
from recoup.kit.pagination import Page, PageRequest
from recoup.models.identity import ApiKey, Role, User
from recoup.models.institution import Institution

# Argon2id with OWASP's parameters (m=19 MiB, t=2, p=1): a sign-in stays well under 100 ms on
# a small shared server while each guess still costs an attacker 19 MiB of memory. Hashes made
# with other parameters are upgraded at the next successful sign-in.
password_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
TOKEN_ALGORITHM = "HS256"
API_KEY_PREFIX = "rk_"
_API_KEY_SHAPE = re.compile(r"^rk_([0-9a-f]{8})_([A-Za-z0-9_-]{32,64})$")
_UNKNOWN_USER_HASH = password_hasher.hash(secrets.token_urlsafe(16))
WRONG_CREDENTIALS = "wrong username or password"


class LoginFailed(NotAuthenticated):
    """The username or password is wrong or the account disabled (deliberately not said which)."""


class LoginLocked(TooManyRequests):
    """Sign-in is refused for a while after repeated failures."""


Actor = Principal | str


def _actor_name(actor: Actor) -> str:
    return actor if isinstance(actor, str) else actor.actor


def _check_actor_manages(session: Session, actor: Actor, institution_id: int | None) -> None:
    """Allow a principal to manage only its own institution (a platform admin: any).

    Another institution is out of the caller's scope, and an unknown one does not exist:
    both are ``NotFound``, never a foreign-key error.
    """
    if not isinstance(actor, str) and not actor.is_platform_admin:
        if institution_id is None:
            raise PermissionDenied("you can only manage users and keys of your own institution")
        if institution_id != actor.institution_id:
            raise NotFound(f"no institution {institution_id}")
    if institution_id is not None and session.get(Institution, institution_id) is None:
        raise NotFound(f"no institution {institution_id}")


def hash_password(password: str) -> str:
    """Return the Argon2id hash of ``password``."""
    return password_hasher.hash(password)


def create_user(
    session: Session,
    *,
    username: str,
    role: str,
    institution_id: int | None,
    password: str,
    display_name: str = "",
    actor: Actor,
) -> User:
    """Add a user after checking the username, role and password policy."""
    _check_actor_manages(session, actor, institution_id)
    problems = []
    if (problem := rules.username_problem(username)) is not None:
        problems.append(problem)
    if role not in ROLES:
        problems.append(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    elif institution_id is None and role != "admin":
        problems.append("only an admin can be a platform user without an institution")
    problems.extend(rules.password_problems(password, username=username))
    if problems:
        raise ValidationFailed("; ".join(problems))
    if repository.get_user_by_username(session, username) is not None:
        raise Conflict(f"a user called {username!r} already exists")
    now = utcnow()
    user = User(
        username=username,
        role=Role(role),
        institution_id=institution_id,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        password_changed_at=now,
        session_version=1,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=_actor_name(actor),
        action="user.create",
        object_type="user",
        object_id=user.id,
        institution_id=institution_id,
        details={"username": username, "role": role},
    )
    return user


def authenticate(session: Session, *, username: str, password: str, ip: str) -> User:
    """Check a username and password, with lockout per username and per address; audit the outcome.

    Raises ``LoginLocked`` or ``LoginFailed``. The attempt is recorded either way, so the caller
    must commit before turning the error into a response (``identity.api`` shows how).
    """
    now = utcnow()
    policy = rules.DEFAULT_LOCKOUT
    since = now - policy.window - policy.lock_for
    decision = rules.lockout(
        user_failures=repository.failures_since(session, since=since, username=username),
        ip_failures=repository.failures_since(session, since=since, ip=ip),
        now=now,
        policy=policy,
        ip_attempts_last_minute=repository.attempts_since(
            session, ip=ip, since=now - timedelta(minutes=1)
        ),
    )
    user = repository.get_user_by_username(session, username)
    institution_id = user.institution_id if user else None
    if decision.locked:
        audit.record(
            session,
            actor=username[:128],
            action="auth.login_locked",
            object_type="user",
            object_id=user.id if user else "-",
            institution_id=institution_id,
            details={"ip": ip, "scope": decision.scope},
        )
        raise LoginLocked(decision.message, retry_after_seconds=decision.retry_after_seconds(now))

    if user is None:
        _verify(
            _UNKNOWN_USER_HASH, password
        )  # same work as a real check: no user enumeration by timing
        reason = "unknown user"
    elif not _verify(user.password_hash, password):
        reason = "wrong password"
    elif not user.active:
        reason = "user disabled"
    else:
        reason = ""

    repository.add_login_attempt(session, username=username, ip=ip, succeeded=not reason, at=now)
    if reason:
        if user is not None:
            user.failed_logins += 1
            after = rules.lockout(
                user_failures=repository.failures_since(session, since=since, username=username),
                ip_failures=(),
                now=now,
                policy=policy,
            )
            if after.locked:
                user.locked_until = after.until
        audit.record(
            session,
            actor=username[:128],
            action="auth.login_failed",
            object_type="user",
            object_id=user.id if user else "-",
            institution_id=institution_id,
            details={"ip": ip, "reason": reason},
        )
        raise LoginFailed(WRONG_CREDENTIALS)

    assert user is not None
    if password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(
        session,
        actor=user.username,
        action="auth.login",
        object_type="user",
        object_id=user.id,
        institution_id=user.institution_id,
        details={"ip": ip},
    )
    session.flush()
    return user


def record_logout(session: Session, *, principal: Principal) -> None:
    """Audit that a signed-in user signed out."""
    audit.record(
        session,
        actor=principal.actor,
        action="auth.logout",
        object_type="user",
        object_id=principal.user_id or "",
        institution_id=principal.institution_id,
    )


def _verify(password_hash: str, password: str) -> bool:
    try:
        return password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(session: Session, *, user: User, password: str, actor: Actor) -> None:
    """Set a new password and end every session and token of the user."""
    problems = rules.password_problems(password, username=user.username)
    if problems:
        raise ValidationFailed("; ".join(problems))
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.session_version += 1
    session.flush()
    audit.record(
        session,
        actor=_actor_name(actor),
        action="user.password_change",
        object_type="user",
        object_id=user.id,
        institution_id=user.institution_id,
    )


def end_all_sessions(session: Session, *, user: User, actor: Actor) -> None:
    """Revoke every access token and web session the user holds."""
    user.session_version += 1
    session.flush()
    audit.record(
        session,
        actor=_actor_name(actor),
        action="user.sessions_end",
        object_type="user",
        object_id=user.id,
        institution_id=user.institution_id,
    )


def _managed_user(session: Session, *, user_id: int, actor: Actor) -> User:
    """Return a user the actor may manage; anyone else is indistinguishable from no user."""
    user = repository.get_user(session, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    try:
        _check_actor_manages(session, actor, user.institution_id)
    except (PermissionDenied, NotFound):
        raise NotFound(f"no user {user_id}") from None
    return user


def managed_user_by_username(session: Session, *, username: str, actor: Actor) -> User:
    """Return the user called ``username`` if the actor may manage them."""
    user = repository.get_user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user called {username!r}")
    return _managed_user(session, user_id=user.id, actor=actor)


def _refuse_losing_last_admin(session: Session, *, user: User, actor: Actor) -> None:
    """Refuse a change that would leave the user's institution without an active admin."""
    if user.role != Role.admin or not user.active:
        return
    if isinstance(actor, Principal) and actor.user_id == user.id:
        raise Conflict("you cannot deactivate or demote yourself; ask another admin to do it")
    if repository.count_active_admins(session, institution_id=user.institution_id) <= 1:
        raise Conflict(f"{user.username} is the last active admin; make another user admin first")


def _audit_user(
    session: Session,
    user: User,
    actor: Actor,
    action: str,
    details: dict[str, str] | None = None,
) -> None:
    """Write the change to ``user`` and its audit event (the username, never PII)."""
    session.flush()
    audit.record(
        session,
        actor=_actor_name(actor),
        action=action,
        object_type="user",
        object_id=user.id,
        institution_id=user.institution_id,
        details={"username": user.username, **(details or {})},
    )


def reset_password(session: Session, *, user_id: int, password: str, actor: Actor) -> User:
    """Give a user a new password, lift any sign-in lock and end their sessions and tokens."""
    user = _managed_user(session, user_id=user_id, actor=actor)
    problems = rules.password_problems(password, username=user.username)
    if problems:
        raise ValidationFailed("; ".join(problems))
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None
    user.session_version += 1
    _audit_user(session, user, actor, "user.password_reset")
    return user


def deactivate_user(session: Session, *, user_id: int, actor: Actor) -> User:
    """Stop a user from signing in and end every session and token they hold."""
    user = _managed_user(session, user_id=user_id, actor=actor)
    if not user.active:
        raise Conflict(f"{user.username} is already deactivated")
    _refuse_losing_last_admin(session, user=user, actor=actor)
    user.active = False
    user.session_version += 1
    _audit_user(session, user, actor, "user.deactivate")
    return user


def activate_user(session: Session, *, user_id: int, actor: Actor) -> User:
    """Let a deactivated user sign in again."""
    user = _managed_user(session, user_id=user_id, actor=actor)
    if user.active:
        raise Conflict(f"{user.username} is already active")
    user.active = True
    user.failed_logins = 0
    user.locked_until = None
    _audit_user(session, user, actor, "user.activate")
    return user


def set_role(session: Session, *, user_id: int, role: str, actor: Actor) -> User:
    """Change a user's role; their sessions end so the new permissions apply at once."""
    user = _managed_user(session, user_id=user_id, actor=actor)
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if user.institution_id is None and role != "admin":
        raise ValidationFailed("a platform admin always has the admin role")
    previous = str(user.role)
    if previous == role:
        raise Conflict(f"{user.username} already has the role {role}")
    _refuse_losing_last_admin(session, user=user, actor=actor)
    user.role = Role(role)
    user.session_version += 1
    _audit_user(session, user, actor, "user.role_change", {"from": previous, "to": role})
    return user


def issue_access_token(user: User) -> tuple[str, datetime]:
    """Return a signed bearer token for ``user`` and when it expires."""
    settings = get_settings()
    claims = rules.access_claims(
        user_id=user.id,
        session_version=user.session_version,
        issued_at=utcnow(),
        lifetime=timedelta(minutes=settings.access_token_minutes),
    )
    token = jwt.encode(claims, secret_key(settings), algorithm=TOKEN_ALGORITHM)
    return token, datetime.fromtimestamp(claims["exp"], tz=utcnow().tzinfo)


def read_access_token(token: str) -> rules.AccessClaims:
    """Return the checked claims of a bearer token, or raise ``TokenRejected``."""
    try:
        claims = jwt.decode(
            token,
            secret_key(),
            algorithms=[TOKEN_ALGORITHM],
            audience=rules.TOKEN_AUDIENCE,
            issuer=rules.TOKEN_ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise rules.TokenRejected("the token has expired; sign in again") from error
    except jwt.PyJWTError as error:
        raise rules.TokenRejected(f"the token is not valid: {error}") from error
    return rules.check_access_claims(claims, now=utcnow())


def user_for_token(session: Session, token: str) -> User:
    """Return the active user a bearer token belongs to, or raise ``TokenRejected``."""
    claims = read_access_token(token)
    return active_user(session, user_id=claims.user_id, session_version=claims.session_version)


def active_user(session: Session, *, user_id: int, session_version: int) -> User:
    """Return the user if still active with the same session version, or raise ``TokenRejected``."""
    user = repository.get_user(session, user_id)
    if user is None or not user.active:
        raise rules.TokenRejected("the user no longer exists or is disabled")
    if user.session_version != session_version:
        raise rules.TokenRejected("the session was ended; sign in again")
    return user


def _api_key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_key(
    session: Session, *, institution_id: int, name: str, scopes: list[str], actor: Actor
) -> tuple[str, ApiKey]:
    """Create a scoped API key; return its plaintext (shown once, never stored) and the key."""
    _check_actor_manages(session, actor, institution_id)
    problems = scope_problems(scopes)
    if not scopes:
        problems.append("give the key at least one scope")
    if not name.strip():
        problems.append("give the key a name saying which system uses it")
    if problems:
        raise ValidationFailed("; ".join(problems))
    prefix = secrets.token_hex(4)
    while repository.get_api_key_by_prefix(session, prefix) is not None:
        prefix = secrets.token_hex(4)
    plaintext = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(
        institution_id=institution_id,
        name=name.strip()[:128],
        prefix=prefix,
        key_hash=_api_key_hash(plaintext),
        scopes=sorted(set(scopes)),
        created_by_id=actor.user_id if isinstance(actor, Principal) else None,
    )
    session.add(api_key)
    session.flush()
    audit.record(
        session,
        actor=_actor_name(actor),
        action="apikey.create",
        object_type="api_key",
        object_id=api_key.id,
        institution_id=institution_id,
        details={"name": api_key.name, "prefix": prefix, "scopes": api_key.scopes},
    )
    return plaintext, api_key


def looks_like_api_key(value: str) -> bool:
    """Tell whether a credential is shaped like a Recoup API key rather than a bearer token."""
    return value.startswith(API_KEY_PREFIX)


def api_key_for(session: Session, plaintext: str) -> ApiKey:
    """Return the live API key matching ``plaintext``, or raise ``TokenRejected``."""
    match = _API_KEY_SHAPE.match(plaintext)
    if match is None:
        raise rules.TokenRejected("the API key is malformed")
    api_key = repository.get_api_key_by_prefix(session, match.group(1))
    expected = api_key.key_hash if api_key else _api_key_hash("-")
    if not hmac.compare_digest(expected, _api_key_hash(plaintext)) or api_key is None:
        raise rules.TokenRejected("the API key is not valid")
    if api_key.revoked_at is not None:
        raise rules.TokenRejected("the API key was revoked")
    now = utcnow()
    if api_key.last_used_at is None or aware(api_key.last_used_at) < now - timedelta(minutes=1):
        api_key.last_used_at = now
    return api_key


def revoke_api_key(session: Session, *, api_key_id: int, actor: Actor) -> ApiKey:
    """Revoke an API key so it is refused from now on."""
    api_key = session.get(ApiKey, api_key_id)
    if api_key is None or (
        isinstance(actor, Principal)
        and not actor.is_platform_admin
        and api_key.institution_id != actor.institution_id
    ):
        raise NotFound(f"no API key {api_key_id}")
    if api_key.revoked_at is not None:
        raise Conflict(f"API key {api_key.prefix} ({api_key.name}) is already revoked")
    api_key.revoked_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=_actor_name(actor),
        action="apikey.revoke",
        object_type="api_key",
        object_id=api_key.id,
        institution_id=api_key.institution_id,
        details={"name": api_key.name, "prefix": api_key.prefix},
    )
    return api_key


def list_users(session: Session, *, principal: Principal, page: PageRequest) -> Page[User]:
    """Return one page of the users the principal manages (a platform admin: everyone)."""
    institution_id = None if principal.is_platform_admin else principal.institution_id
    if institution_id is None and not principal.is_platform_admin:
        return Page(items=[], total=0, page=page.page, size=page.size)
    users, total = repository.list_users(
        session, institution_id=institution_id, offset=page.offset, limit=page.size
    )
    return Page(items=users, total=total, page=page.page, size=page.size)


def list_api_keys(session: Session, *, principal: Principal) -> list[ApiKey]:
    """Return the API keys of the principal's institution (a platform admin: all)."""
    if principal.is_platform_admin:
        return repository.list_api_keys(session, institution_id=None)
    if principal.institution_id is None:
        return []
    return repository.list_api_keys(session, institution_id=principal.institution_id)
