from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sandbox.rules.policy import PolicyDocument
from sandbox.rules.policy_file import PolicyFileError, PolicyProblem, parse_policies, parse_policy, parse_policy_dir
from tests.support import NOW, ROOT

POLICIES = ROOT / "policies"
SHIPPED = sorted(p.name for p in POLICIES.glob("*.yaml"))
DEMO_PROGRAMS = {"SH-TECH-MA", "SH-CARB-CEA", "SH-FTZ-NRSL", "SH-SHIP-GH", "SH-PEN-CPA", "SH-DIG-AICR"}
TECH_MA = (POLICIES / "SH-TECH-MA.yaml").read_text(encoding="utf-8")


def problems_of(text: str, source: str = "SH-TECH-MA.yaml") -> list[PolicyProblem]:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, source)
    assert caught.value.problems, "a refusal must say why"
    return caught.value.problems


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


def edit(old: str, new: str, text: str = TECH_MA) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# -- the shipped policies ------------------------------------------------------------------------


def test_the_demo_programs_are_shipped() -> None:
    assert {name.removesuffix(".yaml") for name in SHIPPED} >= DEMO_PROGRAMS


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_policy_parses_and_is_named_after_its_program(name: str) -> None:
    text = (POLICIES / name).read_text(encoding="utf-8")
    document = parse_policy(text, name)
    assert document.program.code == name.removesuffix(".yaml")
    assert document.program.version == "2025.1"
    assert document.program.effective_from <= NOW.date(), "in force when the tests' clock reads"
    assert text.startswith("#"), "each policy opens with a comment citing the rules its limits mirror"
    for quota in document.quotas.values():
        # Money as plain whole numbers (never 15e9 or a float), within the program's own cap.
        assert quota.per_pilot_cap == quota.per_pilot_cap.to_integral_value()
        assert quota.aggregate_cap is None or quota.per_pilot_cap <= quota.aggregate_cap
    assert all(m.min is not None for m in document.metrics.values()), "every metric has a lower bound"


def test_tech_ma_policy_carries_the_demo_limits() -> None:
    document = parse_policy(TECH_MA, "SH-TECH-MA.yaml")
    assert document.eligibility.min_capital_adequacy_ratio == Decimal("0.105")
    assert document.eligibility.no_major_penalty_years == 3
    assert document.quotas["exposure_limit"].per_pilot_cap == Decimal("15000000000")
    assert document.quotas["exposure_limit"].aggregate_cap == Decimal("50000000000")
    assert document.quotas["per_deal_limit"].per_pilot_cap == Decimal("2000000000")
    assert document.schedule.model_dump() | {} == {
        "frequency": "monthly",
        "due_business_days": 10,
        "calendar": "cn",
        "grace_days": 0,
        "max_duration_months": 24,
        "max_extensions": 1,
        "extension_months": 12,
    }
    assert {
        "ltv_max_new",
        "term_max_new_years",
        "npl_ratio",
        "overdue90_ratio",
        "top1_share",
        "exposure_outstanding",
    } <= set(document.metrics)


def test_parse_policy_dir_reads_every_policy_and_skips_calendars_and_other_files(tmp_path: Path) -> None:
    for name in ("SH-TECH-MA.yaml", "SH-PEN-CPA.yaml"):
        (tmp_path / name).write_bytes((POLICIES / name).read_bytes())
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "cn.yaml").write_text("not: [a, policy]\n")
    (tmp_path / "README.md").write_text("# notes\n")
    (tmp_path / "SH-TECH-MA.yaml.bak").write_text("junk: !!python/object:os.system\n")
    parsed = parse_policy_dir(tmp_path)
    assert [(name, doc.program.code) for name, doc in parsed] == [
        ("SH-PEN-CPA.yaml", "SH-PEN-CPA"),
        ("SH-TECH-MA.yaml", "SH-TECH-MA"),
    ]


# -- problems ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, location",
    [
        ('  version: "2025.1"\n', '  version: "2025.1"\n  efective_to: 2027-01-01\n', "program.efective_to"),
        ("  min_rating: 3\n", "  min_rating: 3\n  min_ratting: 2\n", "eligibility.min_ratting"),
        (
            "    aggregate_cap: 50000000000\n",
            "    aggregate_cap: 50000000000\n    per_pilot_capp: 1\n",
            "quotas.exposure_limit.per_pilot_capp",
        ),
        ("  due_business_days: 10\n", "  due_business_days: 10\n  due_days: 5\n", "schedule.due_days"),
        (
            "  npl_ratio:\n    unit: ratio\n",
            "  npl_ratio:\n    unit: ratio\n    warn_at: 0.02\n",
            "metrics.npl_ratio.warn_at",
        ),
        ("metrics:\n", "rulez: []\nmetrics:\n", "rulez"),
    ],
)
def test_unknown_key_anywhere_is_refused_with_file_location_and_line(old: str, new: str, location: str) -> None:
    text = edit(old, new)
    [problem] = problems_of(text)
    key = location.rsplit(".", 1)[-1]
    assert problem.location == location
    assert problem.line == line_of(text, f"{key}:")
    assert (
        str(problem)
        == f"SH-TECH-MA.yaml:{problem.line}: {location}: unknown key '{key}' (misspelt, or not allowed here)"
    )


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = edit("    aggregate_cap: 50000000000\n", "    aggregate_cap: 1000\n")
    text = edit("  currencies: [CNY]\n", "  currencies: [CNY, yuan]\n", text)
    text = edit("  frequency: monthly\n", "  frequency: weekly\n", text)
    text = edit("  min_capital_adequacy_ratio: 0.105\n", "  min_capital_adequacy_ratio: -0.105\n", text)
    text = edit(
        "    decimals: 4\n    min: 0\n    max: 1\n    description: Non-performing",
        "    decimals: 4\n    min: 1\n    max: 0\n    description: Non-performing",
        text,
    )
    problems = problems_of(text)
    found = {(p.location, p.line) for p in problems}
    assert found == {
        ("eligibility.min_capital_adequacy_ratio", line_of(text, "min_capital_adequacy_ratio")),
        ("scope.currencies", line_of(text, "currencies: [CNY, yuan]")),
        ("quotas.exposure_limit", line_of(text, "  exposure_limit:") + 1),
        ("schedule.frequency", line_of(text, "frequency: weekly")),
        ("metrics.npl_ratio", line_of(text, "  npl_ratio:") + 1),
    }
    messages = {p.location: p.message for p in problems}
    assert (
        messages["quotas.exposure_limit"]
        == "aggregate_cap is below per_pilot_cap: no pilot could ever be granted its cap"
    )
    assert "yuan" in messages["scope.currencies"]
    assert messages["metrics.npl_ratio"] == "min 1 is above max 0"
    assert all(p.source == "SH-TECH-MA.yaml" for p in problems)


def test_missing_effective_from_is_a_problem() -> None:
    text = "\n".join(line for line in TECH_MA.splitlines() if not line.startswith("  effective_from:"))
    [problem] = problems_of(text)
    assert (problem.location, problem.message) == ("program.effective_from", "required key is missing")


def test_unquoted_version_gets_a_hint_to_quote_it() -> None:
    [problem] = problems_of(edit('  version: "2025.1"\n', "  version: 2025.1\n"))
    assert problem.location == "program.version"
    assert 'write it in quotes, e.g. "2025.1"' in problem.message


def test_file_must_be_named_after_its_program() -> None:
    [problem] = problems_of(TECH_MA, "policies/SH-TECH-MB.yaml")
    assert problem.location == "program.code"
    assert problem.line == line_of(TECH_MA, "code: SH-TECH-MA")
    assert "name it SH-TECH-MA.yaml" in problem.message


def test_a_text_that_is_not_a_file_is_not_held_to_a_file_name() -> None:
    assert parse_policy(TECH_MA, "request body").program.code == "SH-TECH-MA"


def test_a_yaml_problem_is_one_problem_with_its_line() -> None:
    text = edit("  min_rating: 3\n", "  min_rating: 3\n  min_rating: 2\n")
    [problem] = problems_of(text)
    assert (problem.line, problem.location, problem.message) == (
        line_of(text, "min_rating: 2"),
        "",
        "duplicate key 'min_rating'",
    )
    assert str(problem) == f"SH-TECH-MA.yaml:{problem.line}: duplicate key 'min_rating'"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "the top level must be a mapping of sections"),
    ],
)
def test_empty_or_non_mapping_file_is_refused(text: str, message: str) -> None:
    [problem] = problems_of(text)
    assert problem.message == message


def test_a_folder_with_bad_files_lists_every_bad_file(tmp_path: Path) -> None:
    (tmp_path / "SH-TECH-MA.yaml").write_text(edit("  frequency: monthly\n", "  frequency: weekly\n"), encoding="utf-8")
    (tmp_path / "SH-PEN-CPA.yaml").write_bytes((POLICIES / "SH-PEN-CPA.yaml").read_bytes())
    (tmp_path / "SH-BAD-ONE.yaml").write_text("x: !!python/object/apply:os.system ['id']\n", encoding="utf-8")
    with pytest.raises(PolicyFileError) as caught:
        parse_policy_dir(tmp_path)
    assert sorted((p.source, p.location) for p in caught.value.problems) == [
        ("SH-BAD-ONE.yaml", ""),
        ("SH-TECH-MA.yaml", "schedule.frequency"),
    ]


def test_two_files_with_the_same_program_version_are_refused() -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policies([("a", TECH_MA), ("b", TECH_MA.replace("Technology-enterprise", "Tech"))])
    [problem] = caught.value.problems
    assert (problem.source, problem.location) == ("b", "program.version")
    assert problem.message == "version 2025.1 of SH-TECH-MA is also declared in a"


def test_two_versions_taking_effect_the_same_day_are_refused() -> None:
    later = edit('  version: "2025.1"\n', '  version: "2025.2"\n')
    with pytest.raises(PolicyFileError) as caught:
        parse_policies([("a", TECH_MA), ("b", later)])
    assert [p.location for p in caught.value.problems] == ["program.effective_from"]


# -- content hash --------------------------------------------------------------------------------


def hash_of(text: str) -> str:
    return parse_policy(text, "SH-TECH-MA.yaml").content_hash()


def test_content_hash_ignores_comments_layout_and_number_spelling() -> None:
    original = hash_of(TECH_MA)
    no_comments = "\n".join(line for line in TECH_MA.splitlines() if not line.lstrip().startswith("#"))
    flow_style = edit(
        "schedule:\n  frequency: monthly\n  due_business_days: 10\n  calendar: cn\n  grace_days: 0\n",
        "schedule: {due_business_days: 10, frequency: 'monthly',\n           calendar: cn,\n",
    )
    flow_style = edit(
        "  max_duration_months: 24\n  max_extensions: 1\n  extension_months: 12\n",
        "           max_duration_months: 24, max_extensions: 1, extension_months: 12}\n",
        flow_style,
    )
    respelt = edit("  min_capital_adequacy_ratio: 0.105\n", "  min_capital_adequacy_ratio: 0.1050\n")
    respelt = edit("    per_pilot_cap: 15000000000\n", "    per_pilot_cap: 15.0e9\n", respelt)
    assert hash_of(no_comments) == hash_of(flow_style) == hash_of(respelt) == original


def test_content_hash_changes_with_any_value() -> None:
    original = hash_of(TECH_MA)
    assert hash_of(edit("    per_pilot_cap: 15000000000\n", "    per_pilot_cap: 15000000001\n")) != original
    assert hash_of(edit("  grace_days: 0\n", "  grace_days: 1\n")) != original
    assert (
        hash_of(edit("  title: Technology-enterprise M&A loans\n", "  title: Technology-enterprise M&A loans.\n"))
        != original
    )


def test_content_hash_survives_the_stored_json_round_trip() -> None:
    document = parse_policy(TECH_MA, "SH-TECH-MA.yaml")
    again = PolicyDocument.model_validate(document.model_dump(mode="json"))
    assert again == document and again.content_hash() == document.content_hash()
