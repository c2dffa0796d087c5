from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from sandbox.audit.verify import verify_chain
from sandbox.cli import app as cli
from sandbox.db import Database
from sandbox.demo.scenario import build
from sandbox.evaluation.replay import replay
from sandbox.models import Application, Breaker, Evaluation, Exemption, FilingVersion, Pilot, Role, User
from tests.conftest import TempDatabase, create_temp_database
from tests.support import ROOT


@pytest.fixture
def empty(backend: str, tmp_path: Path) -> Iterator[TempDatabase]:
    temp = create_temp_database(backend, tmp_path)
    yield temp
    temp.drop()


def test_demo_builds_a_spread_of_states_through_the_services(empty: TempDatabase) -> None:
    db = Database(empty.engine)
    result = build(db, ROOT / "policies", date(2026, 11, 28))
    with db.unit_of_work() as session:
        pilots = Counter(session.scalars(select(Pilot.state)).all())
        applications = Counter(session.scalars(select(Application.state)).all())
        roles = set(session.scalars(select(User.role)).all())
        assert verify_chain(session).ok
        breakers = {(b.rule_id, b.state, b.trips) for b in session.scalars(select(Breaker).where(Breaker.trips > 0))}
        exemptions = Counter((e.trigger, e.state) for e in session.scalars(select(Exemption)))
        evaluations = Counter(session.scalars(select(Evaluation.trigger)).all())
        late = session.scalar(select(func.count()).select_from(FilingVersion).where(FilingVersion.days_late > 0))
        assert replay(session).differences == []
    # NPL breaker in probation after a reset; concentration breaker back to armed; a missing filing tripped.
    assert breakers == {("npl-trip", "probation", 1), ("country-trip", "armed", 1), ("filing-missing", "tripped", 1)}
    assert exemptions == {("risk_event", "granted"): 1, ("rule", "granted"): 1, ("rule", "assessed"): 1}
    assert evaluations["missing"] == 1 and evaluations["filing"] > 50
    assert late == 2
    assert pilots == {"active": 4, "suspended": 2, "approved": 1}
    assert applications == {
        "approved": 7,
        "draft": 1,
        "submitted": 1,
        "recommended": 1,
        "info_requested": 1,
        "rejected": 1,
        "withdrawn": 1,
    }
    assert roles == {r.value for r in Role}
    assert any("BANK-C" in note and "not eligible" in note for note in result.notes)
    assert len(result.tokens) == len(roles and result.tokens)  # every user got a token
    db.dispose()


def test_demo_command_refuses_to_load_twice_and_resets(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"SANDBOX_VAR_DIR": str(tmp_path), "SANDBOX_POLICIES_DIR": str(ROOT / "policies"), "SANDBOX_DATABASE_URL": ""}
    first = runner.invoke(cli, ["demo", "--as-of", "2026-11-28"], env=env)
    assert first.exit_code == 0, first.output
    assert "admin@bureau.example" in first.output and "sbx_" in first.output
    tokens = (tmp_path / "demo-tokens.txt").read_text().splitlines()
    assert len(tokens) == 20
    again = runner.invoke(cli, ["demo"], env=env)
    assert again.exit_code == 5 and "--reset" in again.output
    reset = runner.invoke(cli, ["demo", "--reset", "--as-of", "2026-11-28"], env=env)
    assert reset.exit_code == 0, reset.output
    assert (tmp_path / "demo-tokens.txt").read_text().splitlines() != tokens
