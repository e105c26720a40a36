"""Where each domain's background jobs register: one import per domain ``tasks.py``."""

from __future__ import annotations


def register() -> None:
    """Import every domain's ``tasks.py`` so its handlers and schedules are known."""
    import recoup.analytics.tasks
    import recoup.cases.tasks
    import recoup.contact.tasks
    import recoup.cycle.tasks
    import recoup.identity.tasks
    import recoup.integration.tasks
    import recoup.outbox.tasks
    import recoup.plans.tasks
    import recoup.strategy.tasks
    import recoup.webhooks.tasks  # noqa: F401
