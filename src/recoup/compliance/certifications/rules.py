"""How an agent's compliance certificate stands on a day."""

from __future__ import annotations

from datetime import date, timedelta

CERTIFICATE_EXPIRY_WARNING_DAYS = 30


def certificate_standing(
    expires_on: date | None, *, today: date, warning_days: int = CERTIFICATE_EXPIRY_WARNING_DAYS
) -> str:
    """Say whether a certificate is valid, expiring within the warning days, expired or missing."""
    if expires_on is None:
        return "missing"
    if expires_on < today:
        return "expired"
    if expires_on <= today + timedelta(days=warning_days):
        return "expiring"
    return "valid"
