"""The database layer: SQLite is safe for a multi-threaded server (WAL, foreign keys, BEGIN
IMMEDIATE so writers queue instead of failing), and both backends enforce foreign keys."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from sandbox.actor import SYSTEM
from sandbox.audit.log import record
from sandbox.audit.verify import verify_chain
from sandbox.db import Database, SandboxSession, make_engine
from sandbox.models import AuditEntry, Institution, User
from tests.conftest import create_temp_database
from tests.support import NOW


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    database = Database.from_url(f"sqlite:///{tmp_path / 'pragmas.db'}", sqlite_busy_timeout_ms=1234)
    try:
        with database.unit_of_work() as session:
            pragma = session.connection().exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 1234
    finally:
        database.dispose()


def test_sqlite_writers_in_threads_wait_for_each_other_instead_of_failing(tmp_path: Path) -> None:
    temp = create_temp_database("sqlite", tmp_path)
    try:
        database = Database(temp.engine)
        writers, units = 4, 5
        start = threading.Barrier(writers)

        def write(worker: int) -> None:
            start.wait()
            for unit in range(units):
                with database.unit_of_work() as session:
                    # Read, let the other writers run, then write: under a deferred BEGIN the
                    # second writer to upgrade its read lock gets "database is locked" at once.
                    session.scalar(select(func.count()).select_from(AuditEntry))
                    time.sleep(0.005)
                    record(
                        session,
                        at=NOW,
                        actor=SYSTEM,
                        action="widget.touch",
                        object_type="widget",
                        object_id=f"w-{worker}-{unit}",
                    )

        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(write, range(writers)))

        with database.unit_of_work() as session:
            seqs = session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
            assert seqs == list(range(1, writers * units + 1))
            assert verify_chain(session).ok
    finally:
        temp.drop()


def test_unit_of_work_commits_on_success_and_rolls_back_on_error(database: Database) -> None:
    def add(code: str) -> None:
        with database.unit_of_work() as session:
            session.add(
                Institution(
                    code=code,
                    name=code,
                    type="domestic_bank",
                    uscc=f"{code:0>18}",
                    region="Shanghai",
                    rating=2,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            if code == "BANK-X":
                raise RuntimeError("refused after the insert")

    add("BANK-A")
    with pytest.raises(RuntimeError):
        add("BANK-X")
    with database.sessions() as session:
        assert session.scalars(select(Institution.code)).all() == ["BANK-A"]


def test_foreign_keys_are_enforced(session: SandboxSession) -> None:
    session.add(User(email="ghost@bank.example", role="filer", institution_id=uuid.uuid4(), created_at=NOW))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_make_engine_picks_psycopg_for_plain_postgresql_urls_and_creates_sqlite_folders(tmp_path: Path) -> None:
    engine = make_engine("postgresql://sandbox@db.internal/sandbox")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()

    make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'sandbox.db'}").dispose()
    assert (tmp_path / "a" / "b").is_dir()
