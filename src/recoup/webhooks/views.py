"""The webhooks admin page: subscriptions (the secret shown once), delivery counts and the
dead-letter list with replay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import HTMLResponse, Response

from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.institutions import repository as institutions
from recoup.kit import events
from recoup.kit.errors import RecoupError
from recoup.kit.pagination import MAX_PAGE, PageRequest
from recoup.models.webhooks import DeliveryStatus
from recoup.web.templating import Flash, Viewer, page_url_for, redirect, render, viewer_with
from recoup.webhooks import repository, service

router = APIRouter(include_in_schema=False)

ManageWebhooks = Annotated[Viewer, viewer_with("webhooks:manage")]
CsrfChecked = Depends(csrf_protect)
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE = "/admin/webhooks"
DEAD_LETTERS_PER_PAGE = 25


def _institution_id(viewer: Viewer, session: SessionDep) -> int:
    assert viewer.principal is not None
    return institutions.require_callers(
        session, viewer.principal.institution_id, what="webhooks"
    ).id


def _page(
    viewer: Viewer,
    session: SessionDep,
    *,
    page: int = 1,
    new_secret: dict[str, str] | None = None,
    form_error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    institution_id = _institution_id(viewer, session)
    dead = repository.deliveries(
        session,
        institution_id=institution_id,
        page=PageRequest(page, DEAD_LETTERS_PER_PAGE),
        status=DeliveryStatus.dead,
    )
    context: dict[str, Any] = {
        "subscriptions": repository.subscriptions(session, institution_id=institution_id),
        "counts": repository.status_counts(session, institution_id=institution_id),
        "statuses": [status.value for status in DeliveryStatus],
        "dead": dead,
        "event_types": events.EVENT_TYPES,
        "page_url": page_url_for(viewer.request),
        "new_secret": new_secret,
        "form_error": form_error,
    }
    return render(
        viewer, "admin/webhooks.html", context, active_nav="admin", status_code=status_code
    )


@router.get(PAGE, response_class=HTMLResponse)
def webhooks_page(
    viewer: ManageWebhooks,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> HTMLResponse:
    """Show the subscriptions, how deliveries stand and the dead letters."""
    return _page(viewer, session, page=page)


@router.post(PAGE, response_class=HTMLResponse, dependencies=[CsrfChecked])
def create_subscription(
    viewer: ManageWebhooks,
    session: SessionDep,
    url: Annotated[str, Form(max_length=512)] = "",
    description: Annotated[str, Form(max_length=200)] = "",
    event_types: Annotated[list[str] | None, Form(max_length=32)] = None,
) -> HTMLResponse:
    """Subscribe an address and show its signing secret this once."""
    assert viewer.principal is not None
    try:
        created = service.create_subscription(
            session,
            institution_id=_institution_id(viewer, session),
            url=url,
            event_types=list(event_types or []),
            description=description,
            actor=viewer.principal.actor,
        )
    except RecoupError as error:
        session.rollback()  # the page shown below must not read the refused change
        return _page(viewer, session, form_error=error.message, status_code=error.status_code)
    new_secret = {"url": created.subscription.url, "secret": created.secret}
    return _page(viewer, session, new_secret=new_secret, status_code=201)


@router.post(f"{PAGE}/{{subscription_id}}/active", dependencies=[CsrfChecked])
def set_active(
    viewer: ManageWebhooks,
    session: SessionDep,
    subscription_id: RowId,
    active: Annotated[bool, Form()] = False,
) -> Response:
    """Turn a subscription on or off."""
    assert viewer.principal is not None
    subscription = repository.require_subscription(
        session,
        institution_id=_institution_id(viewer, session),
        subscription_id=subscription_id,
    )
    service.update_subscription(
        session, subscription=subscription, active=active, actor=viewer.principal.actor
    )
    key = "flash.webhook_on" if active else "flash.webhook_off"
    return redirect(PAGE, request=viewer.request, message=Flash(key))


@router.post(
    f"{PAGE}/{{subscription_id}}/secret", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def rotate_secret(viewer: ManageWebhooks, session: SessionDep, subscription_id: RowId) -> Response:
    """Give a subscription a new secret and show it this once."""
    assert viewer.principal is not None
    subscription = repository.require_subscription(
        session,
        institution_id=_institution_id(viewer, session),
        subscription_id=subscription_id,
    )
    rotated = service.rotate_secret(
        session, subscription=subscription, actor=viewer.principal.actor
    )
    return _page(viewer, session, new_secret={"url": subscription.url, "secret": rotated.secret})


@router.post(f"{PAGE}/deliveries/{{delivery_id}}/replay", dependencies=[CsrfChecked])
def replay_delivery(viewer: ManageWebhooks, session: SessionDep, delivery_id: RowId) -> Response:
    """Send one dead letter again."""
    assert viewer.principal is not None
    delivery = repository.require_delivery(
        session, institution_id=_institution_id(viewer, session), delivery_id=delivery_id
    )
    service.replay(session, delivery=delivery, actor=viewer.principal.actor)
    return redirect(PAGE, request=viewer.request, message=Flash("flash.webhook_replayed"))


@router.post(f"{PAGE}/deliveries/replay-dead", dependencies=[CsrfChecked])
def replay_dead(viewer: ManageWebhooks, session: SessionDep) -> Response:
    """Send every dead letter again (up to 200 at a time)."""
    assert viewer.principal is not None
    count = service.replay_dead(
        session, institution_id=_institution_id(viewer, session), actor=viewer.principal.actor
    )
    message = Flash("flash.webhooks_replayed", params={"count": str(count)})
    return redirect(PAGE, request=viewer.request, message=message)
