"""kill -9 anywhere in the cycle, run the day again: it completes and duplicates nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from recoup.cycle.rules import Stage
from recoup.db import unit_of_work
from recoup.kit import crypto
from recoup.models.account import DelinquencyEvent
from recoup.models.cases import Case, CaseEvent
from recoup.models.compliance import ContactDecision
from recoup.models.contact import ContactAttempt
from recoup.models.cycle import CycleAction, CycleRun, CycleStage
from recoup.models.jobs import Job
from recoup.models.outbox import OutboxMessage
from recoup.models.workspace import CaseTask
from tests.cycle.helpers import portfolio, today_of
from tests.cycle.test_handoff import strategy_portfolio

ROOT = Path(__file__).resolve().parents[2]
STAGES = [stage.value for stage in Stage]


def _counts() -> dict[str, int]:
    with unit_of_work(write=False) as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (
                CycleAction,
                CycleStage,
                CycleRun,
                DelinquencyEvent,
                Case,
                CaseEvent,
                ContactDecision,
                CaseTask,
                OutboxMessage,
                ContactAttempt,
                Job,
            )
        }


def _cycle(url: str, keyring: Path, day: str, kill: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECOUP_DATABASE_URL": url, "RECOUP_KEYRING_FILE": str(keyring)}
    env.pop("RECOUP_CYCLE_KILL", None)
    if kill:
        env["RECOUP_CYCLE_KILL"] = kill
    command = ["cycle", "run", "--institution", "CYC", "--as-of", day, "--json"]
    return subprocess.run(
        [sys.executable, "-m", "recoup", *command, "--gate-batch", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    "kill",
    [
        "delinquency:before_commit",
        "scoring:after_commit",
        "segmentation:after_commit",
        "gate:batch1",
        "gate:batch2",
        "handoff:before_commit",
        "handoff:after_commit",
    ],
)
def test_a_killed_run_resumes_without_duplicates(cli_db: str, tmp_path: Path, kill: str) -> None:
    keyring = tmp_path / "keyring.json"
    crypto.save_keyring(crypto.get_keyring(), keyring)
    with unit_of_work() as session:
        day = today_of(portfolio(session)).isoformat()

    killed = _cycle(cli_db, keyring, day, kill)
    assert killed.returncode == -9, killed.stderr[-2000:]

    resumed = _cycle(cli_db, keyring, day, None)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert report["status"] == "completed"
    assert report["attempts"] == 2
    stage, _, point = kill.partition(":")
    finished = STAGES.index(stage) + (point == "after_commit")
    assert report["resumed_stages_skipped"] == STAGES[:finished]
    after = _counts()
    # One action per case, one gate decision per planned action, one history event per account.
    assert after["cycle_actions"] == after["cases"] == 6
    assert after["compliance_decisions"] == 6
    assert after["delinquency_events"] == 6
    assert after["cycle_stages"] == len(Stage)
    assert report["tasks_created"] + report["messages_queued"] == 5
    assert after["case_tasks"] == report["tasks_created"]
    assert report["stages"]["gate"]["counts"]["blocked"] == 1

    again = _cycle(cli_db, keyring, day, None)
    assert again.returncode == 0
    assert _counts() == after
    assert json.loads(again.stdout) == report | {"resumed_stages_skipped": []}


@pytest.mark.parametrize("kill", ["gate:batch1", "handoff:before_commit", "handoff:after_commit"])
def test_a_run_killed_at_hand_off_queues_each_message_and_task_once(
    cli_db: str, tmp_path: Path, kill: str
) -> None:
    keyring = tmp_path / "keyring.json"
    crypto.save_keyring(crypto.get_keyring(), keyring)
    day = strategy_portfolio().isoformat()

    killed = _cycle(cli_db, keyring, day, kill)
    assert killed.returncode == -9, killed.stderr[-2000:]
    if kill == "handoff:after_commit":
        handed = _counts()
        assert handed["outbox_messages"] > 0

    resumed = _cycle(cli_db, keyring, day, None)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert report["status"] == "completed"
    after = _counts()
    # Messages on the outbox once each, each with its planned contact, one dispatch job.
    assert report["messages_queued"] > 0
    assert after["outbox_messages"] == report["messages_queued"]
    assert after["contact_attempts"] == report["messages_queued"]
    assert after["case_tasks"] == report["tasks_created"]
    if kill == "handoff:after_commit":
        # The stages after the hand-off (the aggregates) still ran; nothing else was added.
        assert after == handed | {"cycle_stages": len(Stage)}
    with unit_of_work(write=False) as session:
        keys = session.execute(select(OutboxMessage.idempotency_key)).scalars().all()
        dispatches = session.scalar(
            select(func.count()).select_from(Job).where(Job.name == "outbox.dispatch")
        )
    assert len(set(keys)) == len(keys)
    assert dispatches == 1

    again = _cycle(cli_db, keyring, day, None)
    assert again.returncode == 0
    assert _counts() == after
