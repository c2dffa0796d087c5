"""Real worker processes against committed databases: several workers share the outbox without
sending anything twice, a killed worker loses nothing, SIGTERM stops one cleanly; and the
in-process worker that `sandbox serve` runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from sandbox.alert import repository
from sandbox.cli import app as cli
from sandbox.db import Database
from sandbox.models import Alert, AlertDelivery, AlertState, DeliveryState
from sandbox.worker import start_in_process
from tests.alert.conftest import SmtpServer, committed_settings, deliver, emit_committed, wait_until
from tests.conftest import TempDatabase, create_temp_database

ROOT = Path(__file__).resolve().parents[2]


def _worker_command() -> list[str]:
    registered = {c.name or (c.callback.__name__ if c.callback else "") for c in cli.registered_commands}
    if "worker" in registered:
        return [str(Path(sys.executable).with_name("sandbox")), "worker"]
    return [sys.executable, "-m", "tests.alert.worker_main"]


WORKER = _worker_command()


@pytest.fixture
def committed(backend: str, tmp_path: Path) -> Iterator[TempDatabase]:
    temp = create_temp_database(backend, tmp_path)
    yield temp
    temp.drop()


@pytest.fixture
def committed_pg(tmp_path: Path) -> Iterator[TempDatabase]:
    temp = create_temp_database("postgresql", tmp_path)
    yield temp
    temp.drop()


def worker_env(temp: TempDatabase, tmp_path: Path, smtp_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    env.update(
        SANDBOX_DATABASE_URL=temp.url,
        SANDBOX_VAR_DIR=str(tmp_path / "var"),
        SANDBOX_ENVIRONMENT="test",
        SANDBOX_BASE_URL="https://sandbox.bureau.example",
    )
    if smtp_url:
        env["SANDBOX_SMTP_URL"] = smtp_url
    return env


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WORKER, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run_worker_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WORKER, "--once"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def delivery_rows(database: Database) -> list[AlertDelivery]:
    with database.sessions() as session:
        return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.postgres_only
def test_two_worker_processes_deliver_200_alerts_with_no_duplicate(
    committed_pg: TempDatabase, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    database = Database(committed_pg.engine)
    emit_committed(database, at=now() - timedelta(seconds=1), count=200)
    smtp_server.handler.data_delay = 0.005  # so that both workers are surely busy at once
    env = worker_env(committed_pg, tmp_path, smtp_server.url(timeout=5))
    workers = [start_worker(env, "--once", "--batch", "10") for _ in range(2)]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    ids = smtp_server.handler.message_ids()
    assert len(ids) == 200 and set(ids.values()) == {1}
    rows = delivery_rows(database)
    assert ids.keys() == {d.message_id for d in rows}
    assert {(d.state, d.attempts) for d in rows} == {(DeliveryState.sent, 1)}
    sent_by = [stderr.count(": sent (attempt 1)") for _, stderr in outputs]
    assert sum(sent_by) == 200 and min(sent_by) > 0, sent_by
    with database.sessions() as session:
        assert set(session.scalars(select(Alert.state))) == {AlertState.sent}


@pytest.mark.postgres_only
def test_concurrent_claims_on_postgresql_take_disjoint_rows(committed_pg: TempDatabase) -> None:
    database = Database(committed_pg.engine)
    emit_committed(database, count=6)
    at = now()
    first, second = database.sessions(), database.sessions()
    try:
        mine = repository.claim_due(first, now=at, limit=4, skip_locked=True)
        theirs = repository.claim_due(second, now=at, limit=4, skip_locked=True)  # does not wait
        assert (len(mine), len(theirs)) == (4, 2)
        assert not {d.id for d in mine} & {d.id for d in theirs}
    finally:
        first.rollback()
        second.rollback()
        first.close()
        second.close()


def test_a_worker_killed_mid_batch_loses_nothing(
    committed: TempDatabase, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    database = Database(committed.engine)
    emit_committed(database, at=now() - timedelta(seconds=1), count=5)
    # The server takes the first message and never answers: the worker is stuck mid-batch.
    handler = smtp_server.handler
    handler.mode, handler.stall_seconds, handler.stall_records = "stall", 30.0, False
    worker = start_worker(worker_env(committed, tmp_path, smtp_server.url(timeout=60)), "--poll", "0.1")
    try:
        wait_until(lambda: all(d.state == DeliveryState.sending for d in delivery_rows(database)), timeout=30)
        killed_at = now()
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=10)
    claimed = delivery_rows(database)
    assert len({d.lease_owner for d in claimed}) == 1 and all(d.attempts == 1 for d in claimed)

    handler.mode = "accept"
    assert deliver(database, smtp_server, now=killed_at).claimed == 0  # the lease still holds
    lease_end = max(d.lease_until for d in claimed if d.lease_until is not None)
    report = deliver(database, smtp_server, now=lease_end + timedelta(seconds=1))
    assert (report.claimed, report.sent) == (5, 5)
    ids = handler.message_ids()
    assert ids.keys() == {d.message_id for d in claimed} and set(ids.values()) == {1}
    assert {(d.state, d.attempts) for d in delivery_rows(database)} == {(DeliveryState.sent, 2)}


def test_sandbox_worker_once_fills_the_maildir_and_sigterm_stops_a_running_worker(
    tmp_path: Path,
) -> None:
    temp = create_temp_database("sqlite", tmp_path)
    try:
        database = Database(temp.engine)
        emit_committed(database, ["sup@bureau.example", "ops@bureau.example"], at=now() - timedelta(seconds=1))
        env = worker_env(temp, tmp_path)
        once = run_worker_once(env)
        assert once.returncode == 0, once.stderr
        assert "worker: 1 pass(es): 2 sent, 0 to retry, 0 failed" in once.stdout
        maildir = tmp_path / "var" / "maildir" / "new"
        assert len(list(maildir.iterdir())) == 2
        assert once.stderr.count(": sent (attempt 1)") == 2

        running = start_worker(env, "--poll", "0.1")
        emit_committed(database, ["late@bureau.example"], at=now() - timedelta(seconds=1))
        wait_until(lambda: len(list(maildir.iterdir())) == 3)
        running.send_signal(signal.SIGTERM)
        stdout, stderr = running.communicate(timeout=15)
        assert running.returncode == 0, stderr
        assert "received SIGTERM" in stderr and "1 sent" in stdout
    finally:
        temp.drop()


def test_a_malformed_smtp_url_stops_the_worker_before_it_claims_anything(tmp_path: Path) -> None:
    temp = create_temp_database("sqlite", tmp_path)
    try:
        emit_committed(Database(temp.engine), at=now())
        env = worker_env(temp, tmp_path, "smtp:/mail.example")
        result = run_worker_once(env)
        assert result.returncode == 2
        assert "SANDBOX_SMTP_URL names no host" in result.stderr
        assert {d.state for d in delivery_rows(Database(temp.engine))} == {DeliveryState.pending}
    finally:
        temp.drop()


def test_the_in_process_worker_delivers_what_is_committed_and_stops_cleanly(
    committed: TempDatabase, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    database = Database(committed.engine)
    settings = committed_settings(tmp_path, smtp_url=smtp_server.url(), now=None)
    stop = start_in_process(database, settings, poll_seconds=0.05)
    try:
        emit_committed(database, ["sup@bureau.example"], at=now())
        wait_until(lambda: len(smtp_server.received) == 1, timeout=10)
    finally:
        stop()
    assert not any(t.name == "sandbox-worker" and t.is_alive() for t in threading.enumerate())
    assert {d.state for d in delivery_rows(database)} == {DeliveryState.sent}
