"""API shapes for sign-in, users and API keys."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from recoup.kit.schemas import CleanText


class Token(BaseModel):
    """A bearer token and how many seconds it lives."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


class User(BaseModel):
    """A user as shown to admins and to themselves."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: str
    institution_id: int | None
    active: bool
    last_login_at: datetime | None = None


class Me(BaseModel):
    """Who the caller is and what they may do."""

    kind: str
    username: str
    role: str | None
    institution_id: int | None
    is_platform_admin: bool
    permissions: list[str]


class UserCreate(BaseModel):
    """A new user; ``institution_id`` defaults to the admin's own institution."""

    username: str = Field(min_length=2, max_length=64)
    role: str
    password: str = Field(min_length=1, max_length=256)
    display_name: CleanText = Field(default="", max_length=128)
    institution_id: int | None = None


class ApiKeyCreate(BaseModel):
    """A new API key for an integrating system."""

    name: CleanText = Field(min_length=1, max_length=128)
    scopes: list[str] = Field(min_length=1, max_length=32)
    institution_id: int | None = None


class ApiKey(BaseModel):
    """A stored API key (never its secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scopes: list[str]
    institution_id: int
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class ApiKeyCreated(ApiKey):
    """A new API key with its secret, shown this once only."""

    key: str
