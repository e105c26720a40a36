"""``Annotated`` dependency aliases so route handlers stay short."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from recoup.db import get_session

# scope="function": the commit runs before the response is sent, so a failed commit is a
# 500 the client sees, never a 200 for work that was rolled back.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
