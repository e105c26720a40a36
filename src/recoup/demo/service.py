"""Seed the two demo institutions with a synthetic portfolio and one demo user per role.

Rows are written with Core ``executemany`` in chunks (the ``Encrypted`` column type
still encrypts every PII value on the way in, and the blind-index columns are filled
here). Users go through ``recoup.identity.service.create_user`` so passwords are hashed
and audited like any other; their random passwords are returned once and never stored.
Models, when asked for, go through ``recoup.scoring.service`` like ``recoup model train``.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.orm import Session

from recoup.analytics.daily import service as analytics
from recoup.audit import service as audit
from recoup.cases.rules import CaseEvent as CaseEventKind
from recoup.cases.rules import CaseReason
from recoup.compliance.certifications import service as certifications_service
from recoup.compliance.gate import service as gate_service
from recoup.compliance.gate.rules import Gate
from recoup.contact.channels import CHANNELS
from recoup.db import unit_of_work
from recoup.demo import generator, history, repository, showcase, work
from recoup.demo.generator import Column, Flavour, Portfolio
from recoup.identity import repository as identity_repository
from recoup.identity import service as identity
from recoup.institutions import repository as institutions_repository
from recoup.institutions.service import create_institution
from recoup.institutions.settings import settings_of
from recoup.kit.clock import utcnow, zone
from recoup.kit.crypto import KeyRing, get_keyring, normalise_for_index
from recoup.kit.errors import RecoupError, ValidationFailed
from recoup.models import Account, Base, ContactPoint, Debtor, DelinquencyEvent, Payment
from recoup.models.compliance import ContactDecision
from recoup.models.contact import ContactAttempt, ContactPointConsent
from recoup.models.institution import Institution
from recoup.models.plans import PaymentPlan, PlanInstalment
from recoup.models.workbench import Promise
from recoup.scoring import service as scoring
from recoup.scoring.errors import ScoringError
from recoup.scoring.spec import Family
from recoup.scoring.uplift import UpliftDataInvalid
from recoup.strategy import service as strategy_service
from recoup.strategy.presets import preset_text
from recoup.strategy.rules import compile_strategy

ACTOR = "demo-seed"
# Days of daily dashboard figures the demo computes at once (the hourly job continues).
DEMO_HISTORY_DAYS = 92
CHUNK_ROWS = 10_000
# The commercial bank gets one account in six: fewer, larger accounts.
BANK_SHARE_DIVISOR = 6
# Simulated cases per uplift experiment for an institution whose priority is on uplift (the
# commercial-bank preset), trained with the demo's models; see docs/simulation.md for the cost.
DEMO_UPLIFT_CASES = 10_000
DEMO_UPLIFT_SEED = 7
# Only the agents' calls: what the allocation gives by priority (visits are not learnt and stay
# on propensity); each channel more is another pair of simulated experiments.
DEMO_UPLIFT_CHANNELS = ("call",)


@dataclass(frozen=True, slots=True)
class DemoInstitution:
    """One demo tenant: who it is and what kind of portfolio it holds."""

    code: str
    name: str
    preset: str
    flavour: Flavour
    username_prefix: str


DEMO_INSTITUTIONS = (
    DemoInstitution(
        "DEMO-CF", "演示消费金融", "consumer_finance", generator.CONSUMER_FINANCE, "cf"
    ),
    DemoInstitution(
        "DEMO-BANK", "演示商业银行", "commercial_bank", generator.COMMERCIAL_BANK, "bank"
    ),
)

# (role, how many demo users of it per institution, display name)
DEMO_ROLES: tuple[tuple[str, int, str], ...] = (
    ("admin", 1, "演示管理员"),
    ("manager", 1, "演示催收主管"),
    ("team_lead", 1, "演示催收组长"),
    ("agent", 3, "演示催收员"),
    ("compliance_officer", 1, "演示合规专员"),
    ("auditor", 1, "演示审计员"),
    ("data_scientist", 1, "演示数据科学家"),
)

# The scorecard is trained first and becomes champion: collectors can read its reasons.
DEMO_MODEL_FAMILIES: tuple[Family, ...] = ("scorecard", "gbm")
CHAMPION_FAMILY: Family = "scorecard"

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(institution_code, rows_written, rows_total)``."""

ModelProgressCallback = Callable[[str, str, int, int], None]
"""Called as ``model_progress(institution_code, next_step, steps_done, steps_total)``."""


@dataclass(frozen=True)
class DemoCredential:
    """A demo user's sign-in; ``password`` is ``None`` when the user already existed."""

    institution_code: str
    username: str
    role: str
    display_name: str
    password: str | None = field(repr=False)


@dataclass(frozen=True)
class DemoModel:
    """A model trained on a demo institution's history, with its held-out metrics."""

    version: str
    family: str
    auc: float
    ks: float
    seconds: float
    champion: bool = False


@dataclass(frozen=True)
class DemoUplift:
    """The uplift model trained for an institution whose priority is on uplift."""

    version: str
    # Held-out Qini coefficient of the call channel (0 random, 1 perfect).
    call_qini: float
    seconds: float


@dataclass
class DemoModels:
    """What preparing one institution's models did: models, scored accounts and notes."""

    models: list[DemoModel] = field(default_factory=list)
    accounts_scored: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    uplift: DemoUplift | None = None


@dataclass(frozen=True)
class SeededInstitution:
    """What seeding did for one institution."""

    code: str
    name: str
    seeded: bool
    message: str
    counts: dict[str, int] = field(default_factory=dict)
    models: DemoModels | None = None


@dataclass
class DemoSeed:
    """The outcome of ``seed_demo``: per-institution results, new credentials and timings."""

    institutions: list[SeededInstitution] = field(default_factory=list)
    credentials: list[DemoCredential] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def accounts(self) -> int:
        return sum(result.counts.get("accounts", 0) for result in self.institutions)

    @property
    def rows(self) -> int:
        return sum(sum(result.counts.values()) for result in self.institutions)


def split_accounts(total: int) -> dict[str, int]:
    """Return how many of ``total`` accounts each demo institution gets."""
    bank = total // BANK_SHARE_DIVISOR
    return {"DEMO-CF": total - bank, "DEMO-BANK": bank}


def seed_demo(
    session_or_engine: Session | Engine,
    *,
    accounts: int,
    seed: int,
    as_of: date | None = None,
    progress: ProgressCallback | None = None,
    train_models: bool = False,
    model_progress: ModelProgressCallback | None = None,
) -> DemoSeed:
    """Create the demo institutions, users and portfolios; skip an institution that has data.

    With ``train_models`` each institution seeded now also gets its models and scores
    (``prepare_demo_models``). Given a ``Session`` this never commits (the caller owns the
    transaction); given an ``Engine`` it commits once per institution, so a finished
    institution stays seeded.
    """
    if accounts < 1:
        raise ValidationFailed(f"seed at least one account, not {accounts}")
    as_of = as_of or utcnow().astimezone(zone("Asia/Shanghai")).date()
    result = DemoSeed()
    shares = split_accounts(accounts)
    for spec in DEMO_INSTITUTIONS:
        with _session_for(session_or_engine) as session:
            _seed_institution(
                session,
                spec=spec,
                accounts=shares[spec.code],
                seed=seed,
                as_of=as_of,
                progress=progress,
                train_models=train_models,
                model_progress=model_progress,
                result=result,
            )
    return result


@contextmanager
def _session_for(session_or_engine: Session | Engine) -> Iterator[Session]:
    if isinstance(session_or_engine, Session):
        yield session_or_engine
        return
    with unit_of_work(session_or_engine) as session:
        yield session


def _seed_institution(
    session: Session,
    *,
    spec: DemoInstitution,
    accounts: int,
    seed: int,
    as_of: date,
    progress: ProgressCallback | None,
    train_models: bool,
    model_progress: ModelProgressCallback | None,
    result: DemoSeed,
) -> None:
    """Seed one demo institution unless it already holds a portfolio."""
    # Find or create the institution; one that already has data is left alone.
    institution = institutions_repository.get_by_code(session, spec.code)
    if institution is None:
        institution = create_institution(
            session,
            code=spec.code,
            name=spec.name,
            jurisdiction="CN",
            timezone="Asia/Shanghai",
            currency=spec.flavour.currency,
            preset=spec.preset,
            actor=ACTOR,
        )
    elif repository.has_portfolio(session, institution.id):
        existing = repository.count_accounts(session, institution.id)
        result.institutions.append(
            SeededInstitution(
                code=spec.code,
                name=institution.name,
                seeded=False,
                message=f"skipped: already holds {existing:,} accounts",
            )
        )
        return

    # Demo users, one per role (three agents), so every page has someone to sign in as.
    started = time.perf_counter()
    agents = _create_users(session, spec=spec, institution_id=institution.id, result=result)
    # Accounts go only to agents with a valid compliance certificate (as allocation requires).
    agents = _certify_agents(session, institution_id=institution.id, agent_ids=agents, on=as_of)
    _add_seconds(result, "users", started)

    if accounts == 0:
        result.institutions.append(
            SeededInstitution(
                code=spec.code, name=institution.name, seeded=True, message="users only"
            )
        )
        return

    # Generate the portfolio in memory, then write it table by table.
    started = time.perf_counter()
    portfolio = generator.generate_portfolio(
        accounts=accounts, seed=seed, flavour=spec.flavour, as_of=as_of, current_spells=True
    )
    _add_seconds(result, "generate", started)
    # The last months are lived by the simulator: the preset strategy through the gate.
    started = time.perf_counter()
    setting = _history_setting(session, institution)
    portfolio, lived = history.simulate_history(portfolio, seed=seed, setting=setting)
    _add_seconds(result, "simulate", started)
    writer = _Writer(
        session=session,
        institution_id=institution.id,
        label=spec.code,
        # The contact log's rows and the gate decisions that allowed them.
        total=portfolio.row_count + len(portfolio.contact_attempts),
        progress=progress,
        result=result,
        gate=setting.gate,
        timezone=setting.timezone,
    )
    counts = writer.write(portfolio, agents=agents)
    counts |= lived
    # Cases open for the delinquent debtors, each owned by the agent of most of its accounts.
    counts |= work.open_cases(
        session, institution_id=institution.id, account_agents=writer.account_agents
    )
    # The simulated complaints, on the cases of the debtors who made them.
    counts |= writer.write_complaints(portfolio, agents=agents)

    # Templates, gate decisions, violations and an import run: every page has something to show.
    started = time.perf_counter()
    shown = showcase.seed_showcase(session, institution=institution, as_of=as_of)
    counts["debtors"] += shown.pop("imported_debtors")
    counts |= shown
    _add_seconds(result, "showcase", started)

    audit.record(
        session,
        actor=ACTOR,
        action="demo.seed",
        object_type="institution",
        object_id=institution.id,
        institution_id=institution.id,
        details={"seed": seed, "as_of": as_of.isoformat(), **counts},
    )

    # Models trained on the history just written, so the models pages have something to show.
    models = (
        prepare_demo_models(session, institution=institution, as_of=as_of, progress=model_progress)
        if train_models
        else None
    )
    # Queues, agents' capacity and cases (after the scores, which set cases' expected recovery).
    started = time.perf_counter()
    counts |= work.seed_work(session, institution_id=institution.id, agent_ids=agents)
    _add_seconds(result, "work", started)
    # The dashboards' daily figures for the last quarter (the hourly job keeps them current).
    started = time.perf_counter()
    analytics.refresh_aggregates(
        session,
        institution=institution,
        as_of=as_of,
        first=as_of - timedelta(days=DEMO_HISTORY_DAYS),
    )
    _add_seconds(result, "dashboards", started)
    result.institutions.append(
        SeededInstitution(
            code=spec.code,
            name=institution.name,
            seeded=True,
            message="seeded",
            counts=counts,
            models=models,
        )
    )


def _history_setting(session: Session, institution: Institution) -> history.Setting:
    """The institution's preset strategy, compiled gate and contact costs, for the past."""
    preset = strategy_service.default_preset(institution)
    return history.Setting(
        compiled=compile_strategy(preset_text(preset)),
        gate=gate_service.gate_for(session, institution=institution),
        costs=dict(strategy_service.costs_minor(institution)),
        timezone=str(institution.timezone),
    )


def _add_seconds(result: DemoSeed, stage: str, started: float) -> None:
    result.seconds[stage] = result.seconds.get(stage, 0.0) + time.perf_counter() - started


# --- models ------------------------------------------------------------------------------


def prepare_demo_models(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    progress: ModelProgressCallback | None = None,
) -> DemoModels:
    """Train the demo models on an institution's history, promote the scorecard, score accounts.

    A portfolio too small to learn from must not break the demo: a step that raises a
    ``ScoringError`` is rolled back to its savepoint and leaves a note in the outcome instead.
    """
    outcome = DemoModels()
    started = time.perf_counter()
    steps = len(DEMO_MODEL_FAMILIES) + 1

    def report(step: str, done: int) -> None:
        if progress is not None:
            progress(institution.code, step, done, steps)

    # Train each family on the monthly snapshots before ``as_of``, as `recoup model train` does.
    for done, family in enumerate(DEMO_MODEL_FAMILIES):
        report(f"training the {family}", done)
        trained_at = time.perf_counter()
        try:
            with session.begin_nested():
                trained = scoring.train_from_portfolio(
                    session, institution=institution, as_of=as_of, family=family, actor=ACTOR
                )
        except ScoringError as error:
            if family == CHAMPION_FAMILY:
                # Every family learns from the same rows: if the scorecard cannot, none can.
                outcome.notes.append(f"no models or scores: {error.message}")
                break
            outcome.notes.append(f"{family} not trained: {error.message}")
            continue
        evaluation = trained.model.evaluation
        outcome.models.append(
            DemoModel(
                version=trained.model_version.version,
                family=family,
                auc=evaluation.auc,
                ks=evaluation.ks,
                seconds=time.perf_counter() - trained_at,
            )
        )

    # Promote the scorecard (audited) and score every delinquent account with it.
    champion = next((model for model in outcome.models if model.family == CHAMPION_FAMILY), None)
    if champion is not None and settings_of(institution).allocation.priority == "uplift":
        # Before scoring, so the scores' priority is on uplift as the preset asks.
        report("training the uplift model", steps - 1)
        try:
            with session.begin_nested():
                outcome.uplift = train_demo_uplift(session, institution=institution)
        except (RecoupError, UpliftDataInvalid) as error:
            outcome.notes.append(f"no uplift model (priority stays on propensity): {error}")
    if champion is not None:
        report("scoring delinquent accounts", steps - 1)
        try:
            with session.begin_nested():
                scoring.promote_model(session, version=champion.version, actor=ACTOR)
                run = scoring.score_delinquent_accounts(
                    session, institution=institution, as_of=as_of
                )
        except ScoringError as error:
            outcome.notes.append(f"{champion.version} not promoted: {error.message}")
        else:
            outcome.models[outcome.models.index(champion)] = replace(champion, champion=True)
            outcome.accounts_scored = run.accounts_scored
    report("done", steps)
    outcome.seconds = time.perf_counter() - started
    return outcome


def train_demo_uplift(session: Session, *, institution: Institution) -> DemoUplift:
    """Train an uplift model on simulated experiments on the institution's live cases (as
    ``recoup simulate uplift-train`` does, on fewer cases and the call channel only:
    ``DEMO_UPLIFT_CASES``, ``DEMO_UPLIFT_CHANNELS``) and register it."""
    from recoup.simulation import service as simulation
    from recoup.simulation import uplift

    started = time.perf_counter()
    setup = simulation.prepare(session, institution=institution)
    trained = uplift.train_and_measure(
        setup,
        institution=institution.code,
        size=DEMO_UPLIFT_CASES,
        seed=DEMO_UPLIFT_SEED,
        channels=DEMO_UPLIFT_CHANNELS,
    )
    registered = scoring.register_uplift_model(
        session,
        institution=institution,
        model=trained.model,
        metrics=trained.metrics,
        data_fingerprint=trained.data_fingerprint,
        source=trained.source,
        actor=ACTOR,
    )
    return DemoUplift(
        version=registered.version,
        call_qini=float(trained.metrics["channels"]["call"]["qini"]["coefficient"]),
        seconds=time.perf_counter() - started,
    )


# --- users -------------------------------------------------------------------------------


def strong_password(length: int = 20) -> str:
    """Return a random password with upper- and lower-case letters, digits and symbols."""
    symbols = "-_.!@#%^*+="
    alphabet = string.ascii_letters + string.digits + symbols
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(ch.islower() for ch in password)
            and any(ch.isupper() for ch in password)
            and any(ch.isdigit() for ch in password)
            and any(ch in symbols for ch in password)
        ):
            return password


def demo_users(spec: DemoInstitution) -> list[tuple[str, str, str]]:
    """Return (username, role, display name) of each demo user of an institution (``cf.agent2``)."""
    users = []
    for role, count, label in DEMO_ROLES:
        for number in range(1, count + 1):
            suffix, name = (f"{role}{number}", f"{label}{number}") if count > 1 else (role, label)
            users.append((f"{spec.username_prefix}.{suffix}", role, name))
    return users


def _create_users(
    session: Session, *, spec: DemoInstitution, institution_id: int, result: DemoSeed
) -> list[int]:
    """Create the institution's demo users (keeping existing ones); return the agents' ids."""
    agent_ids: list[int] = []
    team_lead_id: int | None = None
    # Display names are role labels, never made-up person names that could match a debtor's.
    for username, role, display_name in demo_users(spec):
        user = identity_repository.get_user_by_username(session, username)
        password: str | None = None
        if user is None:
            # Generated with ``secrets`` (not the seed) so nobody can rebuild them from the seed.
            password = strong_password()
            user = identity.create_user(
                session,
                username=username,
                role=role,
                institution_id=institution_id,
                password=password,
                display_name=display_name,
                actor=ACTOR,
            )
        result.credentials.append(
            DemoCredential(
                institution_code=spec.code,
                username=username,
                role=role,
                display_name=user.display_name,
                password=password,
            )
        )
        if role == "agent":
            agent_ids.append(user.id)
        elif role == "team_lead":
            team_lead_id = user.id
    if team_lead_id is not None:
        repository.set_team_lead(session, user_ids=agent_ids, team_lead_id=team_lead_id)
    return agent_ids


# Demo certificates: a year's course for each agent; the last one expires within the
# warning window, so the team lead has a renewal to see.
DEMO_CERTIFICATE_COURSE = "催收合规培训"
DEMO_CERTIFICATE_EXPIRING_IN_DAYS = 14


def _certify_agents(
    session: Session, *, institution_id: int, agent_ids: list[int], on: date
) -> list[int]:
    """Give demo agents without one a valid certificate; return the agents certified on a date."""
    for position, agent_id in enumerate(agent_ids):
        if certifications_service.is_certified(
            session, institution_id=institution_id, user_id=agent_id, on=on
        ):
            continue
        expiring = position == len(agent_ids) - 1
        expires_on = on + timedelta(days=DEMO_CERTIFICATE_EXPIRING_IN_DAYS if expiring else 335)
        certifications_service.grant_certification(
            session,
            institution_id=institution_id,
            user_id=agent_id,
            course=DEMO_CERTIFICATE_COURSE,
            issued_on=on - timedelta(days=30),
            expires_on=expires_on,
            actor=ACTOR,
        )
    return [
        agent_id
        for agent_id in agent_ids
        if certifications_service.is_certified(
            session, institution_id=institution_id, user_id=agent_id, on=on
        )
    ]


# --- bulk writing ------------------------------------------------------------------------


@dataclass
class _Writer:
    """Writes one portfolio in chunks and reports progress."""

    session: Session
    institution_id: int
    label: str
    total: int
    progress: ProgressCallback | None
    result: DemoSeed
    done: int = 0
    ring: KeyRing = field(default_factory=get_keyring)
    now: datetime = field(default_factory=utcnow)
    # The agent each written account goes to (by account id): its case's owner.
    account_agents: dict[int, int] = field(default_factory=dict)
    # The gate the simulated past asked (its decisions are written with the contact log).
    gate: Gate | None = None
    timezone: str = "Asia/Shanghai"
    # Row ids of the written debtors and accounts, in the portfolio's order.
    debtor_ids: Column = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    account_ids: Column = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def write(self, portfolio: Portfolio, *, agents: list[int]) -> dict[str, int]:
        """Write debtors, contacts, accounts, payments and history; return row counts."""
        connection = self.session.connection()
        self._report()
        with repository.large_page_cache(connection):
            return self._write(connection, portfolio, agents=agents)

    def _write(
        self, connection: Connection, portfolio: Portfolio, *, agents: list[int]
    ) -> dict[str, int]:
        """Write the tables parent first, reading back the ids their children point at."""
        debtors = portfolio.debtors
        self._insert(
            connection,
            _table(Debtor),
            debtors,
            names=[name for name in debtors.columns if not name.startswith("_")],
            indexes={
                "name_index": ("name", "debtors.name"),
                "national_id_index": ("national_id", "debtors.national_id"),
            },
            stage="debtors",
        )
        debtor_ids = repository.ids_by_external_id(connection, _table(Debtor), self.institution_id)
        self.debtor_ids = debtor_ids

        contacts = portfolio.contact_points
        self._insert(
            connection,
            _table(ContactPoint),
            contacts,
            names=[name for name in contacts.columns if name != "debtor_index"],
            derived={"debtor_id": debtor_ids[contacts["debtor_index"]]},
            indexes={"value_index": ("value", "contact_points.value")},
            stage="contact_points",
        )

        consents = portfolio.contact_point_consents
        if len(consents):
            contact_ids = repository.ids_by_external_id(
                connection, _table(ContactPoint), self.institution_id
            )
            self._insert(
                connection,
                _table(ContactPointConsent),
                consents,
                names=[name for name in consents.columns if name != "contact_index"],
                derived={
                    "contact_point_id": contact_ids[consents["contact_index"]],
                    "recorded_by": np.full(len(consents), ACTOR),
                },
                stage="contact_point_consents",
            )

        accounts = portfolio.accounts
        slot = accounts["agent_slot"]
        agent_ids = np.asarray(agents or [0], dtype=np.int64)
        assigned = (slot >= 0) & bool(agents)
        self._insert(
            connection,
            _table(Account),
            accounts,
            names=[name for name in accounts.columns if name not in {"debtor_index", "agent_slot"}],
            derived={"debtor_id": debtor_ids[accounts["debtor_index"]]},
            stage="accounts",
        )
        account_ids = repository.ids_by_external_id(
            connection, _table(Account), self.institution_id
        )
        self.account_ids = account_ids
        chosen = np.asarray(assigned, dtype=bool)
        self.account_agents = dict(
            zip(
                np.asarray(account_ids)[chosen].tolist(),
                agent_ids[np.asarray(slot)[chosen] % len(agent_ids)].tolist(),
                strict=True,
            )
        )

        payments = portfolio.payments
        self._insert(
            connection,
            _table(Payment),
            payments,
            names=[name for name in payments.columns if name != "account_index"],
            derived={"account_id": account_ids[payments["account_index"]]},
            stage="payments",
        )
        events = portfolio.delinquency_events
        self._insert(
            connection,
            _table(DelinquencyEvent),
            events,
            names=[name for name in events.columns if name != "account_index"],
            derived={"account_id": account_ids[events["account_index"]]},
            stage="delinquency_events",
            timestamps=False,
        )
        promises = portfolio.promises
        promised_accounts = promises["account_index"] if len(promises) else np.zeros(0, np.int64)
        self._insert(
            connection,
            _table(Promise),
            promises,
            names=[
                name for name in promises.columns if name not in {"account_index", "agent_slot"}
            ],
            derived={
                "account_id": account_ids[promised_accounts],
                "debtor_id": debtor_ids[accounts["debtor_index"][promised_accounts]],
                "created_by": np.full(len(promises), ACTOR),
                "created_by_id": self._agents_of(promises, agents),
            },
            stage="promises",
        )
        self._write_history(
            connection,
            portfolio,
            agents=agents,
            debtor_ids=debtor_ids,
            account_ids=account_ids,
            contact_ids=repository.ids_by_external_id(
                connection, _table(ContactPoint), self.institution_id
            ),
        )
        return {
            "debtors": len(debtors),
            "contact_points": len(contacts),
            "contact_point_consents": len(consents),
            "accounts": len(accounts),
            "payments": len(payments),
            "delinquency_events": len(events),
            "promises": len(promises),
            "contact_attempts": len(portfolio.contact_attempts),
            "gate_decisions_of_the_past": len(portfolio.contact_attempts),
            "plans_agreed": len(portfolio.payment_plans),
        }

    def _agents_of(self, table: generator.Table, agents: list[int]) -> Column:
        """The demo agent of each row's ``agent_slot`` (None where no agent, or none exists)."""
        if "agent_slot" not in table.columns:
            return np.full(len(table), None, dtype=object)
        slot = table["agent_slot"]
        agent_ids = np.asarray(agents or [0], dtype=np.int64)
        return generator.nullable(
            agent_ids[np.maximum(slot, 0) % len(agent_ids)], (slot >= 0) & bool(agents)
        )

    def _write_history(
        self,
        connection: Connection,
        portfolio: Portfolio,
        *,
        agents: list[int],
        debtor_ids: Column,
        account_ids: Column,
        contact_ids: Column,
    ) -> None:
        """Write the simulated contact log, the gate decisions that allowed each contact, and
        payment plans (``demo.history``)."""
        attempts = portfolio.contact_attempts
        if len(attempts):
            point = attempts["contact_index"]
            contact_point_ids = generator.nullable(contact_ids[np.maximum(point, 0)], point >= 0)
            decision_ids = self._write_decisions(
                connection,
                attempts,
                debtor_ids=debtor_ids[attempts["debtor_index"]],
                account_ids=account_ids[attempts["account_index"]],
                contact_point_ids=contact_point_ids,
            )
            self._insert(
                connection,
                _table(ContactAttempt),
                attempts,
                names=[
                    name
                    for name in attempts.columns
                    if name not in {"debtor_index", "account_index", "contact_index", "agent_slot"}
                ],
                derived={
                    "debtor_id": debtor_ids[attempts["debtor_index"]],
                    "account_id": account_ids[attempts["account_index"]],
                    "contact_point_id": contact_point_ids,
                    "decision_id": decision_ids,
                    "agent_id": self._agents_of(attempts, agents),
                    "actor": np.full(len(attempts), ACTOR),
                },
                stage="contact_attempts",
            )
        plans = portfolio.payment_plans
        if len(plans):
            first_new = repository.max_id(connection, _table(PaymentPlan), self.institution_id)
            self._insert(
                connection,
                _table(PaymentPlan),
                plans,
                names=[
                    name for name in plans.columns if name not in {"account_index", "debtor_index"}
                ],
                derived={
                    "account_id": account_ids[plans["account_index"]],
                    "debtor_id": debtor_ids[plans["debtor_index"]],
                    "created_by": np.full(len(plans), ACTOR),
                    "decided_by": np.full(len(plans), ACTOR),
                },
                stage="payment_plans",
                timestamps=False,
            )
            plan_ids = repository.ids_after(
                connection, _table(PaymentPlan), self.institution_id, first_new
            )
            instalments = portfolio.plan_instalments
            self._insert(
                connection,
                _table(PlanInstalment),
                instalments,
                names=[name for name in instalments.columns if name != "plan_index"],
                derived={"plan_id": plan_ids[instalments["plan_index"]]},
                stage="plan_instalments",
                timestamps=False,
            )

    def _write_decisions(
        self,
        connection: Connection,
        attempts: generator.Table,
        *,
        debtor_ids: Column,
        account_ids: Column,
        contact_point_ids: Column,
    ) -> Column:
        """Write the gate decision that allowed each simulated contact; return their ids.

        The run asked the institution's gate before every contact it made (the debtor's own
        time zone, no dispute or stop request open, automated channels consented), and made
        only those it allowed: each decision is an allowance without reasons under the gate's
        pack and policy, decided when the contact was planned.
        """
        gate = self.gate
        if gate is None:
            raise ValueError("the simulated contact log needs the gate that allowed it")
        channel = attempts["channel"]
        automated = np.isin(
            channel, [code.value for code, props in CHANNELS.items() if props.automated]
        )
        # What the gate was asked besides the contact itself (two documents, shared by the rows).
        asked = {
            value: {"batch": True, "simulated": True, "automated": value, "reserve": True}
            for value in (False, True)
        }
        inputs = np.empty(len(attempts), dtype=object)
        inputs[:] = [asked[value] for value in automated.tolist()]
        first_new = repository.max_id(connection, _table(ContactDecision), self.institution_id)
        self._insert(
            connection,
            _table(ContactDecision),
            attempts,
            names=["channel", "party", "planned_at"],
            derived={
                "debtor_id": debtor_ids,
                "account_id": account_ids,
                "contact_point_id": contact_point_ids,
                "inputs": inputs,
                # Decided when planned, a moment before the contact was made.
                "created_at": attempts["planned_at"],
                "updated_at": attempts["planned_at"],
            },
            constants={
                "allowed": True,
                "rule_ids": [],
                "reasons": [],
                "next_allowed_at": None,
                "timezones": [self.timezone],
                "pack_code": gate.pack.code,
                "pack_version": gate.pack.version,
                "policy_name": gate.policy.name,
                "policy_version": gate.policy.version,
                "actor": ACTOR,
            },
            stage="gate_decisions",
            timestamps=False,
        )
        ids: Column = repository.ids_after(
            connection, _table(ContactDecision), self.institution_id, first_new
        )
        if len(ids) != len(attempts):
            raise RuntimeError(f"wrote {len(attempts)} gate decisions but read {len(ids)} back")
        return ids

    def write_complaints(self, portfolio: Portfolio, *, agents: list[int]) -> dict[str, int]:
        """Record each simulated complaint on the case of the debtor who made it (a
        ``complaint`` case event at the time, by the agent of the contact complained about).

        Run after the cases are opened; a debtor with no case any more (paid off since) has
        nowhere to hold it, and is counted apart.
        """
        complaints = portfolio.complaints
        if not len(complaints):
            return {"complaints_recorded": 0, "complaints_without_case": 0}
        debtors = self.debtor_ids[complaints["debtor_index"]]
        cases = repository.case_ids_of_debtors(
            self.session,
            institution_id=self.institution_id,
            debtor_ids=sorted(set(debtors.tolist())),
        )
        has_case = np.array([debtor in cases for debtor in debtors.tolist()], dtype=bool)
        agent_ids = self._agents_of(complaints, agents)
        names = repository.usernames(
            self.session, user_ids=sorted({int(a) for a in agent_ids.tolist() if a is not None})
        )
        rows = [
            {
                "institution_id": self.institution_id,
                "case_id": cases[debtor],
                "event": CaseEventKind.COMPLAINT.value,
                "reason": CaseReason.COMPLAINT.value,
                "note": f"complaint about a {channel} contact",
                "actor": names.get(agent, ACTOR) if agent is not None else ACTOR,
                "at": at,
            }
            for debtor, channel, agent, at, held in zip(
                debtors.tolist(),
                complaints["channel"].tolist(),
                agent_ids.tolist(),
                _moments(complaints["at"]),
                has_case.tolist(),
                strict=True,
            )
            if held
        ]
        repository.add_case_events(self.session, rows)
        return {
            "complaints_recorded": len(rows),
            "complaints_without_case": int((~has_case).sum()),
        }

    def _insert(
        self,
        connection: Connection,
        table: Table,
        source: generator.Table,
        *,
        names: list[str],
        stage: str,
        derived: dict[str, Column] | None = None,
        indexes: dict[str, tuple[str, str]] | None = None,
        timestamps: bool = True,
        constants: dict[str, Any] | None = None,
    ) -> None:
        started = time.perf_counter()
        constants = {"institution_id": self.institution_id, **(constants or {})}
        if timestamps:
            constants |= {"created_at": self.now, "updated_at": self.now}
        dialect = connection.dialect

        def prepare(part: slice) -> repository.PreparedInsert:
            columns: dict[str, Any] = {name: source[name][part] for name in names}
            columns |= {name: values[part] for name, values in (derived or {}).items()}
            for index_name, (plain_name, context) in (indexes or {}).items():
                columns[index_name] = self._blind_indexes(columns[plain_name], context)
            return repository.prepare_insert(dialect, table, columns | constants)

        # Encrypting and formatting the next chunk overlaps with the database writing this one.
        parts = list(repository.chunked(len(source), CHUNK_ROWS))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-seed") as helper:
            upcoming = helper.submit(prepare, parts[0]) if parts else None
            for following in [*parts[1:], None]:
                if upcoming is None:
                    break
                prepared = upcoming.result()
                upcoming = helper.submit(prepare, following) if following is not None else None
                self.done += repository.execute_insert(connection, prepared)
                self._report()
        _add_seconds(self.result, stage, started)

    def _blind_indexes(self, plain: Column, context: str) -> Column:
        ring = self.ring
        hashes = [
            None if value is None else ring.blind_index(normalise_for_index(value), context=context)
            for value in plain.tolist()
        ]
        return np.array(hashes, dtype=object)

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.label, self.done, self.total)


def _moments(values: Column) -> list[datetime]:
    """Aware UTC datetimes of a column of naive UTC instants."""
    return [moment.replace(tzinfo=UTC) for moment in values.astype("datetime64[us]").tolist()]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table
