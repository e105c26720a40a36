"""A bare FastAPI app with one trivial endpoint, served the way ``recoup serve`` serves Recoup.

The load bench's baseline: what uvicorn and FastAPI alone answer on this machine, in the same
run, so Recoup's figures read as a ratio that survives a busy machine.
Run: python bench/_bare_app.py --port N
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI


def create_app() -> FastAPI:
    """Return an app whose one route answers at once."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--shutdown-seconds", type=float, default=30)
    arguments = parser.parse_args()
    # The settings of ``recoup serve`` (recoup/cli.py): one process, the app from a factory.
    uvicorn.run(
        create_app,
        factory=True,
        host=arguments.host,
        port=arguments.port,
        timeout_graceful_shutdown=int(arguments.shutdown_seconds),
    )


if __name__ == "__main__":
    main()
