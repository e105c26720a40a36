"""Webhook test fixtures: a live database with jobs in memory, and a local receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recoup import config
from recoup.kit import jobs
from tests.webhooks.receiver import Receiver, receiver


@pytest.fixture
def database(live_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database every unit of work uses, with jobs kept in memory."""
    monkeypatch.setenv("RECOUP_JOBS_URL", "memory")
    config.get_settings.cache_clear()
    jobs.reset()
    yield live_database
    jobs.reset()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (reachable only where private targets are allowed)."""
    with receiver() as state:
        yield state
