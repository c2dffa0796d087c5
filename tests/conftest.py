"""Fixtures: every database test runs on SQLite and on PostgreSQL.

The schema is built by running the Alembic migrations once per backend per session; each test
then runs inside a transaction that is rolled back (SQLAlchemy's "join an external transaction"
recipe), so tests never see each other's rows. PostgreSQL tests are required when CI=true and
skip with a clear message otherwise if no server is reachable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from sandbox import migrate
from sandbox.actor import SYSTEM
from sandbox.clock import FixedClock
from sandbox.config import Environment, Settings
from sandbox.db import Database, SandboxSession, make_engine, session_factory
from sandbox.main import create_app
from sandbox.models import Role
from sandbox.user.service import actor_for, create_user, issue_token
from tests.support import NOW, ROOT, Login
from tests.world import build_world

PG_ADMIN_URL = os.environ.get("SANDBOX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgresql"]


def _pg_admin_engine() -> Engine:
    return make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=False)


def _require_postgres() -> None:
    try:
        engine = _pg_admin_engine()
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        message = f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {exc.__class__.__name__}"
        if IN_CI:
            pytest.fail(f"{message}; PostgreSQL tests are required when CI=true", pytrace=False)
        pytest.skip(f"{message}; PostgreSQL tests skipped (set SANDBOX_TEST_POSTGRES_URL)")


@dataclass
class TempDatabase:
    url: str
    engine: Engine
    drop: Callable[[], None]


def create_temp_database(backend: str, tmp_dir: Path) -> TempDatabase:
    """A new, empty database migrated to head."""
    if backend == "sqlite":
        path = tmp_dir / f"sandbox-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        return TempDatabase(url, engine, engine.dispose)
    _require_postgres()
    name = f"sandbox_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)

    def drop() -> None:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return TempDatabase(url, engine, drop)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TempDatabase]:
    temp = create_temp_database(backend, tmp_path_factory.mktemp(backend))
    yield temp
    temp.drop()


@pytest.fixture
def connection(migrated: TempDatabase) -> Iterator[Connection]:
    with migrated.engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def database(migrated: TempDatabase, connection: Connection) -> Database:
    """A Database whose sessions all join the test's outer transaction (commits become savepoints)."""
    return Database(migrated.engine, session_factory(connection, join_transaction_mode="create_savepoint"))


@pytest.fixture
def session(database: Database) -> Iterator[SandboxSession]:
    with database.sessions() as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment=Environment.test,
        var_dir=tmp_path / "var",
        policies_dir=ROOT / "policies",
        secret_key="test-secret-key-that-is-long-enough-0123",
        now=NOW,
        log_requests=False,
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def app(settings: Settings, database: Database, clock: FixedClock) -> Any:
    return create_app(settings, database=database, clock=clock)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def login(database: Database) -> Callable[..., Login]:
    """Create a user with a role (and institution code for institution roles) and a token."""
    counter = iter(range(1_000_000))

    def make(role: Role | str, institution: str | None = None, email: str | None = None) -> Login:
        role = Role(role)
        address = email or f"{role.value}{next(counter)}@{(institution or 'bureau').lower()}.example"
        with database.unit_of_work() as session:
            user = create_user(session, email=address, role=role, institution_code=institution, actor=SYSTEM, at=NOW)
            issued = issue_token(session, user, label="test", actor=SYSTEM, at=NOW)
        return Login(user, issued.token, actor_for(user))

    return make


@pytest.fixture
def world(client: TestClient, database: Database, login: Callable[..., Login]) -> Any:
    """Programs loaded, four banks, and a user of every role (see tests/world.py)."""
    return build_world(client, database, login)
