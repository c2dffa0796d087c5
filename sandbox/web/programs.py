"""Program pages: the list of programs with the policy version in force today, and one program's
page with everything its policy in force says (who may take part, the scope, the quotas and how
much of the program's caps is already granted, the filing schedule, the metrics, the rules and
their levels, the due-diligence exemption, probation) and its version history, with the stored
policy file of any version as plain text.

Nothing here decides anything: the version in force comes from the program service
(``policy_in_force``), the allocations from the pilot repository, a rule's level from
``sandbox.rules.levels``. The page only puts them in words.

A rule's level that follows from a granted quota (``exposure_outstanding / quota.exposure_limit >=
0.90``) has no amount on a program page, where no quota is granted: the page asks
``rule_level`` for the level with each quota at 1, and, when the level moves with that one quota
alone (doubling it doubles the level, doubling any other leaves it), shows the result as a share
of the granted quota ("≥ 90% of the granted exposure limit"). Any other formula over quotas is
shown as written; a condition with no single level says why, in ``rule_level``'s words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.api.deps import DbSession
from sandbox.errors import NotFound
from sandbox.models import PilotState, PolicyVersion, Program
from sandbox.pilot import repository as pilot_repository
from sandbox.program import repository as program_repository
from sandbox.program import service as program_service
from sandbox.program.service import NoPolicyInForce
from sandbox.rules.calendar import WorkingCalendar
from sandbox.rules.engine import INSTITUTION_ELIGIBLE, WITHIN_SCOPE, CompiledRule, compile_policy
from sandbox.rules.levels import RuleLevel, rule_level
from sandbox.rules.policy import Eligibility, PolicyDocument, Schedule
from sandbox.rules.rulebook import Action, BuiltinRule, Criterion, ExemptionPolicy, Mode, Rule
from sandbox.web.applications import may_create
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import WebRoute, bureau_today, label, number, render
from sandbox.web.pilots import OPERATOR_TEXT

router = APIRouter(include_in_schema=False, route_class=WebRoute)

MAX_PROGRAMS = 200
HASH_SHOWN = 12
ProgramCode = Annotated[str, Path(min_length=1, max_length=40)]
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")  # the download's file name: never a quote or a path
BUILTIN_WORDS = {
    WITHIN_SCOPE: "Business reported outside the granted scope (breakdown rows of a filing).",
    INSTITUTION_ELIGIBLE: "The institution no longer meets the program's eligibility criteria, re-checked at every filing.",
}
MISSING_WORDS = {
    "keep_state": "keep state",
    "breach": "counts as a breach",
    "ignore": "ignored",
}
ERROR_WORDS = {"hold": "hold", "warn": "warn", "breach": "counts as a breach"}


# -- the list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramRow:
    program: Program
    version: str | None
    effective_from: date | None
    active_pilots: int


@router.get("/programs", response_class=HTMLResponse)
def programs_page(request: Request, session: DbSession, actor: RequiredWebActor) -> Response:
    today = bureau_today(request)
    programs, total = program_service.list_programs(session, 0, MAX_PROGRAMS)
    in_force = program_service.versions_in_force(session, programs, today)
    active = pilot_repository.count_in_state(session, [p.id for p in programs], PilotState.active)
    rows = [
        ProgramRow(
            program,
            in_force[program.id].version if program.id in in_force else None,
            in_force[program.id].effective_from if program.id in in_force else None,
            active.get(program.id, 0),
        )
        for program in programs
    ]
    context = {"rows": rows, "total": total, "today": today}
    return render(request, "programs/list.html", context, actor=actor)


# -- one program -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One eligibility criterion in words."""

    criterion: str
    requirement: str


@dataclass(frozen=True)
class CapRow:
    """A quota's program-wide cap and how much of it the program's pilots hold now."""

    quota: str
    unit: str
    cap: Decimal
    allocated: Decimal

    @property
    def available(self) -> Decimal:
        return self.cap - self.allocated

    @property
    def share(self) -> str:
        """Percent of the cap allocated, to one decimal (rounded half-even, as the pilot page does)."""
        return f"{(self.allocated / self.cap * 100).quantize(Decimal('0.1')):f}%"


@dataclass(frozen=True)
class RuleRow:
    rule: Rule
    level: str | None  # the level in words, when the condition has one
    note: str | None  # why it has none, when it reads a metric but has no single level


@dataclass(frozen=True)
class BuiltinRow:
    id: str
    config: BuiltinRule
    words: str


@dataclass(frozen=True)
class VersionRow:
    version: str
    effective_from: date
    content_hash: str
    loaded_at: datetime
    in_force: bool

    @property
    def short_hash(self) -> str:
        return self.content_hash[:HASH_SHOWN]


def _percent(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


def _words(values: Iterable[Any]) -> str:
    return ", ".join(label(v) for v in values)


def requirements(eligibility: Eligibility, participants: int) -> list[Requirement]:
    """Each criterion ``check_eligibility`` applies, with its threshold, in the order it checks them."""
    rows = [
        Requirement("Institution status", "Active."),
        Requirement("Institution type", f"One of: {_words(eligibility.institution_types)}."),
        Requirement(
            "Regulatory rating",
            f"{eligibility.min_rating} or better (ratings run from 1, the best, to 6)."
            if eligibility.min_rating < 6
            else "Any rating (1 to 6).",
        ),
    ]
    if eligibility.regions is not None:
        rows.append(Requirement("Region", f"One of: {', '.join(eligibility.regions)}."))
    ratios = (
        ("Capital-adequacy ratio", eligibility.min_capital_adequacy_ratio, "At least"),
        ("Bank-wide NPL ratio", eligibility.max_npl_ratio, "At most"),
        ("Comprehensive solvency ratio", eligibility.min_solvency_comprehensive, "At least"),
        ("Core solvency ratio", eligibility.min_solvency_core, "At least"),
    )
    for name, threshold, bound in ratios:
        if threshold is not None:
            rows.append(Requirement(name, f"{bound} {_percent(threshold)} ({number(threshold)})."))
    if eligibility.no_major_penalty_years is not None:
        years = eligibility.no_major_penalty_years
        rows.append(
            Requirement("Major administrative penalties", f"None in the last {years} year{'s' if years != 1 else ''}.")
        )
    if eligibility.allow:
        rows.append(Requirement("Allow list", f"Only these institutions: {', '.join(eligibility.allow)}."))
    if eligibility.deny:
        rows.append(Requirement("Deny list", f"Never these institutions: {', '.join(eligibility.deny)}."))
    if eligibility.max_institutions is not None:
        rows.append(
            Requirement(
                "Participating institutions",
                f"At most {eligibility.max_institutions}; {participants} "
                f"take{'s' if participants == 1 else ''} part now (with a pilot not yet ended).",
            )
        )
    return rows


def cap_rows(policy: PolicyDocument, allocated: Mapping[str, Decimal]) -> list[CapRow]:
    """Each quota with an aggregate cap in the policy in force. (A quota without one, such as a
    per-deal limit, bounds each pilot alone: the sum granted says nothing, so it is not shown.)"""
    return [
        CapRow(name, quota.unit.value, quota.aggregate_cap, allocated.get(name, Decimal(0)))
        for name, quota in policy.quotas.items()
        if quota.aggregate_cap is not None
    ]


def _level_words(level: RuleLevel, value: str) -> str:
    return f"{level.metric} {OPERATOR_TEXT[level.operator]} {value}"


def _with_quotas(names: Sequence[str], doubled: str | None = None) -> dict[str, Decimal]:
    return {name: Decimal(2) if name == doubled else Decimal(1) for name in names}


def level_of(rule: CompiledRule, quota_names: Sequence[str]) -> tuple[str | None, str | None]:
    """A rule's level in words, or why it has none; (None, None) for a rule that reads no metric.
    See the module's docstring for levels that follow from a granted quota."""
    plain = rule_level(rule, {})
    if plain is None:
        return None, None
    if isinstance(plain, RuleLevel):
        return _level_words(plain, number(plain.value)), None
    unit = rule_level(rule, _with_quotas(quota_names))
    if not isinstance(unit, RuleLevel):
        return None, (unit or plain).why
    if unit.quota is not None:
        moved = {name: rule_level(rule, _with_quotas(quota_names, name)) for name in quota_names}
        proportional = all(
            isinstance(level, RuleLevel)
            and level.operator == unit.operator
            and level.value == (2 * unit.value if name == unit.quota else unit.value)
            for name, level in moved.items()
        )
        if proportional:
            return _level_words(unit, f"{_percent(unit.value)} of the granted {label(unit.quota)}"), None
    return _level_words(unit, unit.basis or number(unit.value)), None


def rule_rows(policy: PolicyDocument) -> list[RuleRow]:
    compiled = {rule.id: rule for rule in compile_policy(policy).rules}
    names = list(policy.quotas)
    rows = []
    for rule in policy.rules:
        level, note = level_of(compiled[rule.id], names) if rule.id in compiled else (None, None)
        rows.append(RuleRow(rule, level, note))
    return rows


def exemption_criteria(exemption: ExemptionPolicy) -> list[str]:
    """The due-diligence criteria in words, with the policy's own numbers (see
    ``sandbox.exemption.assessment`` for how each is judged)."""
    words = {
        Criterion.filings_on_time: "Every filing due before the event was on time (first version, by its due date).",
        Criterion.within_scope_and_quota: (
            "Within the granted scope and quotas at every filing up to the event "
            "(no breach of within-scope or of an enforced rule that reads a quota)."
        ),
        Criterion.reported_within_days: (
            f"The loss was reported within {exemption.report_within_days} "
            f"day{'s' if exemption.report_within_days != 1 else ''} of occurring."
        ),
        Criterion.no_new_business_while_suspended: (
            f"No new business while suspended ({exemption.new_business_metric or 'the new-business metric'} "
            "is 0 or absent in every wholly suspended period)."
        ),
        Criterion.no_prior_breach: (
            f"No breach of an enforced trip rule in the {exemption.prior_breach_periods} "
            f"period{'s' if exemption.prior_breach_periods != 1 else ''} before the event's."
        ),
        Criterion.active_when_done: "The pilot was active (not suspended) on the day the business was done.",
        Criterion.npl_tolerance: (
            f"The pilot's {exemption.npl_metric} is at most the institution's bank-wide NPL ratio plus "
            f"{number(exemption.npl_tolerance)}."
        ),
    }
    return [words[criterion] for criterion in exemption.criteria]


@dataclass(frozen=True)
class CalendarInfo:
    name: str
    title: str
    years: str  # the years with holiday data, or "" when the calendar is not loaded


def calendar_info(schedule: Schedule, calendars: Mapping[str, WorkingCalendar]) -> CalendarInfo:
    calendar = calendars.get(schedule.calendar)
    if calendar is None:
        return CalendarInfo(schedule.calendar, "", "")
    return CalendarInfo(calendar.name, calendar.title, ", ".join(str(y) for y in sorted(calendar.years)))


def _version_rows(session: Session, program: Program, in_force: PolicyVersion | None) -> list[VersionRow]:
    heads = program_repository.version_heads(session, [program.id])
    return [
        VersionRow(
            head.version,
            head.effective_from,
            head.content_hash,
            head.loaded_at,
            in_force is not None and head.id == in_force.id,
        )
        for head in reversed(heads)
    ]


def _in_force(session: Session, program: Program, today: date) -> tuple[PolicyVersion | None, str | None]:
    try:
        return program_service.policy_in_force(session, program, today), None
    except NoPolicyInForce as exc:
        return None, exc.detail


def _page_context(request: Request, session: Session, program: Program, actor: Actor) -> dict[str, Any]:
    today = bureau_today(request)
    version, problem = _in_force(session, program, today)
    policy = program_service.policy_document(version) if version is not None else None
    active = pilot_repository.count_in_state(session, [program.id], PilotState.active).get(program.id, 0)
    context: dict[str, Any] = {
        "program": program,
        "today": today,
        "version": version,
        "policy": policy,
        "problem": problem,
        "active_pilots": active,
        "may_apply": version is not None and may_create(actor),
        "versions": _version_rows(session, program, version),
        "missing_words": MISSING_WORDS,
        "error_words": ERROR_WORDS,
        "warn": Action.warn,
        "shadow": Mode.shadow,
    }
    if policy is not None:
        participants = len(pilot_repository.live_participants(session, program.id))
        context.update(
            requirements=requirements(policy.eligibility, participants),
            caps=cap_rows(policy, pilot_repository.allocated_by_quota(session, program.id)),
            uncapped=[name for name, quota in policy.quotas.items() if quota.aggregate_cap is None],
            rules=rule_rows(policy),
            builtins=[
                BuiltinRow(WITHIN_SCOPE, policy.builtin_rules.within_scope, BUILTIN_WORDS[WITHIN_SCOPE]),
                BuiltinRow(
                    INSTITUTION_ELIGIBLE,
                    policy.builtin_rules.institution_eligible,
                    BUILTIN_WORDS[INSTITUTION_ELIGIBLE],
                ),
            ],
            exemption=exemption_criteria(policy.exemption) if policy.exemption is not None else None,
            calendar=calendar_info(policy.schedule, request.app.state.calendars),
        )
    return context


@router.get("/programs/{code}", response_class=HTMLResponse)
def program_page(request: Request, code: ProgramCode, session: DbSession, actor: RequiredWebActor) -> Response:
    program = program_service.get_program(session, code)
    return render(request, "programs/program.html", _page_context(request, session, program, actor), actor=actor)


@router.get("/programs/{code}/policy.yaml")
def policy_file(
    request: Request,
    code: ProgramCode,
    session: DbSession,
    actor: RequiredWebActor,
    version: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The policy file as it was loaded (comments and all) for the version in force today, or for
    the version named; its content hash is the hash of what the file means, shown on the page."""
    program = program_service.get_program(session, code)
    if version:
        found = program_repository.find_version(session, program.id, version)
        if found is None:
            raise NotFound(f"program {program.code} has no policy version {version!r}")
    else:
        found = program_service.policy_in_force(session, program, bureau_today(request))
    filename = _SAFE_NAME.sub("_", f"{program.code}-{found.version}.yaml")
    return PlainTextResponse(
        found.source_text,
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


__all__ = ["router"]
