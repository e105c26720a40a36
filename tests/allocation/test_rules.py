"""Allocation: capacity, eligibility and an objective no worse than greedy or round-robin."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from recoup.allocation.rules import (
    AgentSlot,
    Allocation,
    CaseWork,
    Method,
    WorkKind,
    allocate,
    eligible,
    greedy,
    pair_value,
    round_robin,
    solve,
)

SKILLS = ("lang:zh", "lang:en", "legal")
REGIONS = ("北京市", "上海市")

skills = st.frozensets(st.sampled_from(SKILLS), max_size=3)
agents_strategy = st.lists(
    st.builds(
        AgentSlot,
        id=st.integers(1, 10_000),
        capacity=st.integers(0, 4),
        skills=skills,
        regions=st.frozensets(st.sampled_from(REGIONS), max_size=2),
        certified=st.booleans(),
        efficiency=st.sampled_from((0.8, 1.0, 1.2)),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda agent: agent.id,
)


@st.composite
def instances(draw: st.DrawFn, max_cases: int = 25) -> tuple[list[CaseWork], list[AgentSlot]]:
    agents = draw(agents_strategy)
    ids = [agent.id for agent in agents]
    cases = draw(
        st.lists(
            st.builds(
                CaseWork,
                id=st.integers(1, 1_000_000),
                value=st.integers(0, 5_000_000),
                needs=st.frozensets(st.sampled_from(SKILLS), max_size=2),
                kind=st.sampled_from(WorkKind),
                region=st.none() | st.sampled_from(REGIONS),
                current_agent=st.none() | st.sampled_from(ids),
            ),
            max_size=max_cases,
            unique_by=lambda case: case.id,
        )
    )
    return cases, agents


def assert_valid(result: Allocation, cases: list[CaseWork], agents: list[AgentSlot]) -> None:
    by_case = {case.id: case for case in cases}
    by_agent = {agent.id: agent for agent in agents}
    load: dict[int, int] = {}
    for case_id, agent_id in result.assignments.items():
        assert eligible(by_agent[agent_id], by_case[case_id])
        load[agent_id] = load.get(agent_id, 0) + 1
    for agent_id, taken in load.items():
        assert taken <= by_agent[agent_id].capacity
    assert load == dict(result.load)
    assert set(result.unassigned) | set(result.assignments) == set(by_case)
    assert not set(result.unassigned) & set(result.assignments)
    assert result.objective == sum(
        pair_value(by_agent[a], by_case[c]) for c, a in result.assignments.items()
    )


@settings(max_examples=150, deadline=None)
@given(instances())
def test_the_solver_respects_capacity_and_eligibility_and_beats_the_baselines(
    instance: tuple[list[CaseWork], list[AgentSlot]],
) -> None:
    cases, agents = instance
    solved = solve(cases, agents)
    assert solved.method is Method.SOLVER
    assert_valid(solved, cases, agents)
    for baseline in (greedy(cases, agents), round_robin(cases, agents)):
        assert_valid(baseline, cases, agents)
        assert solved.objective >= baseline.objective


@settings(max_examples=60, deadline=None)
@given(instances(max_cases=5))
def test_the_solver_finds_the_best_allocation(
    instance: tuple[list[CaseWork], list[AgentSlot]],
) -> None:
    cases, agents = instance
    best = 0
    choices = [None, *agents]
    for pick in itertools.product(choices, repeat=len(cases)):
        load: dict[int, int] = {}
        total = 0
        for case, agent in zip(cases, pick, strict=True):
            if agent is None:
                continue
            if not eligible(agent, case):
                break
            load[agent.id] = load.get(agent.id, 0) + 1
            if load[agent.id] > agent.capacity:
                break
            total += pair_value(agent, case)
        else:
            best = max(best, total)
    assert solve(cases, agents).objective == best


def test_uncertified_agents_get_nothing_and_visits_stay_in_region() -> None:
    agents = [
        AgentSlot(1, capacity=5, certified=False),
        AgentSlot(2, capacity=5, regions=frozenset({"上海市"})),
    ]
    cases = [
        CaseWork(10, value=100),
        CaseWork(11, value=100, kind=WorkKind.VISIT, region="北京市"),
        CaseWork(12, value=100, kind=WorkKind.VISIT, region="上海市"),
    ]
    result = allocate(cases, agents)
    assert result.assignments == {10: 2, 12: 2}
    assert result.unassigned == (11,)


def test_continuity_keeps_the_agent_the_debtor_talks_to() -> None:
    agents = [AgentSlot(1, capacity=1), AgentSlot(2, capacity=1)]
    cases = [CaseWork(10, value=1_000, current_agent=2)]
    assert solve(cases, agents).assignments == {10: 2}


def test_capacity_goes_to_the_most_valuable_cases() -> None:
    agents = [AgentSlot(1, capacity=2, skills=frozenset({"legal"}))]
    cases = [
        CaseWork(1, value=10),
        CaseWork(2, value=30, needs=frozenset({"legal"})),
        CaseWork(3, value=20),
    ]
    result = solve(cases, agents)
    assert sorted(result.assignments) == [2, 3]
    assert result.objective == 50


def test_the_solver_beats_greedy_where_greedy_spends_a_scarce_skill() -> None:
    # Greedy gives the top case to the only legal agent; the solver keeps them for the legal case.
    agents = [AgentSlot(1, capacity=1, skills=frozenset({"legal"})), AgentSlot(2, capacity=1)]
    cases = [
        CaseWork(1, value=100, current_agent=1),
        CaseWork(2, value=90, needs=frozenset({"legal"})),
    ]
    assert greedy(cases, agents).objective < solve(cases, agents).objective == 190


def test_nothing_to_allocate() -> None:
    assert solve([], [AgentSlot(1, capacity=3)]).assignments == {}
    assert allocate([CaseWork(1, value=5)], []).unassigned == (1,)
