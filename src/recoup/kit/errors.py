"""Typed domain errors; one handler renders them as RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class RecoupError(Exception):
    """A failure a person can act on; carries the HTTP status it maps to."""

    status_code: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        message: str,
        *,
        message_key: str | None = None,
        message_params: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        # Pages show ``message_key`` from their catalog (with ``message_params``) instead of
        # the English ``message``, which API clients and logs keep.
        self.message_key = message_key
        self.message_params = dict(message_params or {})
        self.extra = extra


class NotFound(RecoupError):
    status_code = 404
    title = "Not found"


class Conflict(RecoupError):
    status_code = 409
    title = "Conflict"


class ValidationFailed(RecoupError):
    status_code = 422
    title = "Validation failed"


class NotAuthenticated(RecoupError):
    status_code = 401
    title = "Not authenticated"


class PermissionDenied(RecoupError):
    status_code = 403
    title = "Forbidden"


class TooManyRequests(RecoupError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after_seconds: int = 60, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.retry_after_seconds = max(1, retry_after_seconds)

    @property
    def headers(self) -> dict[str, str]:
        """The ``Retry-After`` header telling a client when asking again can succeed."""
        return {"Retry-After": str(self.retry_after_seconds)}
