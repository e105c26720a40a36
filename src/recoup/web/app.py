"""What the web shell adds to the app: static files, error pages and the shell's own pages."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from recoup.web import errors, views


def install(app: FastAPI) -> None:
    """Serve ``/static``, render errors as pages for browsers, and add the shell pages."""
    static_dir = resources.files("recoup.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")
    errors.install(app)
    app.include_router(views.router)
