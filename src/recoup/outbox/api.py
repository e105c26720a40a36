"""The outbox API: messages and dead-letter retries; provider callbacks (receipts, replies).

The provider callbacks (``/api/v1/outbox/hooks/…``) carry no user's credentials: each is
authenticated by its signature (the generic gateway's HMAC-SHA256 of the body with
``RECOUP_SMS_CALLBACK_SECRET``, Twilio's ``X-Twilio-Signature`` with its auth token) and is
idempotent (a receipt already recorded changes nothing).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import ValidationError

from recoup.config import get_settings
from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.institutions import repository as institutions_repository
from recoup.institutions.settings import settings_of
from recoup.kit.errors import NotAuthenticated, NotFound, ValidationFailed
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated
from recoup.models.institution import Institution
from recoup.models.outbox import OutboxMessage
from recoup.outbox import rules, service
from recoup.outbox.schemas import GatewayReceipt, GatewayReply, OutboxMessageRead

router = APIRouter(prefix="/api/v1/outbox", tags=["outbox"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
InstitutionCode = Annotated[str, Path(min_length=1, max_length=32)]


def message_read(message: OutboxMessage) -> OutboxMessageRead:
    """Return the API shape of a message."""
    return OutboxMessageRead(
        id=message.id,
        debtor_id=message.debtor_id,
        account_id=message.account_id,
        contact_point_id=message.contact_point_id,
        channel=str(message.channel),
        status=str(message.status),
        decision_id=message.decision_id,
        campaign_id=message.campaign_id,
        template_id=message.template_id,
        template_version=message.template_version,
        scheduled_at=message.scheduled_at,
        expires_at=message.expires_at,
        attempts=message.attempts,
        provider_message_id=message.provider_message_id,
        sent_at=message.sent_at,
        finished_at=message.finished_at,
        last_error=message.last_error,
    )


def _institution_of(principal: CurrentPrincipal) -> int:
    if principal.institution_id is None:
        raise NotFound("messages belong to an institution; sign in as one of its users")
    return principal.institution_id


@router.get(
    "/messages",
    response_model=Paginated[OutboxMessageRead],
    dependencies=[Depends(authorize("strategy:read"))],
)
def list_messages(
    principal: CurrentPrincipal,
    session: SessionDep,
    status_filter: Annotated[
        str | None, Query(alias="status", max_length=16, description="queued, sent, dead …")
    ] = None,
    page: PageNumber = 1,
    size: PageSize = 50,
) -> Paginated[OutboxMessageRead]:
    """List the outbox, newest first; no text or address (those are personal data)."""
    result = service.messages_page(
        session,
        principal=principal,
        institution_id=_institution_of(principal),
        page=PageRequest(page, size),
        status=status_filter,
    )
    return Paginated[OutboxMessageRead].of(result, message_read)


@router.post(
    "/messages/{message_id}/retry",
    response_model=OutboxMessageRead,
    dependencies=[Depends(authorize("strategy:manage"))],
)
def retry_message(
    message_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> OutboxMessageRead:
    """Give a dead message another set of tries; the gate is asked again before it leaves."""
    message = service.retry_message(
        session,
        principal=principal,
        institution_id=_institution_of(principal),
        message_id=message_id,
    )
    return message_read(message)


# Provider callbacks ----------------------------------------------------------------------


def _hook_institution(session: SessionDep, code: str) -> Institution:
    institution = institutions_repository.get_by_code(session, code)
    if institution is None:
        raise NotFound(f"no institution {code}")
    return institution


async def _gateway_body(request: Request) -> bytes:
    body = await request.body()
    secret = get_settings().sms_callback_secret
    if not secret:
        raise NotAuthenticated("callbacks are refused until RECOUP_SMS_CALLBACK_SECRET is set")
    expected = rules.gateway_signature(secret, body)
    if not rules.signature_matches(expected, request.headers.get("x-recoup-signature")):
        raise NotAuthenticated("the callback's X-Recoup-Signature does not match its body")
    return body


async def _twilio_form(request: Request, institution: Institution) -> dict[str, str]:
    token = get_settings().twilio_auth_token
    if not token:
        raise NotAuthenticated("callbacks are refused until RECOUP_TWILIO_AUTH_TOKEN is set")
    form = {key: str(value) for key, value in (await request.form()).items()}
    base = settings_of(institution).channels.callback_base_url
    url = f"{base.rstrip('/')}{request.url.path}" if base else str(request.url)
    expected = rules.twilio_signature(token, url, form)
    if not rules.signature_matches(expected, request.headers.get("x-twilio-signature")):
        raise NotAuthenticated("the callback's X-Twilio-Signature does not match")
    return form


@router.post(
    "/hooks/{institution_code}/gateway/status",
    status_code=status.HTTP_204_NO_CONTENT,
    include_in_schema=False,
)
async def gateway_receipt(
    institution_code: InstitutionCode, request: Request, session: SessionDep
) -> Response:
    """Record a delivery receipt from the generic SMS gateway."""
    institution = _hook_institution(session, institution_code)
    body = await _gateway_body(request)
    try:
        receipt = GatewayReceipt.model_validate_json(body)
    except ValidationError as error:
        raise ValidationFailed(f"the receipt is not valid: {error.errors()[0]['msg']}") from None
    service.record_receipt(
        session,
        institution_id=institution.id,
        provider_message_id=receipt.id,
        status=receipt.status,
        error_code=receipt.error_code,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/hooks/{institution_code}/gateway/inbound",
    status_code=status.HTTP_204_NO_CONTENT,
    include_in_schema=False,
)
async def gateway_reply(
    institution_code: InstitutionCode, request: Request, session: SessionDep
) -> Response:
    """Log a text a debtor sent back; STOP / 退订 / TD opts the number out of texts."""
    institution = _hook_institution(session, institution_code)
    body = await _gateway_body(request)
    try:
        reply = GatewayReply.model_validate_json(body)
    except ValidationError as error:
        raise ValidationFailed(f"the reply is not valid: {error.errors()[0]['msg']}") from None
    service.record_reply(
        session,
        institution_id=institution.id,
        sender=reply.sender,
        text=reply.text,
        provider_message_id=reply.id,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/hooks/{institution_code}/twilio/status",
    status_code=status.HTTP_204_NO_CONTENT,
    include_in_schema=False,
)
async def twilio_receipt(
    institution_code: InstitutionCode, request: Request, session: SessionDep
) -> Response:
    """Record a Twilio status callback (MessageSid, MessageStatus, ErrorCode)."""
    institution = _hook_institution(session, institution_code)
    form = await _twilio_form(request, institution)
    sid, message_status = form.get("MessageSid"), form.get("MessageStatus")
    if not sid or not message_status:
        raise ValidationFailed("a status callback needs MessageSid and MessageStatus")
    service.record_receipt(
        session,
        institution_id=institution.id,
        provider_message_id=sid[:128],
        status=message_status[:32],
        error_code=(form.get("ErrorCode") or None),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/hooks/{institution_code}/twilio/inbound",
    status_code=status.HTTP_204_NO_CONTENT,
    include_in_schema=False,
)
async def twilio_reply(
    institution_code: InstitutionCode, request: Request, session: SessionDep
) -> Response:
    """Log an incoming Twilio text (From, Body); STOP / 退订 / TD opts the number out."""
    institution = _hook_institution(session, institution_code)
    form = await _twilio_form(request, institution)
    if not form.get("From"):
        raise ValidationFailed("an incoming message needs From")
    service.record_reply(
        session,
        institution_id=institution.id,
        sender=form["From"][:64],
        text=form.get("Body", "")[:2000],
        provider_message_id=(form.get("MessageSid") or None),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
