"""Webhook decisions without I/O: signing, verifying, retry waits, addresses and answers.

A delivery is signed over ``<timestamp>.<body>`` with the subscription's secret::

    Recoup-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>

A receiver recomputes it, compares in constant time, and refuses a timestamp further from
its clock than the replay window (five minutes), so a captured delivery cannot be re-sent
later. Several ``v1=`` values (comma-separated) may appear while a secret is being changed.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from recoup.outbox.rules import backoff

SIGNATURE_VERSION = "v1"
REPLAY_WINDOW = timedelta(minutes=5)
# The first retry after about a minute, doubling to at most six hours between tries.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)
MAX_URL_LENGTH = 512


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


def retry_wait(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Return the wait before try ``attempts + 1``: doubling, capped, with jitter."""
    return backoff(attempts, base=RETRY_BASE, cap=RETRY_CAP, rng=rng)


def delivered(status_code: int) -> bool:
    """Tell whether a receiver's answer acknowledges the delivery (any 2xx)."""
    return 200 <= status_code < 300


def url_problem(url: str, *, allow_http: bool) -> str | None:
    """Return why ``url`` cannot receive webhooks, or None when it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"the address is longer than {MAX_URL_LENGTH} characters"
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        wanted = "https:// (or http:// outside production)" if allow_http else "https://"
        return f"give an absolute {wanted} address, e.g. https://crm.example.com/recoup/events"
    if parts.username or parts.password:
        return "the address must not carry a user name or password; the signature authenticates"
    return None
