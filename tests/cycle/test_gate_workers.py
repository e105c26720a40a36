"""The gate decided in worker processes writes exactly what one process writes.

The batches are read and decided by workers (each with its own connection) while the cycle's
process writes them in order; the decisions, the actions' answers and planned times, and the
tasks the hand-off makes must not change, nor resumption after ``kill -9``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recoup import config
from recoup.cycle import runner, service
from recoup.cycle.cli import CLI_ACTOR
from recoup.db import unit_of_work
from recoup.kit import crypto
from recoup.models import Institution
from recoup.models.cases import Case
from recoup.models.compliance import ContactDecision
from recoup.models.cycle import CycleAction, CycleRun
from recoup.models.debtor import Debtor
from recoup.models.workspace import CaseTask
from tests.cycle.helpers import today_of
from tests.cycle.test_shards import book

ROOT = Path(__file__).resolve().parents[2]
# Small batches: each worker decides several, and the writes wait on them in order.
BATCH = 5


def day_of(code: str) -> dict[str, Any]:
    """Everything the gate and the hand-off wrote for an institution's day, by debtor (external
    id), without ids or timings."""
    with unit_of_work(write=False) as session:
        institution = session.scalar(select(Institution).where(Institution.code == code))
        assert institution is not None
        run = session.scalar(select(CycleRun).where(CycleRun.institution_id == institution.id))
        assert run is not None
        actions = session.execute(
            select(
                Debtor.external_id,
                CycleAction.status,
                CycleAction.kind,
                CycleAction.channel,
                CycleAction.step,
                CycleAction.planned_at,
                CycleAction.next_allowed_at,
                CycleAction.rule_ids,
                ContactDecision.allowed,
                ContactDecision.channel,
                ContactDecision.party,
                ContactDecision.planned_at,
                ContactDecision.rule_ids,
                ContactDecision.reasons,
                ContactDecision.next_allowed_at,
                ContactDecision.timezones,
                ContactDecision.inputs,
                ContactDecision.pack_code,
                ContactDecision.policy_name,
                ContactDecision.actor,
                ContactDecision.account_id.is_(None),
                ContactDecision.contact_point_id.is_(None),
            )
            .join(Debtor, Debtor.id == CycleAction.debtor_id)
            .outerjoin(ContactDecision, ContactDecision.id == CycleAction.decision_id)
            .where(CycleAction.run_id == run.id)
            .order_by(Debtor.external_id, CycleAction.id)
        ).all()
        # Decisions in the order they were stored: the same order, batch by batch.
        decided = session.scalars(
            select(Debtor.external_id)
            .join(ContactDecision, ContactDecision.debtor_id == Debtor.id)
            .where(ContactDecision.institution_id == institution.id)
            .order_by(ContactDecision.id)
        ).all()
        tasks = session.execute(
            select(Debtor.external_id, CaseTask.kind, CaseTask.due_at, CaseTask.created_by)
            .join(Case, Case.id == CaseTask.case_id)
            .join(Debtor, Debtor.id == Case.debtor_id)
            .where(Case.institution_id == institution.id)
            .order_by(Debtor.external_id, CaseTask.id)
        ).all()
        report = service.report_of(session, institution=institution, run=run).to_json()
    for stage in report["stages"].values():
        stage.pop("seconds")
    for volatile in ("seconds", "resumed_stages_skipped", "institution", "attempts"):
        report.pop(volatile)
    # External ids start with the institution's code.
    return {
        "actions": [(_debtor(row[0]), *row[1:]) for row in actions],
        "decided": [_debtor(external_id) for external_id in decided],
        "tasks": [(_debtor(row[0]), *row[1:]) for row in tasks],
        "report": report,
    }


def _debtor(external_id: str) -> str:
    return external_id.partition("-")[2]


def _workers(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setenv("RECOUP_CYCLE_WORKERS", str(count))
    config.get_settings.cache_clear()


def test_the_gate_in_workers_writes_what_one_process_writes(
    live_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = today_of(book("ONE", debtors=30))
    for code in ("TWO", "BAD"):
        book(code, debtors=30)
    monkeypatch.setattr(service, "GATE_PARALLEL_MIN_ACTIONS", 0)
    urls: list[str | None] = []
    worker_url = service.worker_url
    monkeypatch.setattr(
        service, "worker_url", lambda session: urls.append(worker_url(session)) or urls[-1]
    )

    _workers(monkeypatch, 0)
    alone = runner.run_cycle(institution_code="ONE", as_of=day, actor="t", gate_batch=BATCH)
    assert urls == []  # no worker asked for
    decided = alone.stages["gate"].counts
    assert decided["allowed"] > 2 * BATCH
    assert decided["blocked"] > 0

    _workers(monkeypatch, 2)
    runner.run_cycle(institution_code="TWO", as_of=day, actor="t", gate_batch=BATCH)
    assert len(urls) == 1
    assert None not in urls  # the workers did decide
    assert multiprocessing.active_children() == []
    assert day_of("TWO") == day_of("ONE")

    # A write that fails stops the workers deciding ahead: none is left behind; the day run
    # again resumes at the gate and writes the same.
    stored = service.store_answers
    calls: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return stored(*args, **kwargs)

    monkeypatch.setattr(service, "store_answers", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        runner.run_cycle(institution_code="BAD", as_of=day, actor="t", gate_batch=BATCH)
    assert multiprocessing.active_children() == []
    report = runner.run_cycle(institution_code="BAD", as_of=day, actor="t", gate_batch=BATCH)
    assert report.attempts == 2
    assert len(calls) > 3
    assert day_of("BAD") == day_of("ONE")


def test_a_batch_decided_meanwhile_is_not_written_twice(
    live_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = today_of(book("ONE", debtors=20))
    book("TWO", debtors=20)
    monkeypatch.setattr(service, "GATE_PARALLEL_MIN_ACTIONS", 0)
    _workers(monkeypatch, 0)
    runner.run_cycle(institution_code="ONE", as_of=day, actor="t", gate_batch=BATCH)

    # Another run of the day decides the second batch after the workers did, before it is
    # written here.
    decided_batches = service.decided_batches

    def racing(parts: Any, **options: Any) -> Any:
        batches = decided_batches(parts, **options)
        try:
            for index, answers in enumerate(batches):
                if index == 1:
                    with unit_of_work() as other:
                        run_id = options["run_id"]
                        rows = service.repository.planned_actions(
                            other, run_id=run_id, limit=None, between=(answers.first, answers.last)
                        )
                        institution = other.get_one(Institution, options["institution_id"])
                        service.store_answers(
                            other,
                            service.decide_actions(
                                other, institution=institution, actor="t", batch=rows
                            ),
                        )
                yield answers
        finally:
            batches.close()

    stored: list[int | None] = []
    store_decided = service.store_decided

    def storing(session: Any, context: Any, answers: Any) -> int | None:
        stored.append(store_decided(session, context, answers))
        return stored[-1]

    monkeypatch.setattr(service, "decided_batches", racing)
    monkeypatch.setattr(service, "store_decided", storing)
    _workers(monkeypatch, 2)
    runner.run_cycle(institution_code="TWO", as_of=day, actor="t", gate_batch=BATCH)
    assert stored == [BATCH, None]  # found decided: nothing written; this process took over
    assert multiprocessing.active_children() == []
    assert day_of("TWO") == day_of("ONE")


# The CLI with the gate in two workers from the smallest day on (the threshold lowered).
CLI_WITH_WORKERS = """
import sys
from recoup.cycle import service
service.GATE_PARALLEL_MIN_ACTIONS = 0
from recoup.cli import main
sys.argv = ["recoup", *sys.argv[1:]]
main()
"""


def _cli(url: str, keyring: Path, code: str, day: str, kill: str | None) -> Any:
    env = {
        **os.environ,
        "RECOUP_DATABASE_URL": url,
        "RECOUP_KEYRING_FILE": str(keyring),
        "RECOUP_CYCLE_WORKERS": "2",
    }
    env.pop("RECOUP_CYCLE_KILL", None)
    if kill:
        env["RECOUP_CYCLE_KILL"] = kill
    command = ["cycle", "run", "--institution", code, "--as-of", day, "--json"]
    return subprocess.run(
        [sys.executable, "-c", CLI_WITH_WORKERS, *command, "--gate-batch", str(BATCH)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("kill", ["gate:batch1", "gate:batch3"])
def test_a_run_killed_while_workers_decide_resumes_and_writes_the_same(
    cli_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill: str
) -> None:
    keyring = tmp_path / "keyring.json"
    crypto.save_keyring(crypto.get_keyring(), keyring)
    day = today_of(book("ONE", debtors=30))
    book("TWO", debtors=30)
    _workers(monkeypatch, 0)
    runner.run_cycle(institution_code="ONE", as_of=day, actor=CLI_ACTOR, gate_batch=BATCH)

    killed = _cli(cli_db, keyring, "TWO", day.isoformat(), kill)
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = _cli(cli_db, keyring, "TWO", day.isoformat(), None)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert report["attempts"] == 2
    assert report["resumed_stages_skipped"] == [
        "delinquency",
        "reconciliation",
        "scoring",
        "cases",
        "segmentation",
        "strategy",
        "next_actions",
    ]
    assert day_of("TWO") == day_of("ONE")
