"""API shapes of letters: a letter to queue, and what queueing it came to."""

from __future__ import annotations

from pydantic import BaseModel, Field

from recoup.kit.schemas import Day, RowIdField


class LetterCreate(BaseModel):
    """A letter to the debtor's address from an approved letter template."""

    debtor_id: RowIdField
    template_id: RowIdField
    account_id: RowIdField | None = None
    day: Day | None = Field(default=None, description="The print day; today if left out")


class LetterQueued(BaseModel):
    """What queueing a letter came to: an outbox message, or the rules that refused it."""

    queued: bool
    message_id: int | None
    status: str | None
    decision_id: int | None
    rule_ids: list[str]
    duplicate: bool
