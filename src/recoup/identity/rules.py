"""Pure identity decisions: the password policy, signing-secret strength, login lockout and
access-token claims."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")


def username_problem(username: str) -> str | None:
    """Return why ``username`` cannot be used, or ``None``."""
    if not USERNAME_PATTERN.match(username):
        return (
            "a username is 2–64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return None


def _character_class(character: str) -> str:
    if character.isdigit():
        return "digit"
    if character.isalpha():
        return "upper" if character.isupper() else "lower" if character.islower() else "letter"
    if character.isspace():
        return "space"
    return "symbol"


def password_problems(password: str, *, username: str) -> list[str]:
    """Return every way ``password`` breaks the policy (empty when it is acceptable)."""
    problems = []
    length = len(password)
    if length < MIN_PASSWORD_LENGTH:
        problems.append(
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters long (it has {length})"
        )
    if length > MAX_PASSWORD_LENGTH:
        problems.append(f"the password must be at most {MAX_PASSWORD_LENGTH} characters long")
    folded = unicodedata.normalize("NFKC", password).casefold()
    name = unicodedata.normalize("NFKC", username).casefold()
    if name and (folded == name or folded == name[::-1]):
        problems.append("the password cannot be the username")
    if password and len({_character_class(character) for character in password}) < 2:
        problems.append(
            "the password cannot be all one kind of character: mix letters, digits or symbols"
        )
    if password and len(set(password)) <= 2:
        problems.append("the password cannot repeat one or two characters")
    return problems


# A random secret of 32 hex characters (128 bits) estimates at 90 bits or more; a guessable
# one (one character repeated, two alternating) far below.
MIN_SECRET_BITS = 80


def estimated_secret_bits(value: str) -> float:
    """Estimate a secret's entropy from its own character frequencies (Shannon, in bits)."""
    if not value:
        return 0.0
    counts = Counter(value)
    length = len(value)
    return -sum(count * math.log2(count / length) for count in counts.values())


def _repeats_a_shorter_block(value: str) -> bool:
    length = len(value)
    return any(
        value == (value[:period] * (length // period + 1))[:length]
        for period in range(1, length // 2 + 1)
    )


def _mostly_sequential(value: str) -> bool:
    steps = [abs(ord(after) - ord(before)) for before, after in pairwise(value)]
    return bool(steps) and sum(step == 1 for step in steps) >= 0.75 * len(steps)


def secret_problem(value: str, *, min_length: int) -> str | None:
    """Say why ``value`` is unfit to sign tokens and cookies, or ``None`` when it is fit."""
    if len(value) < min_length:
        return f"shorter than {min_length} characters"
    if estimated_secret_bits(value) < MIN_SECRET_BITS or _repeats_a_shorter_block(value):
        return "too predictable: it repeats characters or a pattern"
    if _mostly_sequential(value):
        return "too predictable: it runs through consecutive characters"
    return None


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """How many failed sign-ins within a window lock a username or an address, and for how long."""

    user_failures: int = 5
    ip_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)
    # Any attempts, failed or not, one address may make per minute (a plain rate limit).
    ip_attempts_per_minute: int = 60


DEFAULT_LOCKOUT = LockoutPolicy()


@dataclass(frozen=True, slots=True)
class Lockout:
    """Whether sign-in is refused right now, why, and until when."""

    locked: bool
    scope: str | None = None  # "user", "ip" or "rate"
    until: datetime | None = None

    def retry_after_seconds(self, now: datetime) -> int:
        """Return the whole seconds until sign-in may be tried again (at least one)."""
        if self.until is None:
            return 1
        return max(1, math.ceil((self.until - now).total_seconds()))

    @property
    def message(self) -> str:
        if not self.locked or self.until is None:
            return ""
        if self.scope == "rate":
            return "too many sign-in attempts from this address; wait a minute and try again"
        who = "this account" if self.scope == "user" else "this address"
        return (
            f"too many failed sign-ins for {who}; try again after "
            f"{self.until.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        )


def _lock_from(
    failures: Iterable[datetime], *, threshold: int, now: datetime, policy: LockoutPolicy
) -> datetime | None:
    """Return until when ``failures`` lock sign-in, or ``None``.

    Failures are looked at over the window plus the lock time, so a lock lasts its whole
    length even after the failures that caused it leave the window.
    """
    recent = sorted(moment for moment in failures if moment > now - policy.window - policy.lock_for)
    for end in range(threshold - 1, len(recent)):
        first, last = recent[end - threshold + 1], recent[end]
        if last - first <= policy.window and last + policy.lock_for > now:
            return last + policy.lock_for
    return None


def lockout(
    *,
    user_failures: Iterable[datetime],
    ip_failures: Iterable[datetime],
    now: datetime,
    policy: LockoutPolicy = DEFAULT_LOCKOUT,
    ip_attempts_last_minute: int = 0,
) -> Lockout:
    """Decide whether a username or address is locked out, given its recent sign-in attempts."""
    if ip_attempts_last_minute >= policy.ip_attempts_per_minute:
        return Lockout(True, "rate", now + timedelta(minutes=1))
    user_until = _lock_from(user_failures, threshold=policy.user_failures, now=now, policy=policy)
    if user_until is not None:
        return Lockout(True, "user", user_until)
    ip_until = _lock_from(ip_failures, threshold=policy.ip_failures, now=now, policy=policy)
    if ip_until is not None:
        return Lockout(True, "ip", ip_until)
    return Lockout(False)


TOKEN_ISSUER = "recoup"
TOKEN_AUDIENCE = "recoup-api"
TOKEN_TYPE = "access"
# User ids live in a 64-bit integer column.
MAX_USER_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The checked contents of an access token."""

    user_id: int
    session_version: int
    expires_at: datetime


class TokenRejected(ValueError):
    """An access token is malformed, of the wrong kind or expired."""


def access_claims(
    *, user_id: int, session_version: int, issued_at: datetime, lifetime: timedelta
) -> dict[str, Any]:
    """Return the claims of a new access token."""
    expires_at = issued_at + lifetime
    return {
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "typ": TOKEN_TYPE,
        "sub": str(user_id),
        "sv": session_version,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
    }


def check_access_claims(claims: Mapping[str, Any], *, now: datetime) -> AccessClaims:
    """Return the claims of a decoded token, or raise ``TokenRejected`` saying what is wrong."""
    if claims.get("iss") != TOKEN_ISSUER or claims.get("aud") != TOKEN_AUDIENCE:
        raise TokenRejected("the token was not issued for this API")
    if claims.get("typ") != TOKEN_TYPE:
        raise TokenRejected("the token is not an access token")
    subject = claims.get("sub")
    # ASCII digits of a 64-bit id: str.isdigit alone also takes "²" and "١٢".
    if (
        not isinstance(subject, str)
        or not (subject.isascii() and subject.isdigit() and len(subject) <= 19)
        or not 1 <= int(subject) <= MAX_USER_ID
    ):
        raise TokenRejected("the token names no user")
    version = claims.get("sv")
    expires = claims.get("exp")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TokenRejected("the token has no session version")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise TokenRejected("the token has no expiry")
    try:
        expires_at = datetime.fromtimestamp(expires, tz=now.tzinfo)
    except (OverflowError, OSError, ValueError):
        raise TokenRejected("the token has no usable expiry") from None
    if expires_at <= now:
        raise TokenRejected("the token has expired; sign in again")
    return AccessClaims(user_id=int(subject), session_version=version, expires_at=expires_at)
