"""The fault test: two ``recoup serve`` and two ``recoup worker`` processes on one PostgreSQL
database and one Redis, killed with SIGKILL mid-request and mid-job, lose and repeat nothing.

Concurrent API writes (payments one by one and as a large batch, promises, CRM contact
changes), each with an ``Idempotency-Key`` and retried by its client on a connection error or
a 5xx, go to both servers; the day's cycle runs as jobs split into shards; messages go to a
local SMS gateway and events to a local webhook receiver. Worker A is killed while it is
inside a webhook delivery (the receiver holds the first delivery until then), server A while
its transaction is recording a 150-payment batch (seen in ``pg_stat_activity``); both are
restarted. Then: every payment, promise and contact change exists once with one audit entry;
every event reached the receiver (a repeat only for the delivery the killed worker had in
flight, which at-least-once allows and the event id de-duplicates), one delivery row each;
no message reached the gateway twice and every one it got is recorded sent;
``recoup audit verify`` passes.

It needs PostgreSQL and Redis (required when CI=true). It polls with timeouts rather than
sleeping; on a 2-core machine shared with other work (load average near 20) it took about
five minutes, most of it the processes starting.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from recoup import config, db
from recoup.cycle import tasks as cycle_tasks
from recoup.db import make_engine, unit_of_work
from recoup.identity import service as identity
from recoup.kit import crypto, jobs
from recoup.kit.clock import aware, local_today, utcnow
from recoup.models import AuditEvent, Base, ContactPoint, Payment
from recoup.models.cycle import CycleRun
from recoup.models.outbox import OutboxMessage
from recoup.models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEvent
from recoup.models.workbench import Promise
from recoup.outbox import service as outbox_service
from recoup.webhooks import rules as webhook_rules
from recoup.webhooks import service as webhooks
from tests.conftest import IN_CI, POSTGRES_URL, REDIS_URL
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.identity.helpers import make_user
from tests.outbox.helpers import approved_template, set_channels
from tests.outbox.servers import SmsProvider, free_port, sms_server

SOURCE = Path(__file__).resolve().parents[2] / "src"
CODE = "FLT"
DEBTORS = 24
SINGLE_PAYMENTS = 48
BATCH_PAYMENTS = 150
EVENT_TYPES = ["payment.received", "promise.created", "cycle.completed"]
DEADLINE = 90.0  # seconds for the writes and the jobs once the processes are up
STARTUP = 120.0  # seconds a process may take to start (a few on an idle machine)


# ---- a webhook receiver that counts deliveries by event id ----------------------------------


@dataclass
class Hook:
    """What the receiver got; it holds the first delivery until ``release`` is set."""

    secret: str = ""
    url: str = ""
    by_event: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def hook_server() -> Iterator[Hook]:
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            authentic = webhook_rules.verify(
                hook.secret,
                timestamp=self.headers.get("Recoup-Timestamp", ""),
                body=body,
                signature_header=self.headers.get("Recoup-Signature", ""),
                now=time.time(),
            )
            first = False
            with hook.lock:
                if not authentic:
                    hook.refused += 1
                else:
                    hook.by_event[self.headers["Recoup-Event-Id"]] += 1
                    first = not hook.holding.is_set()
                    hook.holding.set()
            if first:
                # Hold the worker inside its job until the test has killed it.
                hook.release.wait(30)
            try:
                self.send_response(200 if authentic else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the worker that asked is gone

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.release.set()
        server.shutdown()
        server.server_close()


# ---- processes -----------------------------------------------------------------------------


@dataclass
class Processes:
    env: dict[str, str]
    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    started: Counter[str] = field(default_factory=Counter)

    def start(self, name: str) -> None:
        self.started[name] += 1
        if name.startswith("server"):
            port = self.ports.setdefault(name, free_port())
            command = ["serve", "--no-worker", "--port", str(port)]
        else:
            command = ["worker", "--threads", "2"]
        log = (self.logs / f"{name}-{self.started[name]}.log").open("wb")
        # Each process names its database connections, so the test can see what it is doing.
        database = make_url(self.env["RECOUP_DATABASE_URL"]).update_query_dict(
            {"application_name": name}
        )
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "recoup", *command],
            env={**self.env, "RECOUP_DATABASE_URL": database.render_as_string(False)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, name: str) -> None:
        process = self.running[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def log_text(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.logs.glob("*.log"))
        )


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` (starting fast, backing off to 0.25 s) until it holds or time runs out."""
    deadline = time.monotonic() + seconds
    pause = 0.02
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# ---- a client that retries ------------------------------------------------------------------


@dataclass
class Client:
    """Sends each write with its own Idempotency-Key, retrying it until a final answer."""

    processes: Processes
    deadline: float
    retries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    turn: int = 0

    def send(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str],
        *,
        server: str | None = None,
        sent: threading.Event | None = None,
        interrupted: threading.Event | None = None,
    ) -> httpx.Response:
        key = uuid.uuid4().hex
        last = "nothing yet"
        while True:
            with self.lock:
                self.turn += 1
                name = server or ("server-a" if self.turn % 2 else "server-b")
            if time.monotonic() > self.deadline:
                pytest.fail(f"{method} {path} got no final answer in time; last: {last}")
            try:
                with httpx.Client(base_url=self.processes.url(name), timeout=30) as http:
                    request = http.build_request(
                        method, path, json=body, headers={**headers, "Idempotency-Key": key}
                    )
                    if sent is not None:
                        sent.set()
                    answer = http.send(request)
            except httpx.TransportError as error:
                last = f"{name}: {type(error).__name__}: {error}"
                if interrupted is not None:
                    interrupted.set()
                with self.lock:
                    self.retries[name] += 1
                server = None  # the other server, or this one once it is back
                time.sleep(0.05)
                continue
            if answer.status_code >= 500:
                last = f"{name}: {answer.status_code} {answer.text[:300]}"
                with self.lock:
                    self.retries[name] += 1
                time.sleep(0.05)
                continue
            return answer


# ---- the database ---------------------------------------------------------------------------


@pytest.fixture
def fault_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh PostgreSQL database ``recoup_fault_<random>``, dropped afterwards."""
    name = f"recoup_fault_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        admin.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {POSTGRES_URL}: {error}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("RECOUP_DATABASE_URL", url)
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    Base.metadata.create_all(db.get_engine())
    try:
        yield url
    finally:
        db.get_engine().dispose()
        db.get_engine.cache_clear()
        monkeypatch.delenv("RECOUP_DATABASE_URL")
        config.get_settings.cache_clear()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def broker(redis_client: redis.Redis) -> Iterator[str]:
    queue = f"recoup-fault-{uuid.uuid4().hex[:8]}"
    yield queue
    for key in redis_client.scan_iter(f"*{queue}*"):
        redis_client.delete(key)


@dataclass
class World:
    institution_id: int
    account_ids: list[int]
    debtor_ids: list[int]
    api_key: str
    token: str
    message_keys: list[str]


def build(hook: Hook, gateway: str) -> World:
    with unit_of_work() as session:
        institution = make_institution(session, code=CODE)
        institution.settings = {**institution.settings, "cycle": {"run_at": None}}
        set_channels(
            session,
            institution,
            quiet_start=None,
            quiet_end=None,
            sms_provider="gateway",
            sms_gateway_url=gateway,
        )
        today = local_today(institution.timezone)
        accounts, debtors = [], []
        for number in range(DEBTORS):
            debtor = make_debtor(session, institution, external_id=f"FD{number}")
            make_contact_point(session, debtor, value=f"1380000{number:04d}")
            account = make_account(
                session,
                debtor,
                external_id=f"FA{number}",
                principal=50_000_000,
                due_date=today - timedelta(days=30 + number),
            )
            accounts.append(account)
            debtors.append(debtor)
        session.flush()
        admin = make_user(session, institution, role="admin")
        manager = make_user(session, institution, role="manager")
        key, _ = identity.create_api_key(
            session,
            institution_id=institution.id,
            name="core banking and CRM",
            scopes=["payments:write", "contacts:write"],
            actor=admin.username,
        )
        token, _expires = identity.issue_access_token(manager)
        hook.secret = webhooks.create_subscription(
            session,
            institution_id=institution.id,
            url=hook.url,
            event_types=EVENT_TYPES,
            actor=admin.username,
        ).secret
        template = approved_template(session, institution)
        keys = []
        for account, debtor in zip(accounts[:8], debtors[:8], strict=True):
            point = session.scalar(select(ContactPoint).where(ContactPoint.debtor_id == debtor.id))
            assert point is not None
            queued = outbox_service.queue_message(
                session,
                institution_id=institution.id,
                debtor_id=debtor.id,
                contact_point_id=point.id,
                account_id=account.id,
                channel="sms",
                template_id=template.id,
                actor=manager.username,
                scheduled_at=utcnow(),
            )
            # At night where the debtors live the gate refuses now: the message is queued for
            # the morning (or not at all), and only those due now are waited for.
            if queued.message is not None and aware(queued.message.scheduled_at) <= utcnow():
                keys.append(queued.message.idempotency_key)
        return World(
            institution_id=institution.id,
            account_ids=[account.id for account in accounts],
            debtor_ids=[debtor.id for debtor in debtors],
            api_key=key,
            token=token,
            message_keys=keys,
        )


def payment(number: int, account_number: int) -> dict[str, Any]:
    return {
        "external_id": f"PAY-{number}",
        "account_external_id": f"FA{account_number % DEBTORS}",
        "amount": "1.00",
        "currency": "CNY",
        "paid_at": (utcnow() - timedelta(minutes=5)).isoformat(),
        "channel": "bank_transfer",
    }


def ask_for_jobs(world: World, *names: str) -> None:
    with unit_of_work() as session:
        for name in names:
            if name == cycle_tasks.RUN:
                jobs.enqueue(
                    session,
                    name,
                    {"institution": CODE, "as_of": local_today("Asia/Shanghai").isoformat()},
                    institution_id=world.institution_id,
                )
            else:
                jobs.enqueue(session, name, {"institution_id": world.institution_id})


def writing(application: str) -> bool:
    """Tell whether a transaction of process ``application`` has written something and is open."""
    with unit_of_work(write=False) as session:
        found = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = :name AND backend_xid IS NOT NULL"
            ),
            {"name": application},
        )
    return bool(found)


def count(statement: Any) -> int:
    with unit_of_work(write=False) as session:
        return int(session.scalar(statement) or 0)


def test_killed_servers_and_workers_lose_and_repeat_nothing(
    fault_database: str, broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    secret = secrets.token_urlsafe(48)
    monkeypatch.setenv("RECOUP_SECRET_KEY", secret)
    # The webhook receiver listens on the loopback, as an on-premise one would on the LAN.
    monkeypatch.setenv("RECOUP_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    config.get_settings.cache_clear()
    keyring = tmp_path / "keyring.json"
    crypto.save_keyring(crypto.get_keyring(), keyring)
    with hook_server() as hook, sms_server() as (gateway, provider):
        world = build(hook, gateway)
        env = {
            **os.environ,
            "PYTHONPATH": str(SOURCE),
            "RECOUP_DATABASE_URL": fault_database,
            "RECOUP_JOBS_URL": REDIS_URL,
            "RECOUP_JOBS_QUEUE": broker,
            # A job whose worker was killed is handed over again after this long.
            "RECOUP_JOBS_REQUEUE_SECONDS": "6",
            "RECOUP_CYCLE_SHARDS": "4",
            "RECOUP_SECRET_KEY": secret,
            "RECOUP_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "RECOUP_KEYRING_FILE": str(keyring),
            "RECOUP_DATA_DIR": str(tmp_path / "data"),
            "RECOUP_MAX_CONCURRENT_REQUESTS": "8",
        }
        processes = Processes(env=env, logs=tmp_path)
        try:
            exercise(world, processes, hook, provider, started)
        except BaseException:
            processes.stop_all()
            print(processes.log_text())
            raise
        processes.stop_all()


def exercise(
    world: World, processes: Processes, hook: Hook, provider: SmsProvider, started: float
) -> None:
    for name in ("server-a", "server-b", "worker-a"):
        processes.start(name)
    wait_for(
        lambda: ready(processes.url("server-a")) and ready(processes.url("server-b")),
        STARTUP,
        "both servers to be ready",
    )
    client = Client(processes, deadline=time.monotonic() + STARTUP + DEADLINE)
    api = {"Authorization": f"Bearer {world.api_key}"}
    agent = {"Authorization": f"Bearer {world.token}"}
    due = (utcnow() + timedelta(days=7)).date().isoformat()
    batch_sent = threading.Event()
    batch_interrupted = threading.Event()
    answers: dict[str, list[int]] = {"payments": [], "promises": [], "contacts": [], "batch": []}

    def pay(number: int) -> None:
        answer = client.send("POST", "/api/v1/payments", payment(number, number), api)
        answers["payments"].append(answer.status_code)

    def promise(number: int) -> None:
        body = {"amount": "100.00", "due_date": due, "channel": "call"}
        answer = client.send(
            "POST", f"/api/v1/accounts/{world.account_ids[number]}/promises", body, agent
        )
        answers["promises"].append(answer.status_code)

    def contact(number: int) -> None:
        body = {"kind": "mobile", "value": f"1390000{number:04d}", "verified": True}
        answer = client.send(
            "POST", f"/api/v1/debtors/{world.debtor_ids[number]}/contact-points", body, api
        )
        answers["contacts"].append(answer.status_code)

    def batch() -> None:
        items = [payment(SINGLE_PAYMENTS + n, n) for n in range(BATCH_PAYMENTS)]
        answer = client.send(
            "POST",
            "/api/v1/payments",
            items,
            api,
            server="server-a",
            sent=batch_sent,
            interrupted=batch_interrupted,
        )
        answers["batch"].append(answer.status_code)

    ask_for_jobs(world, cycle_tasks.RUN, "outbox.dispatch")
    with ThreadPoolExecutor(max_workers=6) as pool:
        work = [pool.submit(pay, n) for n in range(SINGLE_PAYMENTS // 2)]
        work += [pool.submit(promise, n) for n in range(DEBTORS // 2)]
        work += [pool.submit(contact, n) for n in range(DEBTORS // 2)]
        # Worker A is inside a webhook delivery (the receiver holds it): kill it there.
        wait_for(hook.holding.is_set, STARTUP, "worker A to start delivering a webhook")
        processes.kill("worker-a")
        hook.release.set()
        processes.start("worker-b")
        for future in work:
            future.result(timeout=DEADLINE)
        # Server A is inside a 150-payment batch (it has nothing else to do now, and its
        # transaction has begun writing): kill it there; the client retries.
        batch_thread = threading.Thread(target=batch, name="batch")
        batch_thread.start()
        wait_for(batch_sent.is_set, 30, "the batch to be sent")
        deadline = time.monotonic() + 60
        while not writing("server-a") and batch_thread.is_alive():
            if time.monotonic() > deadline:
                pytest.fail("server A never began recording the batch")
            time.sleep(0.005)
        processes.kill("server-a")
        work += [pool.submit(pay, n) for n in range(SINGLE_PAYMENTS // 2, SINGLE_PAYMENTS)]
        work += [pool.submit(promise, n) for n in range(DEBTORS // 2, DEBTORS)]
        work += [pool.submit(contact, n) for n in range(DEBTORS // 2, DEBTORS)]
        processes.start("server-a")
        processes.start("worker-a")
        for future in work:
            future.result(timeout=DEADLINE)
        batch_thread.join(DEADLINE)
    assert batch_interrupted.is_set(), "the batch was answered before server A was killed"
    assert client.retries["server-a"] >= 1, "no request met the killed server"
    ask_for_jobs(world, "outbox.dispatch")

    payments = SINGLE_PAYMENTS + BATCH_PAYMENTS
    events = payments + DEBTORS + 1  # payments, promises, the day's cycle.completed

    def settled() -> bool:
        runs = count(
            select(func.count()).select_from(CycleRun).where(CycleRun.status == "completed")
        )
        delivered = count(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == DeliveryStatus.delivered)
        )
        # The messages queued before the chaos are due now; the cycle's may be due later.
        waiting = count(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                (OutboxMessage.status == "sending")
                | (
                    OutboxMessage.idempotency_key.in_(world.message_keys)
                    & (OutboxMessage.status == "queued")
                )
            )
        )
        return runs == 1 and delivered == events and waiting == 0

    wait_for(settled, DEADLINE, "the cycle, every webhook and every message")

    # Payments: each once, with one audit entry each.
    assert sorted(set(answers["payments"])) in ([200, 201], [201]), answers["payments"]
    assert answers["batch"] == [200]
    assert count(select(func.count()).select_from(Payment)) == payments
    assert count(select(func.count(func.distinct(Payment.external_id)))) == payments
    audited = Counter[str]()
    with unit_of_work(write=False) as session:
        for action, object_id in session.execute(select(AuditEvent.action, AuditEvent.object_id)):
            audited[action] += 1
            audited[f"{action}:{object_id}"] += 1
    assert audited["payment.record"] == payments
    assert max(n for key, n in audited.items() if key.startswith("payment.record:")) == 1
    # Promises and contact changes: each once, audited once.
    assert answers["promises"] == [201] * DEBTORS
    assert count(select(func.count()).select_from(Promise)) == DEBTORS
    assert audited["promise.record"] == DEBTORS
    assert sorted(set(answers["contacts"])) == [201]
    assert (
        count(select(func.count()).select_from(ContactPoint).where(ContactPoint.status == "valid"))
        == DEBTORS
    )
    assert audited["contact_point.crm_change"] == DEBTORS
    # Webhooks: one event and one delivered delivery each; every event reached the receiver,
    # a repeat only for what the killed worker had in flight.
    with unit_of_work(write=False) as session:
        event_ids = set(session.scalars(select(WebhookEvent.event_id)))
        per_event = session.execute(
            select(WebhookDelivery.event_id, func.count()).group_by(WebhookDelivery.event_id)
        ).all()
    assert len(event_ids) == events
    assert {n for _event, n in per_event} == {1}
    assert hook.refused == 0
    assert set(hook.by_event) == event_ids
    repeats = sum(n - 1 for n in hook.by_event.values())
    assert repeats <= 2, hook.by_event.most_common(3)  # the killed worker's 2 threads
    # Messages: none twice to the gateway; every one it got is recorded as sent.
    assert all(n == 1 for n in provider.deliveries.values()), provider.deliveries
    with unit_of_work(write=False) as session:
        sent = set(
            session.scalars(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.status.in_(["sent", "delivered"])
                )
            )
        )
    assert set(provider.deliveries) == sent
    assert set(world.message_keys) <= sent
    # The audit chain holds.
    verify = subprocess.run(
        [sys.executable, "-m", "recoup", "audit", "verify"],
        env=processes.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(f"fault test: {time.monotonic() - started:.1f} s, retries {json.dumps(client.retries)}")
