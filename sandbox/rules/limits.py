"""The limits a program puts on a pilot's scope, quotas and dates (pure). Each check returns every
problem it finds, with the location of the offending field, so one answer lists them all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sandbox.rules.dates import latest_end
from sandbox.rules.policy import PolicyDocument


@dataclass(frozen=True)
class Problem:
    loc: tuple[str, ...]
    msg: str

    def as_error(self, prefix: Sequence[str] = ("body",)) -> dict[str, Any]:
        return {"loc": [*prefix, *self.loc], "msg": self.msg, "type": "policy_limit"}


def check_requested_scope(policy: PolicyDocument, scope: Mapping[str, Sequence[str]]) -> list[Problem]:
    problems: list[Problem] = []
    for dimension, values in scope.items():
        universe = policy.scope.get(dimension)
        if universe is None:
            problems.append(
                Problem(
                    ("requested_scope", dimension),
                    f"unknown scope dimension; the program has: {', '.join(policy.scope)}",
                )
            )
            continue
        if not values:
            problems.append(Problem(("requested_scope", dimension), "list at least one value"))
        if len(set(values)) != len(values):
            problems.append(Problem(("requested_scope", dimension), "a value is listed twice"))
        outside = [v for v in values if v not in universe]
        if outside:
            problems.append(
                Problem(
                    ("requested_scope", dimension),
                    f"outside the program's scope: {', '.join(outside)} (allowed: {', '.join(universe)})",
                )
            )
    for dimension in policy.scope:
        if dimension not in scope:
            problems.append(Problem(("requested_scope", dimension), "required: the program limits this dimension"))
    return problems


def check_requested_quotas(policy: PolicyDocument, quotas: Mapping[str, Decimal]) -> list[Problem]:
    problems: list[Problem] = []
    for name, amount in quotas.items():
        spec = policy.quotas.get(name)
        if spec is None:
            problems.append(
                Problem(("requested_quotas", name), f"unknown quota; the program has: {', '.join(policy.quotas)}")
            )
            continue
        if amount <= 0:
            problems.append(Problem(("requested_quotas", name), "must be greater than zero"))
        elif amount > spec.per_pilot_cap:
            problems.append(
                Problem(
                    ("requested_quotas", name),
                    f"{amount} exceeds the per-pilot cap of {spec.per_pilot_cap} {spec.unit}",
                )
            )
        elif spec.unit == "count" and amount != amount.to_integral_value():
            problems.append(Problem(("requested_quotas", name), "a count must be a whole number"))
    for name, spec in policy.quotas.items():
        if spec.required and name not in quotas:
            problems.append(Problem(("requested_quotas", name), "required by the program"))
    return problems


def check_dates(policy: PolicyDocument, start_on: date, end_on: date) -> list[Problem]:
    if end_on <= start_on:
        return [Problem(("end_on",), f"must be after start_on ({start_on.isoformat()})")]
    months = policy.schedule.max_duration_months
    last = latest_end(start_on, months)
    if end_on > last:
        return [
            Problem(("end_on",), f"the program allows at most {months} months: end on {last.isoformat()} or earlier")
        ]
    return []


def check_application(
    policy: PolicyDocument,
    *,
    scope: Mapping[str, Sequence[str]],
    quotas: Mapping[str, Decimal],
    start_on: date,
    end_on: date,
) -> list[Problem]:
    return [
        *check_requested_scope(policy, scope),
        *check_requested_quotas(policy, quotas),
        *check_dates(policy, start_on, end_on),
    ]


def grant_scope(
    requested: Mapping[str, Sequence[str]], granted: Mapping[str, Sequence[str]] | None
) -> tuple[dict[str, list[str]], list[Problem]]:
    """The granted scope: as requested, narrowed dimension by dimension where the approver says so."""
    result = {dim: list(values) for dim, values in requested.items()}
    problems: list[Problem] = []
    for dimension, values in (granted or {}).items():
        if dimension not in requested:
            problems.append(Problem(("granted_scope", dimension), "not a dimension of the requested scope"))
            continue
        wider = [v for v in values if v not in requested[dimension]]
        if wider:
            problems.append(Problem(("granted_scope", dimension), f"wider than requested: {', '.join(wider)}"))
        if not values:
            problems.append(Problem(("granted_scope", dimension), "grant at least one value"))
        if len(set(values)) != len(values):
            problems.append(Problem(("granted_scope", dimension), "a value is listed twice"))
        result[dimension] = list(values)
    return result, problems


def grant_quotas(
    policy: PolicyDocument, requested: Mapping[str, Decimal], granted: Mapping[str, Decimal] | None
) -> tuple[dict[str, Decimal], list[Problem]]:
    """The granted quotas: as requested unless lowered; never above the request or today's cap."""
    result = dict(requested)
    problems: list[Problem] = []
    for name, amount in (granted or {}).items():
        if name not in requested:
            problems.append(Problem(("granted_quotas", name), "not a quota of the request"))
            continue
        if amount <= 0:
            problems.append(Problem(("granted_quotas", name), "must be greater than zero"))
        elif amount > requested[name]:
            problems.append(Problem(("granted_quotas", name), f"{amount} is more than the {requested[name]} requested"))
        result[name] = amount
    for name, amount in result.items():
        spec = policy.quotas.get(name)
        if spec is None:
            problems.append(Problem(("granted_quotas", name), "the policy in force no longer has this quota"))
        elif amount > spec.per_pilot_cap:
            problems.append(
                Problem(
                    ("granted_quotas", name),
                    f"{amount} exceeds the per-pilot cap of {spec.per_pilot_cap} in force today",
                )
            )
    return result, problems
