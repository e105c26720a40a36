"""Webhook test fixtures: a live database with jobs in memory, and a local receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Receiver, receiver


@pytest.fixture
def database(memory_jobs: str) -> str:
    """A live database with jobs kept in memory."""
    return memory_jobs


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (reachable only where private targets are allowed)."""
    with receiver() as state:
        yield state
