"""Recoup's settings: one class, read from ``RECOUP_*`` environment variables."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    production = "production"


class Settings(BaseSettings):
    """Everything configurable about a Recoup process."""

    model_config = SettingsConfigDict(env_prefix="RECOUP_", env_file=".env", extra="ignore")

    env: Environment = Environment.development
    data_dir: Path = Field(default=Path("var"))
    database_url: str = ""
    # Key ring for PII encryption: a JSON file {"active": "k2", "keys": {"k1": "<b64>", ...}}.
    keyring_file: Path | None = None
    # Secret for session cookies, CSRF and bearer tokens.
    secret_key: str = ""
    access_token_minutes: int = 60
    max_body_bytes: int = 2_000_000
    sql_echo: bool = False

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'recoup.db').as_posix()}"
        if self.keyring_file is None:
            self.keyring_file = self.data_dir / "keyring.json"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_development(self) -> bool:
        return self.env is Environment.development


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (cached; tests clear the cache)."""
    return Settings()
