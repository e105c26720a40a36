"""Template workflow: which status a template may move to, with four eyes."""

from __future__ import annotations


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
