"""Which rules have a level a chart can draw, at what value, and why the others have none."""

from __future__ import annotations

from decimal import Decimal

from sandbox.rules.engine import compile_policy
from sandbox.rules.levels import RuleLevel, RuleNote, rule_level
from sandbox.rules.policy_file import parse_policy
from tests.support import ROOT

RULES = """
rules:
  - {id: npl-warn, when: npl_ratio >= 0.02, action: warn, message: "NPL {npl_ratio}"}
  - {id: npl-trip, when: 0.03 < npl_ratio, action: trip, message: "NPL {npl_ratio}"}
  - {id: cap, when: exposure_outstanding / quota.exposure_limit >= 0.9, action: trip, message: "use {value}"}
  - {id: floor, when: exposure_outstanding / -2 > 10, action: trip, message: "negative divisor"}
  - {id: both, when: npl_ratio > 0.03 and top1_share > 0.2, action: trip, message: "two tests"}
  - {id: growth, when: pct_change(exposure_outstanding) > 0.5, action: trip, message: "growth"}
  - {id: deal, when: ltv_max_new > quota.per_deal_limit, action: trip, message: "not granted"}
  - {id: late, when: filing.days_late > 5, action: trip, message: "late"}
"""
TEXT = (ROOT / "policies" / "SH-TECH-MA.yaml").read_text().partition("\nrules:")[0].rstrip() + "\n" + RULES
RULES_BY_ID = {rule.id: rule for rule in compile_policy(parse_policy(TEXT, "SH-TECH-MA.yaml")).rules}
QUOTAS = {"exposure_limit": Decimal("15000000000")}


def level(rule_id: str) -> RuleLevel | RuleNote | None:
    return rule_level(RULES_BY_ID[rule_id], QUOTAS)


def test_a_comparison_with_a_number_is_a_level_of_its_kind() -> None:
    warn = level("npl-warn")
    assert isinstance(warn, RuleLevel)
    assert (warn.metric, warn.kind, warn.operator, warn.value, warn.quota) == (
        "npl_ratio",
        "warn",
        ">=",
        Decimal("0.02"),
        None,
    )


def test_a_number_on_the_left_is_read_from_the_metric_side() -> None:
    trip = level("npl-trip")
    assert isinstance(trip, RuleLevel)
    assert (trip.kind, trip.operator, trip.value) == ("trip", ">", Decimal("0.03"))


def test_a_share_of_a_quota_is_drawn_at_that_share_of_the_granted_amount() -> None:
    cap = level("cap")
    assert isinstance(cap, RuleLevel)
    assert cap.value == Decimal("13500000000.0") and cap.quota == "exposure_limit"
    assert cap.basis == "0.9 × quota.exposure_limit"


def test_dividing_by_a_negative_number_turns_the_comparison_round() -> None:
    floor = level("floor")
    assert isinstance(floor, RuleLevel)
    assert (floor.operator, floor.value) == ("<", Decimal("-20"))


def test_conditions_without_one_level_say_why() -> None:
    for rule_id, why in (
        ("both", "several tests"),
        ("growth", "not a comparison of the metric with a fixed level"),
        ("deal", "quota per_deal_limit is not granted"),
    ):
        note = level(rule_id)
        assert isinstance(note, RuleNote) and why in note.why, (rule_id, note)


def test_a_rule_that_reads_no_metric_has_no_level() -> None:
    assert level("late") is None
