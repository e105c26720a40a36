"""Allocate the day's case work to agents and record who owns what (never commits)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from recoup.allocation import repository, rules
from recoup.allocation.rules import AgentSlot, CaseWork, WorkKind
from recoup.audit import service as audit
from recoup.cases import repository as cases_repository
from recoup.cases import service as cases
from recoup.models.institution import Institution

DEFAULT_DAILY_CAPACITY = 60


@dataclass(frozen=True, slots=True)
class AllocationReport:
    """What an allocation did (or would do, on a dry run) and how it compares."""

    as_of: date
    dry_run: bool
    cases: int
    agents: int
    assigned: int
    unassigned: int
    changed: int
    objective: int
    greedy_objective: int
    round_robin_objective: int
    over_capacity: int
    seconds: float
    method: str
    load: dict[int, int]
    capacity: dict[int, int]

    def summary(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "cases": self.cases,
            "agents": self.agents,
            "assigned": self.assigned,
            "unassigned": self.unassigned,
            "changed": self.changed,
            "objective": self.objective,
            "greedy_objective": self.greedy_objective,
            "round_robin_objective": self.round_robin_objective,
            "over_capacity": self.over_capacity,
            "seconds": round(self.seconds, 3),
            "method": self.method,
        }


def _queue_token(queue_id: int) -> str:
    return f"queue:{queue_id}"


def work_and_agents(
    session: Session, *, institution_id: int, as_of: date
) -> tuple[list[CaseWork], list[AgentSlot]]:
    """Read the allocatable cases and the agents available on a day.

    A case in a queue needs the queue's skills and a member of the queue; an agent who is a
    member of no queue works every queue (a generalist). Agents away that day, and agents
    without a valid compliance certificate (POL-CERT), take nothing.
    """
    members = cases_repository.queue_members(session, institution_id=institution_id)
    absent = cases_repository.absent_user_ids(session, institution_id=institution_id, on=as_of)
    certified = repository.certified_user_ids(session, institution_id=institution_id, on=as_of)
    all_queues = {
        _queue_token(queue.id)
        for queue in cases_repository.queues(session, institution_id=institution_id)
    }
    agents = []
    for user, profile in cases_repository.agents(session, institution_id=institution_id):
        tokens = {_queue_token(q) for q in members.get(user.id, set())} or all_queues
        agents.append(
            AgentSlot(
                id=user.id,
                capacity=0
                if user.id in absent
                else (profile.daily_capacity if profile else DEFAULT_DAILY_CAPACITY),
                skills=frozenset(tokens | set(profile.skills if profile else ())),
                regions=frozenset(profile.regions if profile else ()),
                certified=user.id in certified,
                efficiency=profile.efficiency if profile else 1.0,
            )
        )
    work = [
        CaseWork(
            id=case_id,
            # An unscored case is worth one minor unit: worked after every scored one, not never.
            value=max(value, 1),
            needs=frozenset(
                {_queue_token(queue_id), *(skills or ())} if queue_id is not None else ()
            ),
            kind=WorkKind.VISIT if kind == WorkKind.VISIT else WorkKind.CALL,
            region=province,
            current_agent=owner,
        )
        for case_id, value, owner, queue_id, kind, skills, province in (
            repository.allocatable_cases(session, institution_id=institution_id)
        )
    ]
    return work, agents


def allocate(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    actor: str,
    dry_run: bool = False,
) -> AllocationReport:
    """Solve the day's allocation; unless a dry run, give the cases their new owners."""
    started = time.perf_counter()
    work, agents = work_and_agents(session, institution_id=institution.id, as_of=as_of)
    result = rules.allocate(work, agents)
    greedy = rules.greedy(work, agents)
    round_robin = rules.round_robin(work, agents)
    capacity = {agent.id: agent.capacity for agent in agents}
    over = sum(1 for agent_id, load in result.load.items() if load > capacity[agent_id])
    current = {case.id: case.current_agent for case in work}
    # Cases not allocated today keep their owner (the debtor's agent tomorrow too).
    owners: dict[int, int | None] = dict(result.assignments)
    changed = sum(1 for case_id, owner in owners.items() if current[case_id] != owner)
    if not dry_run:
        cases.reassign(
            session,
            institution_id=institution.id,
            owners=owners,
            actor=actor,
            note=f"allocation {as_of.isoformat()}",
            current=current,
        )
        cases_repository.set_allocated(session, case_ids=list(owners), on=as_of)
        audit.record(
            session,
            actor=actor,
            action="cases.allocate",
            object_type="institution",
            object_id=institution.id,
            institution_id=institution.id,
            details={
                "as_of": as_of.isoformat(),
                "assigned": result.assigned,
                "unassigned": len(result.unassigned),
                "changed": changed,
                "objective": result.objective,
                "method": result.method,
            },
        )
    return AllocationReport(
        as_of=as_of,
        dry_run=dry_run,
        cases=len(work),
        agents=sum(1 for agent in agents if agent.certified and agent.capacity > 0),
        assigned=result.assigned,
        unassigned=len(result.unassigned),
        changed=changed,
        objective=result.objective,
        greedy_objective=greedy.objective,
        round_robin_objective=round_robin.objective,
        over_capacity=over,
        seconds=time.perf_counter() - started,
        method=str(result.method),
        load=dict(result.load),
        capacity=capacity,
    )
