"""What one ``recoup worker`` handles, and what a second adds: webhook deliveries on Redis.

    .venv/bin/python bench/bench_workers.py [--deliveries N] [--threads T] [--small]
        [--postgres URL] [--redis URL]

Creates a scratch PostgreSQL database, subscribes a local HTTP receiver (a thread server in
this process, answering 200 at once) to ``payment.received`` and, for one worker and then
two, emits N events in one transaction (N ``webhooks.deliver`` jobs through the
transactional outbox) and times them until the last delivery is recorded ``delivered``:
the relay handing rows to Redis, Huey's queue, each job's own unit of work, the signed POST
and the delivery's bookkeeping. Prints deliveries per second and per hour for each, and the
ratio of two workers to one (measured in the same run, so it survives a shared machine).
The workers are separate processes (``recoup worker --threads T``); the database is dropped
at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/14"


@contextmanager
def receiver() -> Iterator[tuple[str, list[int]]]:
    """A local webhook receiver answering 200 at once; yields its URL and a hit counter."""
    hits = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                hits[0] += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # noqa: ARG002
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", hits
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from recoup.db import make_engine

    name = f"recoup_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(hook_url: str) -> int:
    from tests.factories import make_institution

    from recoup import db
    from recoup.models import Base
    from recoup.webhooks import service as webhooks

    Base.metadata.create_all(db.get_engine())
    with db.unit_of_work() as session:
        institution = make_institution(session, code="BENCH")
        institution.settings = {**institution.settings, "cycle": {"run_at": None}}
        webhooks.create_subscription(
            session,
            institution_id=institution.id,
            url=hook_url,
            event_types=["payment.received"],
            actor="bench",
        )
        return institution.id


def emit(institution_id: int, count: int, offset: int) -> None:
    from recoup import db
    from recoup.kit import events

    with db.unit_of_work() as session:
        for number in range(count):
            events.emit(
                session,
                institution_id=institution_id,
                type="payment.received",
                data={"payment_id": offset + number, "account_id": 1},
            )


def delivered() -> int:
    from sqlalchemy import func, select

    from recoup import db
    from recoup.models.webhooks import DeliveryStatus, WebhookDelivery

    with db.unit_of_work(write=False) as session:
        query = select(func.count()).select_from(WebhookDelivery)
        return int(
            session.scalar(query.where(WebhookDelivery.status == DeliveryStatus.delivered)) or 0
        )


def wait_until(target: int, timeout: float) -> float:
    started = time.perf_counter()
    while delivered() < target:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"only {delivered()} of {target} deliveries after {timeout:.0f} s")
        time.sleep(0.05)
    return time.perf_counter()


def run(workers: int, threads: int, count: int, institution_id: int, done: int) -> float:
    """Start ``workers`` processes, warm them up, time ``count`` deliveries; return per second."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "recoup", "worker", "--threads", str(threads)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        # Warm-up: every worker imported and relaying before the clock starts.
        emit(institution_id, 4 * workers, done)
        wait_until(done + 4 * workers, 300)
        time.sleep(1.0)
        base = done + 4 * workers
        started = time.perf_counter()
        emit(institution_id, count, base)
        finished = wait_until(base + count, 600)
        return count / (finished - started)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="150 deliveries (a smoke run)")
    parser.add_argument("--postgres", default=os.environ.get("RECOUP_BENCH_POSTGRES", POSTGRES))
    parser.add_argument("--redis", default=os.environ.get("RECOUP_BENCH_REDIS", REDIS))
    options = parser.parse_args()
    count = 150 if options.small else options.deliveries
    scratch = Path(tempfile.mkdtemp(prefix="recoup-bench-workers-"))
    with scratch_database(options.postgres) as url, receiver() as (hook_url, hits):
        os.environ.update(
            {
                "RECOUP_DATABASE_URL": url,
                "RECOUP_DATA_DIR": str(scratch),
                "RECOUP_KEYRING_FILE": str(scratch / "keyring.json"),
                "RECOUP_JOBS_URL": options.redis,
                "RECOUP_JOBS_QUEUE": f"recoup-bench-{uuid.uuid4().hex[:8]}",
                # The receiver listens on the loopback.
                "RECOUP_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            }
        )
        institution_id = seed(hook_url)
        rates: dict[int, float] = {}
        done = 0
        for workers in (1, 2):
            rates[workers] = run(workers, options.threads, count, institution_id, done)
            done = delivered()
            print(
                f"{workers} worker(s) x {options.threads} threads: {count} webhook deliveries, "
                f"{rates[workers]:,.1f}/s = {rates[workers] * 3600:,.0f}/h "
                f"({rates[workers] * 3600 / workers:,.0f}/h per worker)"
            )
        print(f"two workers / one worker: {rates[2] / rates[1]:.2f}x")
        print(f"receiver got {hits[0]} requests for {done} deliveries")
        from recoup import db

        db.get_engine().dispose()


if __name__ == "__main__":
    main()
