"""What makes the compliance, import and review pages alive on first start.

The portfolio writer fills accounts and history; this adds the few records a compliance
officer and a data steward look for first: message templates in every review state, the
default call scripts approved, stored gate decisions (allowed and blocked), violations from
agents' notes (one confirmed, one open), an import run with rejected rows, and texts and emails
sent through the sandbox provider (its receipts arrive like a real provider's). Everything
goes through the domain services, so it is audited like real work. A fixed, small amount:
it costs well under a second whatever the portfolio size. Never commits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.compliance.gate import service as gate_service
from recoup.compliance.templates import service as templates_service
from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party
from recoup.demo import repository
from recoup.enums import ImportKind, ImportStatus
from recoup.identity import repository as identity_repository
from recoup.ingest import service as ingest
from recoup.ingest.readers import RawRow
from recoup.institutions import service as institutions_service
from recoup.kit.clock import utcnow, zone
from recoup.models.compliance import MessageTemplate
from recoup.models.identity import User
from recoup.models.ingest import ImportRun
from recoup.models.institution import Institution
from recoup.scripts import service as scripts_service
from recoup.strategy import service as strategy_service

ACTOR = "demo-seed"


@dataclass(frozen=True, slots=True)
class DemoTemplate:
    """A template and how far its review has gone."""

    name: str
    channel: str
    body: str
    state: str  # draft, submitted, approved or rejected
    note: str | None = None


# A collection letter with every element CN-DISC asks of letters (name, balance, reason and
# legal basis, rights and duties, how to check and repay, how to dispute, the creditor's
# contact), so the letters page prints one on first start.
DEMO_LETTER = (
    "尊敬的{{ debtor_name }}：\n"
    "您在{{ institution_name }}的借款（合同编号 {{ account_number }}）"
    "已逾期 {{ days_past_due }} 天，"
    "截至本函出具之日尚欠本息合计 {{ balance }} 元。\n"
    "根据《借款合同》约定及《中华人民共和国民法典》相关规定，您负有按期还款的义务；"
    "同时您享有了解债务明细、对债务提出异议等合法权利。\n"
    "您可通过手机银行或客服热线查询账户明细。还款方式：向本机构还款账户转账，或通过手机银行还款。\n"
    "如对本函所述债务有异议，请自收到本函之日起十五日内通过客服热线提出，我们将在核实后答复。\n"
    "客服电话：400-000-0000（工作日 9:00-18:00）。"
)

DEMO_TEMPLATES = (
    DemoTemplate(
        "还款提醒短信",
        "sms",
        "{{ debtor_name }}您好，您的账单已到期，请于{{ due_date }}前还款，如有疑问请致电客服。",
        "approved",
    ),
    DemoTemplate(
        "逾期首次电话话术",
        "call",
        "您好，我是{{ agent_name }}，来电是关于您{{ due_date }}到期的账单。"
        "请问您方便现在沟通还款安排吗？",
        "approved",
    ),
    DemoTemplate(
        "还款提醒邮件",
        "email",
        "{{ debtor_name }}您好：\n您在{{ institution_name }}的账户（{{ account_number }}）"
        "已逾期 {{ days_past_due }} 天，逾期金额 {{ overdue_amount }} 元。"
        "请尽快通过手机银行或客服热线安排还款；如已还款，请忽略本邮件。",
        "approved",
    ),
    DemoTemplate(
        "催收通知函",
        "letter",
        DEMO_LETTER,
        "approved",
    ),
    DemoTemplate(
        "分期还款邀请",
        "sms",
        "{{ debtor_name }}您好，如您还款有困难，可以申请分期还款，回复1了解详情。",
        "submitted",
    ),
    DemoTemplate(
        "承诺还款确认",
        "sms",
        "{{ debtor_name }}您好，您已承诺于{{ promise_date }}还款{{ amount }}元，感谢您的配合。",
        "draft",
    ),
    DemoTemplate(
        "最后通知",
        "sms",
        "{{ debtor_name }}，再不还钱就后果自负，我们将通知你单位和家人。",
        "rejected",
        "威胁性语言，且提及向单位和家人披露债务，不得使用。",
    ),
)

# Agents' call notes; the review lexicon finds a threat in the first two.
DEMO_NOTES = (
    "客户说没钱，我告诉他不还钱就后果自负。",
    "客户拒绝沟通，我说再不还款就上门找你家人。",
)

# A debtor file from the core banking system: valid rows and three a data steward must fix.
DEMO_IMPORT_FILE = "core-banking-debtors.csv"
DEMO_IMPORT_ROWS: tuple[dict[str, str | None], ...] = (
    {"external_id": "CB-D0001", "name": "张伟", "national_id": "110101198803140212"},
    {"external_id": "CB-D0002", "name": "李娜", "national_id": "310104199205270464"},
    {"external_id": "CB-D0003", "name": "王芳", "national_id": "440305198511021281"},
    {"external_id": "CB-D0004", "name": "刘洋", "national_id": "510107199508190732"},
    {"external_id": "CB-D0005", "name": "陈静", "national_id": "330106199002011047"},
    {"external_id": "CB-D0006", "name": "", "national_id": "420106198307150379"},
    {"external_id": "CB-D0007", "name": "黄敏", "national_id": "320102199704230627"},
    {"external_id": "CB-D0008", "name": "周杰", "national_id": "11010119880314"},
    {"external_id": "CB-D0009", "name": "吴刚", "timezone": "Mars/Olympus"},
)
DEMO_IMPORT_COLUMNS = ("external_id", "name", "kind", "national_id", "timezone", "language")


def seed_showcase(session: Session, *, institution: Institution, as_of: date) -> dict[str, int]:
    """Add templates, gate decisions, contacts, violations and an import run; count each.

    ``imported_debtors`` counts the debtors the import added to the portfolio.
    """
    users = _users(session, institution_id=institution.id)
    _sandbox_channels(session, institution=institution)
    run = _import_run(session, institution=institution)
    templates = _templates(session, institution=institution, users=users, as_of=as_of)
    scripts = _scripts(session, institution=institution, users=users, as_of=as_of)
    # The demo's calls were made with the Chinese opening script, so its comparison shows.
    opening = next(
        (s.id for s in scripts if s.situation == "first_contact" and s.locale == "zh-CN"), None
    )
    return {
        "templates": templates,
        "scripts": len(scripts),
        "gate_decisions": _gate_decisions(session, institution=institution, as_of=as_of),
        "contacts": _contacts(session, institution=institution, as_of=as_of, script_id=opening),
        "violations": _violations(session, institution=institution, users=users),
        "strategies": _strategy(session, institution=institution, users=users),
        "import_runs": 1,
        "import_rejects": run.rejected,
        "imported_debtors": run.inserted,
    }


def _sandbox_channels(session: Session, *, institution: Institution) -> None:
    """Send the demo's texts and emails through the sandbox provider: nothing leaves the
    machine, and its delivery receipts (most delivered, some failed or wrong numbers) arrive
    through the receipt path real providers use (``outbox.sandbox_receipts``)."""
    institutions_service.update_settings(
        session,
        institution=institution,
        changes={
            "channels": {
                "sms_provider": "sandbox",
                "email_provider": "sandbox",
                "sms_sender": f"【{institution.name}】"[:64],
                "email_from": f"collections@{institution.code.lower()}.example.invalid",
            }
        },
        actor=ACTOR,
    )


def _users(session: Session, *, institution_id: int) -> dict[str, User]:
    """Return the institution's first user of each role (the demo users)."""
    users: dict[str, User] = {}
    found, _total = identity_repository.list_users(session, institution_id=institution_id)
    for user in found:
        users.setdefault(str(user.role), user)
    return users


def _templates(
    session: Session, *, institution: Institution, users: dict[str, User], as_of: date
) -> int:
    # Four eyes: the manager writes, the compliance officer reviews.
    author, reviewer = users["manager"], users["compliance_officer"]
    for spec in DEMO_TEMPLATES:
        template = templates_service.create_template(
            session,
            institution_id=institution.id,
            name=spec.name,
            channel=spec.channel,
            locale="zh-CN",
            audience="debtor",
            body=spec.body,
            author=author.username,
            author_id=author.id,
        )
        if spec.state == "draft":
            continue
        templates_service.submit_template(
            session,
            institution_id=institution.id,
            template_id=template.id,
            actor=author.username,
            actor_id=author.id,
        )
        if spec.state == "submitted":
            continue
        templates_service.decide_template(
            session,
            institution_id=institution.id,
            template_id=template.id,
            approve=spec.state == "approved",
            actor=reviewer.username,
            actor_id=reviewer.id,
            note=spec.note,
            today=as_of,
        )
    return len(DEMO_TEMPLATES)


def _strategy(session: Session, *, institution: Institution, users: dict[str, User]) -> int:
    # The institution's preset, copied and put in force by the manager (its templates are
    # approved above), so the daily cycle has a strategy to run.
    manager = users["manager"]
    strategy, version = strategy_service.create_strategy(
        session,
        institution=institution,
        code="demo",
        name="演示策略",
        preset=str(institution.preset),
        actor=manager.username,
    )
    # Should the institution's policy or templates not fit the preset, it stays a draft with
    # its findings on the strategy page.
    with contextlib.suppress(strategy_service.StrategyRefused):
        strategy_service.activate(
            session,
            institution=institution,
            strategy=strategy,
            number=version.version,
            actor=manager.username,
        )
    return 1


def _scripts(
    session: Session, *, institution: Institution, users: dict[str, User], as_of: date
) -> list[MessageTemplate]:
    """Draft the default call scripts and approve them, so agents see them on first start."""
    author, reviewer = users["manager"], users["compliance_officer"]
    drafted = scripts_service.seed_default_scripts(
        session, institution_id=institution.id, author=author.username, author_id=author.id
    )
    for script in drafted:
        templates_service.decide_template(
            session,
            institution_id=institution.id,
            template_id=script.id,
            approve=True,
            actor=reviewer.username,
            actor_id=reviewer.id,
            today=as_of,
        )
    return drafted


def _gate_decisions(session: Session, *, institution: Institution, as_of: date) -> int:
    # Tomorrow's plan: a call and a text by day are allowed; a call late at night and a text
    # at dawn are blocked with their reasons, as the compliance officer sees them.
    local = zone(institution.timezone)
    tomorrow = as_of + timedelta(days=1)
    plans = (
        (Channel.CALL, Party.DEBTOR, time(10, 0)),
        (Channel.SMS, Party.DEBTOR, time(11, 30)),
        (Channel.CALL, Party.DEBTOR, time(22, 30)),
        (Channel.SMS, Party.DEBTOR, time(6, 30)),
    )
    decided = 0
    now = utcnow()
    accounts = repository.delinquent_accounts(session, institution_id=institution.id, limit=3)
    for account_id, debtor_id, agent_id in accounts:
        for channel, party, moment in plans:
            gate_service.check_contact(
                session,
                institution_id=institution.id,
                debtor_id=debtor_id,
                account_id=account_id,
                agent_user_id=agent_id if channel == Channel.CALL else None,
                channel=channel,
                party=party,
                at=datetime.combine(tomorrow, moment, tzinfo=local),
                actor=ACTOR,
                now=now,
            )
            decided += 1
    return decided


# Today's contacts on the same accounts: a call and a text each, reported with what came of
# them, and one debtor calling back; the debtor page's contact log shows them.
DEMO_OUTCOMES = (
    (OutcomeCode.PROMISE_MADE, OutcomeCode.MESSAGE_DELIVERED),
    (OutcomeCode.NO_ANSWER, OutcomeCode.MESSAGE_DELIVERED),
    (OutcomeCode.SWITCHED_OFF, OutcomeCode.MESSAGE_FAILED),
)


def _contacts(
    session: Session, *, institution: Institution, as_of: date, script_id: int | None
) -> int:
    local = zone(institution.timezone)
    logged = 0
    accounts = repository.delinquent_accounts(session, institution_id=institution.id, limit=3)
    for (account_id, debtor_id, agent_id), outcomes in zip(accounts, DEMO_OUTCOMES, strict=False):
        for channel, moment, outcome in zip(
            (Channel.CALL, Channel.SMS), (time(10, 0), time(11, 30)), outcomes, strict=True
        ):
            at = datetime.combine(as_of, moment, tzinfo=local)
            checked = gate_service.check_contact(
                session,
                institution_id=institution.id,
                debtor_id=debtor_id,
                account_id=account_id,
                agent_user_id=agent_id if channel == Channel.CALL else None,
                channel=channel,
                party=Party.DEBTOR,
                at=at,
                actor=ACTOR,
                now=at,
            )
            if checked.decision.allowed:
                gate_service.record_outcome(
                    session,
                    institution_id=institution.id,
                    decision_id=checked.record.id,
                    outcome=outcome,
                    happened_at=at + timedelta(minutes=1),
                    duration_seconds=140 if outcome is OutcomeCode.PROMISE_MADE else None,
                    actor=ACTOR,
                    script_id=script_id if channel == Channel.CALL else None,
                )
                logged += 1
    if len(accounts) > 1:
        account_id, debtor_id, agent_id = accounts[1]
        contact_service.log_inbound(
            session,
            institution_id=institution.id,
            debtor_id=debtor_id,
            account_id=account_id,
            channel=Channel.CALL,
            started_at=datetime.combine(as_of, time(15, 20), tzinfo=local),
            outcome=OutcomeCode.CALLBACK_REQUESTED,
            agent_id=agent_id,
            actor=ACTOR,
        )
        logged += 1
    return logged


def _violations(session: Session, *, institution: Institution, users: dict[str, User]) -> int:
    agent, officer = users["agent"], users["compliance_officer"]
    found = []
    for number, note in enumerate(DEMO_NOTES, start=1):
        found += templates_service.scan_for_violations(
            session,
            institution_id=institution.id,
            text=note,
            locale="zh-CN",
            source="call_note",
            source_id=f"demo-note-{number}",
            debtor_id=None,
            actor=agent.username,
        )
    if found:
        templates_service.resolve_violation(
            session,
            institution_id=institution.id,
            violation_id=found[0].id,
            confirmed=True,
            actor=officer.username,
            note="已与催收员面谈并安排合规复训。",
        )
    return len(found)


def _import_run(session: Session, *, institution: Institution) -> ImportRun:
    now = utcnow()
    run = ImportRun(
        institution_id=institution.id,
        kind=ImportKind.debtors,
        file_name=DEMO_IMPORT_FILE,
        file_format="csv",
        encoding="utf-8",
        status=ImportStatus.running,
        actor=ACTOR,
        started_at=now,
        ignored_columns=[],
        reject_counts={},
    )
    session.add(run)
    session.flush()
    state = ingest.ImportState(
        run=run,
        institution=institution,
        kind=ImportKind.debtors,
        context=ingest.row_context(institution, now=now),
    )
    rows = [
        RawRow(
            number=number,
            values={
                column: row.get(column, _DEFAULTS.get(column)) for column in DEMO_IMPORT_COLUMNS
            },
        )
        for number, row in enumerate(DEMO_IMPORT_ROWS, start=2)
    ]
    result = ingest.import_chunk(session, state=state, rows=rows)
    run.rows_read = result.rows_read
    run.inserted = result.inserted
    run.updated = result.updated
    run.unchanged = result.unchanged
    run.rejected = result.rejected
    run.reject_counts = dict(result.reject_counts())
    run.status = ImportStatus.completed
    run.finished_at = utcnow()
    audit.record(
        session,
        actor=ACTOR,
        action="import.run",
        object_type="import_run",
        object_id=run.id,
        institution_id=institution.id,
        details={
            "kind": str(run.kind),
            "file_name": run.file_name,
            "status": str(run.status),
            "rows_read": run.rows_read,
            "inserted": run.inserted,
            "rejected": run.rejected,
        },
    )
    return run


_DEFAULTS: dict[str, str | None] = {
    "kind": "individual",
    "national_id": None,
    "timezone": "Asia/Shanghai",
    "language": "zh-CN",
}
