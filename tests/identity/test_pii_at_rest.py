"""Raw database bytes hold no plaintext name, id number or phone (SQLite file; PostgreSQL COPY)."""

from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from recoup.db import make_engine, unit_of_work
from recoup.demo.service import seed_demo
from recoup.models import Base, ContactPoint, Debtor
from tests.factories import make_contact_point, make_debtor, make_institution

PEOPLE = [
    ("欧阳娜娜", "110101199003074477", "13812345678"),
    ("Zhang Wei", "44030619851212301X", "+86 139 8765 4321"),
    ("诸葛孔明", "310104198807156617", "15900011122"),
]
ENCRYPTED_TABLES = ("debtors", "contact_points", "users", "audit_events", "api_keys")


def _secrets(session: Session) -> set[str]:
    """The plaintext PII now stored (read back through decryption), minus text stored in the clear by design."""
    values: set[str] = set()
    places: set[str] = set()
    for debtor in session.scalars(select(Debtor)):
        values.update(v for v in (debtor.name, debtor.national_id, debtor.employer) if v)
        places.update(v for v in (debtor.province, debtor.city, debtor.district) if v)
    for contact in session.scalars(select(ContactPoint)):
        values.update(v for v in (contact.value, contact.contact_name) if v)
    return {
        value for value in values if len(value) >= 2 and not any(value in place for place in places)
    }


def _sqlite_bytes(engine: Engine, path: Path) -> bytes:
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def _postgres_bytes(session: Session) -> bytes:
    raw = session.connection().connection.driver_connection
    assert raw is not None
    dump = b""
    with raw.cursor() as cursor:
        for table in ENCRYPTED_TABLES:
            with cursor.copy(f"COPY {table} TO STDOUT") as copy:
                for chunk in copy:
                    dump += bytes(chunk)
    return dump


def _assert_clean(dump: bytes, secrets: set[str]) -> None:
    assert secrets, "the test wrote no PII"
    leaked = [value for value in secrets if value.encode() in dump]
    assert not leaked, f"plaintext PII in the database: {leaked[:5]}"


def _write_people(session: Session) -> None:
    institution = make_institution(session)
    for name, national_id, phone in PEOPLE:
        debtor = make_debtor(session, institution, name=name, national_id=national_id)
        make_contact_point(session, debtor, value=phone)


def test_sqlite_file_has_no_plaintext_pii(tmp_path: Path) -> None:
    path = tmp_path / "pii.db"
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with unit_of_work(engine) as session:
        _write_people(session)
        seed_demo(session, accounts=40, seed=7)
    with unit_of_work(engine) as session:
        secrets = _secrets(session)
    assert {"欧阳娜娜", "110101199003074477", "13812345678"} <= secrets
    _assert_clean(_sqlite_bytes(engine, path), secrets)


def test_postgres_tables_have_no_plaintext_pii(session: Session, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("COPY dump is PostgreSQL's; the SQLite file is read as bytes above")
    _write_people(session)
    seed_demo(session, accounts=40, seed=7)
    session.flush()
    session.execute(text("SELECT 1"))
    _assert_clean(_postgres_bytes(session), _secrets(session))
