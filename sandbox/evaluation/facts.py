"""Assembling what the engine judges from stored rows: pure functions over plain values, plus
the queries that gather them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.institution.service import institution_facts
from sandbox.models import Filing, FilingVersion, Institution, Pilot
from sandbox.pilot.service import granted_quotas
from sandbox.rules.eligibility import InstitutionFacts, check_eligibility
from sandbox.rules.engine import PeriodFacts
from sandbox.rules.periods import Period, expected_periods
from sandbox.rules.policy import PolicyDocument

INSTITUTION_FIELDS = ("rating", "capital_adequacy_ratio", "npl_ratio", "solvency_comprehensive", "solvency_core")


def institution_values(facts: InstitutionFacts) -> dict[str, Decimal | None]:
    values: dict[str, Decimal | None] = {name: getattr(facts, name) for name in INSTITUTION_FIELDS}
    values["rating"] = Decimal(facts.rating)
    return values


def ineligibility(document: PolicyDocument, facts: InstitutionFacts, on: date) -> tuple[str, ...]:
    """The eligibility criteria the institution fails now (re-checked at every filing)."""
    criteria = check_eligibility(
        document.eligibility, facts, as_of=on, other_participants=0, already_participating=True
    )
    return tuple(c.detail for c in criteria if not c.met)


def out_of_scope(breakdown: Sequence[Mapping[str, Any]], scope: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    found = []
    for row in breakdown:
        outside = {
            dim: value for dim, value in row.get("dimensions", {}).items() if dim in scope and value not in scope[dim]
        }
        if outside:
            where = ", ".join(
                f"{dim}={value} (granted: {', '.join(scope[dim])})" for dim, value in sorted(outside.items())
            )
            found.append(f"{row['metric']} {row['value']} in {where}")
    return tuple(found)


def decimals(values: Mapping[str, str]) -> dict[str, Decimal]:
    return {name: Decimal(text) for name, text in values.items()}


@dataclass(frozen=True)
class Inputs:
    """Everything one evaluation read, in JSON-ready form (stored with the evaluation)."""

    versions: list[tuple[str, uuid.UUID | None]]  # expected period label -> filing version judged
    institution: dict[str, str | None]
    ineligible: list[str]
    quotas: dict[str, str]
    days_late: str | None  # the current period's, when it was not filed (the scan's count)

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": [[label, str(vid) if vid else None] for label, vid in self.versions],
            "institution": self.institution,
            "ineligible": self.ineligible,
            "quotas": self.quotas,
            "days_late": self.days_late,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inputs:
        return cls(
            versions=[(label, uuid.UUID(vid) if vid else None) for label, vid in data["versions"]],
            institution=dict(data["institution"]),
            ineligible=list(data["ineligible"]),
            quotas=dict(data["quotas"]),
            days_late=data.get("days_late"),
        )


def build_history(
    periods: Sequence[Period],
    versions: Mapping[str, FilingVersion],
    inputs: Inputs,
    scope: Mapping[str, Sequence[str]],
) -> list[PeriodFacts]:
    institution = {k: (Decimal(v) if v is not None else None) for k, v in inputs.institution.items()}
    quotas = decimals(inputs.quotas)
    history = []
    for period in periods:
        version = versions.get(period.label)
        days_late: Decimal | None
        if version is not None:
            days_late = Decimal(version.days_late)
        else:
            days_late = Decimal(inputs.days_late) if inputs.days_late is not None and period is periods[-1] else None
        history.append(
            PeriodFacts(
                period=period,
                filed=version is not None,
                metrics=decimals(version.metrics) if version is not None else {},
                days_late=days_late,
                out_of_scope=out_of_scope(version.breakdown, scope) if version is not None else (),
                institution=institution,
                ineligible=tuple(inputs.ineligible),
                quotas=quotas,
            )
        )
    return history


def pilot_periods(pilot: Pilot, document: PolicyDocument, upto: Period) -> list[Period]:
    return [p for p in expected_periods(pilot.start_on, pilot.end_on, document.schedule.frequency) if p <= upto]


def latest_versions(session: Session, pilot_id: uuid.UUID) -> dict[str, FilingVersion]:
    rows = session.execute(
        select(Filing.period, FilingVersion)
        .join(FilingVersion, FilingVersion.filing_id == Filing.id)
        .where(Filing.pilot_id == pilot_id, FilingVersion.version == Filing.latest_version)
    ).all()
    return {row[0]: row[1] for row in rows}


def versions_by_id(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, FilingVersion]:
    if not ids:
        return {}
    return {v.id: v for v in session.scalars(select(FilingVersion).where(FilingVersion.id.in_(ids)))}


def current_inputs(
    session: Session,
    pilot: Pilot,
    institution: Institution,
    document: PolicyDocument,
    periods: Sequence[Period],
    versions: Mapping[str, FilingVersion],
    *,
    on: date,
    days_late: int | None = None,
) -> Inputs:
    facts = institution_facts(institution)
    return Inputs(
        versions=[(p.label, versions[p.label].id if p.label in versions else None) for p in periods],
        institution={k: (format(v, "f") if v is not None else None) for k, v in institution_values(facts).items()},
        ineligible=list(ineligibility(document, facts, on)),
        quotas={k: format(v, "f") for k, v in granted_quotas(session, pilot).items()},
        days_late=str(days_late) if days_late is not None else None,
    )
