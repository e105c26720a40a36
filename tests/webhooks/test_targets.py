"""Where webhooks may go: public addresses only, unless the operator opts in; checked when a
subscription is registered and again at every delivery, at the address actually connected to
(a name that resolves elsewhere later — DNS rebinding — is caught), and redirects not followed."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup import config
from recoup.config import Settings
from recoup.db import unit_of_work
from recoup.kit import events, jobs
from recoup.kit.clock import utcnow
from recoup.kit.errors import ValidationFailed
from recoup.models.webhooks import DeliveryStatus, WebhookDelivery
from recoup.webhooks import network, rules, service
from tests.factories import make_institution
from tests.webhooks.receiver import Receiver, receiver

PUBLIC = rules.TargetPolicy()
PRIVATE_ALLOWED = rules.TargetPolicy(allow_private=True)

REFUSED_ALWAYS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hooks",
    "http://[::ffff:169.254.169.254]/hooks",
    "http://[64:ff9b::a9fe:a9fe]/hooks",  # NAT64 of 169.254.169.254
    "http://[2002:a9fe:a9fe::1]/hooks",  # 6to4 of 169.254.169.254
    "http://0.0.0.0/hooks",
    "http://[::]/hooks",
    "http://224.0.0.1/hooks",
    "http://[ff02::1]/hooks",
    "http://240.0.0.1/hooks",
]
REFUSED_UNLESS_PRIVATE_ALLOWED = [
    "http://127.0.0.1:8080/hooks",
    "http://localhost/hooks",
    "http://LOCALHOST./hooks",
    "http://crm.localhost/hooks",
    "http://10.1.2.3/hooks",
    "http://172.16.0.9/hooks",
    "http://192.168.1.1/hooks",
    "http://100.64.0.1/hooks",
    "http://[::1]/hooks",
    "http://[fd00::5]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://[::ffff:7f00:1]/hooks",
    "http://2130706433/hooks",  # 127.0.0.1 as one number
    "http://0x7f.1/hooks",
    "http://0177.0.0.1/hooks",
    "http://127.1/hooks",
]
ALLOWED = [
    "https://crm.example.com/recoup/events",
    "https://93.184.216.34/hooks",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/hooks",
    "https://[::ffff:93.184.216.34]/hooks",
    "https://0177.0.0.1.example.com/hooks",
]


class TestAddresses:
    @pytest.mark.parametrize("url", REFUSED_ALWAYS)
    def test_link_local_and_unroutable_are_refused_even_with_private_allowed(
        self, url: str
    ) -> None:
        for policy in (PUBLIC, PRIVATE_ALLOWED):
            assert rules.url_problem(url, allow_http=True, policy=policy) is not None

    @pytest.mark.parametrize("url", REFUSED_UNLESS_PRIVATE_ALLOWED)
    def test_private_and_loopback_are_refused_by_default(self, url: str) -> None:
        problem = rules.url_problem(url, allow_http=True, policy=PUBLIC)
        assert problem is not None
        assert rules.PRIVATE_TARGETS_SETTING in problem
        assert rules.url_problem(url, allow_http=True, policy=PRIVATE_ALLOWED) is None

    @pytest.mark.parametrize("url", ALLOWED)
    def test_public_addresses_and_names_pass(self, url: str) -> None:
        assert rules.url_problem(url, allow_http=False, policy=PUBLIC) is None

    def test_the_metadata_address_names_why(self) -> None:
        problem = rules.url_problem("http://169.254.169.254/", allow_http=True, policy=PUBLIC)
        assert problem is not None
        assert "link-local" in problem
        assert "metadata" in problem

    def test_a_listed_network_is_allowed_and_nothing_else(self) -> None:
        policy = rules.TargetPolicy(allowed_networks=rules.allowed_networks("10.20.0.0/16"))
        assert rules.url_problem("http://10.20.3.4/hooks", allow_http=True, policy=policy) is None
        assert rules.url_problem("http://10.21.3.4/hooks", allow_http=True, policy=policy)
        metadata = rules.TargetPolicy(allowed_networks=rules.allowed_networks("169.254.0.0/16"))
        assert rules.address_problem(ipaddress.ip_address("169.254.169.254"), metadata) is None

    def test_one_refused_address_among_several_refuses_the_name(self) -> None:
        addresses = [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")]
        problem = rules.addresses_problem("crm.example.com", addresses, PUBLIC)
        assert problem is not None
        assert problem.startswith("crm.example.com resolves to 10.0.0.7")

    def test_a_bad_network_setting_is_refused_at_start_naming_it(self) -> None:
        with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not a network"):
            Settings(webhook_allowed_networks="192.168.0.0/24, 10.0.0.0/33")

    @pytest.mark.parametrize("address", ["10.0.0.7", "169.254.169.254", "0.0.0.0"])
    def test_a_refusal_at_delivery_names_the_settings_that_would_allow_it(
        self, address: str
    ) -> None:
        problem = rules.address_problem(ipaddress.ip_address(address), PUBLIC)
        assert problem is not None
        reason = rules.refused_target_error(problem)
        assert reason.startswith("not retried")
        assert problem in reason
        assert rules.ALLOWED_NETWORKS_SETTING in reason
        if address == "10.0.0.7":
            assert rules.PRIVATE_TARGETS_SETTING in reason


def _register(session: Session, url: str) -> service.CreatedSubscription:
    return service.create_subscription(
        session,
        institution_id=make_institution(session).id,
        url=url,
        event_types=["payment.received"],
        actor="admin",
    )


class TestRegistration:
    def test_a_private_address_is_refused_naming_the_field(self, session: Session) -> None:
        with pytest.raises(ValidationFailed) as refused:
            _register(session, "http://169.254.169.254/latest/meta-data/")
        assert refused.value.message.startswith("url: 169.254.169.254 is a link-local address")
        assert refused.value.extra["errors"][0]["field"] == "url"

    def test_a_name_resolving_to_a_private_address_is_refused(
        self, session: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(
            network, "resolve", lambda host, port: [ipaddress.ip_address("10.0.0.7")]
        )
        with pytest.raises(
            ValidationFailed, match=r"url: crm\.example\.com resolves to 10\.0\.0\.7"
        ):
            _register(session, "https://crm.example.com/hooks")

    def test_changing_the_address_is_checked_too(self, session: Session) -> None:
        created = _register(session, "https://crm.example.com/hooks")
        with pytest.raises(ValidationFailed, match=r"^url: ::1 is a private or loopback"):
            service.update_subscription(
                session, subscription=created.subscription, url="http://[::1]/", actor="admin"
            )

    def test_the_operator_allows_a_loopback_receiver(
        self, session: Session, private_webhook_targets: None
    ) -> None:
        created = _register(session, "http://127.0.0.1:8080/hooks")
        assert created.subscription.url == "http://127.0.0.1:8080/hooks"


# ---- at delivery ----------------------------------------------------------------------------


def _resolve_to(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    monkeypatch.setattr(network, "resolve", lambda host, port: [ipaddress.ip_address(address)])


def _subscribe(hook: Receiver, url: str) -> int:
    """Subscribe ``url`` for the receiver (which learns the secret); return the institution."""
    with unit_of_work() as session:
        institution = make_institution(session)
        hook.secret = service.create_subscription(
            session,
            institution_id=institution.id,
            url=url,
            event_types=["payment.received"],
            actor="admin",
        ).secret
        return institution.id


def _subscribe_by_name(hook: Receiver) -> int:
    """Subscribe the receiver under a public-looking name (its port on the loopback)."""
    port = hook.url.split(":")[2].split("/")[0]
    return _subscribe(hook, f"http://crm.example.com:{port}/hooks")


def _deliver_one(institution_id: int) -> WebhookDelivery:
    with unit_of_work() as session:
        events.emit(session, institution_id=institution_id, type="payment.received", data={})
    jobs.drain()
    with unit_of_work(write=False) as session:
        (delivery,) = session.scalars(select(WebhookDelivery))
        return delivery


def _allow_private_targets(monkeypatch: pytest.MonkeyPatch, allowed: bool) -> None:
    if allowed:
        monkeypatch.setenv("RECOUP_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    else:
        monkeypatch.delenv("RECOUP_WEBHOOK_ALLOW_PRIVATE_TARGETS")
    config.get_settings.cache_clear()


def _deliver_after_the_opt_in_is_withdrawn(
    hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> WebhookDelivery:
    """Subscribe the loopback receiver while the operator allows it, deliver after they
    turned it off."""
    _allow_private_targets(monkeypatch, True)
    institution_id = _subscribe(hook, hook.url)
    _allow_private_targets(monkeypatch, False)
    return _deliver_one(institution_id)


class TestAtDelivery:
    def test_a_name_rebound_to_the_loopback_is_not_reached(
        self, database: str, hook: Receiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _resolve_to(monkeypatch, "93.184.216.34")
        institution_id = _subscribe_by_name(hook)
        _resolve_to(monkeypatch, "127.0.0.1")  # the record changes after registration
        delivery = _deliver_one(institution_id)
        assert hook.received == []
        # A refused address stays refused: a dead letter at the first try, not retried.
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.dead, 1)
        assert delivery.next_attempt_at is None
        assert delivery.last_status_code is None
        assert delivery.last_error is not None
        assert "refused: crm.example.com resolves to 127.0.0.1" in delivery.last_error
        assert "RECOUP_WEBHOOK_ALLOW_PRIVATE_TARGETS" in delivery.last_error
        assert "RECOUP_WEBHOOK_ALLOWED_NETWORKS" in delivery.last_error
        # Nothing is scheduled: a day later there is still one try.
        jobs.drain(now=utcnow() + timedelta(days=1))
        with unit_of_work(write=False) as session:
            later = session.get(WebhookDelivery, delivery.id)
            assert later is not None
            assert (later.status, later.attempts) == (DeliveryStatus.dead, 1)

    def test_the_checked_address_is_the_one_connected_to(
        self,
        database: str,
        hook: Receiver,
        monkeypatch: pytest.MonkeyPatch,
        private_webhook_targets: None,
    ) -> None:
        # The name resolves (once, by Recoup) to the receiver's loopback address, allowed here:
        # the request reaches it under the URL's host name.
        _resolve_to(monkeypatch, "127.0.0.1")
        institution_id = _subscribe_by_name(hook)
        delivery = _deliver_one(institution_id)
        assert delivery.status == DeliveryStatus.delivered
        assert len(hook.received) == 1

    def test_a_redirect_is_not_followed(
        self, database: str, hook: Receiver, private_webhook_targets: None
    ) -> None:
        with receiver() as elsewhere:
            hook.answers = [307]
            hook.location = elsewhere.url
            delivery = _deliver_one(_subscribe(hook, hook.url))
            assert elsewhere.received == []
            assert elsewhere.refused == 0
        assert [item["status"] for item in hook.received] == [307]
        assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.retrying, 307)

    def test_without_the_opt_in_the_loopback_receiver_gets_nothing(
        self, database: str, hook: Receiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        delivery = _deliver_after_the_opt_in_is_withdrawn(hook, monkeypatch)
        assert hook.received == []
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.dead, 1)
        assert delivery.last_error is not None
        assert "refused: 127.0.0.1 is a private or loopback address" in delivery.last_error

    def test_a_refused_dead_letter_is_delivered_once_replayed_after_the_opt_in(
        self, database: str, hook: Receiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        delivery = _deliver_after_the_opt_in_is_withdrawn(hook, monkeypatch)
        assert delivery.status == DeliveryStatus.dead
        _allow_private_targets(monkeypatch, True)
        with unit_of_work() as session:
            dead = session.get(WebhookDelivery, delivery.id)
            assert dead is not None
            service.replay(session, delivery=dead, actor="admin")
        jobs.drain()
        with unit_of_work(write=False) as session:
            replayed = session.get(WebhookDelivery, delivery.id)
            assert replayed is not None
            assert replayed.status == DeliveryStatus.delivered
        assert len(hook.received) == 1
