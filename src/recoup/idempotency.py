"""``Idempotency-Key`` on every API write: the same key and request get the same answer.

A client that sends ``Idempotency-Key: <its own unique string>`` with a POST, PUT, PATCH or
DELETE under ``/api/`` can retry it safely (a timeout, a dropped connection): the first
request that succeeds stores its answer, and a retry with the same key and the same request
gets that answer again — status, body and the header ``Idempotent-Replayed: true`` — without
doing the work twice. The same key with another request (method, path, query or JSON body)
is refused with 422 naming the header. Keys belong to the caller (the API key or the user,
within their institution) and are kept ``integration.idempotency_key_days`` days.

How it stays right under concurrency: the key's row is inserted *first*, in the request's
own transaction, and filled with the answer just before that transaction commits. A second
request with the key waits on the row's unique index until the first ends: it then replays
the committed answer, or — if the first was rolled back — does the work itself. An answer
of 4xx/5xx rolls the whole request back, the key's row with it, so a failed request can be
retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from recoup.deps import RESPONSE_STATE, SessionDep
from recoup.identity.dependencies import current_principal
from recoup.identity.permissions import is_public_path
from recoup.identity.principal import Principal
from recoup.kit.errors import Conflict, ValidationFailed
from recoup.models.integration import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255
# The answer's headers a replay repeats; the rest (cookies, dates) belong to the first answer.
KEPT_HEADERS = ("content-type", "location")


class Replay(Exception):
    """The request repeats an earlier one with the same key: answer what was answered then."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__(record.key)
        self.status_code = record.status_code or 200
        self.body = record.response_body
        self.headers = dict(record.response_headers or {})

    def response(self) -> Response:
        """Return the stored answer, marked as a replay."""
        headers = {**self.headers, REPLAYED_HEADER: "true"}
        media_type = headers.pop("content-type", None)
        return Response(
            content=(self.body or "").encode("utf-8") if self.body is not None else None,
            status_code=self.status_code,
            headers=headers,
            media_type=media_type,
        )


def check_key(key: str) -> str:
    """Return the key if usable; refuse an empty, overlong or non-printable one (422)."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationFailed(
            f"the {HEADER} header must be 1–{MAX_KEY_LENGTH} printable ASCII characters, "
            "e.g. a UUID the client makes once per operation",
            errors=[{"field": f"header.{HEADER}", "message": "1–255 printable ASCII characters"}],
        )
    return key


def canonical_body(body: bytes) -> bytes:
    """Return a JSON body with sorted keys and no spacing (other bodies as they are)."""
    if not body:
        return b""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """Return what makes two requests "the same request" for one key, as a SHA-256 hex digest."""
    ordered_query = "&".join(sorted(query.split("&"))) if query else ""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), ordered_query.encode()):
        digest.update(part + b"\n")
    digest.update(canonical_body(body))
    return digest.hexdigest()


def caller_of(principal: Principal) -> str | None:
    """Return whose keys these are (an API key's or a user's), or None for the system."""
    if principal.kind == "api_key" and principal.api_key_id is not None:
        return f"api_key:{principal.api_key_id}"
    if principal.kind == "user" and principal.user_id is not None:
        return f"user:{principal.user_id}"
    return None


def _find(session: Session, caller: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.caller == caller, IdempotencyRecord.key == key
        )
    )


def claim(
    session: Session,
    *,
    institution_id: int | None,
    caller: str,
    key: str,
    request_fingerprint: str,
    method: str,
    path: str,
) -> IdempotencyRecord:
    """Insert the key's row before the write, or raise ``Replay`` / 422 when it was used."""
    existing = _find(session, caller, key)
    if existing is None:
        record = IdempotencyRecord(
            institution_id=institution_id,
            caller=caller,
            key=key,
            fingerprint=request_fingerprint,
            method=method,
            path=path[:512],
            response_headers={},
        )
        try:
            # Waits here while another transaction holds the same key, until it ends.
            with session.begin_nested():
                session.add(record)
            return record
        except IntegrityError:
            existing = _find(session, caller, key)
            if existing is None:
                raise
    if existing.fingerprint != request_fingerprint:
        raise ValidationFailed(
            f"the {HEADER} {key!r} was already used for another request "
            f"({existing.method} {existing.path} with another body); "
            "send a new key for a new request",
            errors=[{"field": f"header.{HEADER}", "message": "already used for another request"}],
        )
    if existing.status_code is None:
        raise Conflict(f"the request with {HEADER} {key!r} is still being processed; retry later")
    raise Replay(existing)


def remember(session: Session, record: IdempotencyRecord, response: Response | None) -> None:
    """Store the answer on the key's row, in the request's transaction."""
    if response is None:
        return
    body = getattr(response, "body", b"")
    record.status_code = response.status_code
    record.response_body = bytes(body).decode("utf-8", errors="replace") if body else None
    record.response_headers = {
        name: response.headers[name] for name in KEPT_HEADERS if name in response.headers
    }
    session.flush()


async def guard(request: Request, session: SessionDep) -> AsyncIterator[None]:
    """App-wide dependency: claim the request's key first, store its answer last."""
    key = request.headers.get(HEADER)
    path = request.url.path
    if (
        key is None
        or request.method not in WRITE_METHODS
        or not path.startswith("/api/")
        or is_public_path(path)
    ):
        yield
        return
    check_key(key)
    principal = await current_principal(request, session)
    caller = caller_of(principal)
    if caller is None:
        yield
        return
    request_fingerprint = fingerprint(request.method, path, request.url.query, await request.body())
    record = await run_in_threadpool(
        lambda: claim(
            session,
            institution_id=principal.institution_id,
            caller=caller,
            key=key,
            request_fingerprint=request_fingerprint,
            method=request.method,
            path=path,
        )
    )
    yield
    response = getattr(request.state, RESPONSE_STATE, None)
    if response is not None and response.status_code < 400:
        await run_in_threadpool(remember, session, record, response)


def install(app: FastAPI) -> None:
    """Answer a replayed request with its stored answer."""

    @app.exception_handler(Replay)
    async def _replay(_request: Request, replay: Replay) -> Response:
        return replay.response()


def declare(document: dict[str, Any]) -> dict[str, Any]:
    """Declare the ``Idempotency-Key`` header on every API write in an OpenAPI document."""
    parameter = {
        "name": HEADER,
        "in": "header",
        "required": False,
        "description": (
            "A unique string per operation (e.g. a UUID). Retrying with the same key and the "
            "same request replays the first answer (with `Idempotent-Replayed: true`); the "
            "same key with another request is refused with 422. Kept "
            "`integration.idempotency_key_days` days."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        "example": "3f9c1d8e-6a57-4d2b-9d0e-2f1a9b7c5e40",
    }
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/api/") or is_public_path(path):
            continue
        for method, operation in operations.items():
            if method.upper() not in WRITE_METHODS:
                continue
            parameters = operation.setdefault("parameters", [])
            if not any(item.get("name") == HEADER for item in parameters):
                parameters.append(dict(parameter))
    return document
