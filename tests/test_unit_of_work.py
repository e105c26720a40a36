"""One transaction rule for requests: commit only on success, roll back on any refusal."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from recoup.app import problem
from recoup.audit import service as audit
from recoup.db import keeps_refusals, unit_of_work
from recoup.deps import SessionDep, commit_only_on_success
from recoup.kit.errors import Conflict, RecoupError
from recoup.models import AuditEvent
from recoup.web.templating import Flash, redirect


def _app() -> FastAPI:
    app = FastAPI()

    @app.exception_handler(RecoupError)
    async def _domain_error(_request: Request, error: RecoupError) -> JSONResponse:
        return problem(error.status_code, error.title, error.message)

    def write(session: SessionDep, name: str) -> None:
        audit.record(session, actor="test", action=name, object_type="test", object_id="1")
        session.flush()

    @app.post("/ok")
    def ok(session: SessionDep) -> dict[str, bool]:
        write(session, "uow.ok")
        return {"ok": True}

    @app.post("/answered-422")
    def answered(session: SessionDep) -> JSONResponse:
        write(session, "uow.answered")
        return JSONResponse({"detail": "refused after writing"}, status_code=422)

    @app.post("/raised-409")
    def raised(session: SessionDep) -> None:
        write(session, "uow.raised")
        raise Conflict("refused after writing")

    @app.post("/redirect-with-error")
    def redirected(request: Request, session: SessionDep) -> object:
        write(session, "uow.redirected")
        return redirect("/", request=request, message=Flash("x", level="error"))

    @app.post("/redirect-with-success")
    def redirected_ok(request: Request, session: SessionDep) -> object:
        write(session, "uow.redirected_ok")
        return redirect("/", request=request, message=Flash("x", level="success"))

    @app.post("/kept-401")
    @keeps_refusals
    def kept(session: SessionDep) -> JSONResponse:
        write(session, "uow.kept")
        return JSONResponse({"detail": "wrong password"}, status_code=401)

    commit_only_on_success(app)
    return app


def _written(action: str) -> int:
    with unit_of_work(write=False) as session:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        return session.scalar(query) or 0


class TestRequestTransactions:
    def test_refusals_leave_no_row_and_successes_commit(self, live_database: str) -> None:
        with TestClient(_app(), raise_server_exceptions=False) as client:
            assert client.post("/ok").status_code == 200
            assert client.post("/answered-422").status_code == 422
            assert client.post("/raised-409").status_code == 409
            assert client.post("/redirect-with-error", follow_redirects=False).status_code == 303
            assert client.post("/redirect-with-success", follow_redirects=False).status_code == 303
            assert client.post("/kept-401").status_code == 401
        assert _written("uow.ok") == 1
        assert _written("uow.answered") == 0
        assert _written("uow.raised") == 0
        assert _written("uow.redirected") == 0
        assert _written("uow.redirected_ok") == 1
        assert _written("uow.kept") == 1  # a failed sign-in attempt must be kept

    def test_the_product_app_keeps_failed_sign_in_attempts(self, live_database: str) -> None:
        from recoup.app import create_app
        from recoup.models.identity import LoginAttempt

        with TestClient(create_app(), raise_server_exceptions=False) as client:
            response = client.post(
                "/api/v1/auth/token", data={"username": "nobody", "password": "wrong-password"}
            )
        assert response.status_code == 401
        with unit_of_work(write=False) as session:
            attempts = session.scalar(select(func.count()).select_from(LoginAttempt))
        assert attempts == 1
