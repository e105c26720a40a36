"""The webhook API: subscriptions (the secret shown once), deliveries and dead-letter replay."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.principal import Principal
from recoup.institutions import repository as institutions
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated
from recoup.models.webhooks import WebhookSubscription
from recoup.webhooks import repository, service
from recoup.webhooks.schemas import (
    DeliveryRead,
    ReplayResult,
    SubscriptionCreate,
    SubscriptionRead,
    SubscriptionUpdate,
    SubscriptionWithSecret,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

MANAGE = "webhooks:manage"
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
DeliveryStatusName = Literal["pending", "retrying", "delivered", "dead"]


def _institution_id(session: SessionDep, principal: Principal) -> int:
    return institutions.require_callers(session, principal.institution_id, what="webhooks").id


def subscription_read(subscription: WebhookSubscription) -> SubscriptionRead:
    """Return the API shape of a subscription, without its secret."""
    return SubscriptionRead(
        id=subscription.id,
        url=subscription.url,
        event_types=list(subscription.event_types),
        description=subscription.description,
        active=subscription.active,
        created_by=subscription.created_by,
        created_at=subscription.created_at,
    )


def delivery_read(row: repository.DeliveryRow) -> DeliveryRead:
    """Return the API shape of a delivery with its event."""
    delivery, event = row.delivery, row.event
    return DeliveryRead(
        id=delivery.id,
        subscription_id=delivery.subscription_id,
        url=row.url,
        event_id=event.event_id,
        event_type=event.type,
        data=dict(event.data),
        occurred_at=event.occurred_at,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_attempt_at=delivery.last_attempt_at,
        delivered_at=delivery.delivered_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
    )


@router.get(
    "/subscriptions",
    response_model=list[SubscriptionRead],
    dependencies=[Depends(authorize(MANAGE))],
)
def list_subscriptions(principal: CurrentPrincipal, session: SessionDep) -> list[SubscriptionRead]:
    """List the institution's webhook subscriptions."""
    institution_id = _institution_id(session, principal)
    return [
        subscription_read(item)
        for item in repository.subscriptions(session, institution_id=institution_id)
    ]


@router.post(
    "/subscriptions",
    response_model=SubscriptionWithSecret,
    status_code=201,
    dependencies=[Depends(authorize(MANAGE))],
)
def create_subscription(
    body: SubscriptionCreate, principal: CurrentPrincipal, session: SessionDep
) -> SubscriptionWithSecret:
    """Subscribe an address to event types; the answer holds the signing secret, once."""
    created = service.create_subscription(
        session,
        institution_id=_institution_id(session, principal),
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        actor=principal.actor,
    )
    return SubscriptionWithSecret(
        **subscription_read(created.subscription).model_dump(), secret=created.secret
    )


@router.patch(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionRead,
    dependencies=[Depends(authorize(MANAGE))],
)
def update_subscription(
    subscription_id: RowId,
    body: SubscriptionUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> SubscriptionRead:
    """Change a subscription's address, event types, description or active flag."""
    subscription = repository.require_subscription(
        session,
        institution_id=_institution_id(session, principal),
        subscription_id=subscription_id,
    )
    return subscription_read(
        service.update_subscription(
            session,
            subscription=subscription,
            url=body.url,
            event_types=body.event_types,
            active=body.active,
            description=body.description,
            actor=principal.actor,
        )
    )


@router.post(
    "/subscriptions/{subscription_id}/secret",
    response_model=SubscriptionWithSecret,
    dependencies=[Depends(authorize(MANAGE))],
)
def rotate_secret(
    subscription_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> SubscriptionWithSecret:
    """Give a subscription a new signing secret; the answer holds it, once."""
    subscription = repository.require_subscription(
        session,
        institution_id=_institution_id(session, principal),
        subscription_id=subscription_id,
    )
    rotated = service.rotate_secret(session, subscription=subscription, actor=principal.actor)
    return SubscriptionWithSecret(
        **subscription_read(rotated.subscription).model_dump(), secret=rotated.secret
    )


@router.get(
    "/deliveries",
    response_model=Paginated[DeliveryRead],
    dependencies=[Depends(authorize(MANAGE))],
)
def list_deliveries(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: Annotated[DeliveryStatusName | None, Query()] = None,
    subscription_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    page: PageNumber = 1,
    size: PageSize = 50,
) -> Paginated[DeliveryRead]:
    """List deliveries, the newest first; ``status=dead`` is the dead-letter list."""
    institution_id = _institution_id(session, principal)
    if subscription_id is not None:
        repository.require_subscription(
            session, institution_id=institution_id, subscription_id=subscription_id
        )
    result = repository.deliveries(
        session,
        institution_id=institution_id,
        page=PageRequest(page, size),
        status=status,
        subscription_id=subscription_id,
    )
    return Paginated[DeliveryRead].of(result, delivery_read)


@router.post(
    "/deliveries/{delivery_id}/replay",
    response_model=ReplayResult,
    dependencies=[Depends(authorize(MANAGE))],
)
def replay_delivery(
    delivery_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> ReplayResult:
    """Send a dead letter again with a fresh set of tries."""
    delivery = repository.require_delivery(
        session, institution_id=_institution_id(session, principal), delivery_id=delivery_id
    )
    service.replay(session, delivery=delivery, actor=principal.actor)
    return ReplayResult(replayed=1)


@router.post(
    "/deliveries/replay-dead",
    response_model=ReplayResult,
    dependencies=[Depends(authorize(MANAGE))],
)
def replay_dead(principal: CurrentPrincipal, session: SessionDep) -> ReplayResult:
    """Send every dead letter again (up to 200 at a time)."""
    replayed = service.replay_dead(
        session, institution_id=_institution_id(session, principal), actor=principal.actor
    )
    return ReplayResult(replayed=replayed)
