"""The schema is built only by migrations: head matches the models exactly, the chain goes down
and up again, and `sandbox db upgrade` brings a fresh file to head and is idempotent."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect, select, text
from typer.testing import CliRunner

from sandbox import migrate
from sandbox.cli import app as cli
from sandbox.models import GENESIS_HASH, AuditHead, Base
from tests.conftest import create_temp_database

HEAD = migrate.head_revision()


def schema_differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def test_migrated_schema_matches_the_models(connection: Connection) -> None:
    assert MigrationContext.configure(connection).get_current_revision() == HEAD
    assert schema_differences(connection) == []


def test_downgrade_to_base_then_upgrade_to_head(backend: str, tmp_path: Path) -> None:
    temp = create_temp_database(backend, tmp_path)
    try:
        config = migrate.alembic_config()
        with temp.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(temp.engine).get_table_names()) <= {"alembic_version"}
        assert migrate.current_revision(temp.engine) is None

        migrate.upgrade(temp.engine)
        assert migrate.current_revision(temp.engine) == HEAD
        with temp.engine.connect() as connection:
            assert schema_differences(connection) == []
            # The chain's head row is seeded by the migration, so the first entry can lock it.
            head = connection.execute(select(AuditHead.__table__)).one()
            assert (head.id, head.last_seq, head.last_hash) == (1, 0, GENESIS_HASH)
    finally:
        temp.drop()


def test_cli_db_upgrade_brings_a_fresh_sqlite_file_to_head_idempotently(tmp_path: Path) -> None:
    path = tmp_path / "data" / "fresh.db"
    env = {"SANDBOX_DATABASE_URL": f"sqlite:///{path}"}
    runner = CliRunner()

    first = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert first.exit_code == 0, first.output
    assert f"database at revision {HEAD} (was empty)" in first.stdout

    second = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert second.exit_code == 0, second.output
    assert f"database at revision {HEAD} (was {HEAD})" in second.stdout

    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
            assert connection.execute(text("SELECT count(*) FROM audit_head")).scalar() == 1
            assert schema_differences(connection) == []
    finally:
        engine.dispose()
