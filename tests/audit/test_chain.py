"""The audit log's guarantees: entries commit with the unit of work or not at all, sequence
numbers are gapless, and verify_chain names the first entry that was edited, deleted, reordered
or added outside the log."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.exc import IntegrityError

from sandbox.actor import SYSTEM
from sandbox.audit.log import entry_hash, hashed_fields, record
from sandbox.audit.verify import ChainReport, verify_chain
from sandbox.context import request_id_var
from sandbox.db import Database, SandboxSession
from sandbox.models import GENESIS_HASH, AuditEntry, AuditHead, User
from sandbox.models.base import JSONDocument
from tests.conftest import create_temp_database
from tests.support import NOW

# Typed, so that the same raw SQL writes JSON on SQLite and JSONB on PostgreSQL.
JSON_AFTER = bindparam("after", type_=JSONDocument)


def touch(session: SandboxSession, object_id: str = "w-1", action: str = "widget.touch", **after: Any) -> None:
    record(
        session,
        at=NOW,
        actor=SYSTEM,
        action=action,
        object_type="widget",
        object_id=object_id,
        before=None,
        after=after or {"state": "touched"},
    )


def commit_entries(database: Database, count: int) -> None:
    for number in range(1, count + 1):
        with database.unit_of_work() as session:
            touch(session, object_id=f"w-{number}", n=number)


def chain(database: Database) -> list[AuditEntry]:
    with database.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def verify(database: Database) -> ChainReport:
    with database.sessions() as session:
        return verify_chain(session)


def test_a_fresh_chain_is_empty_and_verifies(database: Database) -> None:
    assert chain(database) == []
    assert verify(database) == ChainReport(ok=True, checked=0)


def test_entry_is_written_when_the_unit_of_work_commits(database: Database) -> None:
    with database.unit_of_work() as session:
        touch(session)
        # Queued, not written: the head lock is taken only at commit.
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    [entry] = chain(database)
    assert (entry.seq, entry.action, entry.object_type, entry.object_id) == (1, "widget.touch", "widget", "w-1")
    assert entry.at == NOW
    assert entry.actor == "system" and entry.actor_id is None
    assert entry.after == {"state": "touched"} and entry.before is None
    assert entry.prev_hash == GENESIS_HASH


def test_rolled_back_unit_of_work_writes_no_entry_and_leaks_none_into_the_next(database: Database) -> None:
    with pytest.raises(RuntimeError), database.unit_of_work() as session:
        touch(session, action="widget.lost")
        raise RuntimeError("the change failed")
    assert chain(database) == []

    with database.unit_of_work() as session:
        touch(session, action="widget.kept")
    assert [(e.seq, e.action) for e in chain(database)] == [(1, "widget.kept")]


def test_entry_is_not_written_when_the_commit_itself_fails(database: Database) -> None:
    with pytest.raises(IntegrityError), database.unit_of_work() as session:
        touch(session, action="user.create")
        session.add(User(email="ghost@bank.example", role="filer", institution_id=uuid.uuid4(), created_at=NOW))
    assert chain(database) == []
    with database.sessions() as session:
        head = session.get_one(AuditHead, 1)
        assert (head.last_seq, head.last_hash) == (0, GENESIS_HASH)


def test_sequence_is_gapless_and_linked_across_commits_and_rollbacks(database: Database) -> None:
    commit_entries(database, 2)
    with pytest.raises(RuntimeError), database.unit_of_work() as session:
        touch(session, action="widget.lost")
        raise RuntimeError
    with database.unit_of_work() as session:
        touch(session, object_id="w-3")
        touch(session, object_id="w-4")

    entries = chain(database)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert [e.object_id for e in entries] == ["w-1", "w-2", "w-3", "w-4"]
    assert "widget.lost" not in {e.action for e in entries}
    previous = GENESIS_HASH
    for entry in entries:
        assert entry.prev_hash == previous
        assert entry.hash == entry_hash(hashed_fields(entry))
        previous = entry.hash
    with database.sessions() as session:
        head = session.get_one(AuditHead, 1)
        assert (head.last_seq, head.last_hash) == (4, previous)
    assert verify(database) == ChainReport(ok=True, checked=4)


def test_rolled_back_savepoint_drops_only_the_entries_queued_inside_it(database: Database) -> None:
    with database.unit_of_work() as session:
        touch(session, action="widget.before")
        with pytest.raises(RuntimeError), session.begin_nested():
            touch(session, action="widget.inside")
            raise RuntimeError
        touch(session, action="widget.after")
    assert [e.action for e in chain(database)] == ["widget.before", "widget.after"]
    assert verify(database).ok


def test_released_savepoint_leaves_its_entries_for_the_real_commit(database: Database) -> None:
    with database.unit_of_work() as session:
        with session.begin_nested():
            touch(session, action="widget.inside")
        # Not written at the savepoint: the head lock must still be the last lock taken.
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
        touch(session, action="widget.after")
    assert [(e.seq, e.action) for e in chain(database)] == [(1, "widget.inside"), (2, "widget.after")]


def test_entry_recorded_in_another_timezone_is_stored_in_utc_and_verifies(database: Database) -> None:
    shanghai_time = NOW.astimezone(timezone(timedelta(hours=8)))
    with database.unit_of_work() as session:
        record(session, at=shanghai_time, actor=SYSTEM, action="widget.touch", object_type="widget", object_id="w-1")
    [entry] = chain(database)
    assert entry.at == NOW and entry.at.utcoffset() == timedelta(0)
    assert verify(database).ok


def test_record_refuses_naive_times_and_floats(session: SandboxSession) -> None:
    with pytest.raises(ValueError, match="timezone"):
        record(session, at=datetime(2026, 11, 28, 2, 0), actor=SYSTEM, action="a", object_type="t", object_id="1")
    with pytest.raises(TypeError, match="Decimal"):
        record(session, at=NOW, actor=SYSTEM, action="a", object_type="t", object_id="1", after={"ratio": 0.1})


def test_entry_carries_the_request_id_it_was_recorded_under(database: Database) -> None:
    token = request_id_var.set("req-0123456789")
    try:
        with database.unit_of_work() as session:
            touch(session)
    finally:
        request_id_var.reset(token)
    [entry] = chain(database)
    assert entry.request_id == "req-0123456789"
    assert verify(database).ok


def test_verify_detects_an_edited_entry(database: Database, connection: Connection) -> None:
    commit_entries(database, 4)
    connection.execute(
        text("UPDATE audit_entries SET after = :after WHERE seq = 2").bindparams(JSON_AFTER), {"after": {"n": 200}}
    )
    report = verify(database)
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 2, 1)
    assert "altered" in (report.problem or "")


def test_verify_detects_an_edited_entry_whose_hash_was_recomputed(database: Database, connection: Connection) -> None:
    commit_entries(database, 3)
    with database.sessions() as session:
        forged = session.get_one(AuditEntry, 2)
        forged.after = {"n": 999}
        new_hash = entry_hash(hashed_fields(forged))
    connection.execute(
        text("UPDATE audit_entries SET after = :after, hash = :hash WHERE seq = 2").bindparams(JSON_AFTER),
        {"after": {"n": 999}, "hash": new_hash},
    )
    report = verify(database)
    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert "does not link" in (report.problem or "")


def test_verify_detects_a_deleted_entry_in_the_middle(database: Database, connection: Connection) -> None:
    commit_entries(database, 4)
    connection.execute(text("DELETE FROM audit_entries WHERE seq = 2"))
    report = verify(database)
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "missing" in (report.problem or "")


def test_verify_detects_a_deleted_last_entry_by_the_head(database: Database, connection: Connection) -> None:
    commit_entries(database, 4)
    connection.execute(text("DELETE FROM audit_entries WHERE seq = 4"))
    report = verify(database)
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 4, 3)
    assert "removed from the end" in (report.problem or "")


def test_verify_detects_two_swapped_entries(database: Database, connection: Connection) -> None:
    commit_entries(database, 4)
    for old, new in ((2, -2), (3, 2), (-2, 3)):
        connection.execute(text("UPDATE audit_entries SET seq = :new WHERE seq = :old"), {"old": old, "new": new})
    assert [e.object_id for e in chain(database)] == ["w-1", "w-3", "w-2", "w-4"]
    report = verify(database)
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "reordered" in (report.problem or "")


def test_verify_detects_an_entry_appended_outside_the_log(database: Database) -> None:
    commit_entries(database, 2)
    with database.unit_of_work() as session:
        last = session.get_one(AuditEntry, 2)
        forged = AuditEntry(
            seq=3,
            at=NOW,
            actor_id=None,
            actor="system",
            action="widget.touch",
            object_type="widget",
            object_id="w-forged",
            before=None,
            after={"n": 3},
            request_id=None,
            prev_hash=last.hash,
        )
        forged.hash = entry_hash(hashed_fields(forged))
        session.add(forged)
    report = verify(database)
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 3, 3)
    assert "past the chain's head" in (report.problem or "")


def test_verify_reports_a_deleted_head_instead_of_failing(database: Database, connection: Connection) -> None:
    commit_entries(database, 1)
    connection.execute(text("DELETE FROM audit_head"))
    report = verify(database)
    assert not report.ok and "head row is missing" in (report.problem or "")


def test_verify_leaves_the_callers_objects_in_the_session(session: SandboxSession, database: Database) -> None:
    commit_entries(database, 2)
    head = session.get_one(AuditHead, 1)
    assert verify_chain(session).ok
    assert head in session


@pytest.mark.postgres_only
def test_concurrent_committing_writers_keep_the_chain_gapless_on_postgresql(tmp_path: Path) -> None:
    temp = create_temp_database("postgresql", tmp_path)
    try:
        database = Database(temp.engine)
        writers, units = 8, 20
        start = threading.Barrier(writers)

        def write(worker: int) -> None:
            start.wait()
            for unit in range(units):
                with database.unit_of_work() as session:
                    touch(session, object_id=f"w-{worker}-{unit}")

        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(write, range(writers)))

        entries = chain(database)
        assert [e.seq for e in entries] == list(range(1, writers * units + 1))
        assert len({e.object_id for e in entries}) == writers * units
        assert verify(database) == ChainReport(ok=True, checked=writers * units)
    finally:
        temp.drop()
