"""The CLI over a real, committed database: `users create` prints a working token, refuses an
institution role without an institution, and `audit verify` exits 0 on an intact chain, 1 on a
broken one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from typer.testing import CliRunner, Result

from sandbox.actor import SYSTEM
from sandbox.audit.log import record
from sandbox.cli import app as cli
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.main import create_app
from sandbox.models import Institution, User
from tests.conftest import TempDatabase, create_temp_database
from tests.support import NOW


@pytest.fixture
def committed(backend: str, tmp_path: Path) -> Iterator[TempDatabase]:
    """A database of its own: the CLI opens its own connections and commits."""
    temp = create_temp_database(backend, tmp_path)
    yield temp
    temp.drop()


def sandbox(temp: TempDatabase, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"SANDBOX_DATABASE_URL": temp.url})


def count_users(temp: TempDatabase) -> int:
    with temp.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(User)).scalar_one()


def test_users_create_prints_a_token_that_authenticates(committed: TempDatabase, settings: Settings) -> None:
    result = sandbox(committed, "users", "create", "--email", "Reviewer@Bureau.example", "--role", "reviewer")
    assert result.exit_code == 0, result.output
    assert "created reviewer@bureau.example (reviewer)" in result.stdout
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("sbx_") and len(token) > 40

    with TestClient(create_app(settings, database=Database(committed.engine))) as client:
        response = client.get(
            "/api/v1/audit", params={"object_type": "user"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        assert [e["action"] for e in response.json()["items"]] == ["user.create"]
        assert client.get("/api/v1/audit", headers={"Authorization": "Bearer sbx_wrong"}).status_code == 401


def test_users_create_refuses_an_institution_role_without_a_known_institution(committed: TempDatabase) -> None:
    missing = sandbox(committed, "users", "create", "--email", "filer@bank-a.example", "--role", "filer")
    assert missing.exit_code == 2
    assert "role filer needs an institution" in missing.stderr
    assert "sbx_" not in missing.output

    unknown = sandbox(
        committed, "users", "create", "--email", "filer@bank-a.example", "--role", "filer", "--institution", "BANK-A"
    )
    assert unknown.exit_code == 4
    assert "no institution with code 'BANK-A'" in unknown.stderr
    assert count_users(committed) == 0

    with Database(committed.engine).unit_of_work() as session:
        session.add(
            Institution(
                code="BANK-A",
                name="Bank A",
                type="domestic_bank",
                uscc="91310000MA1FL00001",
                region="Shanghai",
                rating=2,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    created = sandbox(
        committed, "users", "create", "--email", "filer@bank-a.example", "--role", "filer", "--institution", "BANK-A"
    )
    assert created.exit_code == 0, created.output
    assert created.stdout.strip().splitlines()[-1].startswith("sbx_")
    assert count_users(committed) == 1


def test_users_create_refuses_an_unknown_role(committed: TempDatabase) -> None:
    result = sandbox(committed, "users", "create", "--email", "x@bureau.example", "--role", "superuser")
    assert result.exit_code == 2
    assert "superuser" in result.output
    assert count_users(committed) == 0


def test_audit_verify_exits_0_on_an_intact_chain_and_1_on_a_broken_one(committed: TempDatabase) -> None:
    database = Database(committed.engine)
    for number in range(3):
        with database.unit_of_work() as session:
            record(session, at=NOW, actor=SYSTEM, action="widget.touch", object_type="widget", object_id=f"w-{number}")

    intact = sandbox(committed, "audit", "verify")
    assert intact.exit_code == 0, intact.output
    assert "audit chain intact: 3 entries verified" in intact.stdout

    with committed.engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET object_id = 'w-forged' WHERE seq = 2"))
    broken = sandbox(committed, "audit", "verify")
    assert broken.exit_code == 1
    assert "audit chain broken" in broken.stderr and "entry 2" in broken.stderr


def test_cli_issues_revokes_tokens_and_deactivates_users(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    created = runner.invoke(cli, ["users", "create", "--email", "sup@bureau.example", "--role", "supervisor"], env=env)
    first = created.output.strip().splitlines()[-1]
    second = (
        runner.invoke(cli, ["users", "token", "--email", "sup@bureau.example", "--label", "script"], env=env)
        .output.strip()
        .splitlines()[-1]
    )
    assert first.startswith("sbx_") and second.startswith("sbx_") and first != second

    def works(token: str) -> bool:
        app = create_app(Settings(database_url=env["SANDBOX_DATABASE_URL"], log_requests=False))
        with TestClient(app) as client:
            status = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"}).status_code
        app.state.database.dispose()
        return status == 200

    revoked = runner.invoke(cli, ["users", "revoke", "--email", "sup@bureau.example", "--prefix", first[:14]], env=env)
    assert revoked.exit_code == 0 and "revoked 1 token" in revoked.output
    assert not works(first) and works(second)
    assert runner.invoke(cli, ["users", "deactivate", "--email", "sup@bureau.example"], env=env).exit_code == 0
    assert not works(second)
    missing = runner.invoke(cli, ["users", "revoke", "--email", "nobody@bureau.example"], env=env)
    assert missing.exit_code == 4 and "no user" in missing.output
