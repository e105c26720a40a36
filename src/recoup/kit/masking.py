"""Masking of personal data for display: 138****5678, 110101********1234, 张*."""

from __future__ import annotations


def mask_phone(value: str) -> str:
    """Keep the first 3 and last 4 digits of a phone number."""
    digits = value.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_national_id(value: str) -> str:
    """Keep the region prefix (6) and the last 4 characters of an id number."""
    text = value.strip()
    if len(text) <= 10:
        return "*" * len(text)
    return f"{text[:6]}{'*' * (len(text) - 10)}{text[-4:]}"


def mask_name(value: str) -> str:
    """Keep the first character of a name (the family name in Chinese)."""
    text = value.strip()
    if not text:
        return ""
    if text.isascii() and " " in text:
        return " ".join(part[:1] + "*" * (len(part) - 1) for part in text.split())
    return text[0] + "*" * max(1, len(text) - 1)


def mask_email(value: str) -> str:
    """Keep the first character of the local part and the domain."""
    local, _, domain = value.partition("@")
    if not domain:
        return mask_name(value)
    return f"{local[:1]}***@{domain}"


def mask_address(value: str) -> str:
    """Keep the first six characters of an address (province and city)."""
    text = value.strip()
    return text[:6] + "****" if len(text) > 6 else "****"


def mask_text(value: str, kind: str) -> str:
    """Mask ``value`` by its kind: phone/mobile/landline, national_id, name, email, address."""
    if kind in {"phone", "mobile", "landline"}:
        return mask_phone(value)
    if kind == "national_id":
        return mask_national_id(value)
    if kind == "email":
        return mask_email(value)
    if kind == "address":
        return mask_address(value)
    return mask_name(value)
