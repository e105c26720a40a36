"""Template workflow: which status a template may move to, with four eyes."""

from __future__ import annotations

from recoup.contact.rules import Party
from recoup.enums import SCRIPT_KIND, ScriptSituation


class TemplateTransitionRefused(ValueError):
    """A template cannot move to the requested status."""


TEMPLATE_TRANSITIONS = {
    "submit": ({"draft", "rejected"}, "submitted"),
    "approve": ({"submitted"}, "approved"),
    "reject": ({"submitted", "approved"}, "rejected"),
}


def template_transition(
    *,
    action: str,
    status: str,
    author_id: int | None,
    reviewer_id: int | None,
    review_passed: bool,
) -> str:
    """Return the template's next status, or refuse: four eyes, and only clean texts approved."""
    if action not in TEMPLATE_TRANSITIONS:
        raise TemplateTransitionRefused(f"unknown action {action!r}")
    sources, target = TEMPLATE_TRANSITIONS[action]
    if status not in sources:
        raise TemplateTransitionRefused(
            f"a {status} template cannot be {target}; it must be {' or '.join(sorted(sources))}"
        )
    if action in {"approve", "reject"} and author_id is not None and author_id == reviewer_id:
        raise TemplateTransitionRefused(
            "the author cannot review their own template; another compliance officer must"
        )
    if action == "approve" and not review_passed:
        raise TemplateTransitionRefused(
            "the template still has review findings; fix them and submit it again"
        )
    return target


# Scripts are read aloud to someone: on a call or at a visit.
SCRIPT_CHANNELS = frozenset({"call", "visit"})


# Scripts for whoever answers when it is not the debtor: they must not disclose the debt.
THIRD_PARTY_SITUATIONS = frozenset({ScriptSituation.third_party, ScriptSituation.wrong_number})


def script_audience(situation: ScriptSituation) -> Party:
    """Return who a situation's script is said to: anything about the debt only to the debtor."""
    return Party.THIRD_PARTY if situation in THIRD_PARTY_SITUATIONS else Party.DEBTOR


def script_problem(
    *,
    kind: str | None,
    situation: str | None,
    guidance: str | None,
    channel: str,
    audience: str | None = None,
) -> tuple[str, str] | None:
    """Return (field, problem) when a template's script fields do not fit its kind, else None."""
    if kind != SCRIPT_KIND:
        if situation or guidance:
            return "situation", "only a call script (kind 'script') has a situation and guidance"
        return None
    if situation not in set(ScriptSituation):
        return "situation", "choose the situation the script is for: " + ", ".join(
            situation.value for situation in ScriptSituation
        )
    if not (guidance or "").strip():
        return "guidance", "write the agent's de-escalation guidance (a few short points)"
    if channel not in SCRIPT_CHANNELS:
        return "channel", "a script is spoken: its channel is call or visit"
    expected = script_audience(ScriptSituation(situation))
    if audience is not None and audience != expected:
        return "audience", (
            f"a {situation} script is said to the {expected.value.replace('_', ' ')}, "
            f"so it is reviewed for that audience; choose {expected.value}"
        )
    return None
