"""Pure rules of call lists: the dialer CSV's columns, spreadsheet-safe cells, call links.

The CSV is what a predictive or preview dialer imports: one row per call to make, the number
in E.164 when it can be read (masked unless the person exporting may reveal PII), and the
``entry_id`` the dialer sends back with each call's result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from recoup.kit.text import FORMULA_PREFIXES

# The dialer CSV's columns, in order (docs/channels.md documents each).
CSV_COLUMNS: tuple[str, ...] = (
    "entry_id",
    "position",
    "case_id",
    "debtor_ref",
    "account_ref",
    "phone",
    "phone_kind",
    "timezone",
    "balance",
    "currency",
    "agent",
)

# A phone number the dialer can dial: "+" and 6–15 digits (E.164), or plain digits. It carries
# no formula however a spreadsheet reads it, so it is written as it is.
_DIALABLE = re.compile(r"\+?[0-9]{3,15}")
SIP_PLACEHOLDER = "{number}"


def safe_cell(value: object) -> str:
    """Return a CSV cell a spreadsheet will not run as a formula.

    Text starting with ``= + - @``, a tab or a carriage return gets a leading apostrophe, as
    OWASP advises; a dialable phone number is left as it is (``+86…`` is a number, not code).
    """
    text = "" if value is None else str(value)
    if _DIALABLE.fullmatch(text):
        return text
    if text[:1] in FORMULA_PREFIXES or text[:1] in ("\t", "\r", "\n"):
        return "'" + text
    return text


def csv_row(values: Mapping[str, object]) -> list[str]:
    """Return one row of the dialer CSV from a mapping of its columns."""
    return [safe_cell(values.get(column)) for column in CSV_COLUMNS]


def sip_template_problem(template: str) -> str | None:
    """Return why a SIP URI template cannot make links (None when it can)."""
    if not template.startswith(("sip:", "sips:")):
        return "a SIP URI template starts with sip: or sips:, e.g. sip:{number}@pbx.example.com"
    if template.count(SIP_PLACEHOLDER) != 1:
        return "a SIP URI template holds {number} exactly once, e.g. sip:{number}@pbx.example.com"
    if any(character.isspace() for character in template):
        return "a SIP URI template holds no spaces"
    return None


@dataclass(frozen=True, slots=True)
class CallLinks:
    """The click-to-call links of one number."""

    tel: str
    sip: str | None


def call_links(number: str, *, sip_template: str | None) -> CallLinks:
    """Return the ``tel:`` link of a number and its SIP link when a template is configured."""
    dialable = "".join(character for character in number if character.isdigit() or character == "+")
    tel = f"tel:{quote(dialable, safe='+')}"
    sip = None
    if sip_template and sip_template_problem(sip_template) is None:
        sip = sip_template.replace(SIP_PLACEHOLDER, quote(dialable, safe="+"))
    return CallLinks(tel=tel, sip=sip)
