"""The demo's collection work: queues, agents' capacity and skills, and cases with owners."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from recoup.cases import service as cases
from recoup.kit import clock
from recoup.models.account import Account
from recoup.models.cases import AgentProfile, Case, CaseAccount, Queue, QueueMember
from recoup.models.institution import Institution
from recoup.models.plans import PaymentPlan
from recoup.plans import service as plans
from recoup.plans.rules import Frequency

ACTOR = "demo"

# Early, middle and late delinquency; the late queue needs agents trained for legal steps.
DEMO_QUEUES: tuple[dict[str, Any], ...] = (
    {"code": "EARLY", "name": "早期逾期 M1", "rank": 10, "buckets": ["M1"]},
    {"code": "MIDDLE", "name": "中期逾期 M2-M3", "rank": 20, "buckets": ["M2", "M3"]},
    {
        "code": "LATE",
        "name": "后期逾期 M4+（法务）",
        "rank": 30,
        "buckets": ["M4", "M5", "M6", "M6+"],
        "skills": ["legal"],
    },
)
# Per agent, in order: cases a day and skills. The last agent also works the legal queue.
DEMO_AGENT_PROFILES: tuple[tuple[int, tuple[str, ...], float], ...] = (
    (80, (), 1.1),
    (60, (), 1.0),
    (40, ("legal",), 0.9),
)


def seed_work(session: Session, *, institution_id: int, agent_ids: list[int]) -> dict[str, int]:
    """Create queues and agent profiles, route the cases to them, and add payment plans."""
    queues = {}
    for spec in DEMO_QUEUES:
        queue = Queue(institution_id=institution_id, **spec)
        session.add(queue)
        queues[spec["code"]] = queue
    session.flush()
    for position, agent_id in enumerate(agent_ids):
        capacity, skills, efficiency = DEMO_AGENT_PROFILES[position % len(DEMO_AGENT_PROFILES)]
        session.add(
            AgentProfile(
                institution_id=institution_id,
                user_id=agent_id,
                daily_capacity=capacity,
                skills=list(skills),
                efficiency=efficiency,
            )
        )
        if "legal" in skills:
            for code in ("LATE", "MIDDLE"):
                session.add(
                    QueueMember(
                        institution_id=institution_id,
                        queue_id=queues[code].id,
                        user_id=agent_id,
                    )
                )
    session.flush()
    synced = cases.sync_cases(session, institution_id=institution_id, actor=ACTOR)
    owners: dict[int, int | None] = {
        row.id: row.owner_id
        for row in session.execute(
            select(Case.id, Case.owner_id).where(
                Case.institution_id == institution_id, Case.owner_id.is_not(None)
            )
        )
    }
    plans = _plans(session, institution_id=institution_id, owners=owners)
    return {"queues": len(queues), "cases": synced.live, "payment_plans": plans}


def open_cases(
    session: Session, *, institution_id: int, account_agents: dict[int, int]
) -> dict[str, int]:
    """Open the delinquent debtors' cases; each goes to the agent most of its accounts went to."""
    cases.sync_cases(session, institution_id=institution_id, actor=ACTOR)
    votes: dict[int, Counter[int]] = {}
    for case_id, account_id in session.execute(
        select(CaseAccount.case_id, CaseAccount.account_id).where(
            CaseAccount.institution_id == institution_id
        )
    ):
        voter = account_agents.get(account_id)
        if voter is not None:
            votes.setdefault(case_id, Counter())[voter] += 1
    owners: dict[int, int | None] = {
        case_id: counter.most_common(1)[0][0] for case_id, counter in votes.items()
    }
    assigned = cases.reassign(
        session, institution_id=institution_id, owners=owners, actor=ACTOR, note="demo"
    )
    return {"cases_assigned": assigned}


# Three plans: one running, one running weekly, one with a discount waiting for a manager.
DEMO_PLANS: tuple[tuple[int, Frequency, int], ...] = (
    (3, Frequency.MONTHLY, 0),
    (6, Frequency.WEEKLY, 0),
    (4, Frequency.MONTHLY, 2_000),  # discount in basis points of the balance
)


def _plans(session: Session, *, institution_id: int, owners: dict[int, int | None]) -> int:
    institution = session.get(Institution, institution_id)
    assert institution is not None
    accounts = session.execute(
        select(Account)
        .join(CaseAccount, CaseAccount.account_id == Account.id)
        .where(
            CaseAccount.case_id.in_([case_id for case_id, owner in owners.items() if owner]),
            Account.status == "delinquent",
            # Not one on a plan the simulated past already agreed.
            ~exists().where(
                PaymentPlan.account_id == Account.id,
                PaymentPlan.status.in_(["active", "pending_approval"]),
            ),
        )
        .order_by(Account.id)
        .limit(len(DEMO_PLANS))
    ).scalars()
    today = clock.local_today(institution.timezone)
    made = 0
    for account, (count, frequency, discount_bp) in zip(accounts, DEMO_PLANS, strict=False):
        if account.balance < 100 * count:
            continue
        plans.propose_plan(
            session,
            institution=institution,
            account=account,
            instalments=count,
            start_on=today,
            frequency=frequency,
            discount=account.balance * discount_bp // 10_000,
            actor=ACTOR,
            user_id=None,
            note="demo",
        )
        made += 1
    return made
