"""Capacity-constrained allocation of collection work to agents, pure.

Each case may go to at most one agent; each agent takes at most ``capacity`` cases a day.
An agent may take a case only when eligible: certified for collection work (POL-CERT), holding
every skill the case needs (language, product, legal), and, for field visits, covering the
case's region. The value of giving case *c* to agent *a* is the case's expected recovery (in
minor units) times the agent's efficiency, plus a continuity bonus when *a* is the agent the
debtor already talks to. The allocation maximises the total value.

The solver is a min-cost flow (OR-Tools ``SimpleMinCostFlow``), exact for this problem. Agents
with the same skills, regions and efficiency form one *pool* node, so a case has an arc per
eligible pool rather than per agent (a few arcs per case instead of hundreds), plus one arc to
its current agent for continuity, plus a "not today" arc::

    source ──1──▶ case ──(−value × efficiency)──▶ pool ──capacity──▶ agent ──▶ sink
                   │ └──(−value × efficiency × (1 + bonus))───────────▶ current agent
                   └──(0)──▶ sink  (left unassigned)

``greedy`` (highest value first, best eligible agent with room) and ``round_robin`` (cases in
id order, agents in turn) are the baselines the solver is reported against, and the greedy
answer is the fallback when the solver is unavailable or fails.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_CONTINUITY_BONUS = 0.10
# Efficiencies are rounded to this many steps per unit so that agents share pools.
EFFICIENCY_STEPS = 20


class WorkKind(StrEnum):
    """What kind of work a case asks of an agent today."""

    CALL = "call"
    VISIT = "visit"


class Method(StrEnum):
    """How an allocation was computed."""

    SOLVER = "min_cost_flow"
    GREEDY = "greedy"
    ROUND_ROBIN = "round_robin"


@dataclass(frozen=True, slots=True)
class AgentSlot:
    """An agent as allocation sees them: capacity today, skills, regions, certification."""

    id: int
    capacity: int
    skills: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    certified: bool = True
    efficiency: float = 1.0


@dataclass(frozen=True, slots=True)
class CaseWork:
    """A case waiting for an agent: its expected recovery and what it needs."""

    id: int
    value: int
    needs: frozenset[str] = frozenset()
    kind: WorkKind = WorkKind.CALL
    region: str | None = None
    current_agent: int | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    """Which agent takes which case, and what that is worth."""

    method: Method
    assignments: Mapping[int, int]
    objective: int
    unassigned: tuple[int, ...]
    load: Mapping[int, int] = field(default_factory=dict)

    @property
    def assigned(self) -> int:
        return len(self.assignments)


def eligible(agent: AgentSlot, case: CaseWork) -> bool:
    """Tell whether the agent may take the case at all."""
    if not agent.certified or agent.capacity <= 0:
        return False
    if not case.needs <= agent.skills:
        return False
    return case.kind is not WorkKind.VISIT or (
        case.region is not None and case.region in agent.regions
    )


def _efficiency(agent: AgentSlot) -> float:
    return round(max(agent.efficiency, 0.0) * EFFICIENCY_STEPS) / EFFICIENCY_STEPS


def pair_value(agent: AgentSlot, case: CaseWork, bonus: float = DEFAULT_CONTINUITY_BONUS) -> int:
    """The value of giving the case to the agent, in minor units."""
    value = max(case.value, 0) * _efficiency(agent)
    if case.current_agent == agent.id:
        value *= 1.0 + bonus
    return round(value)


def objective(
    assignments: Mapping[int, int],
    cases: Sequence[CaseWork],
    agents: Sequence[AgentSlot],
    *,
    bonus: float = DEFAULT_CONTINUITY_BONUS,
) -> int:
    """The total value of an allocation for these cases' values (minor units)."""
    by_agent = {agent.id: agent for agent in agents}
    by_case = {case.id: case for case in cases}
    return sum(
        pair_value(by_agent[agent_id], by_case[case_id], bonus)
        for case_id, agent_id in assignments.items()
    )


def _finish(
    method: Method,
    assignments: dict[int, int],
    cases: Sequence[CaseWork],
    agents: Mapping[int, AgentSlot],
    bonus: float,
) -> Allocation:
    load: dict[int, int] = defaultdict(int)
    objective = 0
    by_id = {case.id: case for case in cases}
    for case_id, agent_id in assignments.items():
        load[agent_id] += 1
        objective += pair_value(agents[agent_id], by_id[case_id], bonus)
    return Allocation(
        method=method,
        assignments=assignments,
        objective=objective,
        unassigned=tuple(case.id for case in cases if case.id not in assignments),
        load=dict(load),
    )


def _check_unique(cases: Sequence[CaseWork], agents: Sequence[AgentSlot]) -> None:
    if len({case.id for case in cases}) != len(cases):
        raise ValueError("each case may appear once")
    if len({agent.id for agent in agents}) != len(agents):
        raise ValueError("each agent may appear once")


def greedy(
    cases: Sequence[CaseWork],
    agents: Sequence[AgentSlot],
    *,
    bonus: float = DEFAULT_CONTINUITY_BONUS,
) -> Allocation:
    """Highest-value case first, to the eligible agent it is worth most with who has room."""
    _check_unique(cases, agents)
    by_id = {agent.id: agent for agent in agents}
    room = {agent.id: max(agent.capacity, 0) for agent in agents}
    pools = _pools(agents)
    # Each agent is in one pool; a pool offers its agent with the most room (a lazy heap).
    heaps = [[(-room[a], a) for a in pool.members] for pool in pools]
    for heap in heaps:
        heapq.heapify(heap)

    def most_room(p: int) -> int | None:
        heap = heaps[p]
        while heap and -heap[0][0] != room[heap[0][1]]:
            stale = heapq.heappop(heap)
            if room[stale[1]] > 0:
                heapq.heappush(heap, (-room[stale[1]], stale[1]))
        return heap[0][1] if heap and room[heap[0][1]] > 0 else None

    # A case is worth most in the most efficient pool that has room: pools by efficiency.
    reach: dict[tuple[frozenset[str], WorkKind, str | None], list[int]] = {}
    assignments: dict[int, int] = {}
    for case in sorted(cases, key=lambda c: (-c.value, c.id)):
        best: tuple[int, int, int] | None = None
        current = by_id.get(case.current_agent) if case.current_agent is not None else None
        if current is not None and room[current.id] > 0 and eligible(current, case):
            best = (pair_value(current, case, bonus), room[current.id], current.id)
        key = (case.needs, case.kind, case.region)
        pool_ids = reach.get(key)
        if pool_ids is None:
            accepting = [p for p, pool in enumerate(pools) if pool.accepts(case)]
            pool_ids = reach[key] = sorted(accepting, key=lambda p: -pools[p].efficiency)
        level: float | None = None
        for p in pool_ids:
            if level is not None and pools[p].efficiency < level:
                break
            agent_id = most_room(p)
            if agent_id is None:
                continue
            level = pools[p].efficiency
            candidate = (pair_value(by_id[agent_id], case, bonus), room[agent_id], agent_id)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        if best is not None:
            assignments[case.id] = best[2]
            room[best[2]] -= 1
    return _finish(Method.GREEDY, assignments, cases, by_id, bonus)


def round_robin(
    cases: Sequence[CaseWork],
    agents: Sequence[AgentSlot],
    *,
    bonus: float = DEFAULT_CONTINUITY_BONUS,
) -> Allocation:
    """Cases in id order to agents in turn, skipping agents who are full or not eligible."""
    _check_unique(cases, agents)
    by_id = {agent.id: agent for agent in agents}
    # Agents with room, in id order; one leaves the turn when full.
    ordered = [a for a in sorted(agents, key=lambda a: a.id) if a.certified and a.capacity > 0]
    room = {agent.id: agent.capacity for agent in ordered}
    assignments: dict[int, int] = {}
    turn = 0
    for case in sorted(cases, key=lambda c: c.id):
        for step in range(len(ordered)):
            position = (turn + step) % len(ordered)
            agent = ordered[position]
            if eligible(agent, case):
                assignments[case.id] = agent.id
                room[agent.id] -= 1
                if room[agent.id] == 0:
                    ordered.pop(position)
                    turn = position % len(ordered) if ordered else 0
                else:
                    turn = (position + 1) % len(ordered)
                break
        if not ordered:
            break
    return _finish(Method.ROUND_ROBIN, assignments, cases, by_id, bonus)


@dataclass(slots=True)
class _Pool:
    skills: frozenset[str]
    regions: frozenset[str]
    efficiency: float
    members: list[int]

    def accepts(self, case: CaseWork) -> bool:
        if not case.needs <= self.skills:
            return False
        return case.kind is not WorkKind.VISIT or (
            case.region is not None and case.region in self.regions
        )


def _pools(agents: Iterable[AgentSlot]) -> list[_Pool]:
    pools: dict[tuple[frozenset[str], frozenset[str], float], _Pool] = {}
    for agent in agents:
        if not agent.certified or agent.capacity <= 0:
            continue
        key = (agent.skills, agent.regions, _efficiency(agent))
        pool = pools.get(key)
        if pool is None:
            pool = pools[key] = _Pool(agent.skills, agent.regions, key[2], [])
        pool.members.append(agent.id)
    return list(pools.values())


class SolverFailed(RuntimeError):
    """The min-cost flow solver did not find an optimal allocation."""


def solve(
    cases: Sequence[CaseWork],
    agents: Sequence[AgentSlot],
    *,
    bonus: float = DEFAULT_CONTINUITY_BONUS,
) -> Allocation:
    """The allocation of highest total value (exact), by min-cost flow over agent pools."""
    _check_unique(cases, agents)
    import numpy
    from ortools.graph.python import min_cost_flow

    by_id = {agent.id: agent for agent in agents}
    agent_index = {agent.id: index for index, agent in enumerate(agents)}
    pools = _pools(agents)
    # Cases that need the same skills, kind and region form a group reaching the same pools;
    # a group's cases reach those pools through one node per efficiency level, as a case's
    # value depends on the level only (pools of one level are interchangeable).
    groups: dict[tuple[frozenset[str], WorkKind, str | None], list[int]] = defaultdict(list)
    for index, case in enumerate(cases):
        groups[(case.needs, case.kind, case.region)].append(index)
    levels: list[tuple[float, list[int]]] = []  # (efficiency, pools) per group-level node
    group_levels: list[list[int]] = []
    for key in groups:
        probe = CaseWork(0, 0, needs=key[0], kind=key[1], region=key[2])
        by_level: dict[float, list[int]] = defaultdict(list)
        for p, pool in enumerate(pools):
            if pool.accepts(probe):
                by_level[pool.efficiency].append(p)
        mine = []
        for efficiency, pool_ids in sorted(by_level.items()):
            mine.append(len(levels))
            levels.append((efficiency, pool_ids))
        group_levels.append(mine)

    n_cases = len(cases)
    source, sink, case_node = 0, 1, 2
    level_node = case_node + n_cases
    pool_node = level_node + len(levels)
    agent_node = pool_node + len(pools)
    values = numpy.array([max(case.value, 0) for case in cases], dtype=numpy.float64)
    case_nodes = numpy.arange(case_node, level_node, dtype=numpy.int64)
    ones = numpy.ones(n_cases, dtype=numpy.int64)
    zeros = numpy.zeros(n_cases, dtype=numpy.int64)
    tails = [numpy.full(n_cases, source, dtype=numpy.int64), case_nodes]
    heads = [case_nodes, numpy.full(n_cases, sink, dtype=numpy.int64)]
    capacities = [ones, ones]
    costs = [zeros, zeros]
    for members, mine in zip(groups.values(), group_levels, strict=True):
        rows = numpy.array(members, dtype=numpy.int64)
        for level in mine:
            tails.append(case_node + rows)
            heads.append(numpy.full(len(rows), level_node + level, dtype=numpy.int64))
            capacities.append(numpy.ones(len(rows), dtype=numpy.int64))
            costs.append(-numpy.rint(values[rows] * levels[level][0]).astype(numpy.int64))
    extra_tails: list[int] = []
    extra_heads: list[int] = []
    extra_capacities: list[int] = []
    extra_costs: list[int] = []

    def arc(tail: int, head: int, capacity: int, cost: int) -> None:
        extra_tails.append(tail)
        extra_heads.append(head)
        extra_capacities.append(capacity)
        extra_costs.append(cost)

    for index, case in enumerate(cases):
        current = by_id.get(case.current_agent) if case.current_agent is not None else None
        if current is not None and eligible(current, case):
            arc(
                case_node + index,
                agent_node + agent_index[current.id],
                1,
                -pair_value(current, case, bonus),
            )
    for level, (_, pool_ids) in enumerate(levels):
        for p in pool_ids:
            arc(level_node + level, pool_node + p, n_cases, 0)
    for p, pool in enumerate(pools):
        for agent_id in pool.members:
            arc(pool_node + p, agent_node + agent_index[agent_id], by_id[agent_id].capacity, 0)
    for agent in agents:
        if agent.certified and agent.capacity > 0:
            arc(agent_node + agent_index[agent.id], sink, agent.capacity, 0)
    tails.append(numpy.array(extra_tails, dtype=numpy.int64))
    heads.append(numpy.array(extra_heads, dtype=numpy.int64))
    capacities.append(numpy.array(extra_capacities, dtype=numpy.int64))
    costs.append(numpy.array(extra_costs, dtype=numpy.int64))

    flow = min_cost_flow.SimpleMinCostFlow()
    all_tails = numpy.concatenate(tails)
    all_heads = numpy.concatenate(heads)
    flow.add_arcs_with_capacity_and_unit_cost(
        all_tails, all_heads, numpy.concatenate(capacities), numpy.concatenate(costs)
    )
    flow.set_node_supply(source, n_cases)
    flow.set_node_supply(sink, -n_cases)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise SolverFailed(f"min-cost flow ended with status {status}")
    flows = flow.flows(numpy.arange(len(all_tails), dtype=numpy.int64))
    used = numpy.flatnonzero(flows > 0)
    assignments = _read_flows(
        cases,
        agents,
        ((int(all_tails[a]), int(all_heads[a]), int(flows[a])) for a in used),
        (case_node, level_node, pool_node, agent_node),
    )
    return _finish(Method.SOLVER, assignments, cases, by_id, bonus)


def _read_flows(
    cases: Sequence[CaseWork],
    agents: Sequence[AgentSlot],
    arcs: Iterable[tuple[int, int, int]],
    bounds: tuple[int, int, int, int],
) -> dict[int, int]:
    """Turn arc flows back into case → agent.

    A case reached its agent directly (continuity) or through a level node; each level node
    passed its cases on to pools, and each pool to agents, in counts: hand out the seats.
    """
    case_node, level_node, pool_node, agent_node = bounds
    assignments: dict[int, int] = {}
    level_cases: dict[int, list[int]] = defaultdict(list)
    level_pools: dict[int, list[int]] = defaultdict(list)
    pool_agents: dict[int, list[int]] = defaultdict(list)
    for tail, head, amount in arcs:
        if case_node <= tail < level_node:
            case_id = cases[tail - case_node].id
            if level_node <= head < pool_node:
                level_cases[head].append(case_id)
            elif head >= agent_node:
                assignments[case_id] = agents[head - agent_node].id
        elif level_node <= tail < pool_node:
            level_pools[tail].extend([head] * amount)
        elif pool_node <= tail < agent_node and head >= agent_node:
            pool_agents[tail].extend([agents[head - agent_node].id] * amount)
    pool_cases: dict[int, list[int]] = defaultdict(list)
    for level, case_ids in level_cases.items():
        for case_id, pool in zip(case_ids, level_pools[level], strict=True):
            pool_cases[pool].append(case_id)
    for pool, case_ids in pool_cases.items():
        for case_id, agent_id in zip(case_ids, pool_agents[pool], strict=True):
            assignments[case_id] = agent_id
    return assignments


def allocate(
    cases: Sequence[CaseWork],
    agents: Sequence[AgentSlot],
    *,
    bonus: float = DEFAULT_CONTINUITY_BONUS,
) -> Allocation:
    """Solve exactly; fall back to greedy when the solver cannot answer."""
    try:
        return solve(cases, agents, bonus=bonus)
    except (SolverFailed, ImportError):
        return greedy(cases, agents, bonus=bonus)
