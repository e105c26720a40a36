"""Time the agent workspace pages on the demo database: median and p90 server time per route.

Run: python bench/bench_workspace.py [--database sqlite:///var/recoup.db] [--repeat 15]
     [--at 2026-12-07T03:00:00+00:00]

Set up the demo first (``bash scripts/demo`` or ``recoup demo --no-serve``). The database is
copied to a temporary file first (logging contacts writes). Signs in as the demo agent owning
the most live cases and times, in process with a TestClient: My work, a filtered page of it,
next case (the gate's read-only preview over the agent's cases), a case page, and logging a
call (a gate check, the outcome, a note and its review scan). ``--at`` fixes the workspace's
clock (by default now: at night every case is passed over, the slowest next-case).
Target: every page under 300 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


def _timed(call: Callable[[], object], repeat: int) -> list[float]:
    call()  # warm caches (templates, compiled gate) once
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        found.append((time.perf_counter() - started) * 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=f"sqlite:///{ROOT / 'var' / 'recoup.db'}")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--at", default=None, help="the workspace clock, ISO with offset")
    options = parser.parse_args()
    source = options.database.removeprefix("sqlite:///")
    folder = Path(tempfile.mkdtemp(prefix="recoup-bench-workspace-"))
    copy = folder / "recoup.db"
    shutil.copyfile(source, copy)
    for suffix in ("-wal", "-shm"):
        if Path(source + suffix).exists():
            shutil.copyfile(source + suffix, str(copy) + suffix)

    import os

    os.environ["RECOUP_DATABASE_URL"] = f"sqlite:///{copy}"
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select
    from starlette.responses import Response

    from recoup import config, db
    from recoup.app import create_app
    from recoup.identity.dependencies import CSRF_HEADER, SESSION_COOKIE, login_session
    from recoup.models import User
    from recoup.models.cases import Case
    from recoup.workspace import service

    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    if options.at:
        fixed = datetime.fromisoformat(options.at)
        service.utcnow = lambda: fixed  # type: ignore[assignment]
    with db.unit_of_work() as session:
        owner, cases = session.execute(
            select(Case.owner_id, func.count())
            .where(Case.owner_id.is_not(None), Case.state != "closed")
            .group_by(Case.owner_id)
            .order_by(func.count().desc())
        ).first() or (None, 0)
        if owner is None:
            raise SystemExit("no agent owns a live case: seed the demo first")
        agent = session.get(User, owner)
        assert agent is not None
        case_id = session.scalar(
            select(Case.id)
            .where(Case.owner_id == owner, Case.state != "closed")
            .order_by(Case.priority.desc())
        )
        response = Response()
        csrf = login_session(response, agent)
        cookie = response.headers["set-cookie"].split(f"{SESSION_COOKIE}=")[1].split(";")[0]
        username = agent.username
    print(f"agent {username}: {cases} live cases; case page #{case_id}")
    client = TestClient(create_app())
    client.cookies.set(SESSION_COOKIE, cookie)
    headers = {"Accept-Language": "zh-CN", CSRF_HEADER: csrf}

    def get(url: str) -> Callable[[], object]:
        def call() -> object:
            answer = client.get(url, headers=headers, follow_redirects=False)
            assert answer.status_code in (200, 303), (url, answer.status_code, answer.text[:300])
            return answer

        return call

    def log_call() -> object:
        answer = client.post(
            f"/cases/{case_id}/contacts",
            data={"channel": "call", "outcome": "no_answer", "note": "no answer, try later"},
            headers=headers,
            follow_redirects=False,
        )
        assert answer.status_code in (303, 422), answer.text[:300]
        return answer

    routes = {
        "GET /work": get("/work"),
        "GET /work?bucket=M2&callback_due=1": get("/work?bucket=M2&callback_due=1"),
        "GET /work/next": get("/work/next"),
        f"GET /cases/{case_id}": get(f"/cases/{case_id}"),
        f"POST /cases/{case_id}/contacts": log_call,
    }
    print(f"{'route':44} {'median ms':>10} {'p90 ms':>8}")
    for name, call in routes.items():
        found = sorted(_timed(call, options.repeat))
        p90 = found[min(len(found) - 1, int(len(found) * 0.9))]
        print(f"{name:44} {statistics.median(found):10.1f} {p90:8.1f}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
