from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from sandbox import migrate
from sandbox.actor import SYSTEM
from sandbox.cli.policies import app as policies_cli
from sandbox.db import Database, make_engine
from sandbox.errors import Conflict, InvalidInput
from sandbox.models import AuditEntry, PolicyVersion, Program
from sandbox.program.service import (
    LoadStatus,
    NoPolicyInForce,
    get_program,
    load_policies,
    load_policy_dir,
    policy_document,
    policy_in_force,
    validate_policy_text,
)
from sandbox.rules.policy_file import parse_policy
from tests.support import NOW, ROOT

POLICIES = ROOT / "policies"
TECH_MA = (POLICIES / "SH-TECH-MA.yaml").read_text(encoding="utf-8")
PEN_CPA = (POLICIES / "SH-PEN-CPA.yaml").read_text(encoding="utf-8")
FIRST_DAY = parse_policy(TECH_MA, "SH-TECH-MA.yaml").program.effective_from
LATER = NOW + timedelta(days=1)


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def new_version(label: str, effective_from: date, text: str = TECH_MA, **replace: str) -> str:
    text = text.replace('version: "2025.1"', f'version: "{label}"')
    text = "\n".join(
        f"  effective_from: {effective_from.isoformat()}" if line.startswith("  effective_from:") else line
        for line in text.splitlines()
    )
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


def load(session: Session, *files: tuple[str, str], at: Any = NOW) -> Any:
    return load_policies(session, list(files), actor=SYSTEM, at=at)


def test_loading_the_policy_folder_creates_programs_and_immutable_versions(session: Session) -> None:
    report = load_policy_dir(session, POLICIES, actor=SYSTEM, at=NOW)
    shipped = sorted(p.name for p in POLICIES.glob("*.yaml"))
    assert [item.source for item in report.files] == shipped
    assert {item.status for item in report.files} == {LoadStatus.new}
    program = get_program(session, "SH-TECH-MA")
    assert (program.title, program.area) == ("Technology-enterprise M&A loans", "technology_finance")
    version = policy_in_force(session, program, NOW.date())
    assert (version.version, version.source_name, version.source_text) == ("2025.1", "SH-TECH-MA.yaml", TECH_MA)
    assert version.content_hash == parse_policy(TECH_MA, "SH-TECH-MA.yaml").content_hash()
    assert version.loaded_by == "system"
    assert report.summary() == f"{len(shipped)} file(s): {len(shipped)} new version(s), 0 unchanged"


def test_reloading_the_same_files_is_a_no_op(database: Database) -> None:
    with database.unit_of_work() as session:
        load_policy_dir(session, POLICIES, actor=SYSTEM, at=NOW)
    with database.sessions() as session:
        before = (count(session, Program), count(session, PolicyVersion), count(session, AuditEntry))
    with database.unit_of_work() as session:
        report = load_policy_dir(session, POLICIES, actor=SYSTEM, at=LATER)
    assert {item.status for item in report.files} == {LoadStatus.unchanged}
    with database.sessions() as session:
        assert (count(session, Program), count(session, PolicyVersion), count(session, AuditEntry)) == before


def test_loading_is_audited(database: Database) -> None:
    with database.unit_of_work() as session:
        load(session, ("SH-TECH-MA.yaml", TECH_MA))
    with database.sessions() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [(e.action, e.actor) for e in entries[-2:]] == [("program.create", "system"), ("policy.load", "system")]
    assert entries[-1].after is not None and entries[-1].after["program"] == "SH-TECH-MA"
    assert entries[-1].after["version"] == "2025.1"


def test_one_bad_file_among_good_ones_loads_nothing(session: Session) -> None:
    bad = TECH_MA.replace("  min_rating: 3\n", "  min_rating: 3\n  min_ratting: 2\n").replace(
        "frequency: monthly", "frequency: weekly"
    )
    with pytest.raises(InvalidInput) as caught:
        load(session, ("SH-PEN-CPA.yaml", PEN_CPA), ("SH-TECH-MA.yaml", bad))
    errors = caught.value.extra["errors"]
    assert [(e["loc"], e["type"]) for e in errors] == [
        (["SH-TECH-MA.yaml", "eligibility.min_ratting"], "policy"),
        (["SH-TECH-MA.yaml", "schedule.frequency"], "policy"),
    ]
    assert all(isinstance(e["line"], int) for e in errors)
    assert caught.value.status == 422
    assert (count(session, Program), count(session, PolicyVersion)) == (0, 0)


def test_a_bad_file_leaves_the_versions_in_force_untouched(session: Session) -> None:
    load(session, ("SH-TECH-MA.yaml", TECH_MA), ("SH-PEN-CPA.yaml", PEN_CPA))
    newer = new_version("2026.2", date(2027, 1, 1))
    bad_pension = PEN_CPA.replace(
        "    per_pilot_cap: 200000\n    aggregate_cap: 600000\n", "    per_pilot_cap: 200000\n    aggregate_cap: 1\n"
    )
    with pytest.raises(InvalidInput):
        load(session, ("SH-TECH-MA.yaml", newer), ("SH-PEN-CPA.yaml", bad_pension), at=LATER)
    program = get_program(session, "SH-TECH-MA")
    assert policy_in_force(session, program, date(2027, 6, 1)).version == "2025.1"
    assert count(session, PolicyVersion) == 2


def test_same_version_label_with_other_content_is_refused_and_nothing_is_written(session: Session) -> None:
    load(session, ("SH-TECH-MA.yaml", TECH_MA))
    changed = TECH_MA.replace("    per_pilot_cap: 15000000000\n", "    per_pilot_cap: 12000000000\n")
    with pytest.raises(Conflict) as caught:
        load(session, ("SH-PEN-CPA.yaml", PEN_CPA), ("SH-TECH-MA.yaml", changed), at=LATER)
    assert caught.value.status == 409
    assert (
        caught.value.detail
        == "version 2025.1 of SH-TECH-MA is already loaded with different content; bump program.version"
    )
    assert caught.value.extra["conflicts"] == [{"source": "SH-TECH-MA.yaml", "message": caught.value.detail}]
    assert (count(session, Program), count(session, PolicyVersion)) == (1, 1)


def test_two_files_with_the_same_program_version_are_refused(session: Session) -> None:
    with pytest.raises(InvalidInput) as caught:
        load(session, ("a.txt", TECH_MA), ("b.txt", TECH_MA.replace("Technology-enterprise", "Tech")))
    assert [e["loc"] for e in caught.value.extra["errors"]] == [["b.txt", "program.version"]]
    assert count(session, PolicyVersion) == 0


def test_a_newer_version_is_in_force_only_from_its_effective_date(database: Database) -> None:
    with database.unit_of_work() as session:
        load(session, ("SH-TECH-MA.yaml", TECH_MA))
    newer = new_version(
        "2026.2",
        date(2027, 1, 1),
        **{
            "title: Technology-enterprise M&A loans": "title: Technology-enterprise M&A and buy-out loans",
            "    per_pilot_cap: 15000000000\n": "    per_pilot_cap: 18000000000\n",
        },
    )
    with database.unit_of_work() as session:
        report = load(session, ("SH-TECH-MA.yaml", newer), at=LATER)
    assert [(f.version, f.status) for f in report.files] == [("2026.2", LoadStatus.new)]
    with database.sessions() as session:
        program = get_program(session, "SH-TECH-MA")
        assert program.title == "Technology-enterprise M&A and buy-out loans"
        assert policy_in_force(session, program, date(2026, 12, 31)).version == "2025.1"
        assert policy_in_force(session, program, date(2027, 1, 1)).version == "2026.2"
        in_force = policy_in_force(session, program, date(2027, 1, 1))
        assert policy_document(in_force).quotas["exposure_limit"].per_pilot_cap == 18000000000
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "program.update")).all()
    assert [(a.before, a.after) for a in audit] == [
        (
            {"title": "Technology-enterprise M&A loans", "area": "technology_finance"},
            {"title": "Technology-enterprise M&A and buy-out loans", "area": "technology_finance", "version": "2026.2"},
        )
    ]


def test_a_new_version_cannot_take_effect_before_the_latest_one(session: Session) -> None:
    load(session, ("SH-TECH-MA.yaml", TECH_MA), ("SH-TECH-MA 2026.2", new_version("2026.2", date(2027, 1, 1))))
    with pytest.raises(Conflict) as caught:
        load(session, ("SH-TECH-MA 2026.3", new_version("2026.3", date(2026, 12, 1))), at=LATER)
    assert "cannot take effect before the latest one" in caught.value.detail
    assert count(session, PolicyVersion) == 2


def test_versions_taking_effect_the_same_day_resolve_to_the_one_loaded_last(session: Session) -> None:
    day = date(2027, 1, 1)
    load(session, ("SH-TECH-MA.yaml", TECH_MA), ("SH-TECH-MA 2026.2", new_version("2026.2", day)))
    load(session, ("SH-TECH-MA 2026.3", new_version("2026.3", day, **{"grace_days: 0": "grace_days: 2"})), at=LATER)
    program = get_program(session, "SH-TECH-MA")
    assert policy_in_force(session, program, day).version == "2026.3"


def test_no_policy_in_force_before_the_first_version(session: Session) -> None:
    load(session, ("SH-TECH-MA.yaml", TECH_MA))
    program = get_program(session, "SH-TECH-MA")
    with pytest.raises(NoPolicyInForce) as caught:
        policy_in_force(session, program, FIRST_DAY - timedelta(days=1))
    assert caught.value.status == 409
    assert f"its first version takes effect on {FIRST_DAY.isoformat()}" in caught.value.detail
    assert policy_in_force(session, program, FIRST_DAY).version == "2025.1"


def test_policy_document_round_trips_the_stored_json_and_is_cached(session: Session) -> None:
    load(session, ("SH-TECH-MA.yaml", TECH_MA))
    version = policy_in_force(session, get_program(session, "SH-TECH-MA"), NOW.date())
    document = policy_document(version)
    assert document == parse_policy(TECH_MA, "SH-TECH-MA.yaml")
    assert policy_document(version) is document


def test_validate_policy_text_reports_without_writing(session: Session) -> None:
    good = validate_policy_text(TECH_MA, "SH-TECH-MA.yaml")
    assert (good.ok, good.program, good.version, good.problems) == (True, "SH-TECH-MA", "2025.1", [])
    assert good.content_hash == parse_policy(TECH_MA, "x").content_hash()
    bad = validate_policy_text(TECH_MA, "SH-OTHER.yaml")
    assert (bad.ok, [p.location for p in bad.problems], bad.content_hash) == (False, ["program.code"], None)
    assert count(session, PolicyVersion) == 0


# -- the CLI -------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_validate_exits_0_for_the_shipped_policies() -> None:
    result = runner.invoke(policies_cli, ["validate", str(POLICIES)])
    assert result.exit_code == 0, result.output
    assert "SH-TECH-MA.yaml: ok" in result.stdout


def test_cli_validate_exits_2_and_prints_every_problem(tmp_path: Path) -> None:
    (tmp_path / "SH-TECH-MA.yaml").write_text(
        TECH_MA.replace("frequency: monthly", "frequency: weekly"), encoding="utf-8"
    )
    (tmp_path / "SH-PEN-CPA.yaml").write_text("a: &x 1\n", encoding="utf-8")
    result = runner.invoke(policies_cli, ["validate", str(tmp_path)])
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(TECH_MA.splitlines(), 1) if "frequency:" in text)
    assert f"SH-TECH-MA.yaml:{line}: schedule.frequency: Input should be 'monthly' or 'quarterly'" in result.stderr
    assert "SH-PEN-CPA.yaml:1: anchors (&name) are not allowed in policy files" in result.stderr
    assert "2 problem(s) in 2 file(s)" in result.stderr


def test_cli_validate_checks_a_single_file(tmp_path: Path) -> None:
    path = tmp_path / "SH-WRONG-NAME.yaml"
    path.write_text(TECH_MA, encoding="utf-8")
    assert runner.invoke(policies_cli, ["validate", str(path)]).exit_code == 2
    assert runner.invoke(policies_cli, ["validate", str(POLICIES / "SH-TECH-MA.yaml")]).exit_code == 0


def test_cli_load_is_all_or_nothing_then_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    env = {"SANDBOX_DATABASE_URL": url, "SANDBOX_NOW": NOW.isoformat()}
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "SH-TECH-MA.yaml").write_text(TECH_MA, encoding="utf-8")
    (folder / "SH-PEN-CPA.yaml").write_text(
        PEN_CPA.replace("frequency: monthly", "frequency: weekly"), encoding="utf-8"
    )

    refused = runner.invoke(policies_cli, ["load", str(folder)], env=env)
    assert refused.exit_code == 2
    assert "SH-PEN-CPA.yaml:" in refused.stderr and "schedule.frequency" in refused.stderr
    with Database(engine).sessions() as session:
        assert count(session, PolicyVersion) == 0

    (folder / "SH-PEN-CPA.yaml").write_text(PEN_CPA, encoding="utf-8")
    first = runner.invoke(policies_cli, ["load", str(folder)], env=env)
    assert first.exit_code == 0, first.output
    assert [line.split()[:3] for line in first.stdout.splitlines()[:2]] == [
        ["new", "SH-PEN-CPA", "2025.1"],
        ["new", "SH-TECH-MA", "2025.1"],
    ]
    again = runner.invoke(policies_cli, ["load", str(folder)], env=env)
    assert again.exit_code == 0
    assert [line.split()[0] for line in again.stdout.splitlines()[:2]] == ["unchanged", "unchanged"]
    assert parse_policy(TECH_MA, "x").content_hash()[:12] in again.stdout
    engine.dispose()
