"""Allocate the day's case work to agents and record who owns what (never commits)."""

from __future__ import annotations

import dataclasses
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
    # Cases with a score (an expected recovery above zero).
    scored: int
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
            "scored_cases": self.scored,
        }


def _queue_token(queue_id: int) -> str:
    return f"queue:{queue_id}"


def agents_on(session: Session, *, institution_id: int, as_of: date) -> list[AgentSlot]:
    """Read the agents as allocation sees them on a day.

    An agent's skills hold a token per queue they work: a member of no queue works every
    queue (a generalist). Agents away that day take nothing (capacity 0); agents without a
    valid compliance certificate (POL-CERT) are marked uncertified.
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
    return agents


def queue_capacities(session: Session, *, institution_id: int, as_of: date) -> dict[int, int]:
    """Each queue's daily capacity on a day: what the agents who may take its cases can do.

    The same reading as allocation: the queue's members, or every generalist when they are
    members of no queue, with the queue's skills, certified and not away.
    """
    agents = [
        agent
        for agent in agents_on(session, institution_id=institution_id, as_of=as_of)
        if agent.certified and agent.capacity > 0
    ]
    return {
        queue.id: sum(
            agent.capacity
            for agent in agents
            if {_queue_token(queue.id), *(queue.skills or ())} <= agent.skills
        )
        for queue in cases_repository.queues(session, institution_id=institution_id)
    }


def work_and_agents(
    session: Session, *, institution_id: int, as_of: date
) -> tuple[list[CaseWork], list[AgentSlot]]:
    """Read the allocatable cases and the agents available on a day (see ``agents_on``).

    A case in a queue needs the queue's skills and a member of the queue.
    """
    agents = agents_on(session, institution_id=institution_id, as_of=as_of)
    work = [
        CaseWork(
            id=case_id,
            value=value,
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


def has_agents(session: Session, *, institution_id: int, as_of: date) -> bool:
    """Tell whether any agent can take work on a day (certified, not away, with capacity)."""
    absent = cases_repository.absent_user_ids(session, institution_id=institution_id, on=as_of)
    certified = repository.certified_user_ids(session, institution_id=institution_id, on=as_of)
    return any(
        user.id in certified
        and user.id not in absent
        and (profile.daily_capacity if profile else DEFAULT_DAILY_CAPACITY) > 0
        for user, profile in cases_repository.agents(session, institution_id=institution_id)
    )


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
    scored, agents = work_and_agents(session, institution_id=institution.id, as_of=as_of)
    # An unscored case is worth one minor unit to the solver: worked after every scored one,
    # not never. The figures reported are the scores' own expected recovery.
    work = [dataclasses.replace(case, value=max(case.value, 1)) for case in scored]
    result = rules.allocate(work, agents)
    greedy = rules.greedy(work, agents)
    round_robin = rules.round_robin(work, agents)

    def worth(assignments: dict[int, int]) -> int:
        return rules.objective(assignments, scored, agents)

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
                "objective": worth(dict(result.assignments)),
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
        objective=worth(dict(result.assignments)),
        greedy_objective=worth(dict(greedy.assignments)),
        round_robin_objective=worth(dict(round_robin.assignments)),
        scored=sum(1 for case in scored if case.value > 0),
        over_capacity=over,
        seconds=time.perf_counter() - started,
        method=str(result.method),
        load=dict(result.load),
        capacity=capacity,
    )


@dataclass(frozen=True, slots=True)
class AgentLine:
    """One agent on the allocation page: why their capacity is what it is, and their load."""

    user_id: int
    username: str
    display_name: str
    capacity: int
    standing: str  # available, absent, uncertified
    skills: tuple[str, ...]
    queues: tuple[str, ...]
    owned: int
    today: int
    # The cases a day set for the agent (capacity is 0 on a day they are away or uncertified).
    profile_capacity: int = DEFAULT_DAILY_CAPACITY
    regions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueLine:
    """One queue on the allocation page: what it takes, its live cases and how many are free."""

    code: str
    name: str
    buckets: tuple[str, ...]
    skills: tuple[str, ...]
    live: int
    unowned: int


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the team lead's allocation page shows before anything is proposed."""

    agents: tuple[AgentLine, ...]
    queues: tuple[QueueLine, ...]
    live_cases: int
    unqueued: int
    unowned: int
    capacity: int


def overview(session: Session, *, institution_id: int, on: date) -> Overview:
    """Agents with capacity, skills and load; queues with their live and unowned cases."""
    members = cases_repository.queue_members(session, institution_id=institution_id)
    absent = cases_repository.absent_user_ids(session, institution_id=institution_id, on=on)
    certified = repository.certified_user_ids(session, institution_id=institution_id, on=on)
    queues = cases_repository.queues(session, institution_id=institution_id)
    codes = {queue.id: queue.code for queue in queues}
    by_owner = cases_repository.live_counts_by_owner(session, institution_id=institution_id, on=on)
    by_queue = cases_repository.live_counts_by_queue(session, institution_id=institution_id)
    agents = []
    for user, profile in cases_repository.agents(session, institution_id=institution_id):
        standing = (
            "absent"
            if user.id in absent
            else "available"
            if user.id in certified
            else "uncertified"
        )
        capacity = profile.daily_capacity if profile else DEFAULT_DAILY_CAPACITY
        owned, today = by_owner.get(user.id, (0, 0))
        agents.append(
            AgentLine(
                user_id=user.id,
                username=user.username,
                display_name=user.display_name or user.username,
                capacity=capacity if standing == "available" else 0,
                standing=standing,
                skills=tuple(profile.skills if profile else ()),
                queues=tuple(sorted(codes[q] for q in members.get(user.id, ()) if q in codes)),
                owned=owned,
                today=today,
                profile_capacity=capacity,
                regions=tuple(profile.regions if profile else ()),
            )
        )
    return Overview(
        agents=tuple(agents),
        queues=tuple(
            QueueLine(
                code=queue.code,
                name=queue.name,
                buckets=tuple(queue.buckets or ()),
                skills=tuple(queue.skills or ()),
                live=by_queue.get(queue.id, (0, 0))[0],
                unowned=by_queue.get(queue.id, (0, 0))[1],
            )
            for queue in queues
        ),
        live_cases=sum(total for total, _ in by_queue.values()),
        unqueued=by_queue.get(None, (0, 0))[0],
        unowned=by_owner.get(None, (0, 0))[0],
        capacity=sum(agent.capacity for agent in agents),
    )
