"""Demo tests hash many demo passwords: use cheap Argon2 parameters for speed (never in the app)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from recoup.identity import service as identity


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        identity, "password_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
