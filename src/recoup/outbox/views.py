"""The manager's outbox pages: send an approved campaign to a segment, watch messages leave."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.institutions import repository as institutions
from recoup.kit.errors import NotFound, RecoupError, ValidationFailed
from recoup.kit.pagination import MAX_PAGE, PageRequest
from recoup.models.institution import Institution
from recoup.outbox import service
from recoup.outbox.rules import CampaignStatus, OutboxStatus
from recoup.portfolio.rules import BUCKETS
from recoup.web import labels
from recoup.web.templating import Flash, Viewer, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

ReadOutbox = Annotated[Viewer, viewer_with("strategy:read")]
SendCampaigns = Annotated[Viewer, viewer_with("strategy:manage")]
CsrfChecked = Depends(csrf_protect)
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
CAMPAIGN_CHANNELS = ("sms", "email")
# Receipt statuses shown in the reader's words (others, a provider's own, as they came).
KNOWN_RECEIPTS = frozenset(
    {
        "queued",
        "accepted",
        "sending",
        "sent",
        "delivered",
        "read",
        "undelivered",
        "failed",
        "bounced",
    }
)
# The reasons the dispatcher holds a message back, by their stored words (no personal data).
HOLD_REASONS = {
    "not sent before its expiry": "outbox.reason.expired",
    "contact point invalid": "outbox.reason.invalid_contact",
    "payment received since queued": "outbox.reason.paid",
    "institution quiet hours": "outbox.reason.quiet_hours",
    "not at the provider after a restart; queued again": "outbox.reason.requeued",
}


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    return institutions.require_callers(session, viewer.principal.institution_id, what="messages")


def reason_text(viewer: Viewer, last_error: str | None) -> tuple[str, str | None]:
    """Return a message's last error in the reader's words, and the codes it cites."""
    if not last_error:
        return "", None
    if last_error in HOLD_REASONS:
        return viewer.text(HOLD_REASONS[last_error]), None
    if last_error.startswith("gate: "):
        return viewer.text("outbox.reason.gate"), last_error.removeprefix("gate: ")
    if last_error.startswith("provider receipt: "):
        return viewer.text("outbox.reason.receipt"), last_error.removeprefix("provider receipt: ")
    if last_error.startswith("delivery unknown"):
        return viewer.text("outbox.reason.unknown"), None
    return viewer.text("outbox.reason.provider"), last_error


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(
    viewer: ReadOutbox,
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    campaign: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> HTMLResponse:
    """List the outbox with its statuses, receipts and dead letters."""
    institution = _institution(session, viewer)
    assert viewer.principal is not None
    chosen = status if status in {s.value for s in OutboxStatus} else None
    messages = service.messages_page(
        session,
        principal=viewer.principal,
        institution_id=institution.id,
        page=PageRequest(page, 50),
        status=chosen,
        campaign_id=campaign,
    )
    counts, campaigns = service.outbox_overview(
        session, principal=viewer.principal, institution_id=institution.id, campaign_id=campaign
    )
    by_campaign = service.campaign_counts(
        session, institution_id=institution.id, campaign_ids=[item.id for item in campaigns]
    )
    receipts = service.receipts_of(
        session, institution_id=institution.id, message_ids=[m.id for m in messages.items]
    )

    def page_url(number: int) -> str:
        query = [f"page={number}"]
        if chosen:
            query.append(f"status={chosen}")
        if campaign:
            query.append(f"campaign={campaign}")
        return "/outbox?" + "&".join(query)

    context: dict[str, Any] = {
        "messages": messages,
        "counts": counts,
        "statuses": [s.value for s in OutboxStatus],
        "chosen": chosen,
        "campaign": campaign,
        "campaigns": campaigns,
        "campaign_counts": by_campaign,
        # Messages on their way (queued, sending, sent): the page refreshes itself until none is.
        # A campaign still queueing refreshes it too (its "queueing n / N" moves).
        "in_flight": any(counts.get(s, 0) for s in ("queued", "sending", "sent"))
        or any(item.status == CampaignStatus.QUEUEING for item in campaigns),
        "blocked_of": service.campaign_blocked,
        "receipts": receipts,
        "reason": lambda text: reason_text(viewer, text),
        "page_url": page_url,
        "can_send": viewer.allows("strategy:manage"),
        "known_receipts": KNOWN_RECEIPTS,
    }
    return render(viewer, "outbox/index.html", context, active_nav="outbox")


def _matching_template(
    viewer: Viewer, templates: list[Any], channel: str, template_id: int | None
) -> None:
    """Refuse a template of another kind than the channel, naming both and the fix."""
    if template_id is None:
        raise ValidationFailed(viewer.text("outbox.error.template"))
    chosen = next((item for item in templates if item.id == template_id), None)
    if chosen is not None and str(chosen.channel) != channel:
        raise ValidationFailed(
            viewer.text(
                "outbox.error.channel_mismatch",
                template=chosen.name,
                kind=viewer.text("compliance.channel." + str(chosen.channel)),
                channel=viewer.text("compliance.channel." + channel),
            )
        )


def _segment(buckets: list[str], segments: str, grades: list[str]) -> service.Segment:
    unknown = [bucket for bucket in buckets if bucket not in BUCKETS]
    if unknown:
        raise ValidationFailed(f"unknown bucket {unknown[0]!r}; use one of {', '.join(BUCKETS)}")
    wrong = [grade for grade in grades if grade not in service.GRADES]
    if wrong:
        raise ValidationFailed(f"unknown grade {wrong[0]!r}; use A to E")
    words = [part for part in segments.replace("，", ",").replace(" ", ",").split(",") if part]
    return service.Segment(tuple(buckets), tuple(words), tuple(grades))


@router.get("/outbox/campaigns/new", response_class=HTMLResponse)
def campaign_page(
    viewer: SendCampaigns,
    session: SessionDep,
    channel: Annotated[str, Query(max_length=16)] = "sms",
    template_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    bucket: Annotated[list[str] | None, Query(max_length=8)] = None,
    segments: Annotated[str, Query(max_length=200)] = "",
    grade: Annotated[list[str] | None, Query(max_length=1)] = None,
    name: Annotated[str, Query(max_length=128)] = "",
    preview: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    """Choose an approved template and a segment; preview how many it reaches and the gate
    would block before sending."""
    institution = _institution(session, viewer)
    assert viewer.principal is not None
    channel = channel if channel in CAMPAIGN_CHANNELS else "sms"
    templates = service.approved_templates(
        session, institution_id=institution.id, channels=CAMPAIGN_CHANNELS
    )
    result = None
    problem = None
    if preview and template_id is not None:
        try:
            _matching_template(viewer, templates, channel, template_id)
            result = service.preview_campaign(
                session,
                principal=viewer.principal,
                institution_id=institution.id,
                channel=channel,
                template_id=template_id,
                segment=_segment(bucket or [], segments, grade or []),
            )
        except NotFound:
            raise
        except RecoupError as error:
            problem = labels.refusal(error, viewer.locale, lead=False)
    context: dict[str, Any] = {
        "templates": templates,
        "channels": CAMPAIGN_CHANNELS,
        "buckets": BUCKETS,
        "grades": service.GRADES,
        "form": {
            "channel": channel,
            "template_id": template_id,
            "bucket": bucket or [],
            "segments": segments,
            "grade": grade or [],
            "name": name,
        },
        "preview": result,
        "problem": problem,
    }
    return render(viewer, "outbox/campaign.html", context, active_nav="outbox")


@router.post("/outbox/campaigns", response_class=HTMLResponse, dependencies=[CsrfChecked])
def send_campaign(
    viewer: SendCampaigns,
    session: SessionDep,
    name: Annotated[str, Form(max_length=128)] = "",
    channel: Annotated[str, Form(max_length=16)] = "sms",
    template_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
    bucket: Annotated[list[str] | None, Form(max_length=8)] = None,
    segments: Annotated[str, Form(max_length=200)] = "",
    grade: Annotated[list[str] | None, Form(max_length=1)] = None,
) -> Response:
    """Store the campaign and hand its queueing to a job (every reachable account of the
    segment the gate allows); the outbox page shows its progress."""
    institution = _institution(session, viewer)
    assert viewer.principal is not None
    try:
        if channel not in CAMPAIGN_CHANNELS:
            raise ValidationFailed(
                viewer.text("outbox.error.channel", channels=", ".join(CAMPAIGN_CHANNELS))
            )
        templates = service.approved_templates(
            session, institution_id=institution.id, channels=CAMPAIGN_CHANNELS
        )
        _matching_template(viewer, templates, channel, template_id)
        assert template_id is not None
        campaign = service.send_campaign(
            session,
            principal=viewer.principal,
            institution_id=institution.id,
            name=name,
            channel=channel,
            template_id=template_id,
            segment=_segment(bucket or [], segments, grade or []),
        )
    except NotFound:
        raise
    except RecoupError as error:
        return redirect(
            "/outbox/campaigns/new",
            request=viewer.request,
            message=Flash(
                "outbox.refused",
                level="error",
                params={"message": labels.refusal(error, viewer.locale, lead=False)},
            ),
        )
    return redirect(
        f"/outbox?campaign={campaign.id}",
        request=viewer.request,
        message=Flash("outbox.campaign_queueing", params={"total": str(campaign.total)}),
    )


@router.post(
    "/outbox/messages/{message_id}/retry", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def retry_message(viewer: SendCampaigns, session: SessionDep, message_id: RowId) -> Response:
    """Give a dead message another set of tries."""
    institution = _institution(session, viewer)
    assert viewer.principal is not None
    try:
        service.retry_message(
            session, principal=viewer.principal, institution_id=institution.id,
            message_id=message_id,
        )  # fmt: skip
    except NotFound:
        raise
    except RecoupError as error:
        return redirect(
            "/outbox?status=dead",
            request=viewer.request,
            message=Flash(
                "outbox.refused",
                level="error",
                params={"message": labels.refusal(error, viewer.locale, lead=False)},
            ),
        )
    return redirect("/outbox?status=dead", request=viewer.request, message=Flash("outbox.retried"))
