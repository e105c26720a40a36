"""Cases: open and close them from the accounts, route them to queues, move them (never commits)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.cases import repository, rules
from recoup.cases.rules import CaseEvent, CaseReason, CaseStanding, CaseState
from recoup.compliance.certifications import service as certifications
from recoup.enums import BUCKETS
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped, scoped
from recoup.kit import events, jobs
from recoup.kit.clock import utcnow
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.kit.text import require_text
from recoup.models.account import Account
from recoup.models.cases import AgentAbsence, AgentProfile, Case, CaseAccount, Queue, QueueMember
from recoup.models.cases import CaseEvent as CaseEventRow
from recoup.models.identity import Role, User

if TYPE_CHECKING:
    import pandas as pd

SYSTEM = "system"
# The strategy re-routes a case at once after these events (its job, asked for by name).
STRATEGY_ON_EVENT = "strategy.on_event"
REROUTING_EVENTS = frozenset(
    {
        CaseEvent.PROMISE_MADE,
        CaseEvent.PROMISE_KEPT,
        CaseEvent.PROMISE_BROKEN,
        CaseEvent.PLAN_BROKEN,
        CaseEvent.DISPUTE_RAISED,
        CaseEvent.HARDSHIP,
        CaseEvent.COMPLAINT,
        CaseEvent.CEASE_REQUESTED,
    }
)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one pass over the accounts did to the cases."""

    opened: int = 0
    accounts_added: int = 0
    closed: int = 0
    routed: int = 0
    live: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "opened": self.opened,
            "accounts_added": self.accounts_added,
            "closed": self.closed,
            "routed": self.routed,
            "live": self.live,
        }


def _history(
    case: Case,
    *,
    event: str,
    at: datetime,
    actor: str,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    from_owner_id: int | None = None,
    to_owner_id: int | None = None,
    note: str | None = None,
) -> CaseEventRow:
    return CaseEventRow(
        institution_id=case.institution_id,
        case_id=case.id,
        event=event,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        from_owner_id=from_owner_id,
        to_owner_id=to_owner_id,
        note=note,
        actor=actor,
        at=at,
    )


def _open_case(
    session: Session, *, institution_id: int, debtor_id: int, actor: str, now: datetime
) -> Case:
    """Open a live case for a debtor, its history starting with "opened"."""
    case = Case(
        institution_id=institution_id,
        debtor_id=debtor_id,
        live_debtor_id=debtor_id,
        state=CaseState.OPEN,
        opened_at=now,
    )
    session.add(case)
    session.flush()
    session.add(_history(case, event="opened", at=now, actor=actor, to_state=CaseState.OPEN))
    return case


def sync_cases(
    session: Session, *, institution_id: int, actor: str = SYSTEM, now: datetime | None = None
) -> SyncResult:
    """Open a case for each debtor with delinquent accounts and none open; close cleared ones.

    Also adds newly delinquent accounts to the debtor's live case, refreshes each live case's
    expected recovery and priority from the newest scores, and routes it to its queue. Works
    on columns (one array per field, not one object per account) and bulk statements; only
    the cases that close are loaded as objects.
    """
    import pandas as pd  # columnar work; kept off the CLI's start-up

    now = now or utcnow()
    accounts = _account_frame(repository.account_states(session, institution_id=institution_id))
    live = pd.DataFrame(
        repository.live_case_rows(session, institution_id=institution_id),
        columns=["case_id", "debtor_id", "queue_id", "expected", "priority"],
    ).drop_duplicates("debtor_id", keep="last")
    live["expected"] = live["expected"].fillna(0).astype(np.int64)
    live["priority"] = live["priority"].fillna(0).astype(np.int64)
    members = pd.DataFrame(
        repository.live_memberships(session, institution_id=institution_id),
        columns=["case_id", "account_id"],
    ).astype(np.int64)
    # Per debtor, in the order of their first account: accounts, delinquent ones, owed ones.
    debtors = (
        accounts.groupby("debtor_id", sort=False)
        .agg(
            total=("account_id", "size"),
            delinquent=("delinquent", "sum"),
            owed=("owed", "sum"),
        )
        .reset_index()
    )
    # New cases are inserted together (one statement, their ids read back by debtor).
    opening = debtors.loc[
        (debtors["delinquent"] > 0) & ~debtors["debtor_id"].isin(live["debtor_id"]), "debtor_id"
    ].tolist()
    new_ids = repository.insert_cases(
        session,
        [
            {
                "institution_id": institution_id,
                "debtor_id": debtor_id,
                "live_debtor_id": debtor_id,
                "state": CaseState.OPEN.value,
                "opened_at": now,
            }
            for debtor_id in opening
        ],
    )
    repository.add_history(
        session,
        [
            {
                "institution_id": institution_id,
                "case_id": new_ids[debtor_id],
                "event": "opened",
                "to_state": CaseState.OPEN,
                "actor": actor,
                "at": now,
            }
            for debtor_id in opening
        ],
    )
    if opening:
        live = pd.concat(
            [
                live,
                pd.DataFrame(
                    {
                        "case_id": [new_ids[debtor_id] for debtor_id in opening],
                        "debtor_id": opening,
                        "queue_id": None,
                        "expected": 0,
                        "priority": 0,
                    }
                ),
            ],
            ignore_index=True,
        )
    # Delinquent accounts join their debtor's live case unless already in it (debtor by
    # debtor, in account order).
    rank = pd.Series(np.arange(len(debtors)), index=debtors["debtor_id"])
    candidates = accounts.loc[accounts["delinquent"], ["account_id", "debtor_id"]].merge(
        live[["case_id", "debtor_id"]], on="debtor_id"
    )
    candidates = candidates.merge(
        members[["case_id", "account_id"]].drop_duplicates(),
        on=["case_id", "account_id"],
        how="left",
        indicator="known",
    )
    candidates = candidates[candidates.pop("known").to_numpy() == "left_only"]
    candidates = candidates.assign(rank=rank.reindex(candidates["debtor_id"]).to_numpy())
    candidates = candidates.sort_values(["rank", "account_id"], kind="stable")
    joined: list[dict[str, object]] = [
        {
            "institution_id": institution_id,
            "case_id": case_id,
            "account_id": account_id,
            "added_at": now,
        }
        for case_id, account_id in zip(
            candidates["case_id"].tolist(), candidates["account_id"].tolist(), strict=True
        )
    ]
    # Cases whose debtor has accounts and none of them delinquent close (rules.event_for_accounts).
    clearing = debtors.loc[debtors["delinquent"] == 0].merge(
        live[["case_id", "debtor_id"]], on="debtor_id"
    )
    closed_cases = set()
    for case_id, delinquent, owed, total in zip(
        clearing["case_id"].tolist(),
        clearing["delinquent"].tolist(),
        clearing["owed"].tolist(),
        clearing["total"].tolist(),
        strict=True,
    ):
        event = rules.event_for_accounts(delinquent=delinquent, owed=owed, total=total)
        if event is not None:
            case = session.get(Case, case_id)
            assert case is not None  # read live above, in this transaction
            _move(session, case, event, actor=actor, at=now)
            closed_cases.add(case_id)
    repository.add_memberships(session, joined)
    opened, added, closed = len(opening), len(joined), len(closed_cases)
    live = live[~live["case_id"].isin(closed_cases)]
    members = pd.concat([members, candidates[["case_id", "account_id"]]], ignore_index=True)

    routed = _refresh(
        session,
        institution_id=institution_id,
        cases=live,
        members=members,
        accounts=accounts,
        now=now,
    )
    session.flush()
    result = SyncResult(opened, added, closed, routed, len(live))
    if opened or closed or added:
        audit.record(
            session,
            actor=actor,
            action="cases.sync",
            object_type="institution",
            object_id=institution_id,
            institution_id=institution_id,
            details=result.counts(),
        )
    return result


def _account_frame(rows: Sequence[repository.AccountState]) -> pd.DataFrame:
    """The institution's accounts as columns, with whether each is delinquent and owes."""
    import pandas as pd  # columnar work; kept off the CLI's start-up

    frame = pd.DataFrame(
        rows,
        columns=["account_id", "debtor_id", "status", "dpd", "balance", "bucket", "product"],
    )
    frame["delinquent"] = rules.delinquent_mask(
        frame["status"].to_numpy(dtype=object), frame["dpd"].to_numpy(dtype=np.int64)
    )
    frame["owed"] = frame["balance"].to_numpy(dtype=np.int64) > 0
    return frame.drop(columns=["status", "dpd", "balance"])


_STANDING = ("expected_recovery", "priority", "queue_id", "updated_at")
_NO_QUEUE = -1
_NO_PROVINCE = "\0"


def _refresh(
    session: Session,
    *,
    institution_id: int,
    cases: pd.DataFrame,
    members: pd.DataFrame,
    accounts: pd.DataFrame,
    now: datetime,
) -> int:
    """Update live cases' expected recovery and priority, and route them to queues (one bulk
    write of the cases that change).

    Per case, on columns: the sum of its accounts' newest values, the highest priority
    (rounded), and the queue of its worst bucket, products and debtor's province
    (``rules.route``, once per distinct combination).
    """
    import pandas as pd  # columnar work; kept off the CLI's start-up

    cases = cases.reset_index(drop=True)
    held = members[members["case_id"].isin(cases["case_id"])].drop_duplicates()
    scores = pd.DataFrame(
        repository.latest_score_rows(
            session,
            institution_id=institution_id,
            accounts=held["account_id"].drop_duplicates().tolist(),
        ),
        columns=["account_id", "value", "score_priority"],
    )
    provinces = pd.DataFrame(
        repository.debtor_provinces(session, institution_id=institution_id),
        columns=["debtor_id", "province"],
    )
    specs = [
        rules.QueueSpec(
            id=queue.id,
            rank=queue.rank,
            buckets=frozenset(queue.buckets or ()),
            products=frozenset(queue.products or ()),
            provinces=frozenset(queue.provinces or ()),
        )
        for queue in repository.queues(session, institution_id=institution_id)
    ]
    # Values and priorities of the members' newest scores.
    scored = held.merge(scores, on="account_id")
    value = scored.groupby("case_id")["value"].sum()
    priority = scored.dropna(subset=["score_priority"]).groupby("case_id")["score_priority"].max()
    expected = value.reindex(cases["case_id"], fill_value=0).to_numpy(dtype=np.int64)
    best = priority.reindex(cases["case_id"]).to_numpy(dtype=np.float64)
    new_priority = np.where(np.isnan(best), 0, np.rint(np.nan_to_num(best))).astype(np.int64)
    # Routing facts: the worst bucket (ties: the lowest account id) and the set of products.
    facts = held.merge(accounts[["account_id", "bucket", "product"]], on="account_id")
    ranks = {bucket: index for index, bucket in enumerate(BUCKETS)}
    facts = facts.assign(
        bucket_rank=facts["bucket"].map(ranks).fillna(0).to_numpy(dtype=np.int64)
    ).sort_values(["case_id", "bucket_rank", "account_id"], ascending=[True, False, True])
    worst = facts.drop_duplicates("case_id").set_index("case_id")["bucket"]
    # A case's products as a bit set of the portfolio's product codes.
    product_codes, product_names = pd.factorize(facts["product"])
    pairs = pd.DataFrame({"case_id": facts["case_id"].to_numpy(), "code": product_codes})
    pairs = pairs.drop_duplicates()
    # Up to 62 products the bit sets fit in int64; beyond, Python integers.
    bit_type = np.int64 if len(product_names) <= 62 else object
    product_bits = (
        pd.Series(
            np.left_shift(1, pairs["code"].to_numpy().astype(bit_type)), index=pairs["case_id"]
        )
        .groupby(level=0)
        .sum()
    )
    old_queue = cases["queue_id"].fillna(_NO_QUEUE).to_numpy(dtype=np.int64)
    new_queue = old_queue.copy()
    has_members = cases["case_id"].isin(held["case_id"]).to_numpy()
    if has_members.any():
        with_members = cases.loc[has_members, ["case_id", "debtor_id"]]
        province_of = provinces.drop_duplicates("debtor_id").set_index("debtor_id")["province"]
        # rules.route once per distinct (worst bucket, products, province): each column
        # factorised, the three codes combined into one integer key.
        bucket_code, bucket_values = pd.factorize(
            worst.reindex(with_members["case_id"]).fillna("M0").to_numpy()
        )
        bits_code, bits_values = pd.factorize(
            product_bits.reindex(with_members["case_id"], fill_value=0).to_numpy()
        )
        province_code, province_values = pd.factorize(
            with_members["debtor_id"]
            .map(province_of)
            .astype(object)
            .fillna(_NO_PROVINCE)
            .to_numpy()
        )
        key = (bucket_code.astype(np.int64) * len(bits_values) + bits_code) * len(
            province_values
        ) + province_code
        _, first, combination = np.unique(key, return_index=True, return_inverse=True)
        combination = combination.reshape(-1)
        distinct = [
            (
                bucket_values[bucket_code[row]],
                bits_values[bits_code[row]],
                province_values[province_code[row]],
            )
            for row in first.tolist()
        ]
        names = product_names.tolist()
        queues = np.asarray(
            [
                _NO_QUEUE if queue is None else queue
                for queue in (
                    rules.route(
                        rules.CaseFacts(
                            bucket=str(bucket),
                            products=frozenset(
                                name for code, name in enumerate(names) if int(bits) >> code & 1
                            ),
                            province=None if province == _NO_PROVINCE else str(province),
                        ),
                        specs,
                    )
                    for bucket, bits, province in distinct
                )
            ],
            dtype=np.int64,
        )
        new_queue[has_members] = queues[combination]
    routed = int((new_queue != old_queue)[has_members].sum())
    changed = (
        (expected != cases["expected"].to_numpy(dtype=np.int64))
        | (new_priority != cases["priority"].to_numpy(dtype=np.int64))
        | (new_queue != old_queue)
    )
    changed_ids = cases["case_id"].to_numpy(dtype=np.int64)[changed].tolist()
    repository.set_standing(
        session,
        [
            {
                "case_id": case_id,
                "expected": value,
                "priority": best_priority,
                "queue": None if queue == _NO_QUEUE else queue,
            }
            for case_id, value, best_priority, queue in zip(
                changed_ids,
                expected[changed].tolist(),
                new_priority[changed].tolist(),
                new_queue[changed].tolist(),
                strict=True,
            )
        ],
        now=now,
    )
    if changed_ids:
        # Objects of these cases already in the session read the new values on next access.
        changed_set = set(changed_ids)
        for object_held in list(session.identity_map.values()):
            if isinstance(object_held, Case) and object_held.id in changed_set:
                session.expire(object_held, list(_STANDING))
    return routed


def route_to_queues(
    session: Session, *, institution_id: int, moves: Select[int, int | None], now: datetime
) -> int:
    """Put cases in the queues a plan chose for their work (``case_id``, ``queue_id`` rows);
    return how many changed queue."""
    return repository.set_queues_from(session, institution_id=institution_id, moves=moves, now=now)


# Case states other systems hear about (``docs/webhooks.md``).
_ANNOUNCED = {CaseState.ESCALATED: "case.escalated", CaseState.CLOSED: "case.closed"}


def _move(
    session: Session,
    case: Case,
    event: CaseEvent,
    *,
    actor: str,
    at: datetime,
    by_hand: bool = False,
    note: str | None = None,
) -> rules.Transition:
    done = rules.transition(
        CaseStanding(
            CaseState(case.state),
            CaseReason(case.reason) if case.reason else None,
            outsourcing_notice_sent=case.outsourcing_notice_sent_on is not None,
        ),
        event,
        by_hand=by_hand,
        note=note,
    )
    case.state = done.to_state
    case.reason = done.reason
    if done.to_state is CaseState.CLOSED:
        case.closed_at = at
        case.live_debtor_id = None
    if done.to_state != done.from_state and done.to_state in _ANNOUNCED:
        events.emit(
            session,
            institution_id=case.institution_id,
            type=_ANNOUNCED[done.to_state],
            data={
                "case_id": case.id,
                "debtor_id": case.debtor_id,
                "reason": str(done.reason) if done.reason else None,
            },
        )
    session.add(
        _history(
            case,
            event=event,
            at=at,
            actor=actor,
            from_state=done.from_state,
            to_state=done.to_state,
            reason=done.reason,
            note=note,
        )
    )
    if event in REROUTING_EVENTS:
        jobs.enqueue(
            session,
            STRATEGY_ON_EVENT,
            {"institution_id": case.institution_id, "case_id": case.id, "case_event": event.value},
            idempotency_key=f"strategy@{case.id}@{event.value}@{at.isoformat()}",
            institution_id=case.institution_id,
        )
    return done


def change_state(
    session: Session,
    *,
    institution_id: int,
    case_id: int,
    event: CaseEvent,
    actor: str,
    note: str | None,
    now: datetime | None = None,
) -> Case:
    """Move a case by hand (resume, escalate, recall, write off …), audited."""
    case = repository.get_case(session, institution_id=institution_id, case_id=case_id, lock=True)
    if case is None:
        raise NotFound(f"no case {case_id}")
    now = now or utcnow()
    cleaned = require_text("note", note)[:500] if note else None
    try:
        done = _move(session, case, event, actor=actor, at=now, by_hand=True, note=cleaned)
    except rules.TransitionRefused as refused:
        raise ValidationFailed(str(refused), field="event") from refused
    audit.record(
        session,
        actor=actor,
        action="case.state",
        object_type="case",
        object_id=case.id,
        institution_id=institution_id,
        details={"event": event, "from": done.from_state, "to": done.to_state},
    )
    return case


def apply_event(
    session: Session,
    *,
    institution_id: int,
    case_id: int,
    event: CaseEvent,
    actor: str,
    now: datetime | None = None,
) -> rules.Transition | None:
    """Apply a system event (a promise made, kept or broken …) when it fits the case's state.

    Returns None when the event does not apply (a kept promise on a case already closed by
    the payment), which is not an error for the system.
    """
    case = repository.get_case(session, institution_id=institution_id, case_id=case_id, lock=True)
    if case is None:
        raise NotFound(f"no case {case_id}")
    try:
        return _move(session, case, event, actor=actor, at=now or utcnow())
    except rules.TransitionRefused:
        return None


def reassign(
    session: Session,
    *,
    institution_id: int,
    owners: dict[int, int | None],
    actor: str,
    note: str | None = None,
    now: datetime | None = None,
    current: dict[int, int | None] | None = None,
) -> int:
    """Give cases new owners, keeping each change in the case's history; returns changes."""
    now = now or utcnow()
    if current is None:
        current = {
            case.id: case.owner_id
            for case in repository.live_cases(session, institution_id=institution_id)
        }
    changed = {
        case_id: owner
        for case_id, owner in owners.items()
        if case_id in current and current[case_id] != owner
    }
    repository.set_owners(session, owners=changed, now=now)
    repository.add_history(
        session,
        [
            {
                "institution_id": institution_id,
                "case_id": case_id,
                "event": "assigned",
                "from_owner_id": current[case_id],
                "to_owner_id": owner,
                "note": note,
                "actor": actor,
                "at": now,
            }
            for case_id, owner in changed.items()
        ],
    )
    for case_id, owner in changed.items():
        events.emit(
            session,
            institution_id=institution_id,
            type="case.assigned",
            data={"case_id": case_id, "owner_id": owner, "previous_owner_id": current[case_id]},
        )
    return len(changed)


def case_for_account(
    session: Session,
    *,
    institution_id: int,
    account_id: int,
    debtor_id: int,
    status: str,
    days_past_due: int,
    actor: str = SYSTEM,
    now: datetime | None = None,
) -> Case | None:
    """The live case an account belongs to, opening or extending one for a delinquent account.

    What the next sync would do for this one account, done now so that a promise or a plan
    agreed before the sync still moves the case.
    """
    now = now or utcnow()
    case = repository.live_case_of_debtor(
        session, institution_id=institution_id, debtor_id=debtor_id
    )
    if case is not None and repository.has_account(session, case_id=case.id, account_id=account_id):
        return case
    if not rules.is_delinquent(status, days_past_due):
        return case
    if case is None:
        case = _open_case(
            session, institution_id=institution_id, debtor_id=debtor_id, actor=actor, now=now
        )
    session.add(
        CaseAccount(
            institution_id=institution_id, case_id=case.id, account_id=account_id, added_at=now
        )
    )
    session.flush()
    return case


# The timeline event a reversed payment writes on its account's case.
PAYMENT_REVERSED = "payment_reversed"


def record_reversal(
    session: Session,
    *,
    institution_id: int,
    account_id: int,
    debtor_id: int,
    status: str,
    days_past_due: int,
    note: str,
    actor: str = SYSTEM,
    now: datetime | None = None,
) -> Case | None:
    """Put a reversed payment on its account's case at once, not at the next sync.

    The case that holds the account takes it; an account delinquent again without one joins
    the debtor's live case, or a new case opens (a closed case stays closed: its history tells
    the episode the payment had ended). The case's timeline names the reversal and the
    strategy re-routes the case by its event rules. Returns None for an account that is in
    no live case and not delinquent.
    """
    now = now or utcnow()
    live = repository.live_case_of_debtor(
        session, institution_id=institution_id, debtor_id=debtor_id
    )
    holds = live is not None and repository.has_account(
        session, case_id=live.id, account_id=account_id
    )
    if not holds and not rules.is_delinquent(status, days_past_due):
        return None
    case = case_for_account(
        session,
        institution_id=institution_id,
        account_id=account_id,
        debtor_id=debtor_id,
        status=status,
        days_past_due=days_past_due,
        actor=actor,
        now=now,
    )
    if case is None:  # pragma: no cover - a delinquent account always gets a case
        return None
    session.add(_history(case, event=PAYMENT_REVERSED, at=now, actor=actor, note=note[:500]))
    jobs.enqueue(
        session,
        STRATEGY_ON_EVENT,
        {"institution_id": institution_id, "case_id": case.id, "case_event": PAYMENT_REVERSED},
        idempotency_key=f"strategy@{case.id}@{PAYMENT_REVERSED}@{now.isoformat()}",
        institution_id=institution_id,
    )
    return case


def apply_to_case(
    session: Session,
    case: Case | None,
    event: CaseEvent,
    *,
    actor: str,
    now: datetime | None = None,
) -> rules.Transition | None:
    """Apply a system event to a case when it fits its state (None when it does not)."""
    if case is None:
        return None
    try:
        return _move(session, case, event, actor=actor, at=now or utcnow())
    except rules.TransitionRefused:
        return None


def apply_to_accounts(
    session: Session,
    *,
    institution_id: int,
    events: Sequence[tuple[int, CaseEvent]],
    actor: str,
    now: datetime | None = None,
) -> int:
    """Apply system events to the live cases of accounts, in order; returns the moves made.

    One query loads every case involved (the batch path of reconciliations); an account in no
    live case, or an event that does not fit its case's state, moves nothing.
    """
    if not events:
        return 0
    at = now or utcnow()
    cases = repository.live_cases_of_accounts(
        session, institution_id=institution_id, account_ids=[account for account, _ in events]
    )
    moved = 0
    for account_id, event in events:
        case = cases.get(account_id)
        if case is None or case.state == CaseState.CLOSED:
            continue
        try:
            _move(session, case, event, actor=actor, at=at)
        except rules.TransitionRefused:
            continue
        moved += 1
    return moved


@dataclass(frozen=True, slots=True)
class CaseDetail:
    """A case with the accounts in it and its history."""

    case: Case
    queue: str | None
    accounts: list[Account]
    history: list[CaseEventRow]


def list_cases(
    session: Session,
    *,
    principal: Principal,
    page: PageRequest,
    state: str | None = None,
    queue: str | None = None,
    owner_id: int | None = None,
    unowned: bool = False,
) -> Page[tuple[Case, str | None]]:
    """The cases the caller may see, highest priority first, filtered."""
    statement = scoped(select(Case), Case, principal)
    if state is not None:
        statement = statement.where(Case.state == state)
    if queue is not None:
        statement = statement.where(Case.queue_id.in_(select(Queue.id).where(Queue.code == queue)))
    if owner_id is not None:
        statement = statement.where(Case.owner_id == owner_id)
    if unowned:
        statement = statement.where(Case.owner_id.is_(None))
    rows, total = repository.cases_page(session, statement=statement, page=page)
    return Page(items=rows, total=total, page=page.page, size=page.size)


def case_detail(session: Session, *, principal: Principal, case_id: int) -> CaseDetail:
    """One case the caller may see, with its accounts and history."""
    case = get_scoped(session, Case, case_id, principal)
    queue = session.get(Queue, case.queue_id) if case.queue_id is not None else None
    return CaseDetail(
        case=case,
        queue=queue.code if queue else None,
        accounts=repository.case_accounts(session, case_id=case.id),
        history=repository.case_history(session, case_id=case.id),
    )


def assign_owner(
    session: Session,
    *,
    institution_id: int,
    case_id: int,
    owner_id: int | None,
    actor: str,
    note: str | None = None,
    on: date,
) -> Case:
    """Give a live case to an active, certified agent (POL-CERT) or to nobody; audited."""
    case = repository.get_case(session, institution_id=institution_id, case_id=case_id, lock=True)
    if case is None:
        raise NotFound(f"no case {case_id}")
    if case.state == CaseState.CLOSED:
        raise Conflict(f"case {case_id} is closed; a closed case keeps its last agent")
    if owner_id is not None:
        agent = session.get(User, owner_id)
        if agent is None or agent.institution_id != institution_id:
            raise NotFound(f"no user {owner_id}")
        if agent.role != Role.agent or not agent.active:
            raise ValidationFailed(
                f"owner_id: user {agent.username} is not an active agent",
                errors=[{"field": "owner_id", "code": "not_agent", "message": "not an agent"}],
            )
        if not certifications.is_certified(
            session, institution_id=institution_id, user_id=agent.id, on=on
        ):
            raise ValidationFailed(
                f"owner_id: POL-CERT: agent {agent.username} holds no compliance certificate "
                f"valid on {on}",
                errors=[{"field": "owner_id", "code": "uncertified", "message": "no certificate"}],
            )
    cleaned = require_text("note", note)[:500] if note else None
    previous = case.owner_id
    reassign(
        session,
        institution_id=institution_id,
        owners={case.id: owner_id},
        actor=actor,
        note=cleaned,
        current={case.id: previous},
    )
    session.expire(case, ["owner_id"])
    audit.record(
        session,
        actor=actor,
        action="case.assign",
        object_type="case",
        object_id=case.id,
        institution_id=institution_id,
        details={"from": previous, "to": owner_id},
    )
    return case


_SKILL = re.compile(r"^[a-z][a-z0-9_]*(:[a-z0-9_-]+)?$")
MAX_DAILY_CAPACITY = 1_000


def _tokens(field: str, values: list[str], *, pattern: re.Pattern[str] | None) -> list[str]:
    cleaned = sorted({value.strip() for value in values if value.strip()})
    for value in cleaned:
        if len(value) > 32 or (pattern is not None and not pattern.match(value)):
            raise ValidationFailed(
                f"{field}: {value!r} is not a valid entry (letters, digits, '_' or 'lang:en')",
                errors=[{"field": field, "code": "invalid", "message": value}],
            )
    return cleaned


def _agent_of(session: Session, *, institution_id: int, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.institution_id != institution_id:
        raise NotFound(f"no user {user_id}")
    if user.role != Role.agent:
        raise ValidationFailed(
            f"user_id: {user.username} is not an agent",
            errors=[{"field": "user_id", "code": "not_agent", "message": "not an agent"}],
        )
    return user


def set_agent_profile(
    session: Session,
    *,
    institution_id: int,
    user_id: int,
    daily_capacity: int,
    skills: list[str],
    regions: list[str],
    actor: str,
) -> AgentProfile:
    """Set an agent's cases a day, skills and visit regions (audited, old → new)."""
    agent = _agent_of(session, institution_id=institution_id, user_id=user_id)
    if not 0 <= daily_capacity <= MAX_DAILY_CAPACITY:
        raise ValidationFailed(
            f"daily_capacity: cases a day are 0 to {MAX_DAILY_CAPACITY}",
            errors=[{"field": "daily_capacity", "code": "range", "message": "out of range"}],
        )
    skills = _tokens("skills", skills, pattern=_SKILL)
    regions = _tokens("regions", regions, pattern=None)
    profile = session.execute(
        select(AgentProfile).where(AgentProfile.user_id == agent.id)
    ).scalar_one_or_none()
    before = (
        {
            "daily_capacity": profile.daily_capacity,
            "skills": profile.skills,
            "regions": profile.regions,
        }
        if profile
        else None
    )
    if profile is None:
        profile = AgentProfile(institution_id=institution_id, user_id=agent.id)
        session.add(profile)
    profile.daily_capacity = daily_capacity
    profile.skills = skills
    profile.regions = regions
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="agent.profile",
        object_type="user",
        object_id=agent.id,
        institution_id=institution_id,
        details={
            "before": before,
            "after": {"daily_capacity": daily_capacity, "skills": skills, "regions": regions},
        },
    )
    return profile


def add_absence(
    session: Session,
    *,
    institution_id: int,
    user_id: int,
    starts_on: date,
    ends_on: date,
    reason: str,
    actor: str,
) -> AgentAbsence:
    """Record days an agent is away: allocation gives them nothing then (audited)."""
    agent = _agent_of(session, institution_id=institution_id, user_id=user_id)
    if ends_on < starts_on:
        raise ValidationFailed(
            "ends_on: the last day away cannot be before the first",
            errors=[{"field": "ends_on", "code": "order", "message": "before starts_on"}],
        )
    if (ends_on - starts_on).days > 366:
        raise ValidationFailed(
            "ends_on: an absence is at most a year; record a longer one as deactivation",
            errors=[{"field": "ends_on", "code": "range", "message": "too long"}],
        )
    absence = AgentAbsence(
        institution_id=institution_id,
        user_id=agent.id,
        starts_on=starts_on,
        ends_on=ends_on,
        reason=require_text("reason", reason or "leave")[:64],
    )
    session.add(absence)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="agent.absence",
        object_type="user",
        object_id=agent.id,
        institution_id=institution_id,
        details={"starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat()},
    )
    return absence


_QUEUE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


def save_queue(
    session: Session,
    *,
    institution_id: int,
    code: str,
    name: str,
    rank: int,
    buckets: list[str],
    skills: list[str],
    member_ids: list[int],
    actor: str,
) -> Queue:
    """Create or change a queue and who works it (audited); routing applies at the next sync."""
    code = code.strip().upper()
    if not _QUEUE_CODE.match(code):
        raise ValidationFailed(
            "code: a queue code is 1–32 capital letters, digits, '-' or '_' (EARLY, M4_LEGAL)",
            errors=[{"field": "code", "code": "invalid", "message": code}],
        )
    name = require_text("name", name).strip()
    if not name or len(name) > 128:
        raise ValidationFailed(
            "name: give the queue a name of up to 128 characters",
            errors=[{"field": "name", "code": "required", "message": "name"}],
        )
    unknown = sorted(set(buckets) - set(BUCKETS))
    if unknown:
        raise ValidationFailed(
            f"buckets: {', '.join(unknown)} are not buckets; use {', '.join(BUCKETS)}",
            errors=[{"field": "buckets", "code": "invalid", "message": ", ".join(unknown)}],
        )
    skills = _tokens("skills", skills, pattern=_SKILL)
    members = [_agent_of(session, institution_id=institution_id, user_id=m) for m in member_ids]
    queue = repository.queue_by_code(session, institution_id=institution_id, code=code)
    if queue is None:
        queue = Queue(institution_id=institution_id, code=code)
        session.add(queue)
    queue.name = name
    queue.rank = max(0, min(rank, 10_000))
    queue.buckets = [bucket for bucket in BUCKETS if bucket in buckets]
    queue.skills = skills
    session.flush()
    session.execute(delete(QueueMember).where(QueueMember.queue_id == queue.id))
    session.add_all(
        QueueMember(institution_id=institution_id, queue_id=queue.id, user_id=member.id)
        for member in members
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="queue.save",
        object_type="queue",
        object_id=queue.id,
        institution_id=institution_id,
        details={
            "code": code,
            "buckets": queue.buckets,
            "skills": skills,
            "members": [member.id for member in members],
        },
    )
    return queue
