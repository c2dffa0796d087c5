"""Eligibility: which institutions may run a pilot under a program. Pure; every criterion is
reported, met or not, so a refusal lists all of them at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sandbox.rules.policy import Eligibility


@dataclass(frozen=True)
class InstitutionFacts:
    code: str
    type: str
    region: str
    status: str
    rating: int
    capital_adequacy_ratio: Decimal | None
    npl_ratio: Decimal | None
    solvency_comprehensive: Decimal | None
    solvency_core: Decimal | None
    last_major_penalty_on: date | None


@dataclass(frozen=True)
class Criterion:
    name: str
    met: bool
    detail: str


def _pct(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


def _at_least(name: str, label: str, actual: Decimal | None, minimum: Decimal) -> Criterion:
    if actual is None:
        return Criterion(name, False, f"{label} is not on record (at least {_pct(minimum)} is required)")
    met = actual >= minimum
    return Criterion(name, met, f"{label} {_pct(actual)} {'meets' if met else 'is below'} the minimum {_pct(minimum)}")


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def check_eligibility(
    rules: Eligibility,
    facts: InstitutionFacts,
    *,
    as_of: date,
    other_participants: int,
    already_participating: bool,
) -> list[Criterion]:
    """``other_participants``: institutions other than this one with a live pilot in the program."""
    result: list[Criterion] = [
        Criterion(
            "institution_active",
            facts.status == "active",
            f"institution status is {facts.status}" + ("" if facts.status == "active" else "; it must be active"),
        ),
        Criterion(
            "institution_type",
            facts.type in rules.institution_types,
            f"type {facts.type} "
            + (
                "is admitted"
                if facts.type in rules.institution_types
                else "is not among: " + ", ".join(rules.institution_types)
            ),
        ),
        Criterion(
            "rating",
            facts.rating <= rules.min_rating,
            f"regulatory rating {facts.rating} "
            + ("is within" if facts.rating <= rules.min_rating else "is worse than")
            + f" the required {rules.min_rating} or better",
        ),
    ]
    if rules.regions is not None:
        inside = facts.region in rules.regions
        result.append(
            Criterion(
                "region",
                inside,
                f"region {facts.region} " + ("is admitted" if inside else "is not among: " + ", ".join(rules.regions)),
            )
        )
    if rules.min_capital_adequacy_ratio is not None:
        result.append(
            _at_least(
                "capital_adequacy_ratio",
                "capital-adequacy ratio",
                facts.capital_adequacy_ratio,
                rules.min_capital_adequacy_ratio,
            )
        )
    if rules.max_npl_ratio is not None:
        if facts.npl_ratio is None:
            result.append(Criterion("npl_ratio", False, "bank-wide NPL ratio is not on record"))
        else:
            met = facts.npl_ratio <= rules.max_npl_ratio
            result.append(
                Criterion(
                    "npl_ratio",
                    met,
                    f"bank-wide NPL ratio {_pct(facts.npl_ratio)} {'is within' if met else 'exceeds'} the maximum {_pct(rules.max_npl_ratio)}",
                )
            )
    if rules.min_solvency_comprehensive is not None:
        result.append(
            _at_least(
                "solvency_comprehensive",
                "comprehensive solvency",
                facts.solvency_comprehensive,
                rules.min_solvency_comprehensive,
            )
        )
    if rules.min_solvency_core is not None:
        result.append(_at_least("solvency_core", "core solvency", facts.solvency_core, rules.min_solvency_core))
    if rules.no_major_penalty_years is not None:
        since = _years_before(as_of, rules.no_major_penalty_years)
        penalty = facts.last_major_penalty_on
        clean = penalty is None or penalty < since
        result.append(
            Criterion(
                "no_major_penalty",
                clean,
                (
                    f"no major administrative penalty since {since.isoformat()}"
                    if clean
                    else f"major administrative penalty on {penalty.isoformat() if penalty else '?'}, within {rules.no_major_penalty_years} years"
                ),
            )
        )
    if rules.allow:
        listed = facts.code in rules.allow
        result.append(
            Criterion("allow_list", listed, f"{facts.code} is {'on' if listed else 'not on'} the program's allow list")
        )
    if facts.code in rules.deny:
        result.append(Criterion("deny_list", False, f"{facts.code} is on the program's deny list"))
    if rules.max_institutions is not None and not already_participating:
        room = other_participants < rules.max_institutions
        result.append(
            Criterion(
                "max_institutions",
                room,
                f"{other_participants} of at most {rules.max_institutions} institutions already take part"
                + ("" if room else "; the program is full"),
            )
        )
    return result
