"""Every page, opened in zh-CN by every role that can see it, shows no untranslated English.

The demo portfolio (with its trained models), an import with rejects, a message template and
gate decisions give each page realistic rows. Each page's visible text (text nodes, plus the
placeholders and button labels a person reads) is split into runs of ASCII letters; a run that
is not on the small allow-list below is product text someone forgot to translate.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup import config, db
from recoup.app import create_app
from recoup.compliance.gate import service as gate_service
from recoup.compliance.templates import service as templates_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.cycle import runner as cycle_runner
from recoup.identity.dependencies import SESSION_COOKIE, login_session, route_rules
from recoup.identity.permissions import permissions_of_role
from recoup.ingest.runner import run_import
from recoup.models import Account, Base, Debtor, Institution, User
from recoup.models.cases import Case, CaseAccount
from recoup.models.compliance import MessageTemplate
from recoup.models.cycle import CycleRun
from recoup.models.ingest import ImportRun
from recoup.models.scoring import ModelVersion
from recoup.models.strategy import Strategy
from tests.web.test_imports_pages import HOSTILE_DEBTORS

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
INSTITUTION = "DEMO-CF"
ACTOR = "cf.manager"  # a demo user: user names are data, allowed below

# ASCII words a zh-CN page may show, each for a reason:
ALLOWED_WORDS = frozenset(
    {
        "Recoup",  # the product's name
        "CNY",  # ISO 4217 currency codes next to amounts
        "API",  # API keys and the API are called so in Chinese software too
        "SHA-256",  # the name of the hash whose hex digest the model page shows
        "KS",  # the credit-scoring statistics are written so in Chinese (Kolmogorov–Smirnov,
        "AUC",  # area under the ROC curve, weight of evidence,
        "WOE",  # population stability index)
        "PSI",
        "LightGBM",  # the library a gradient-boosting model is trained with
    }
)
# Whole tokens that are codes people look up or type, not words: rule ids (CN-FREQ-V, CN-HRS),
# bucket codes (M1, M6+), external ids (A000000001), versions (2025.1), model versions.
ALLOWED_PATTERNS = (
    re.compile(r"^[A-Z0-9]+(?:[-_.][A-Z0-9]+)*\+?$"),
    re.compile(r"^(?:scorecard|gbm)-\d{8}-[0-9a-f]{12}$"),
    re.compile(r"^v\d+(?:\.\d+)*$"),  # version numbers: v1
    re.compile(r"\*{3}"),  # masked personal data: 3***@qq.com, 110101********123X
)
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/]*")
# A token is a run without spaces or Chinese characters and punctuation: 下载（CSV） → CSV.
TOKEN = re.compile(r"[^\s\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+")
SKIPPED_TAGS = frozenset({"script", "style", "code", "pre", "textarea", "option"})
READ_ATTRIBUTES = ("placeholder",)


VOID_TAGS = frozenset({"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"})


class _VisibleText(HTMLParser):
    """Collect the text a person reads on a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, bool]] = []  # (tag, whether its content is skipped)
        self.texts: list[str] = []

    @property
    def skipping(self) -> bool:
        return bool(self.open) and self.open[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        # Data shown as stored (names, file names, typed values) is marked translate="no";
        # text in another language on purpose (the language switch) carries its lang.
        foreign = values.get("lang") not in {None, "zh-CN", "zh"}
        skipped = self.skipping or tag in SKIPPED_TAGS or values.get("translate") == "no" or foreign
        if not skipped:
            for name in READ_ATTRIBUTES:
                if values.get(name):
                    self.texts.append(str(values[name]))
            if tag == "input" and values.get("type") in {"submit", "button"}:
                self.texts.append(str(values.get("value") or ""))
        if tag not in VOID_TAGS:
            self.open.append((tag, skipped))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                del self.open[index:]
                return

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.texts.append(data.strip())


def untranslated(html: str, *, names: frozenset[str] = frozenset()) -> list[str]:
    """Return the English words (with their text) on a page that are not on the allow-list.

    ``names`` are the user names of the data: a page may show who did something.
    """
    parser = _VisibleText()
    parser.feed(html)
    found = []
    for text in parser.texts:
        for token in TOKEN.findall(text):
            stripped = token.strip("()[]{}:;,，。：；、·…\"'“”‘’!?%*")
            if not WORD.search(stripped):
                continue
            if stripped in names or any(pattern.search(stripped) for pattern in ALLOWED_PATTERNS):
                continue
            words = [word.strip(".-_/") for word in WORD.findall(stripped)]
            if all(word in ALLOWED_WORDS or not word for word in words):
                continue
            found.append(f"{stripped!r} in {text[:80]!r}")
    return found


@dataclass
class Walk:
    """The seeded app: a client, the demo users by role and the ids pages are opened with."""

    client: TestClient
    users: dict[str, User]
    names: frozenset[str]
    ids: dict[str, str]
    pages: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


def _ids(session: Session, institution: Institution, agent: User) -> dict[str, str]:
    # A debtor the walked agent works (their case), so every role may open the debtor's pages.
    debtor_id = session.scalar(
        select(Case.debtor_id)
        .where(Case.institution_id == institution.id, Case.owner_id == agent.id)
        .order_by(Case.id)
    )
    # An overdue account of one of the agent's cases, so the agent may open it too.
    account_id = session.scalar(
        select(Account.id)
        .join(CaseAccount, CaseAccount.account_id == Account.id)
        .join(Case, Case.id == CaseAccount.case_id)
        .where(
            Account.institution_id == institution.id,
            Account.days_past_due > 0,
            Case.owner_id == agent.id,
        )
        .order_by(Account.id)
    )
    run_id = session.scalar(
        select(ImportRun.id)
        .where(ImportRun.institution_id == institution.id, ImportRun.rejected > 0)
        .order_by(ImportRun.id)
    )
    template_id = session.scalar(
        select(MessageTemplate.id).where(MessageTemplate.institution_id == institution.id)
    )
    version = session.scalar(
        select(ModelVersion.version)
        .where(ModelVersion.institution_id == institution.id)
        .order_by(ModelVersion.id)
    )
    case_id = session.scalar(
        select(CaseAccount.case_id).where(CaseAccount.account_id == account_id).limit(1)
    )
    cycle_run_id = session.scalar(
        select(CycleRun.id).where(CycleRun.institution_id == institution.id)
    )
    strategy_id = session.scalar(
        select(Strategy.id).where(Strategy.institution_id == institution.id).order_by(Strategy.id)
    )
    return {
        "cycle_run_id": str(cycle_run_id),
        "strategy_id": str(strategy_id),
        "debtor_id": str(debtor_id),
        "account_id": str(account_id),
        "case_id": str(case_id),
        "run_id": str(run_id),
        "template_id": str(template_id),
        "version": str(version),
    }


def _seed(session: Session, folder: Path) -> None:
    """Add what the demo lacks: an import with rejects, a template, blocked and allowed contacts."""
    from recoup.demo.service import seed_demo

    seed_demo(session, accounts=400, seed=3, as_of=date(2026, 11, 30), train_models=True)
    hostile = folder / "hostile_debtors.csv"
    hostile.write_text(HOSTILE_DEBTORS, encoding="utf-8")
    for kind, path in (
        ("debtors", EXAMPLES / "debtors.csv"),
        ("contacts", EXAMPLES / "contacts.csv"),
        ("debtors", hostile),
    ):
        run_import(
            session,
            institution_code=INSTITUTION,
            kind=kind,
            path=path,
            reject_report=folder / f"{path.stem}.rejects.csv",
            actor=ACTOR,
        )
    institution = session.scalars(select(Institution).where(Institution.code == INSTITUTION)).one()
    # A day's cycle, so its report (stages, counts, every case's action) is walked too.
    cycle_runner.run_cycle_in(
        session, institution_code=INSTITUTION, as_of=date(2026, 11, 30), actor=ACTOR
    )
    templates_service.create_template(
        session,
        institution_id=institution.id,
        name="还款提醒",
        channel="sms",
        locale="zh-CN",
        audience="debtor",
        body="{{ debtor_name }}您好，您的欠款 {{ balance }} 已逾期，请及时还款。",
        author=ACTOR,
        author_id=None,
    )
    debtor_id = session.scalar(
        select(Debtor.id).where(Debtor.institution_id == institution.id).order_by(Debtor.id)
    )
    assert debtor_id is not None
    for channel, hour in ((Channel.CALL, 15), (Channel.SMS, 3), (Channel.VISIT, 2)):
        gate_service.check_contact(
            session,
            institution_id=institution.id,
            debtor_id=debtor_id,
            channel=channel,
            party=Party.DEBTOR,
            at=datetime(2026, 11, 30, hour, tzinfo=UTC),  # 23:00, 11:00 and 10:00 in Beijing
            actor=ACTOR,
        )


@pytest.fixture(scope="module")
def walk(_isolated_settings: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    folder = tmp_path_factory.mktemp("walk")
    previous = os.environ.get("RECOUP_DATABASE_URL")
    os.environ["RECOUP_DATABASE_URL"] = f"sqlite:///{folder / 'walk.db'}"
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    Base.metadata.create_all(db.get_engine())
    with db.unit_of_work() as session:
        _seed(session, folder)
    with db.unit_of_work() as session:
        institution = session.scalars(
            select(Institution).where(Institution.code == INSTITUTION)
        ).one()
        users: dict[str, User] = {}
        for user in session.scalars(
            select(User).where(User.institution_id == institution.id).order_by(User.id)
        ):
            users.setdefault(str(user.role), user)
        ids = _ids(session, institution, users["agent"])
        names = frozenset(session.scalars(select(User.username)))
        session.expunge_all()
    app = create_app()
    pages = [
        (rule.path, rule.permissions)
        for rule in route_rules(app)
        if "GET" in rule.methods
        and rule.kind == "page"
        and not rule.path.endswith((".csv", ".xlsx"))
    ]
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Walk(client=client, users=users, names=names, ids=ids, pages=pages)
    db.get_engine().dispose()
    if previous is None:
        os.environ.pop("RECOUP_DATABASE_URL", None)
    else:
        os.environ["RECOUP_DATABASE_URL"] = previous
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()


def _cookie(user: User) -> str:
    response = Response()
    login_session(response, user)
    match = re.search(rf"{SESSION_COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert match
    return match.group(1)


def _url(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", lambda match: ids[match.group(1)], path)


ROLES = (
    "admin",
    "manager",
    "team_lead",
    "agent",
    "compliance_officer",
    "auditor",
    "data_scientist",
)


@pytest.mark.parametrize("role", ROLES)
def test_every_page_a_role_sees_is_in_chinese(walk: Walk, role: str) -> None:
    user = walk.users[role]
    granted = permissions_of_role(role)
    walk.client.cookies.clear()
    walk.client.cookies.set(SESSION_COOKIE, _cookie(user))
    problems: dict[str, list[str]] = {}
    opened = 0
    for path, permissions in walk.pages:
        if not set(permissions) <= granted:
            continue
        url = _url(path, walk.ids)
        response = walk.client.get(url, headers={"Accept-Language": "zh-CN", "Accept": "text/html"})
        if response.status_code != 200:
            problems[url] = [f"status {response.status_code}"]
            continue
        opened += 1
        found = untranslated(response.text, names=walk.names)
        if found:
            problems[url] = found
    assert opened > 0
    assert not problems, problems
