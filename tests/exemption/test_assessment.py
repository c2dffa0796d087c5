"""The due-diligence criteria, each met and not met, from plain facts (no database)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from sandbox.exemption.assessment import (
    Facts,
    PeriodRecord,
    Report,
    RuleResult,
    StateChange,
    assess,
    states_on,
)
from sandbox.rules.periods import Period
from sandbox.rules.rulebook import Criterion, ExemptionPolicy

AS_OF = datetime(2027, 4, 20, 2, 0, tzinfo=UTC)


def month(label: str) -> Period:
    year, number = label.split("-")
    return Period("monthly", int(year), int(number))


def at(day: str, hour: int = 2) -> datetime:
    # 02:00 UTC is 10:00 in Shanghai: the same bureau date.
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def record(label: str, due: str, late: int | None = 0, **metrics: str) -> PeriodRecord:
    return PeriodRecord(month(label), date.fromisoformat(due), late, {k: Decimal(v) for k, v in metrics.items()})


def result(
    label: str,
    rule_id: str,
    status: str = "breach",
    action: str = "trip",
    mode: str = "enforce",
    reads: tuple[str, ...] = (),
) -> RuleResult:
    return RuleResult(month(label), rule_id, status, action, mode, frozenset(reads))


ACTIVE_SINCE_DECEMBER = (StateChange(at("2026-11-20"), "approved"), StateChange(at("2026-12-01"), "active"))


def facts(**changes: Any) -> Facts:
    """A clean history: a pilot active since 2026-12-01, every filing on time, a loss on
    2027-03-10 reported two days later."""
    base = Facts(
        event_on=date(2027, 3, 10),
        event_period=month("2027-03"),
        reports=[Report(date(2027, 3, 10), at("2027-03-12"), uuid.uuid4())],
        periods=[
            record("2026-12", "2027-01-15", npl_ratio="0.0100", new_lending_amount="500"),
            record("2027-01", "2027-02-27", npl_ratio="0.0150", new_lending_amount="700"),
            record("2027-02", "2027-03-13", npl_ratio="0.0200", new_lending_amount="0"),
            record("2027-03", "2027-04-15", None),
        ],
        results=[result(p, "npl-trip", status="pass") for p in ("2026-12", "2027-01")],
        states=ACTIVE_SINCE_DECEMBER,
        institution_npl=Decimal("0.013"),
    )
    return replace(base, **changes)


def policy(*criteria: Criterion, **settings: Any) -> ExemptionPolicy:
    return ExemptionPolicy(criteria=list(criteria), **settings)


def judge(criterion: Criterion, data: Facts, **settings: Any) -> dict[str, Any]:
    if criterion is Criterion.no_new_business_while_suspended:
        settings.setdefault("new_business_metric", "new_lending_amount")
    outcome = assess(policy(criterion, **settings), data, as_of=AS_OF, policy_version="2027.1")
    (only,) = outcome["criteria"]
    assert only["criterion"] == criterion.value
    assert isinstance(only["detail"], str) and only["detail"]
    assert outcome["finding"] == ("grant" if only["met"] else "deny")
    return dict(only)


def test_a_clean_history_meets_every_criterion_and_finds_for_a_grant() -> None:
    every = list(Criterion)
    outcome = assess(
        policy(*every, new_business_metric="new_lending_amount"), facts(), as_of=AS_OF, policy_version="2027.1"
    )
    assert [c["criterion"] for c in outcome["criteria"]] == [c.value for c in every]
    assert all(c["met"] for c in outcome["criteria"]), outcome
    assert outcome["finding"] == "grant"
    assert outcome["as_of"] == AS_OF.isoformat() and outcome["policy_version"] == "2027.1"
    assert outcome["event"] == {"on": "2027-03-10", "period": "2027-03", "rule_id": None}


def test_only_the_listed_criteria_are_judged_and_one_unmet_denies() -> None:
    late = facts(periods=[record("2026-12", "2027-01-15", late=3)])
    outcome = assess(
        policy(Criterion.active_when_done, Criterion.filings_on_time), late, as_of=AS_OF, policy_version="v"
    )
    assert [(c["criterion"], c["met"]) for c in outcome["criteria"]] == [
        ("active_when_done", True),
        ("filings_on_time", False),
    ]
    assert outcome["finding"] == "deny"


# -- filings_on_time ------------------------------------------------------------------------------


def test_filings_on_time_ignores_filings_not_yet_due_at_the_event() -> None:
    judged = judge(Criterion.filings_on_time, facts())
    assert judged["met"] is True
    # 2027-03 is due after the event and not filed yet: not held against the institution.
    assert judged["evidence"]["periods_due"] == ["2026-12", "2027-01"]


def test_filings_on_time_not_met_by_a_late_first_version_or_a_missing_period() -> None:
    periods = [
        record("2026-12", "2027-01-15", late=2),
        record("2027-01", "2027-02-27", late=None),
        record("2027-02", "2027-03-13", late=None),  # due after the event: not counted
    ]
    judged = judge(Criterion.filings_on_time, facts(periods=periods))
    assert judged["met"] is False
    assert judged["evidence"]["late"] == [{"period": "2026-12", "due_on": "2027-01-15", "days_late": 2}]
    assert judged["evidence"]["missing"] == [{"period": "2027-01", "due_on": "2027-02-27"}]
    assert "2026-12" in judged["detail"] and "2027-01" in judged["detail"]


# -- within_scope_and_quota -----------------------------------------------------------------------


def test_scope_and_quota_met_when_only_other_rules_or_warnings_or_shadows_breached() -> None:
    results = [
        result("2027-01", "npl-trip"),  # reads no quota
        result("2027-01", "quota-warn", action="warn", reads=("quota.exposure_limit",)),
        result("2027-02", "quota-trip", mode="shadow", reads=("quota.exposure_limit",)),
        result("2027-02", "within-scope", status="pass"),
        result("2027-04", "within-scope"),  # after the event's period
    ]
    assert judge(Criterion.within_scope_and_quota, facts(results=results))["met"] is True


@pytest.mark.parametrize(
    "breach",
    [
        result("2027-01", "within-scope"),
        result("2027-03", "quota-trip", reads=("exposure_outstanding", "quota.exposure_limit")),
    ],
)
def test_scope_or_quota_breach_up_to_the_event_period_is_not_met(breach: RuleResult) -> None:
    # Judged twice (an amendment re-evaluates): listed once.
    judged = judge(Criterion.within_scope_and_quota, facts(results=[breach, breach]))
    assert judged["met"] is False
    assert judged["evidence"]["breaches"] == [{"period": breach.period.label, "rule_id": breach.rule_id}]


# -- reported_within_days -------------------------------------------------------------------------


def test_reported_within_days_counts_bureau_calendar_days() -> None:
    # Reported at 20:00 UTC on the 14th: already the 15th in Shanghai, 5 days after the 10th.
    report = Report(date(2027, 3, 10), at("2027-03-14", hour=20))
    assert judge(Criterion.reported_within_days, facts(reports=[report]), report_within_days=5)["met"] is True
    judged = judge(Criterion.reported_within_days, facts(reports=[report]), report_within_days=4)
    assert judged["met"] is False
    assert (
        judged["evidence"]["reports"][0]["days"] == 5
        and judged["evidence"]["reports"][0]["reported_on"] == "2027-03-15"
    )


def test_a_loss_known_only_from_the_filing_was_not_reported() -> None:
    judged = judge(Criterion.reported_within_days, facts(reports=[], rule_id="npl-trip"))
    assert judged["met"] is False and judged["evidence"]["reports"] == []


# -- no_new_business_while_suspended --------------------------------------------------------------


SUSPENDED_IN_JANUARY = (
    *ACTIVE_SINCE_DECEMBER,
    StateChange(at("2027-01-20"), "suspended"),  # January: partly suspended, not judged
    StateChange(at("2027-03-05"), "active"),  # February: suspended throughout
)


def test_no_new_business_met_when_the_fully_suspended_period_booked_nothing_or_reported_nothing() -> None:
    judged = judge(Criterion.no_new_business_while_suspended, facts(states=SUSPENDED_IN_JANUARY))
    assert judged["met"] is True
    assert judged["evidence"]["suspended_periods"] == [{"period": "2027-02", "value": "0"}]
    assert judged["evidence"]["partly_suspended_periods"] == ["2027-01", "2027-03"]
    absent = [record("2027-02", "2027-03-13", npl_ratio="0.02")]
    assert (
        judge(Criterion.no_new_business_while_suspended, facts(states=SUSPENDED_IN_JANUARY, periods=absent))["met"]
        is True
    )


def test_new_business_in_a_suspended_period_is_not_met() -> None:
    periods = [record("2027-02", "2027-03-13", new_lending_amount="250000.00")]
    judged = judge(Criterion.no_new_business_while_suspended, facts(states=SUSPENDED_IN_JANUARY, periods=periods))
    assert judged["met"] is False
    assert judged["evidence"]["suspended_periods"] == [{"period": "2027-02", "value": "250000.00"}]


def test_never_suspended_meets_no_new_business() -> None:
    judged = judge(Criterion.no_new_business_while_suspended, facts())
    assert judged["met"] is True and judged["evidence"]["suspended_periods"] == []


# -- no_prior_breach ------------------------------------------------------------------------------


def test_prior_breach_window_counts_only_trip_rules_in_the_periods_before() -> None:
    results = [
        result("2026-08", "npl-trip"),  # 7 periods before: outside a 6-period window
        result("2027-02", "npl-warn", action="warn"),
        result("2027-02", "ltv-trip", mode="shadow"),
        result("2027-03", "npl-trip"),  # the event's own period
    ]
    assert judge(Criterion.no_prior_breach, facts(results=results), prior_breach_periods=6)["met"] is True
    judged = judge(Criterion.no_prior_breach, facts(results=results), prior_breach_periods=7)
    assert judged["met"] is False
    assert judged["evidence"]["breaches"] == [{"period": "2026-08", "rule_id": "npl-trip"}]


def test_prior_breach_for_a_rule_trigger_is_of_the_same_rule_only() -> None:
    results = [result("2027-01", "ltv-trip"), result("2027-02", "terminate-rule", action="terminate")]
    assert judge(Criterion.no_prior_breach, facts(results=results))["met"] is False
    same_rule_only = facts(results=results[:1], rule_id="npl-trip")
    assert judge(Criterion.no_prior_breach, same_rule_only)["met"] is True
    assert judge(Criterion.no_prior_breach, facts(results=results[:1], rule_id="ltv-trip"))["met"] is False


# -- active_when_done -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_on", "states", "met"),
    [
        (date(2027, 3, 10), ACTIVE_SINCE_DECEMBER, True),
        (date(2027, 2, 10), SUSPENDED_IN_JANUARY, False),  # suspended
        (date(2027, 1, 20), SUSPENDED_IN_JANUARY, False),  # suspended that day: before or after?
        (date(2026, 11, 25), ACTIVE_SINCE_DECEMBER, False),  # approved, not yet active
        (date(2026, 11, 1), ACTIVE_SINCE_DECEMBER, False),  # before the pilot existed: unknown
    ],
)
def test_active_when_done(event_on: date, states: tuple[StateChange, ...], met: bool) -> None:
    judged = judge(Criterion.active_when_done, facts(event_on=event_on, states=states))
    assert judged["met"] is met, judged


def test_a_pilot_created_and_activated_at_one_instant_was_only_ever_active_that_day() -> None:
    moment = at("2026-12-01")
    states = [StateChange(moment, "approved"), StateChange(moment, "active")]
    assert states_on(states, date(2026, 12, 1)) == ["active"]
    assert judge(Criterion.active_when_done, facts(event_on=date(2026, 12, 1), states=states))["met"] is True


# -- npl_tolerance --------------------------------------------------------------------------------


def test_npl_tolerance_uses_the_latest_filed_value_up_to_the_event() -> None:
    judged = judge(Criterion.npl_tolerance, facts(), npl_tolerance=Decimal("0.007"))
    assert judged["met"] is True  # 0.0200 <= 0.013 + 0.007 (exactly at the limit)
    assert judged["evidence"] == {
        "metric": "npl_ratio",
        "period": "2027-02",
        "pilot_npl": "0.0200",
        "institution_npl": "0.013",
        "tolerance": "0.007",
        "limit": "0.020",
    }
    assert judge(Criterion.npl_tolerance, facts(), npl_tolerance=Decimal("0.0069"))["met"] is False


@pytest.mark.parametrize(
    "data",
    [
        facts(institution_npl=None),
        facts(periods=[record("2026-12", "2027-01-15", new_lending_amount="1")]),
        facts(periods=[record("2027-04", "2027-05-15", npl_ratio="0.001")]),  # after the event
    ],
)
def test_missing_npl_data_is_not_met(data: Facts) -> None:
    judged = judge(Criterion.npl_tolerance, data)
    assert judged["met"] is False and "missing data" in judged["detail"]
