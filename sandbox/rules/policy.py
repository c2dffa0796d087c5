"""The policy document: one program's limits, as declared in ``policies/<program>.yaml``.

Every model refuses unknown keys, so a misspelt key is an error, never a silently ignored
limit. The rules-engine sections (``rules``, ``probation``, ``exemption``, ``alerts``,
``tests``) slot in beside these as further fields of ``PolicyDocument``."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from sandbox.rules.rulebook import AlertsPolicy, BuiltinRules, Criterion, ExemptionPolicy, PolicyTest, Probation, Rule
from sandbox.rules.vocabulary import InstitutionType

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+){1,5}$", max_length=40)]
InstitutionCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{0,31}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
# Bounded like the database columns (NUMERIC(38, 12)): a policy value always fits where it is stored.
Number = Annotated[Decimal, Field(max_digits=30, decimal_places=12, allow_inf_nan=False)]
PositiveDecimal = Annotated[Number, Field(gt=0)]
Ratio = Annotated[Number, Field(ge=0, le=100)]
CURRENCY = re.compile(r"^[A-Z]{3}$")


class Area(StrEnum):
    technology_finance = "technology_finance"
    green_finance = "green_finance"
    inclusive_finance = "inclusive_finance"
    pension_finance = "pension_finance"
    digital_finance = "digital_finance"
    cross_border_finance = "cross_border_finance"
    shipping_insurance = "shipping_insurance"
    reinsurance = "reinsurance"


class Unit(StrEnum):
    CNY = "CNY"
    USD = "USD"
    ratio = "ratio"
    count = "count"  # type: ignore[assignment]  # the unit's name; shadows str.count on purpose
    percent = "percent"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class ProgramInfo(Strict):
    code: Code
    title: Text
    area: Area
    version: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")]
    effective_from: date
    description: str = ""


class Eligibility(Strict):
    """Who may take part. Ratings run from 1 (best) to 6 (worst): ``min_rating: 3`` admits
    institutions rated 1, 2 or 3."""

    institution_types: Annotated[list[InstitutionType], Field(min_length=1)]
    min_rating: Annotated[int, Field(ge=1, le=6)] = 6
    regions: list[Text] | None = None
    min_capital_adequacy_ratio: Ratio | None = None
    max_npl_ratio: Ratio | None = None
    min_solvency_comprehensive: Ratio | None = None
    min_solvency_core: Ratio | None = None
    no_major_penalty_years: Annotated[int, Field(ge=1, le=10)] | None = None
    max_institutions: Annotated[int, Field(ge=1)] | None = None
    allow: list[InstitutionCode] = []
    deny: list[InstitutionCode] = []

    @model_validator(mode="after")
    def _allow_and_deny_disjoint(self) -> Self:
        both = set(self.allow) & set(self.deny)
        if both:
            raise ValueError(f"institutions both allowed and denied: {', '.join(sorted(both))}")
        return self


class Quota(Strict):
    unit: Literal[Unit.CNY, Unit.USD, Unit.count]
    per_pilot_cap: PositiveDecimal
    aggregate_cap: PositiveDecimal | None = None
    required: bool = True
    description: str = ""

    @model_validator(mode="after")
    def _aggregate_not_below_per_pilot(self) -> Self:
        if self.aggregate_cap is not None and self.aggregate_cap < self.per_pilot_cap:
            raise ValueError("aggregate_cap is below per_pilot_cap: no pilot could ever be granted its cap")
        return self


class Schedule(Strict):
    frequency: Literal["monthly", "quarterly"]
    due_business_days: Annotated[int, Field(ge=1, le=60)]
    calendar: Name = "cn"
    grace_days: Annotated[int, Field(ge=0, le=30)] = 0
    max_duration_months: Annotated[int, Field(ge=1, le=120)]
    max_extensions: Annotated[int, Field(ge=0, le=5)] = 0
    extension_months: Annotated[int, Field(ge=0, le=60)] = 0

    @model_validator(mode="after")
    def _extensions_have_length(self) -> Self:
        if self.max_extensions and not self.extension_months:
            raise ValueError("max_extensions is set but extension_months is 0")
        return self


class Metric(Strict):
    unit: Unit
    decimals: Annotated[int, Field(ge=0, le=12)]
    min: Number | None = None
    max: Number | None = None
    required: bool = True
    description: str = ""

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Self:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


ScopeValues = Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=80)]], Field(min_length=1)]


class PolicyDocument(Strict):
    program: ProgramInfo
    eligibility: Eligibility
    scope: Annotated[dict[Name, ScopeValues], Field(min_length=1)]
    quotas: Annotated[dict[Name, Quota], Field(min_length=1)]
    schedule: Schedule
    metrics: Annotated[dict[Name, Metric], Field(min_length=1)]
    rules: list[Rule] = []
    builtin_rules: BuiltinRules = BuiltinRules()
    probation: Probation = Probation()
    exemption: ExemptionPolicy | None = None
    alerts: AlertsPolicy = AlertsPolicy()
    tests: list[PolicyTest] = []

    @model_validator(mode="after")
    def _rules_coherent(self) -> Self:
        ids = [rule.id for rule in self.rules]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(twice)}")
        if self.exemption is not None:
            unknown = [r for r in self.exemption.loss_rules if r not in ids]
            if unknown:
                raise ValueError(f"exemption.loss_rules names unknown rules: {', '.join(unknown)}")
            named = [self.exemption.new_business_metric]
            if Criterion.npl_tolerance in self.exemption.criteria:
                named.append(self.exemption.npl_metric)
            for name in named:
                if name is not None and name not in self.metrics:
                    raise ValueError(f"exemption refers to {name!r}, which is not in the metric catalogue")
        return self

    @field_validator("scope")
    @classmethod
    def _scope_values(cls, scope: dict[str, list[str]]) -> dict[str, list[str]]:
        for dimension, values in scope.items():
            if len(set(values)) != len(values):
                raise ValueError(f"scope.{dimension} lists a value twice")
            if dimension == "currencies":
                bad = [v for v in values if not CURRENCY.match(v)]
                if bad:
                    raise ValueError(f"scope.currencies must be ISO 4217 codes; not: {', '.join(bad)}")
        return scope

    def canonical_json(self) -> str:
        # Defaults are left out, so writing a default explicitly and a section added later with
        # defaults leave the hash of an unchanged file as it was.
        data = _canonical(self.model_dump(exclude_defaults=True))
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def content_hash(self) -> str:
        """Identifies the version by meaning: comments, layout, key order, the spelling of a
        number (``0.10``, ``0.1``, ``1e-1``) and spelling out a default do not change it; any
        value does."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def document_from_json(data: dict[str, Any]) -> PolicyDocument:
    return PolicyDocument.model_validate(data)
