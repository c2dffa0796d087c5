"""Alembic environment. The URL comes from Settings unless the caller hands over a connection
(``config.attributes["connection"]``), which is how the CLI and the tests run migrations."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from sandbox.config import Settings
from sandbox.db import make_engine
from sandbox.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(Settings().effective_database_url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `sandbox db upgrade`")
run_migrations_online()
