"""The due-diligence assessment: each of the policy's criteria met or not, from plain facts, with
the evidence it used. Pure: no database, no clock; the service gathers the facts.

Choices made where the policy's wording leaves room (each errs towards "not met", as missing
data is never read as compliance):

- ``filings_on_time``: every expected period whose filing was due before the event date was
  filed, and each filing's *first* version was on time (an amendment cannot repair lateness).
- ``within_scope_and_quota``: no breach of the built-in ``within-scope`` rule, and no breach of
  an enforced trip or terminate rule that reads a ``quota.`` value, at any evaluation of a period
  up to the event's. Warn rules on quotas (e.g. "90% of the quota used") are early warnings
  inside the quota, not quota breaches; shadow rules change nothing, so they count for nothing.
- ``reported_within_days``: every report must come within N days of its occurrence. For a
  loss rule's breach, the reports are the losses (risk events with an amount above zero) that
  occurred in the breaching period; if there are none, the loss reached the bureau only through
  the filing and the criterion is not met.
- ``no_new_business_while_suspended``: monthly or quarterly metrics cannot split a period, so
  only periods in which the pilot was suspended on every day are judged: the new-business metric
  must be 0 or absent there (absent: a period with no filing is caught by ``filings_on_time``).
  Periods suspended only in part are listed in the evidence, not judged.
- ``active_when_done``: every state the pilot held on the event date (at the start of the day
  and after each change that day) was ``active``: a pilot suspended or activated that day fails,
  since a date alone cannot say whether the business came before or after the change.
- ``npl_tolerance``: the latest filed value of the NPL metric up to the event's period against
  the institution's bank-wide NPL ratio plus the tolerance; either number missing is not met.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sandbox.clock import bureau_date
from sandbox.rules.periods import Period
from sandbox.rules.rulebook import Criterion, ExemptionPolicy

WITHIN_SCOPE = "within-scope"
TRIP_ACTIONS = frozenset({"trip", "terminate"})
ACTIVE = "active"
SUSPENDED = "suspended"


@dataclass(frozen=True)
class PeriodRecord:
    """One expected period of the pilot up to the event's: when it was due, how late its first
    version came (None: never filed), and its latest version's values."""

    period: Period
    due_on: date
    first_days_late: int | None
    metrics: Mapping[str, Decimal] = field(default_factory=dict)
    due_estimated: bool = False


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome at one evaluation (as stored in ``Evaluation.outcomes``)."""

    period: Period
    rule_id: str
    status: str
    action: str
    mode: str
    reads: frozenset[str]
    evaluation_id: uuid.UUID | None = None

    @property
    def enforced_breach(self) -> bool:
        return self.status == "breach" and self.mode != "shadow"

    @property
    def reads_quota(self) -> bool:
        return any(name.startswith("quota.") for name in self.reads)


@dataclass(frozen=True)
class StateChange:
    """A pilot entering ``state`` at ``at`` (from the pilot's audit trail)."""

    at: datetime
    state: str


@dataclass(frozen=True)
class Report:
    """A risk event as the institution reported it."""

    occurred_on: date
    reported_at: datetime
    risk_event_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Facts:
    event_on: date  # the risk event's date, or for a rule's breach the period's last day
    event_period: Period
    reports: Sequence[Report]
    periods: Sequence[PeriodRecord]
    results: Sequence[RuleResult]
    states: Sequence[StateChange]  # oldest first
    institution_npl: Decimal | None
    rule_id: str | None = None  # the loss rule whose breach triggered the assessment


@dataclass(frozen=True)
class Judged:
    criterion: Criterion
    met: bool
    evidence: dict[str, Any]
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"criterion": self.criterion.value, "met": self.met, "evidence": self.evidence, "detail": self.detail}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _labels(items: Sequence[str]) -> str:
    return ", ".join(items) if len(items) <= 6 else ", ".join(items[:6]) + f" and {len(items) - 6} more"


def _breaches(results: Sequence[RuleResult]) -> list[dict[str, str]]:
    """One entry per period and rule, however many evaluations judged it."""
    seen: dict[tuple[int, str], dict[str, str]] = {}
    for r in sorted(results, key=lambda r: (r.period.ordinal, r.rule_id)):
        seen.setdefault((r.period.ordinal, r.rule_id), {"period": r.period.label, "rule_id": r.rule_id})
    return list(seen.values())


# -- the criteria ---------------------------------------------------------------------------------


def filings_on_time(facts: Facts) -> Judged:
    due = [p for p in facts.periods if p.due_on < facts.event_on]
    missing = [{"period": p.period.label, "due_on": p.due_on.isoformat()} for p in due if p.first_days_late is None]
    late = [
        {"period": p.period.label, "due_on": p.due_on.isoformat(), "days_late": p.first_days_late}
        for p in due
        if p.first_days_late is not None and p.first_days_late > 0
    ]
    evidence: dict[str, Any] = {
        "periods_due": [p.period.label for p in due],
        "late": late,
        "missing": missing,
        "due_dates_estimated": any(p.due_estimated for p in due),
    }
    if not missing and not late:
        detail = (
            f"all {len(due)} filing(s) due before {facts.event_on.isoformat()} were filed on time"
            if due
            else f"no filing was due before {facts.event_on.isoformat()}"
        )
        return Judged(Criterion.filings_on_time, True, evidence, detail)
    parts = []
    if late:
        parts.append(f"filed late: {_labels([str(x['period']) for x in late])}")
    if missing:
        parts.append(f"never filed: {_labels([str(x['period']) for x in missing])}")
    return Judged(
        Criterion.filings_on_time,
        False,
        evidence,
        f"of the filings due before {facts.event_on.isoformat()}, " + "; ".join(parts),
    )


def within_scope_and_quota(facts: Facts) -> Judged:
    end = facts.event_period.ordinal
    offending = [
        r
        for r in facts.results
        if r.period.ordinal <= end
        and r.enforced_breach
        and (r.rule_id == WITHIN_SCOPE or (r.reads_quota and r.action in TRIP_ACTIONS))
    ]
    breaches = _breaches(offending)
    evidence = {"up_to_period": facts.event_period.label, "breaches": breaches}
    if not breaches:
        return Judged(
            Criterion.within_scope_and_quota,
            True,
            evidence,
            f"no scope or quota breach in any evaluation up to {facts.event_period.label}",
        )
    listed = _labels([f"{b['rule_id']} in {b['period']}" for b in breaches])
    return Judged(Criterion.within_scope_and_quota, False, evidence, f"scope or quota breached: {listed}")


def reported_within_days(facts: Facts, within: int) -> Judged:
    days = [(bureau_date(r.reported_at) - r.occurred_on).days for r in facts.reports]
    reports = [
        {
            "risk_event_id": str(r.risk_event_id) if r.risk_event_id else None,
            "occurred_on": r.occurred_on.isoformat(),
            "reported_on": bureau_date(r.reported_at).isoformat(),
            "days": taken,
        }
        for r, taken in zip(facts.reports, days, strict=True)
    ]
    evidence: dict[str, Any] = {"report_within_days": within, "reports": reports}
    if not days:
        return Judged(
            Criterion.reported_within_days,
            False,
            evidence,
            f"no loss was reported as a risk event for {facts.event_period.label}; it reached the bureau only through the filing",
        )
    if max(days) > within:
        return Judged(
            Criterion.reported_within_days,
            False,
            evidence,
            f"reported {max(days)} day(s) after it occurred; the policy allows {within}",
        )
    return Judged(
        Criterion.reported_within_days,
        True,
        evidence,
        f"reported {max(days)} day(s) after it occurred, within the {within} the policy allows",
    )


def _state_before(states: Sequence[StateChange], day: date) -> str | None:
    before = [s for s in states if bureau_date(s.at) < day]
    return before[-1].state if before else None


def states_on(states: Sequence[StateChange], day: date) -> list[str]:
    """Every state the pilot held during ``day``: at its start, and after each instant of change
    that day (changes at one instant, such as creation and immediate activation, count as one)."""
    held = []
    start = _state_before(states, day)
    if start is not None:
        held.append(start)
    that_day = [s for s in states if bureau_date(s.at) == day]
    for index, change in enumerate(that_day):
        last_at_instant = index + 1 == len(that_day) or that_day[index + 1].at != change.at
        if last_at_instant and (not held or held[-1] != change.state):
            held.append(change.state)
    return held


def active_when_done(facts: Facts) -> Judged:
    held = states_on(facts.states, facts.event_on)
    evidence: dict[str, Any] = {"on": facts.event_on.isoformat(), "states": held}
    day = facts.event_on.isoformat()
    if not held:
        return Judged(Criterion.active_when_done, False, evidence, f"the pilot's state on {day} is not on record")
    if all(state == ACTIVE for state in held):
        return Judged(Criterion.active_when_done, True, evidence, f"the pilot was active on {day}")
    return Judged(
        Criterion.active_when_done,
        False,
        evidence,
        f"the pilot was {' then '.join(held)} on {day}, not active throughout the day",
    )


def _suspended_throughout(states: Sequence[StateChange], period: Period) -> tuple[bool, bool]:
    """(suspended on every day of the period, suspended at some moment of it)."""
    start = _state_before(states, period.start)
    inside = [s.state for s in states if period.start <= bureau_date(s.at) <= period.end]
    held = ([start] if start is not None else []) + inside
    if not held:
        return False, False
    # The state at the start of the first day counts only if no change that day altered it.
    first_day = [s for s in states if bureau_date(s.at) == period.start]
    opening = first_day[-1].state if first_day else start
    throughout = opening == SUSPENDED and all(state == SUSPENDED for state in inside)
    return throughout, SUSPENDED in held


def no_new_business_while_suspended(facts: Facts, metric: str) -> Judged:
    judged: list[dict[str, Any]] = []
    partly: list[str] = []
    for record in facts.periods:
        if record.period > facts.event_period:
            continue
        throughout, ever = _suspended_throughout(facts.states, record.period)
        if throughout:
            judged.append({"period": record.period.label, "value": _text(record.metrics.get(metric))})
        elif ever:
            partly.append(record.period.label)
    evidence: dict[str, Any] = {"metric": metric, "suspended_periods": judged, "partly_suspended_periods": partly}
    business = [j for j in judged if j["value"] is not None and Decimal(j["value"]) != 0]
    if business:
        listed = _labels([f"{j['period']} ({metric} {j['value']})" for j in business])
        return Judged(
            Criterion.no_new_business_while_suspended,
            False,
            evidence,
            f"new business was reported while the pilot was suspended: {listed}",
        )
    if not judged:
        detail = "the pilot was not suspended for a whole period up to the event"
        if partly:
            detail += f" (partly suspended in {_labels(partly)}, which a period's figures cannot split)"
        return Judged(Criterion.no_new_business_while_suspended, True, evidence, detail)
    return Judged(
        Criterion.no_new_business_while_suspended,
        True,
        evidence,
        f"no new business ({metric} 0 or not reported) in the suspended period(s) {_labels([j['period'] for j in judged])}",
    )


def no_prior_breach(facts: Facts, periods: int) -> Judged:
    last = facts.event_period.ordinal - 1
    first = facts.event_period.ordinal - periods
    offending = [
        r
        for r in facts.results
        if first <= r.period.ordinal <= last
        and r.enforced_breach
        and r.action in TRIP_ACTIONS
        and (facts.rule_id is None or r.rule_id == facts.rule_id)
    ]
    breaches = _breaches(offending)
    window = f"the {periods} period(s) before {facts.event_period.label}"
    what = f"rule {facts.rule_id}" if facts.rule_id else "any trip rule"
    evidence: dict[str, Any] = {
        "periods": periods,
        "before_period": facts.event_period.label,
        "rule_id": facts.rule_id,
        "breaches": breaches,
    }
    if not breaches:
        return Judged(Criterion.no_prior_breach, True, evidence, f"no breach of {what} in {window}")
    listed = _labels([f"{b['rule_id']} in {b['period']}" for b in breaches])
    return Judged(Criterion.no_prior_breach, False, evidence, f"{what} was breached in {window}: {listed}")


def npl_tolerance(facts: Facts, metric: str, tolerance: Decimal) -> Judged:
    filed = [p for p in facts.periods if p.period <= facts.event_period and metric in p.metrics]
    latest = max(filed, key=lambda p: p.period, default=None)
    pilot_npl = latest.metrics[metric] if latest is not None else None
    bank = facts.institution_npl
    limit = bank + tolerance if bank is not None else None
    evidence: dict[str, Any] = {
        "metric": metric,
        "period": latest.period.label if latest else None,
        "pilot_npl": _text(pilot_npl),
        "institution_npl": _text(bank),
        "tolerance": _text(tolerance),
        "limit": _text(limit),
    }
    if pilot_npl is None or limit is None:
        missing = [
            name
            for name, value in (
                (f"the pilot's {metric} up to {facts.event_period.label}", pilot_npl),
                ("the institution's bank-wide NPL ratio", bank),
            )
            if value is None
        ]
        return Judged(
            Criterion.npl_tolerance,
            False,
            evidence,
            f"not on record: {' and '.join(missing)}; missing data is never read as compliance",
        )
    assert latest is not None
    if pilot_npl <= limit:
        return Judged(
            Criterion.npl_tolerance,
            True,
            evidence,
            f"{metric} {_text(pilot_npl)} ({latest.period.label}) is within the institution's {_text(bank)} plus {_text(tolerance)}",
        )
    return Judged(
        Criterion.npl_tolerance,
        False,
        evidence,
        f"{metric} {_text(pilot_npl)} ({latest.period.label}) is above the institution's {_text(bank)} plus {_text(tolerance)} = {_text(limit)}",
    )


def judge_criterion(criterion: Criterion, policy: ExemptionPolicy, facts: Facts) -> Judged:
    if criterion is Criterion.filings_on_time:
        return filings_on_time(facts)
    if criterion is Criterion.within_scope_and_quota:
        return within_scope_and_quota(facts)
    if criterion is Criterion.reported_within_days:
        return reported_within_days(facts, policy.report_within_days)
    if criterion is Criterion.no_new_business_while_suspended:
        assert policy.new_business_metric is not None  # the policy schema requires it with this criterion
        return no_new_business_while_suspended(facts, policy.new_business_metric)
    if criterion is Criterion.no_prior_breach:
        return no_prior_breach(facts, policy.prior_breach_periods)
    if criterion is Criterion.active_when_done:
        return active_when_done(facts)
    return npl_tolerance(facts, policy.npl_metric, policy.npl_tolerance)


def assess(policy: ExemptionPolicy, facts: Facts, *, as_of: datetime, policy_version: str) -> dict[str, Any]:
    """The policy's listed criteria, in its order; the finding is "grant" only if all are met."""
    judged = [judge_criterion(criterion, policy, facts) for criterion in policy.criteria]
    return {
        "criteria": [j.to_json() for j in judged],
        "finding": "grant" if all(j.met for j in judged) else "deny",
        "as_of": as_of.isoformat(),
        "policy_version": policy_version,
        "event": {"on": facts.event_on.isoformat(), "period": facts.event_period.label, "rule_id": facts.rule_id},
    }
