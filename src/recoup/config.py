"""Recoup's settings: one class, read from ``RECOUP_*`` environment variables."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
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
    # Requests served at once per process (also the database pool size); more wait in line.
    max_concurrent_requests: int = Field(default=20, ge=1, le=500)
    # How long a request may wait in line for a free slot before it gets 503 + Retry-After.
    request_queue_seconds: float = Field(default=10.0, gt=0, le=300)
    # How many requests may wait in line at once before new ones get an immediate 503.
    max_queued_requests: int = Field(default=200, ge=0)
    # Where background jobs queue: sqlite:///PATH (default: jobs.db in the data folder),
    # redis://HOST:PORT/DB for several machines, or memory (tests).
    jobs_url: str = ""
    # API rate limits (docs/api.md): requests a minute per API key (an institution may set its
    # own, ``integration.api_requests_per_minute``), per signed-in user (web session or bearer
    # token) and per IP address for anonymous calls.
    api_key_requests_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    user_requests_per_minute: int = Field(default=1200, ge=1, le=1_000_000)
    anonymous_requests_per_minute: int = Field(default=300, ge=1, le=1_000_000)
    # Where the rate-limit counters live: redis://HOST:PORT/DB shares them between processes,
    # memory keeps them in each process; empty: the job store's Redis if it is one, else memory.
    rate_limit_url: str = ""
    # Where institutions' scheduled file drops live (each a folder inside it; an SFTP server's
    # upload folders can be mounted here). Empty: the data folder's ``drops``.
    drop_root: Path | None = None
    # The name of the job queue (its key prefix in Redis): deployments sharing one broker
    # keep apart by it.
    jobs_queue: str = Field(default="recoup", min_length=1, max_length=64)
    # A job handed to the queue but not finished this long after is handed over again (its
    # worker died or the queue was lost); 0 means ten minutes. Keep it above the longest job.
    jobs_requeue_seconds: int = Field(default=0, ge=0, le=86_400)
    # How many shards the heavy cycle stages split into as jobs when a broker is configured
    # (0 or 1: the whole cycle runs in the process that runs it).
    cycle_shards: int = Field(default=4, ge=0, le=256)
    # Worker processes a cycle stage run in one process may compute in beside it (scoring's
    # reads and scores): -1, one per core it may run on (none on one core); 0, none.
    cycle_workers: int = Field(default=-1, ge=-1, le=64)
    # Worker threads of `recoup worker` and of the worker embedded in `recoup serve`.
    worker_threads: int = Field(default=2, ge=1, le=64)
    # Whether this web process runs a worker too (`recoup serve` turns it on unless told not to).
    embedded_worker: bool = False
    # On SIGTERM, in-flight requests get this long to finish before the process exits.
    shutdown_seconds: int = Field(default=10, ge=1, le=600)
    sql_echo: bool = False
    # Webhook receivers (docs/webhooks.md): public addresses only, unless the operator allows
    # private and loopback ones (an on-premise receiver) or lists networks (CIDR ranges,
    # comma-separated) that deliveries may reach whatever they are.
    webhook_allow_private_targets: bool = False
    webhook_allowed_networks: str = ""
    # Message providers' secrets (docs/channels.md); the rest of their settings are the
    # institution's ``channels`` section.
    smtp_password: str = ""
    sms_api_key: str = ""
    twilio_auth_token: str = ""
    # Shared secret that signs the generic SMS gateway's receipts and replies (HMAC-SHA256).
    sms_callback_secret: str = ""

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        from recoup.webhooks.rules import allowed_networks

        allowed_networks(value)
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'recoup.db').as_posix()}"
        if self.keyring_file is None:
            self.keyring_file = self.data_dir / "keyring.json"
        if self.drop_root is None:
            self.drop_root = self.data_dir / "drops"
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
