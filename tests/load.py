"""A bounded load run against a real ``recoup serve`` on loopback (for the load test and bench).

``seed`` writes a small institution (two managers, an admin, debtors with accounts, cases and
a webhook subscription) into a database; ``serving`` starts ``python -m recoup serve`` on a
free loopback port against it; ``run_load`` sends a mix of reads, promise writes and gate
checks from many clients at once for a fixed time — the API and, signed in by the login form,
the pages: the workspace, the outbox, strategies and the cycle reports — while one more client
administers webhooks and another times ``/healthz``; ``integrity`` compares what the clients
were told with what the database holds afterwards.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from recoup.cycle import runner
from recoup.cycle import service as cycle
from recoup.db import unit_of_work
from recoup.identity import service as identity
from recoup.institutions.service import create_institution
from recoup.kit import crypto
from recoup.kit.clock import local_today, utcnow
from recoup.kit.crypto import blind_index
from recoup.models import Account, AuditEvent, Debtor
from recoup.models.compliance import ContactDecision
from recoup.models.workbench import Promise
from recoup.portfolio.rules import bucket_for
from recoup.webhooks import service as webhooks
from tests.factories import give_to_agent

PASSWORD = "Load-test-password-42"
ADMIN = "load.admin"
# A name that never resolves (RFC 2606): a webhook delivery tried fails at once, never sent out.
BLACKHOLE = "https://recoup-events.invalid/recoup-events"
# The CN pack's cap on effective voice calls per debtor and day (CN-FREQ-V).
DAILY_VOICE_CAP = 3
# The day the gate checks ask about: tomorrow in the institution's zone, whatever day it is.
CHECK_DAY = (local_today("Asia/Shanghai") + timedelta(days=1)).isoformat()


@dataclass(frozen=True)
class Portfolio:
    """What the clients may touch: the managers' names and the debtors' and accounts' ids."""

    usernames: tuple[str, ...]
    debtor_ids: tuple[int, ...]
    account_ids: tuple[int, ...]
    admin: str = "load.admin"


def seed(engine: Engine, *, debtors: int = 60, webhooks_to: str | None = BLACKHOLE) -> Portfolio:
    """Write an institution with two managers, an admin, ``debtors`` debtors with one account
    each (the managers' cases hold them in turn) and a webhook subscription to ``webhooks_to``
    (none when None)."""
    with unit_of_work(engine) as session:
        institution = create_institution(
            session,
            code="LOAD",
            name="Load Lender",
            jurisdiction="CN",
            timezone="Asia/Shanghai",
            currency="CNY",
            preset="consumer_finance",
        )
        usernames = ("load.manager1", "load.manager2")
        managers = [
            identity.create_user(
                session,
                username=username,
                role=role,
                institution_id=institution.id,
                password=PASSWORD,
                actor="load",
            )
            for username, role in (*((name, "manager") for name in usernames), (ADMIN, "admin"))
        ][:2]
        if webhooks_to is not None:
            webhooks.create_subscription(
                session,
                institution_id=institution.id,
                url=webhooks_to,
                event_types=["payment.received", "promise.created"],
                actor="load",
            )
        debtor_ids, account_ids = [], []
        for number in range(debtors):
            debtor = Debtor(
                institution_id=institution.id,
                external_id=f"LD{number}",
                name="张伟",
                name_index=blind_index("张伟", context="debtors.name"),
                timezone="Asia/Shanghai",
            )
            session.add(debtor)
            session.flush()
            account = Account(
                institution_id=institution.id,
                debtor_id=debtor.id,
                external_id=f"LA{number}",
                product="consumer_loan",
                currency="CNY",
                principal=1_000_000,
                interest=0,
                fees=0,
                penalty=0,
                minimum_due=100_000,
                overdue_amount=100_000,
                days_past_due=45,
                bucket=bucket_for(45),
                status="delinquent",
            )
            session.add(account)
            session.flush()
            give_to_agent(session, account, managers[number % len(managers)])
            debtor_ids.append(debtor.id)
            account_ids.append(account.id)
    # The day's cycle, run now if it is due, as the server's worker would at start: the load
    # then meets a finished cycle and its report, not a cycle working through every case.
    with unit_of_work(engine) as session:
        for institution, day in cycle.due_runs(session, now=utcnow()):
            runner.run_cycle_in(session, institution_code=institution.code, as_of=day, actor="load")
    return Portfolio(usernames, tuple(debtor_ids), tuple(account_ids), ADMIN)


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running ``recoup serve`` process and its address."""

    process: subprocess.Popen[bytes]
    base_url: str
    ready_seconds: float
    log: Path

    def stop(self, *, grace_seconds: float) -> float:
        """Send SIGTERM and return the seconds until the process exited (killed past grace)."""
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.perf_counter() - started


@contextmanager
def serving(
    database_url: str, data_dir: Path, *, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run ``python -m recoup serve`` against ``database_url`` until the block ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    keyring = data_dir / "keyring.json"
    crypto.save_keyring(crypto.get_keyring(), keyring)
    port = free_port()
    env = {
        **os.environ,
        "RECOUP_DATABASE_URL": database_url,
        "RECOUP_DATA_DIR": str(data_dir),
        "RECOUP_KEYRING_FILE": str(keyring),
        "RECOUP_ENV": "development",
        **(extra_env or {}),
    }
    log = data_dir / "server.log"
    started = time.perf_counter()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "recoup", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    server = Server(process, base_url, 0.0, log)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"recoup serve exited at start:\n{log.read_text()}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"recoup serve did not start in 60 s:\n{log.read_text()}")
            time.sleep(0.05)
        server.ready_seconds = time.perf_counter() - started
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser_cookies(base_url: str, username: str) -> httpx.Cookies:
    """Sign ``username`` in through the login form, as a browser does; return its cookies."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        form = client.get("/login")
        form.raise_for_status()
        found = _CSRF_FIELD.search(form.text)
        if found is None:
            raise RuntimeError("the login page has no CSRF field")
        answer = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": found.group(1)},
        )
        if answer.status_code != 303:
            raise RuntimeError(f"signing {username} in answered {answer.status_code}")
        return client.cookies


# The newer reads every client mixes in (API by token, pages by the browser's cookie).
NEWER_READS = (
    ("GET /work/next", "/api/v1/work/next"),
    ("GET /work/cases", "/api/v1/work/cases"),
    ("GET /outbox/messages", "/api/v1/outbox/messages"),
    ("GET /strategies", "/api/v1/strategies"),
    ("page /work", "/work"),
    ("page /outbox", "/outbox"),
    ("page /strategies", "/strategies"),
    ("page /cycle", "/cycle"),
)
# What the admin client does with webhooks, over and over.
WEBHOOK_ADMIN = (
    ("GET /webhooks/subscriptions", "GET", "/api/v1/webhooks/subscriptions"),
    ("GET /webhooks/deliveries", "GET", "/api/v1/webhooks/deliveries"),
    ("POST /webhooks/deliveries/replay-dead", "POST", "/api/v1/webhooks/deliveries/replay-dead"),
    ("page /admin/webhooks", "GET", "/admin/webhooks"),
)


def token_for(base_url: str, username: str) -> str:
    """Sign ``username`` in through the API and return its bearer token."""
    response = httpx.post(
        f"{base_url}/api/v1/auth/token",
        data={"username": username, "password": PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@dataclass
class LoadResult:
    """What the clients saw: statuses and latencies per endpoint, and transport failures."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    transport_errors: list[str] = field(default_factory=list)
    healthz: list[float] = field(default_factory=list)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses[(endpoint, status)] += 1
            self.latencies.setdefault(endpoint, []).append(seconds)

    def count(self, endpoint: str, status: int) -> int:
        return self.statuses[(endpoint, status)]

    def server_errors(self) -> dict[str, int]:
        return {f"{e} {s}": n for (e, s), n in self.statuses.items() if s >= 500}

    def requests(self) -> int:
        return sum(self.statuses.values())


def percentile(values: list[float], share: float) -> float:
    """Return the ``share`` quantile of ``values`` (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _client(
    base_url: str,
    cookies: httpx.Cookies,
    token: str,
    portfolio: Portfolio,
    result: LoadResult,
    *,
    until: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    due = (date.today() + timedelta(days=7)).isoformat()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, cookies=cookies, timeout=60) as client:
        turn = -1
        while time.perf_counter() < until:
            turn += 1
            roll = rng.random()
            account_id = rng.choice(portfolio.account_ids)
            debtor_id = rng.choice(portfolio.debtor_ids)
            if turn == 0 or rng.random() < 0.12:
                # Each client's first request is one of the newer reads, in turn: all are met.
                endpoint, url = NEWER_READS[(seed + turn) % len(NEWER_READS)]
                method, body = "GET", None
            elif roll < 0.07:
                endpoint, method, url, body = "GET /me", "GET", "/api/v1/me", None
            elif roll < 0.11:
                endpoint, method, url, body = "GET /cases", "GET", "/api/v1/cases", None
            elif roll < 0.15:
                endpoint, method, url, body = (
                    "GET /kpis",
                    "GET",
                    f"/api/v1/kpis?as_of={date.today().isoformat()}",
                    None,
                )
            elif roll < 0.30:
                endpoint, method, url, body = "GET /accounts", "GET", "/api/v1/accounts", None
            elif roll < 0.40:
                endpoint, method = "GET /debtors/{id}", "GET"
                url, body = f"/api/v1/debtors/{debtor_id}", None
            elif roll < 0.50:
                endpoint, method = "GET /accounts/{id}/promises", "GET"
                url, body = f"/api/v1/accounts/{account_id}/promises", None
            elif roll < 0.75:
                endpoint, method, url = "POST /compliance/check", "POST", "/api/v1/compliance/check"
                hour = rng.randint(9, 19)
                body = {
                    "debtor_id": debtor_id,
                    "channel": "call",
                    "party": "debtor",
                    "at": f"{CHECK_DAY}T{hour:02d}:{rng.randint(0, 59):02d}:00+08:00",
                }
            else:
                endpoint, method = "POST /accounts/{id}/promises", "POST"
                url = f"/api/v1/accounts/{account_id}/promises"
                body = {"amount": "100.00", "due_date": due, "channel": "call"}
            started = time.perf_counter()
            try:
                response = client.request(method, url, json=body)
            except httpx.TransportError as error:
                with result.lock:
                    result.transport_errors.append(f"{endpoint}: {error!r}")
                continue
            result.note(endpoint, response.status_code, time.perf_counter() - started)
            created = endpoint.startswith("POST /accounts") and response.status_code == 201
            if created and rng.random() < 0.5:
                # Cancel now and then, so the account takes promises again.
                promise_id = response.json()["id"]
                started = time.perf_counter()
                try:
                    cancel = client.post(f"/api/v1/promises/{promise_id}/cancel")
                except httpx.TransportError as error:
                    with result.lock:
                        result.transport_errors.append(f"cancel: {error!r}")
                    continue
                result.note(
                    "POST /promises/{id}/cancel", cancel.status_code, time.perf_counter() - started
                )


def _administer(
    base_url: str, token: str, cookies: httpx.Cookies, result: LoadResult, *, until: float
) -> None:
    """Administer webhooks all along: list subscriptions and deliveries, replay dead letters."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, cookies=cookies, timeout=60) as client:
        turn = 0
        while time.perf_counter() < until:
            endpoint, method, url = WEBHOOK_ADMIN[turn % len(WEBHOOK_ADMIN)]
            turn += 1
            started = time.perf_counter()
            try:
                response = client.request(method, url)
            except httpx.TransportError as error:
                with result.lock:
                    result.transport_errors.append(f"{endpoint}: {error!r}")
                continue
            result.note(endpoint, response.status_code, time.perf_counter() - started)
            time.sleep(0.05)


# Pages a signed-in manager (or, for the /admin and /audit pages, the admin) can open, each
# met for the first time by ``first_visit_stalls``.
PAGES = (
    *(url for _endpoint, url in NEWER_READS if not url.startswith("/api/")),
    "/work/next",
    "/accounts",
    "/debtors",
    "/allocation",
    "/analytics/agent-day",
    "/analytics/agents",
    "/analytics/compliance",
    "/analytics/quality",
    "/analytics/regions",
    "/compliance",
    "/compliance/certifications",
    "/compliance/decisions",
    "/compliance/templates",
    "/compliance/templates/new",
    "/compliance/violations",
    "/imports",
    "/models",
    "/models/compare",
    "/models/drift",
    "/outbox/campaigns/new",
    "/scripts",
    "/simulations",
    "/admin/webhooks",
    "/admin/users",
    "/admin/apikeys",
    "/audit",
)


@dataclass(frozen=True)
class Stall:
    """The slowest /healthz answer while a page was opened the first time and the second."""

    status: int
    first: float
    second: float

    @property
    def added(self) -> float:
        """What the first visit added over the second (the machine's own load left out)."""
        return self.first - self.second


def _slowest_health_during(base_url: str, request: Callable[[], int]) -> tuple[int, float]:
    done = threading.Event()
    slowest = [0.0]

    def probe() -> None:
        with httpx.Client(base_url=base_url, timeout=60) as health:
            while not done.is_set():
                started = time.perf_counter()
                health.get("/healthz").raise_for_status()
                slowest[0] = max(slowest[0], time.perf_counter() - started)
                time.sleep(0.005)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        time.sleep(0.05)
        status = request()
    finally:
        done.set()
        prober.join()
    return status, slowest[0]


def first_visit_stalls(
    base_url: str, cookies: httpx.Cookies, admin_cookies: httpx.Cookies
) -> dict[str, Stall]:
    """Open each page of ``PAGES`` twice, one at a time, while another client times
    ``/healthz`` in a tight loop; return each page's status and the slowest /healthz answer
    during its first and its second request."""
    stalls: dict[str, Stall] = {}
    for page in PAGES:
        jar = admin_cookies if page.startswith(("/admin", "/audit")) else cookies
        with httpx.Client(base_url=base_url, cookies=jar, timeout=60) as client:

            def visit(client: httpx.Client = client, page: str = page) -> int:
                return client.get(page).status_code

            status, first = _slowest_health_during(base_url, visit)
            _status, second = _slowest_health_during(base_url, visit)
        stalls[page] = Stall(status, first, second)
    return stalls


def _probe_health(base_url: str, result: LoadResult, *, until: float) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while time.perf_counter() < until:
            started = time.perf_counter()
            try:
                client.get("/healthz").raise_for_status()
            except httpx.HTTPError as error:
                with result.lock:
                    result.transport_errors.append(f"healthz: {error!r}")
                continue
            result.healthz.append(time.perf_counter() - started)
            time.sleep(0.02)


def run_load(
    base_url: str, portfolio: Portfolio, *, clients: int, seconds: float, seed: int = 7
) -> LoadResult:
    """Send the mix from ``clients`` threads for ``seconds``; return what they saw."""
    tokens = [token_for(base_url, username) for username in portfolio.usernames]
    admin_token = token_for(base_url, portfolio.admin)
    # Signed in before the clock starts: password hashing is slow on purpose.
    cookies = [browser_cookies(base_url, username) for username in portfolio.usernames]
    admin_cookies = browser_cookies(base_url, portfolio.admin)
    result = LoadResult()
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(
            target=_client,
            args=(
                base_url,
                cookies[number % len(tokens)],
                tokens[number % len(tokens)],
                portfolio,
                result,
            ),
            kwargs={"until": until, "seed": seed * 1000 + number},
            daemon=True,
        )
        for number in range(clients)
    ]
    threads.append(
        threading.Thread(target=_probe_health, args=(base_url, result), kwargs={"until": until})
    )
    threads.append(
        threading.Thread(
            target=_administer,
            args=(base_url, admin_token, admin_cookies, result),
            kwargs={"until": until},
        )
    )
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
        if thread.is_alive():
            result.transport_errors.append("a client was still waiting 120 s after the end")
    result.seconds = time.perf_counter() - started
    return result


@dataclass(frozen=True)
class Integrity:
    """What the database holds after a load run, beside what the clients were told."""

    promises: int
    promises_cancelled: int
    promise_audits: int
    cancel_audits: int
    decisions: int
    most_allowed_calls_in_a_day: int


def integrity(engine: Engine, portfolio: Portfolio) -> Integrity:
    """Count the rows the load run left behind (the gate's decisions: the clients' own, not
    those of the daily cycle the server's worker runs at start)."""
    with unit_of_work(engine, write=False) as session:
        promises = session.scalar(select(func.count()).select_from(Promise)) or 0
        cancelled = (
            session.scalar(
                select(func.count()).select_from(Promise).where(Promise.status == "cancelled")
            )
            or 0
        )

        def audits(action: str) -> int:
            query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
            return session.scalar(query) or 0

        clients = ContactDecision.actor.in_(portfolio.usernames)
        decisions = (
            session.scalar(select(func.count()).select_from(ContactDecision).where(clients)) or 0
        )
        allowed_per_debtor = session.execute(
            select(func.count())
            .select_from(ContactDecision)
            .where(clients, ContactDecision.allowed.is_(True))
            .group_by(ContactDecision.debtor_id)
        ).scalars()
        return Integrity(
            promises=promises,
            promises_cancelled=cancelled,
            promise_audits=audits("promise.record"),
            cancel_audits=audits("promise.cancel"),
            decisions=decisions,
            most_allowed_calls_in_a_day=max(allowed_per_debtor, default=0),
        )


def summary(result: LoadResult) -> str:
    """Return the per-endpoint figures of a run, against /healthz, as printable lines."""
    lines = [
        f"{result.requests()} requests in {result.seconds:.1f} s "
        f"({result.requests() / max(result.seconds, 1e-9):.0f}/s); "
        f"5xx: {sum(result.server_errors().values())}; "
        f"transport errors: {len(result.transport_errors)}"
    ]
    health_p50 = percentile(result.healthz, 0.5)
    lines.append(
        f"  {'GET /healthz (during load)':32} n={len(result.healthz):5d} "
        f"p50 {health_p50 * 1000:7.1f} ms  p99 {percentile(result.healthz, 0.99) * 1000:7.1f} ms"
    )
    for endpoint, values in sorted(result.latencies.items()):
        codes = ", ".join(
            f"{status}×{count}"
            for (name, status), count in sorted(result.statuses.items())
            if name == endpoint
        )
        p50 = percentile(values, 0.5)
        lines.append(
            f"  {endpoint:32} n={len(values):5d} p50 {p50 * 1000:7.1f} ms  "
            f"p99 {percentile(values, 0.99) * 1000:7.1f} ms  "
            f"({p50 / health_p50:5.1f}x healthz p50; {codes}; "
            f"{len(values) / max(result.seconds, 1e-9):.1f}/s)"
        )
    if result.healthz:
        lines.append(f"  healthz mean {statistics.fmean(result.healthz) * 1000:.1f} ms")
    return "\n".join(lines)
