"""A bad rule is refused when the policy is parsed (so at validate and load time), naming the
file, the rule id, the line and the fault; a policy file can never run code."""

from __future__ import annotations

import time

import pytest

from sandbox.rules.policy_file import PolicyFileError, parse_policy
from tests.support import ROOT

BASE = (ROOT / "policies" / "SH-TECH-MA.yaml").read_text().partition("\nrules:")[0].rstrip()


def policy_with(when: str) -> str:
    return BASE + f"\nrules:\n  - id: bad-rule\n    when: '{when}'\n    action: trip\n    message: m\n"


@pytest.mark.parametrize(
    ("when", "fault"),
    [
        ("npl_ratio.__class__ > 0", "npl_ratio.__class__"),
        ("quota.exposure_limit.real > 0", "quota.exposure_limit.real"),
        ("__import__(npl_ratio) > 0", "__import__"),
        ("open(npl_ratio) > 0", "open"),
        ("npl_ratio ** 2 > 0", "**"),
        ("10 ** 10 ** 10 > npl_ratio", "**"),
        ("import os", "import"),
        ("npl_ratio > 0.03 and", "end"),
        ("npl_rate > 0.03", "npl_rate"),
        ("quota.free_money > 1", "free_money"),
        ("npl_ratio + 1", "true or false"),
    ],
)
def test_bad_expressions_are_refused_with_file_rule_and_line(when: str, fault: str) -> None:
    with pytest.raises(PolicyFileError) as refused:
        parse_policy(policy_with(when), "SH-TECH-MA.yaml")
    [problem] = refused.value.problems
    text = str(problem)
    assert text.startswith("SH-TECH-MA.yaml:") and problem.line is not None and problem.line > 100
    assert "bad-rule" in text and problem.location == "rules[0].when"
    assert fault.lower() in text.lower(), text


@pytest.mark.parametrize(("depth", "fault"), [(10_000, "at most 2000 characters"), (990, "nest")])
def test_a_deep_expression_is_refused_quickly(depth: int, fault: str) -> None:
    started = time.perf_counter()
    with pytest.raises(PolicyFileError) as refused:
        parse_policy(policy_with("(" * depth + "npl_ratio" + ")" * depth + " > 0"), "SH-TECH-MA.yaml")
    assert time.perf_counter() - started < 2
    assert fault in str(refused.value.problems[0]).lower()


def test_every_bad_rule_of_a_file_is_reported_at_once() -> None:
    text = BASE + (
        "\nrules:\n  - {id: one, when: 'open(x)', action: trip, message: m}\n"
        "  - {id: two, when: 'npl_ratio > 0.03', clear_when: 'nope < 1', action: trip, message: 'm {nothing}'}\n"
    )
    with pytest.raises(PolicyFileError) as refused:
        parse_policy(text, "SH-TECH-MA.yaml")
    locations = sorted(p.location for p in refused.value.problems)
    assert locations == ["rules[0].when", "rules[1].clear_when", "rules[1].message"]
