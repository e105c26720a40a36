"""Scoring a portfolio in worker processes writes exactly what one process writes."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.models.scoring import AccountScore, ScoringRun
from recoup.scoring import service

AS_OF = date(2025, 6, 30)
SCORE_COLUMNS = (
    AccountScore.account_id,
    AccountScore.probability,
    AccountScore.points,
    AccountScore.grade,
    AccountScore.expected_recovery,
    AccountScore.reasons,
    AccountScore.segment,
    AccountScore.channel,
    AccountScore.priority,
    AccountScore.priority_basis,
    AccountScore.uplift_recovery,
)


def _score(workers: int) -> tuple[Any, list[Any], list[Any]]:
    with unit_of_work() as session:
        institution = institutions.require_by_code(session, "DEMO-CF")
        summary = service.score_delinquent_accounts(
            session, institution=institution, as_of=AS_OF, workers=workers
        )
    with unit_of_work(write=False) as session:
        rows = session.execute(select(*SCORE_COLUMNS).order_by(AccountScore.account_id)).all()
        run = session.execute(select(ScoringRun).order_by(ScoringRun.id.desc())).scalars().first()
        assert run is not None
        drift = [run.accounts_scored, run.score_psi, run.feature_psi, run.characteristic_shift]
    return summary, [tuple(row) for row in rows], drift


def test_workers_score_every_part_as_one_process_does(
    live_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recoup.demo.service import seed_demo

    with unit_of_work() as session:
        seed_demo(session, accounts=600, seed=5, as_of=AS_OF)
        institution = institutions.require_by_code(session, "DEMO-CF")
        outcome = service.train_from_portfolio(
            session, institution=institution, as_of=AS_OF, snapshots=4, actor="ds"
        )
        service.promote_model(session, version=outcome.model_version.version, actor="ds")
    monkeypatch.setattr(service, "PARALLEL_MIN_ACCOUNTS", 0)
    # Parts small enough that each worker scores several and the writes wait on them in order.
    monkeypatch.setattr(service, "SCORING_PART_ACCOUNTS", 37)

    urls: list[str | None] = []
    worker_url = service.worker_url
    monkeypatch.setattr(
        service, "worker_url", lambda session: urls.append(worker_url(session)) or urls[-1]
    )

    alone = _score(0)
    assert alone[0].accounts_scored > 100
    assert _score(2) == alone
    assert _score(1) == alone
    assert len(urls) == 2  # asked twice, and the workers did score
    assert None not in urls

    # A write that fails stops the workers reading ahead: none is left behind.
    import multiprocessing

    written = service._score_rows
    calls: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return written(*args, **kwargs)

    monkeypatch.setattr(service, "_score_rows", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        _score(2)
    assert multiprocessing.active_children() == []
