"""The site icon is the app's own file, reachable without signing in, and every page links it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from recoup.app import create_app


def test_favicon_is_served_without_signing_in() -> None:
    with TestClient(create_app()) as client:
        icon = client.get("/favicon.ico")
        svg = client.get("/static/favicon.svg")
        login = client.get("/login")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert 'rel="icon" href="/static/favicon.svg"' in login.text
