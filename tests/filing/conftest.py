"""Helpers for the filing-path tests: row counts for "nothing written", raw bodies, and the
`live` world of tests/evaluation built on any database (a committed one for the CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from sandbox.actor import SYSTEM
from sandbox.cli import app as cli
from sandbox.clock import FixedClock
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.main import create_app
from sandbox.models import Evaluation, Filing, FilingVersion, IdempotencyKey, Role
from sandbox.program.calendars import load_calendars
from sandbox.program.service import load_policies
from sandbox.rules.policy_file import parse_policy
from sandbox.scan import run_scan
from sandbox.user.service import actor_for, create_user, issue_token
from tests.conftest import TempDatabase, create_temp_database
from tests.evaluation.conftest import Live, at, live, rules_version  # noqa: F401 (the fixture)
from tests.support import NOW, ROOT, Login
from tests.world import World, build_world

# A rule that watches for unfiled periods, as the shipped policies have (filing-missing).
FILING_MISSING = """  - id: filing-missing
    when: not filing.filed
    action: trip
    severity: high
    on_missing: breach
    message: No filing received for {period} by its due date
"""


@dataclass(frozen=True)
class Rows:
    filings: int
    versions: int
    evaluations: int
    keys: int


def rows(database: Database) -> Rows:
    with database.sessions() as session:
        return Rows(
            *(
                session.scalar(select(func.count()).select_from(t)) or 0
                for t in (Filing, FilingVersion, Evaluation, IdempotencyKey)
            )
        )


def post_raw(target: Live, text: str, login: Login | None = None) -> Any:
    """A body sent as written: NaN, Infinity and repeated keys never survive json.dumps."""
    return target.world.client.post(
        f"/api/v1/pilots/{target.pilot['id']}/filings",
        content=text.encode(),
        headers={**(login or target.world.filer_a).headers, "Content-Type": "application/json"},
    )


def raw_body(target: Live, period: str, npl_ratio_token: str) -> str:
    """A full body whose npl_ratio is the given JSON token, verbatim."""
    body = target.body(period)
    body["metrics"]["npl_ratio"] = "@@"
    return json.dumps(body).replace('"@@"', npl_ratio_token)


def start_live(world: World, clock: FixedClock, database: Database, *, extra_rules: str = "") -> Live:
    """The `live` fixture's world (tests/evaluation/conftest.py), optionally with more rules."""
    text = rules_version((ROOT / "policies" / "SH-TECH-MA.yaml").read_text())
    if extra_rules:
        text = text.replace("\nprobation:", "\n" + extra_rules.rstrip("\n") + "\nprobation:")
    with database.unit_of_work() as session:
        load_policies(session, [("SH-TECH-MA.yaml", text)], actor=SYSTEM, at=at("2025-09-15"))
    catalogue = dict(parse_policy(text, "SH-TECH-MA.yaml").metrics)
    clock.at = at("2026-01-05")
    pilot = world.to_pilot(
        start_on="2026-02-01", end_on="2027-12-31", requested_quotas={"exposure_limit": "5000000000"}
    )
    with database.unit_of_work() as session:
        run_scan(session, as_of=date(2026, 2, 1), at=at("2026-02-01"), calendars=load_calendars(ROOT / "policies"))
    clock.at = at("2026-11-20")
    return Live(world, pilot, clock, database, catalogue)


@pytest.fixture
def watched(world: World, clock: FixedClock, database: Database) -> Live:
    """`live` plus a filing-missing rule, for the overdue scan."""
    return start_live(world, clock, database, extra_rules=FILING_MISSING)


@dataclass
class Committed:
    """A live pilot in a database of its own, committed, for the CLI (which opens its own
    connections): SQLite only, the PostgreSQL side is proven through the API."""

    temp: TempDatabase
    live: Live

    def sandbox(self, *args: str, now: str = "2026-11-20T02:00:00Z") -> Result:
        env = {
            "SANDBOX_DATABASE_URL": self.temp.url,
            "SANDBOX_NOW": now,
            "SANDBOX_POLICIES_DIR": str(ROOT / "policies"),
        }
        return CliRunner().invoke(cli, list(args), env=env)

    def rows(self) -> Rows:
        return rows(self.live.database)


def _committed_login(database: Database) -> Callable[..., Login]:
    counter = iter(range(1_000_000))

    def make(role: Role | str, institution: str | None = None) -> Login:
        role = Role(role)
        address = f"{role.value}{next(counter)}@{(institution or 'bureau').lower()}.example"
        with database.unit_of_work() as session:
            user = create_user(session, email=address, role=role, institution_code=institution, actor=SYSTEM, at=NOW)
            issued = issue_token(session, user, label="test", actor=SYSTEM, at=NOW)
        return Login(user, issued.token, actor_for(user))

    return make


@pytest.fixture
def committed(settings: Settings, tmp_path: Path) -> Iterator[Committed]:
    temp = create_temp_database("sqlite", tmp_path)
    database = Database(temp.engine)
    clock = FixedClock(NOW)
    with TestClient(create_app(settings, database=database, clock=clock), raise_server_exceptions=False) as client:
        world = build_world(client, database, _committed_login(database))
        yield Committed(temp, start_live(world, clock, database))
    temp.drop()
