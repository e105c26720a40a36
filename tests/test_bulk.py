"""Bulk writes through the driver store exactly what a Core insert or update stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from recoup import bulk
from recoup.models.compliance import ContactDecision
from recoup.models.debtor import Debtor
from tests.factories import make_debtor, make_institution

DECISIONS: Table = ContactDecision.__table__  # type: ignore[assignment]
DEBTORS: Table = Debtor.__table__  # type: ignore[assignment]
COMPARED = [column.name for column in DECISIONS.c if column.name != "id"]


def _rows(institution_id: int, debtor_id: int) -> list[dict[str, Any]]:
    at = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
    beijing = timezone(timedelta(hours=8))
    rows = []
    for number in range(6):
        rows.append(
            {
                "institution_id": institution_id,
                "debtor_id": debtor_id,
                "contact_point_id": None,
                "account_id": None,
                "channel": "sms",
                "party": "debtor",
                # The same instant in two zones, stored once as UTC either way.
                "planned_at": at if number % 2 else at.astimezone(beijing),
                "allowed": number % 3 != 0,
                "rule_ids": [] if number % 3 else ["CN-STOP"],
                "reasons": [{"rule_id": "CN-STOP", "code": "channel_opt_out"}] * (number % 2),
                "next_allowed_at": None if number < 4 else at + timedelta(days=number),
                "timezones": ["Asia/Shanghai"],
                # True and 1 compare equal but are different JSON.
                "inputs": {"batch": True, "automated": [True, 1][number % 2]},
                "pack_code": "CN",
                "pack_version": "1",
                "policy_name": "default",
                "policy_version": "1",
                "actor": f"test{number % 2}",
                "created_at": at,
                "updated_at": at,
            }
        )
    return rows


def _stored(session: Session, ids: list[int]) -> list[tuple[Any, ...]]:
    found = session.execute(
        select(*(DECISIONS.c[name] for name in COMPARED), DECISIONS.c.id)
        .where(DECISIONS.c.id.in_(ids))
        .order_by(DECISIONS.c.id)
    )
    return [tuple(row)[:-1] for row in found]


class TestInsertRows:
    def test_stores_what_a_core_insert_stores(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = _rows(institution.id, debtor.id)
        core = session.execute(insert(DECISIONS).returning(DECISIONS.c.id), rows).scalars().all()

        written = bulk.insert_rows(session, DECISIONS, rows)

        assert written == len(rows)
        driver = (
            session.execute(
                select(DECISIONS.c.id).where(DECISIONS.c.id.not_in(core)).order_by(DECISIONS.c.id)
            )
            .scalars()
            .all()
        )
        assert _stored(session, list(driver)) == _stored(session, list(core))
        stored = _stored(session, list(driver))
        inputs = [row[COMPARED.index("inputs")] for row in stored]
        assert [each["automated"] for each in inputs] == [True, 1] * 3
        assert all(
            type(each["automated"]) is type([True, 1][n % 2]) for n, each in enumerate(inputs)
        )

    def test_writes_nothing_for_no_rows(self, session: Session) -> None:
        assert bulk.insert_rows(session, DECISIONS, []) == 0

    def test_goes_after_pending_changes(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        debtor.cease_contact = True  # pending: a later flush must not undo the bulk write

        bulk.update_rows(session, DEBTORS, [{"cease_contact": False, "id": debtor.id}], key="id")
        session.flush()
        session.expire_all()

        assert session.get(Debtor, debtor.id).cease_contact is False  # type: ignore[union-attr]


class TestInsertColumns:
    def test_stores_what_a_core_insert_stores(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = _rows(institution.id, debtor.id)
        core = session.execute(insert(DECISIONS).returning(DECISIONS.c.id), rows).scalars().all()
        constant = ["institution_id", "debtor_id", "channel", "timezones"]
        coded = ["reasons", "inputs"]
        distinct: dict[str, list[Any]] = {name: [] for name in coded}
        codes: dict[str, list[int]] = {name: [] for name in coded}
        for row in rows:
            for name in coded:
                # Equal values that encode differently (True and 1) stay distinct values.
                known = [repr(value) for value in distinct[name]]
                if repr(row[name]) not in known:
                    distinct[name].append(row[name])
                    known.append(repr(row[name]))
                codes[name].append(known.index(repr(row[name])))
        columns: dict[str, Any] = {
            name: [row[name] for row in rows] for name in rows[0] if name not in constant + coded
        }
        columns |= {name: bulk.Coded(distinct[name], codes[name]) for name in coded}

        written = bulk.insert_columns(
            session,
            DECISIONS,
            columns,
            size=len(rows),
            constants={name: rows[0][name] for name in constant},
        )

        assert written == len(rows)
        driver = (
            session.execute(
                select(DECISIONS.c.id).where(DECISIONS.c.id.not_in(core)).order_by(DECISIONS.c.id)
            )
            .scalars()
            .all()
        )
        assert _stored(session, list(driver)) == _stored(session, list(core))

    def test_refuses_columns_shorter_than_the_rows(self, session: Session) -> None:
        institution = make_institution(session)
        with pytest.raises(ValueError, match="2 rows, not 3"):
            bulk.insert_columns(
                session,
                DEBTORS,
                {"external_id": ["a", "b"]},
                size=3,
                constants={"institution_id": institution.id},
            )

    def test_writes_nothing_for_no_rows(self, session: Session) -> None:
        assert bulk.insert_columns(session, DECISIONS, {"channel": []}, size=0) == 0


class TestFetchRows:
    def test_returns_the_drivers_plain_rows(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = bulk.fetch_rows(
            session, select(DEBTORS.c.id, DEBTORS.c.kind).where(DEBTORS.c.id == debtor.id)
        )
        assert [tuple(row) for row in rows] == [(debtor.id, "individual")]
        assert all(type(row[1]) is str for row in rows)


class TestNextIds:
    def test_ids_follow_the_highest_and_insert_as_given(self, session: Session) -> None:
        if session.get_bind().dialect.name != "sqlite":
            with pytest.raises(ValueError, match="sequence"):
                bulk.next_ids(session, DECISIONS, 3)
            return
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = _rows(institution.id, debtor.id)
        bulk.insert_rows(session, DECISIONS, rows[:1])
        highest = session.execute(select(DECISIONS.c.id).order_by(DECISIONS.c.id.desc())).scalar()
        assert highest is not None

        ids = bulk.next_ids(session, DECISIONS, 3)
        bulk.insert_rows(
            session, DECISIONS, [{"id": i, **row} for i, row in zip(ids, rows, strict=False)]
        )

        assert ids == [highest + 1, highest + 2, highest + 3]
        assert _stored(session, ids) == _stored(session, ids)
        assert len(_stored(session, ids)) == 3


class TestSequenceIds:
    def test_ids_are_fresh_and_insert_as_given(self, session: Session) -> None:
        if session.get_bind().dialect.name != "postgresql":
            with pytest.raises(ValueError, match="PostgreSQL"):
                bulk.sequence_ids(session, DECISIONS, 3)
            return
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = _rows(institution.id, debtor.id)
        before = session.execute(insert(DECISIONS).returning(DECISIONS.c.id), rows[:1]).scalar()

        ids = bulk.sequence_ids(session, DECISIONS, 3)
        bulk.insert_rows(
            session, DECISIONS, [{"id": i, **row} for i, row in zip(ids, rows, strict=False)]
        )
        after = session.execute(insert(DECISIONS).returning(DECISIONS.c.id), rows[:1]).scalar()

        assert len(set(ids)) == 3
        assert before is not None
        assert after is not None
        assert before < min(ids)
        assert max(ids) < after
        assert len(_stored(session, ids)) == 3


class TestUpdateRows:
    def test_sets_each_row_by_its_key(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = _rows(institution.id, debtor.id)
        ids = session.execute(insert(DECISIONS).returning(DECISIONS.c.id), rows).scalars().all()
        later = datetime(2027, 3, 2, tzinfo=UTC)

        bulk.update_rows(
            session,
            DECISIONS,
            [
                {"rule_ids": ["CN-FREQ"] * (n % 2), "next_allowed_at": later, "id": decision_id}
                for n, decision_id in enumerate(ids)
            ],
            key="id",
        )

        stored = session.execute(
            select(DECISIONS.c.rule_ids, DECISIONS.c.next_allowed_at)
            .where(DECISIONS.c.id.in_(ids))
            .order_by(DECISIONS.c.id)
        ).all()
        assert [tuple(row) for row in stored] == [
            (["CN-FREQ"] * (n % 2), later) for n in range(len(ids))
        ]


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in rows[0]}


class TestInsertColumnsSharedValues:
    def test_a_value_shared_by_rows_stores_what_the_rows_store(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = _rows(institution.id, debtor.id)
        core = session.execute(insert(DECISIONS).returning(DECISIONS.c.id), rows).scalars().all()
        columns = _columns(rows)
        # One object shared by several rows, and an equal list as another object: each row
        # stores its own value.
        shared = ["Asia/Shanghai"]
        columns["timezones"] = [shared] * len(rows)
        first, second = ["CN-STOP"], ["CN-STOP"]
        columns["rule_ids"] = [first if row["rule_ids"] else [] for row in rows]
        columns["rule_ids"][3] = second

        written = bulk.insert_columns(session, DECISIONS, columns, size=len(rows))

        assert written == len(rows)
        driver = (
            session.execute(
                select(DECISIONS.c.id).where(DECISIONS.c.id.not_in(core)).order_by(DECISIONS.c.id)
            )
            .scalars()
            .all()
        )
        assert _stored(session, list(driver)) == _stored(session, list(core))
        inputs = [row[COMPARED.index("inputs")] for row in _stored(session, list(driver))]
        assert all(
            type(each["automated"]) is type([True, 1][n % 2]) for n, each in enumerate(inputs)
        )


class TestUpdateColumns:
    def test_sets_each_row_by_its_key(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = _rows(institution.id, debtor.id)
        ids = session.execute(insert(DECISIONS).returning(DECISIONS.c.id), rows).scalars().all()
        later = datetime(2027, 3, 2, tzinfo=UTC)
        blocked = ["CN-FREQ"]

        written = bulk.update_columns(
            session,
            DECISIONS,
            {
                "id": list(ids),
                "rule_ids": [blocked if n % 2 else [] for n in range(len(ids))],
                "next_allowed_at": [later] * len(ids),
            },
            key="id",
        )

        assert written == len(ids)
        stored = session.execute(
            select(DECISIONS.c.rule_ids, DECISIONS.c.next_allowed_at)
            .where(DECISIONS.c.id.in_(ids))
            .order_by(DECISIONS.c.id)
        ).all()
        assert [tuple(row) for row in stored] == [
            (["CN-FREQ"] * (n % 2), later) for n in range(len(ids))
        ]


class TestCodedColumns:
    def test_coded_columns_store_what_the_rows_store(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = _rows(institution.id, debtor.id)
        core = session.execute(insert(DECISIONS).returning(DECISIONS.c.id), rows).scalars().all()
        # Every column coded: equal values that encode differently (True and 1, the same
        # instant in two zones) stay apart or together exactly as a plain write keeps them.
        columns = {name: bulk.coded(values) for name, values in _columns(rows).items()}
        assert len(columns["inputs"].values) == 2
        assert len(columns["actor"].values) == 2

        written = bulk.insert_columns(session, DECISIONS, columns, size=len(rows))

        assert written == len(rows)
        driver = (
            session.execute(
                select(DECISIONS.c.id).where(DECISIONS.c.id.not_in(core)).order_by(DECISIONS.c.id)
            )
            .scalars()
            .all()
        )
        assert _stored(session, list(driver)) == _stored(session, list(core))
        inputs = [row[COMPARED.index("inputs")] for row in _stored(session, list(driver))]
        assert all(
            type(each["automated"]) is type([True, 1][n % 2]) for n, each in enumerate(inputs)
        )

    def test_an_update_takes_coded_columns(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        rows = _rows(institution.id, debtor.id)
        ids = session.execute(insert(DECISIONS).returning(DECISIONS.c.id), rows).scalars().all()
        later = datetime(2027, 3, 2, tzinfo=UTC)
        blocked = ["CN-FREQ"]

        written = bulk.update_columns(
            session,
            DECISIONS,
            {
                "id": list(ids),
                "rule_ids": bulk.coded([blocked if n % 2 else [] for n in range(len(ids))]),
                "next_allowed_at": bulk.coded([later] * len(ids)),
            },
            key="id",
        )

        assert written == len(ids)
        stored = session.execute(
            select(DECISIONS.c.rule_ids, DECISIONS.c.next_allowed_at)
            .where(DECISIONS.c.id.in_(ids))
            .order_by(DECISIONS.c.id)
        ).all()
        assert [tuple(row) for row in stored] == [
            (["CN-FREQ"] * (n % 2), later) for n in range(len(ids))
        ]
