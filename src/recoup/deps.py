"""``Annotated`` dependency aliases so route handlers stay short."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from recoup.db import get_session

SessionDep = Annotated[Session, Depends(get_session)]
