"""Reaching a webhook receiver only at an address the target policy allows.

A check of the URL when it is registered is not enough: the name may later resolve
elsewhere (DNS rebinding, or a record simply changed), so every delivery resolves the name
itself, checks every address it gets, and connects to one of those checked addresses —
never letting the HTTP client resolve the name a second time. TLS still verifies the
certificate against the URL's host name. Redirects are not followed (a 3xx is a failed try),
and proxies from the environment are ignored, so the checked address is the one reached.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from recoup.config import Settings, get_settings
from recoup.webhooks import rules


class TargetRefused(httpcore.ConnectError):
    """The receiver's address is one deliveries must not reach."""


def policy_of(settings: Settings | None = None) -> rules.TargetPolicy:
    """Return the operator's target policy (``RECOUP_WEBHOOK_*`` settings)."""
    settings = settings or get_settings()
    return rules.TargetPolicy(
        allow_private=settings.webhook_allow_private_targets,
        allowed_networks=rules.allowed_networks(settings.webhook_allowed_networks),
    )


def resolve(host: str, port: int) -> list[rules.Address]:
    """Return every address ``host`` resolves to (raises ``OSError`` when it does not)."""
    answers = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    return rules.resolvable_addresses([str(answer[4][0]) for answer in answers])


def registration_problem(url: str, policy: rules.TargetPolicy) -> str | None:
    """Return why ``url``'s host resolves to a refused address now, or None.

    A name that does not resolve yet passes: the receiver may not be in DNS before it is
    registered, and each delivery checks again.
    """
    parts = httpx.URL(url)
    try:
        addresses = resolve(parts.host, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        return None
    return rules.addresses_problem(parts.host, addresses, policy)


class _CheckedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to checked addresses of the host asked for."""

    def __init__(self, policy: rules.TargetPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as error:
            raise httpcore.ConnectError(f"{host} does not resolve: {error}") from error
        problem = rules.addresses_problem(host, addresses, self._policy)
        if problem:
            raise TargetRefused(f"refused: {problem}")
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return self._backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                failure = error
        raise failure or httpcore.ConnectError(f"{host} has no address")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class CheckedTransport(httpx.HTTPTransport):
    """An HTTP transport whose connections go through the target policy's checks."""

    def __init__(self, policy: rules.TargetPolicy) -> None:
        super().__init__()
        # httpx builds its pool with the default network backend; ours resolves and checks.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_CheckedBackend(policy)
        )


def client(policy: rules.TargetPolicy, timeout: float) -> httpx.Client:
    """Return an HTTP client for deliveries: checked connections, no redirects, no proxies."""
    return httpx.Client(
        transport=CheckedTransport(policy),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
