"""The policy sections that judge filings: rules, built-in rules, probation, the due-diligence
exemption criteria, and the policy's own tests. Shapes only; expressions are compiled (and so
checked against the metric catalogue) when the file is parsed, see ``policy_file``."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,59}$")]
Expr = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
BUILTIN_RULES = ("within-scope", "institution-eligible")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class Action(StrEnum):
    warn = "warn"
    trip = "trip"
    terminate = "terminate"  # a trip that also asks the approvers to end the pilot


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class OnMissing(StrEnum):
    keep_state = "keep_state"  # hold the breaker and its counters as they are
    breach = "breach"  # a period without the input counts as a breach
    ignore = "ignore"  # skip: breaks a breach streak, never counts as compliant


class OnError(StrEnum):
    hold = "hold"
    warn = "warn"
    breach = "breach"


class Mode(StrEnum):
    enforce = "enforce"
    shadow = "shadow"  # evaluated and recorded; changes no state and sends nothing


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    id: RuleId
    description: str = ""
    when: Expr
    clear_when: Expr | None = None
    clear_after: Annotated[int, Field(ge=1, le=24)] = 1
    action: Action
    severity: Severity = Severity.medium
    trip_after: Annotated[int, Field(ge=1, le=24)] = 1
    on_missing: OnMissing = OnMissing.keep_state
    on_error: OnError = OnError.hold
    mode: Mode = Mode.enforce
    message: Annotated[str, StringConstraints(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.id in BUILTIN_RULES:
            raise ValueError(f"{self.id} is a built-in rule; configure it under builtin_rules")
        if self.action is Action.warn and (self.clear_when or self.trip_after != 1 or self.clear_after != 1):
            raise ValueError("clear_when, clear_after and trip_after apply to trip and terminate rules only")
        if self.clear_after != 1 and self.clear_when is None:
            raise ValueError("clear_after needs a clear_when condition")
        return self

    def placeholders(self) -> list[str]:
        return _PLACEHOLDER.findall(self.message)


class BuiltinRule(_Strict):
    action: Action = Action.trip
    severity: Severity = Severity.high
    trip_after: Annotated[int, Field(ge=1, le=24)] = 1
    mode: Mode = Mode.enforce


class BuiltinRules(_Strict):
    within_scope: BuiltinRule = BuiltinRule()
    institution_eligible: BuiltinRule = BuiltinRule()


class Probation(_Strict):
    success_threshold: Annotated[int, Field(ge=1, le=24)] = 3


class Criterion(StrEnum):
    filings_on_time = "filings_on_time"
    within_scope_and_quota = "within_scope_and_quota"
    reported_within_days = "reported_within_days"
    no_new_business_while_suspended = "no_new_business_while_suspended"
    no_prior_breach = "no_prior_breach"
    active_when_done = "active_when_done"
    npl_tolerance = "npl_tolerance"


class ExemptionPolicy(_Strict):
    """The due-diligence criteria: all of them met means the system finds for an exemption."""

    criteria: Annotated[list[Criterion], Field(min_length=1)]
    report_within_days: Annotated[int, Field(ge=0, le=90)] = 5
    prior_breach_periods: Annotated[int, Field(ge=1, le=36)] = 6
    npl_metric: str = "npl_ratio"
    npl_tolerance: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.03")
    new_business_metric: str | None = None
    loss_rules: list[RuleId] = []

    @model_validator(mode="after")
    def _criteria_configured(self) -> Self:
        if len(set(self.criteria)) != len(self.criteria):
            raise ValueError("a criterion is listed twice")
        if Criterion.no_new_business_while_suspended in self.criteria and not self.new_business_metric:
            raise ValueError("no_new_business_while_suspended needs new_business_metric (the metric of business done)")
        return self


_DURATION = re.compile(r"^([1-9][0-9]{0,3})([hd])$")


def parse_duration(text: str) -> timedelta:
    """``12h`` or ``3d``: the policy's reminder and escalation delays."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 12h or 3d")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


def _duration_text(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, AfterValidator(_duration_text)]
Address = Annotated[str, StringConstraints(pattern=r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$", max_length=254)]


class AlertsPolicy(_Strict):
    """Who the bureau alerts, by severity, and how often an unacknowledged trip is reminded."""

    recipients: dict[Severity, list[Address]] = {}
    escalation: list[Address] = []
    repeat_every: Duration = "24h"
    escalate_after: Duration = "72h"
    send_resolved: bool = True
    due_soon_working_days: Annotated[int, Field(ge=0, le=20)] = 3

    def for_severity(self, severity: Severity) -> list[str]:
        """The list for a severity; a severity with no list of its own goes to the next higher one."""
        order = list(Severity)
        for level in order[order.index(severity) :]:
            if self.recipients.get(level):
                return list(self.recipients[level])
        return []


class TestPeriod(_Strict):
    period: str
    metrics: dict[str, Decimal] | None = None  # None: no filing for the period
    days_late: Annotated[int, Field(ge=0)] = 0
    breakdown_outside_scope: bool = False
    reset: list[RuleId] = []  # breakers a supervisor resets before this period is judged
    expect: dict[str, str] = {}  # rule id -> "status" or "status/breaker_state", e.g. "breach/tripped"


class PolicyTest(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    institution: dict[str, Decimal] = {}
    quotas: dict[str, Decimal] = {}  # default: each quota's per-pilot cap
    periods: Annotated[list[TestPeriod], Field(min_length=1)]
