"""Webhook decisions without I/O: signing, verifying, retry waits, addresses and answers.

A delivery is signed over ``<timestamp>.<body>`` with the subscription's secret::

    Recoup-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>

A receiver recomputes it, compares in constant time, and refuses a timestamp further from
its clock than the replay window (five minutes), so a captured delivery cannot be re-sent
later. Several ``v1=`` values (comma-separated) may appear while a secret is being changed.

Where deliveries may go (server-side request forgery): a receiver must be a public address.
Loopback, private (RFC 1918, unique local), shared (100.64.0.0/10) and documentation ranges
are refused unless the operator allows private targets; link-local (169.254.0.0/16, where
cloud metadata services answer, and fe80::/10), unspecified, multicast and reserved addresses
are refused even then, unless a network the operator lists contains them. An IPv6 address
that carries an IPv4 one (``::ffff:a.b.c.d``, NAT64, 6to4, Teredo) is judged by both.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from recoup.outbox.rules import backoff

SIGNATURE_VERSION = "v1"
REPLAY_WINDOW = timedelta(minutes=5)
# The first retry after about a minute, doubling to at most six hours between tries.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)
MAX_URL_LENGTH = 512

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Host names that always mean this machine (RFC 6761 reserves ``localhost`` and below it).
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# "This network": connecting to 0.x.y.z reaches the local machine on most systems.
THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# The shorthand IPv4 forms C's inet_aton (and so name resolution) accepts: 2130706433, 0x7f.1.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")
PRIVATE_TARGETS_SETTING = "RECOUP_WEBHOOK_ALLOW_PRIVATE_TARGETS"
ALLOWED_NETWORKS_SETTING = "RECOUP_WEBHOOK_ALLOWED_NETWORKS"


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which addresses deliveries may reach besides public ones (the operator's settings)."""

    allow_private: bool = False
    allowed_networks: tuple[Network, ...] = ()


def new_secret() -> str:
    """Return a fresh signing secret (shown to the subscriber once)."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the ``Recoup-Signature`` header value of a delivery."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def verify(
    secret: str,
    *,
    timestamp: str,
    body: bytes,
    signature_header: str,
    now: float,
    window: timedelta = REPLAY_WINDOW,
) -> bool:
    """Tell whether a delivery is authentic and recent (what a receiver checks)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > window.total_seconds():
        return False
    expected = signature(secret, timestamp, body)
    return any(
        hmac.compare_digest(expected, candidate.strip())
        for candidate in signature_header.split(",")
    )


def refused_target_error(problem: str) -> str:
    """Return a dead letter's reason when the target policy refused the receiver's address.

    Retrying cannot help: the address stays refused until the operator changes the target
    settings, so the reason names them and says how to send the delivery again.
    """
    settings = (
        ""
        if PRIVATE_TARGETS_SETTING in problem or ALLOWED_NETWORKS_SETTING in problem
        else f" (the target settings are {PRIVATE_TARGETS_SETTING} and {ALLOWED_NETWORKS_SETTING})"
    )
    return (
        f"not retried, the receiver's address is refused: {problem}{settings}; replay the "
        "dead letter once the settings allow the address or the subscription's URL changes"
    )[:1000]


def retry_wait(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Return the wait before try ``attempts + 1``: doubling, capped, with jitter."""
    return backoff(attempts, base=RETRY_BASE, cap=RETRY_CAP, rng=rng)


def delivered(status_code: int) -> bool:
    """Tell whether a receiver's answer acknowledges the delivery (any 2xx)."""
    return 200 <= status_code < 300


def url_problem(url: str, *, allow_http: bool, policy: TargetPolicy = TargetPolicy()) -> str | None:
    """Return why ``url`` cannot receive webhooks, or None when it can (names unresolved)."""
    if len(url) > MAX_URL_LENGTH:
        return f"the address is longer than {MAX_URL_LENGTH} characters"
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        wanted = "https:// (or http:// outside production)" if allow_http else "https://"
        return f"give an absolute {wanted} address, e.g. https://crm.example.com/recoup/events"
    if parts.username or parts.password:
        return "the address must not carry a user name or password; the signature authenticates"
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        return "the port must be a number from 1 to 65535"
    return host_problem(parts.hostname, policy)


def allowed_networks(text: str) -> tuple[Network, ...]:
    """Read a comma-separated list of networks (``10.20.0.0/16, fd00:1::/64``).

    Raises ``ValueError`` naming the entry that is not a network.
    """
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not a network; write addresses or CIDR ranges such as "
                "10.20.0.0/16 or fd00:1::/64, separated by commas"
            ) from None
    return tuple(networks)


def literal_address(host: str) -> Address | None:
    """Return the address a URL's host names literally (any IPv4 shorthand included), or None."""
    host = host.strip("[]").lower()
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    # inet_aton's forms: a.b.c.d, a.b.c (c is 16 bits), a.b (b is 24 bits), a (32 bits).
    try:
        *leading, last = [_inet_aton_number(part) for part in host.split(".")]
    except ValueError:  # an octal part with an 8 or 9: no address at all
        return None
    if any(part > 255 for part in leading) or last >= 256 ** (4 - len(leading)):
        return None
    value = last
    for index, part in enumerate(leading):
        value += part << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _inet_aton_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part, 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: Address, policy: TargetPolicy) -> str | None:
    """Return why deliveries must not reach ``address``, or None when they may."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        problem = address_problem(embedded, policy)
        if problem:
            return problem
    if any(address in network for network in policy.allowed_networks):
        return None
    if embedded is not None:
        return None  # the IPv4 address inside decides; the wrapper's range says nothing
    if address.is_link_local:
        return (
            f"{address} is a link-local address (cloud metadata services answer there); "
            f"only a network listed in {ALLOWED_NETWORKS_SETTING} may be link-local"
        )
    if not address.is_loopback and (
        address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or address in THIS_NETWORK
        or address == ipaddress.IPv4Address("255.255.255.255")
    ):
        return (
            f"{address} is not an address a receiver can have (unspecified, multicast or reserved)"
        )
    if address.is_global:
        return None
    if policy.allow_private:
        return None
    return (
        f"{address} is a private or loopback address; webhooks go to public addresses unless "
        f"the operator sets {PRIVATE_TARGETS_SETTING}=true (or lists the network in "
        f"{ALLOWED_NETWORKS_SETTING})"
    )


def addresses_problem(host: str, addresses: Iterable[Address], policy: TargetPolicy) -> str | None:
    """Return why ``host`` must not be reached when it resolves to ``addresses``, or None.

    Every address must pass: a name that resolves to one public and one private address
    would otherwise reach the private one on a later connection.
    """
    for address in addresses:
        problem = address_problem(address, policy)
        if problem:
            return problem if str(address) == host.strip("[]") else f"{host} resolves to {problem}"
    return None


def host_problem(host: str, policy: TargetPolicy) -> str | None:
    """Return why a URL's host is refused before any name is resolved, or None."""
    name = host.strip("[]").lower().rstrip(".")
    address = literal_address(name)
    if address is not None:
        return address_problem(address, policy)
    if (name in LOCAL_NAMES or name.endswith(".localhost")) and not policy.allow_private:
        return (
            f"{name} is this machine; webhooks go to public addresses unless the operator "
            f"sets {PRIVATE_TARGETS_SETTING}=true"
        )
    return None


def resolvable_addresses(answers: Sequence[str]) -> list[Address]:
    """Return the addresses of a name-resolution answer (scope ids dropped), de-duplicated."""
    return list(dict.fromkeys(ipaddress.ip_address(text.split("%", 1)[0]) for text in answers))
