"""Pilot pages: the list, the pilot page (scope, quotas and their use, breakers, each metric's
history charted against the levels of the rules that test it, evaluations, filings, risk
events), the lifecycle commands the pilot service allows the signed-in user, and risk-event
reporting for the pilot's institution.

Everything shown comes from the services and repositories the API uses; which level of a rule can
be drawn as a line comes from ``sandbox.rules.levels``; a rule without one is listed under the
chart in words, never guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.api.deps import DbSession
from sandbox.breaker import service as breaker_service
from sandbox.clock import Clock
from sandbox.errors import InvalidInput, NotFound
from sandbox.evaluation import repository as evaluation_repository
from sandbox.evaluation import service as evaluation_service
from sandbox.evaluation.facts import latest_versions
from sandbox.filing import service as filing_service
from sandbox.models import Institution, Pilot, PilotState, Program, RiskEventKind
from sandbox.pilot import repository as pilot_repository
from sandbox.pilot import service as pilot_service
from sandbox.pilot.schemas import ExtendBody, OptionalReasonBody, ReasonBody
from sandbox.program.service import NoPolicyInForce, list_programs, policy_document, policy_in_force
from sandbox.risk import service as risk_service
from sandbox.risk.schemas import RiskEventCreate
from sandbox.rules.engine import CompiledRule, compile_policy
from sandbox.rules.levels import RuleLevel, RuleNote, rule_level
from sandbox.rules.periods import Frequency, Period, PeriodError, expected_periods, parse_period
from sandbox.rules.policy import PolicyDocument
from sandbox.rules.rulebook import Mode
from sandbox.web.auth import RequiredWebActor
from sandbox.web.chart import KIND_WORDS, Level, Point, chart_id, render_chart
from sandbox.web.page import (
    FormVersion,
    WebRoute,
    bureau_today,
    id_from_url,
    number,
    paging,
    parse_form,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False, route_class=WebRoute)

PAGE_SIZE = 50
RECENT_EVALUATIONS = 12
RECENT_FILINGS = 24
RECENT_RISK_EVENTS = 20
MAX_BREAKERS = 200
# Who reports risk events: the service enforces it (``report_risk_event``); the page only uses it
# to decide whether to offer the form.
COMMAND_BUTTONS = {
    "suspend": "Suspend",
    "resume": "Resume",
    "extend": "Extend",
    "complete": "Complete",
    "terminate": "Terminate",
    "withdraw": "Withdraw",
}
COMMAND_HEADINGS = {
    "suspend": "Suspend the pilot",
    "resume": "Resume the pilot",
    "extend": "Extend the pilot",
    "complete": "Complete the pilot",
    "terminate": "Terminate the pilot",
    "withdraw": "Withdraw the pilot",
}
COMMAND_HELP = {
    "suspend": "New business stops at once; existing business is still serviced.",
    "resume": "Only once no breaker is tripped or acknowledged.",
    "extend": "Moves the end date, within the program's maximum duration.",
    "complete": "Ends the pilot as completed; its quotas are released.",
    "terminate": "Ends the pilot; its quotas are released.",
    "withdraw": "Your institution ends its pilot; its quotas are released.",
}
COMMAND_NOTICES = {
    "suspend": "Pilot suspended.",
    "resume": "Pilot resumed.",
    "complete": "Pilot completed.",
    "terminate": "Pilot terminated.",
    "withdraw": "Pilot withdrawn.",
}
RISK_FIELDS = {
    "kind": "Kind of event",
    "occurred_on": "Occurred on",
    "amount": "Loss amount",
    "description": "Description",
}
FINDINGS = {
    "grant": "system finding: grant, every criterion met",
    "deny": "system finding: deny, not every criterion met",
}
COMMAND_FIELDS = {"reason": "Reason", "end_on": "New end date"}
OPERATOR_TEXT = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}


def level_label(level: RuleLevel) -> str:
    return f"{level.rule_id} {OPERATOR_TEXT[level.operator]} {number(level.value)}"


# -- the pilot page's view of its data ------------------------------------------------------------


@dataclass
class QuotaRow:
    name: str
    unit: str
    granted: Decimal
    released: bool
    metric: str | None = None
    period: str | None = None
    used: Decimal | None = None
    share: Decimal | None = None  # percent of the granted amount, one decimal


@dataclass
class MetricView:
    name: str
    unit: str
    description: str
    required: bool
    points: list[Point]
    levels: list[RuleLevel]
    quota_lines: list[tuple[str, Decimal]]
    notes: list[RuleNote]
    svg: Any = None
    ident: str = ""
    last: Point | None = None

    @property
    def legend_levels(self) -> list[Level]:
        lines = [
            Level(level_label(level) + (" (shadow)" if level.shadow else ""), level.value, level.kind, level.rule_id)
            for level in self.levels
        ]
        return lines + [Level(f"quota {name}", amount, "quota") for name, amount in self.quota_lines]


@dataclass
class PolicyView:
    version: str | None
    document: PolicyDocument | None
    rules: list[CompiledRule] = field(default_factory=list)
    problem: str | None = None


def _now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock.now()


def _policy(session: Session, program: Program, on: date) -> PolicyView:
    try:
        version = policy_in_force(session, program, on)
    except NoPolicyInForce as exc:
        return PolicyView(None, None, problem=exc.detail)
    document = policy_document(version)
    return PolicyView(version.version, document, list(compile_policy(document).rules))


def _periods(pilot: Pilot, frequency: Frequency, known: Sequence[str]) -> list[Period]:
    """The pilot's expected periods up to the last one filed or evaluated (unfiled ones included,
    so a gap shows), and any filed period outside them."""
    parsed: list[Period] = []
    for label in known:
        try:
            parsed.append(parse_period(label, frequency))
        except PeriodError:
            continue
    if not parsed:
        return []
    last = max(parsed)
    expected = [p for p in expected_periods(pilot.start_on, pilot.end_on, frequency) if p <= last]
    return sorted(set(expected) | set(parsed))


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _metrics(
    pilot: Pilot,
    policy: PolicyView,
    frequency: Frequency,
    versions: Mapping[str, Any],
    tripped: Mapping[str, set[str]],
    granted: Mapping[str, Decimal],
) -> tuple[list[MetricView], list[str]]:
    """One view per metric the pilot files; and the optional metrics never filed (not charted)."""
    periods = _periods(pilot, frequency, [*versions, *tripped])
    filed_names: list[str] = []
    for label in sorted(versions):
        for name in versions[label].metrics:
            if name not in filed_names:
                filed_names.append(name)
    catalogue = policy.document.metrics if policy.document is not None else {}
    names = [n for n, spec in catalogue.items() if spec.required or n in filed_names]
    names += [n for n in filed_names if n not in catalogue]
    unfiled_optional = [n for n, spec in catalogue.items() if not spec.required and n not in filed_names]

    levels: dict[str, list[RuleLevel]] = {}
    notes: dict[str, list[RuleNote]] = {}
    quota_lines: dict[str, list[tuple[str, Decimal]]] = {}
    readers: dict[str, set[str]] = {}
    for rule in policy.rules:
        if rule.when is None:
            continue
        for metric in rule.when.metrics:
            readers.setdefault(metric, set()).add(rule.id)
        found = rule_level(rule, granted)
        if isinstance(found, RuleLevel):
            levels.setdefault(found.metric, []).append(found)
            if found.quota is not None and found.quota in granted:
                lines = quota_lines.setdefault(found.metric, [])
                if all(name != found.quota for name, _ in lines):
                    lines.append((found.quota, granted[found.quota]))
            for metric in sorted(rule.when.metrics - {found.metric}):
                notes.setdefault(metric, []).append(
                    RuleNote(
                        rule.id, rule.action.value, rule.mode is Mode.shadow, rule.when.text, "it reads this metric too"
                    )
                )
        elif isinstance(found, RuleNote):
            for metric in sorted(rule.when.metrics):
                notes.setdefault(metric, []).append(found)

    views = []
    for name in names:
        spec = catalogue.get(name)
        points = []
        for period in periods:
            version = versions.get(period.label)
            value = _decimal(version.metrics.get(name)) if version is not None else None
            hit = bool(tripped.get(period.label, set()) & readers.get(name, set()))
            points.append(Point(period.end, value, period.label, hit))
        view = MetricView(
            name=name,
            unit=spec.unit.value if spec is not None else "",
            description=spec.description if spec is not None else "",
            required=spec.required if spec is not None else False,
            points=points,
            levels=levels.get(name, []),
            quota_lines=quota_lines.get(name, []),
            notes=notes.get(name, []),
        )
        view.ident = chart_id(name)
        filed = [p for p in points if p.value is not None]
        view.last = filed[-1] if filed else None
        shown_unit = "" if view.unit == "ratio" else view.unit
        view.svg = render_chart(name, points, view.legend_levels, unit=shown_unit, ident=view.ident)
        views.append(view)
    return views, unfiled_optional


def _quotas(session: Session, pilot: Pilot, policy: PolicyView, metrics: Sequence[MetricView]) -> list[QuotaRow]:
    """Each granted quota, and its use: the latest filed value of the metric its rules measure."""
    measured: dict[str, str] = {}
    for view in metrics:
        for level in view.levels:
            if level.quota is not None:
                measured.setdefault(level.quota, view.name)
    by_name = {view.name: view for view in metrics}
    rows = []
    for allocation in pilot_repository.allocations(session, pilot.id):
        spec = policy.document.quotas.get(allocation.quota) if policy.document is not None else None
        row = QuotaRow(
            allocation.quota, spec.unit.value if spec else "", allocation.amount, allocation.released_at is not None
        )
        metric = measured.get(allocation.quota)
        if metric is not None:
            row.metric = metric
            last = by_name[metric].last
            if last is not None and last.value is not None:
                row.period, row.used = last.label, last.value
                if allocation.amount:
                    row.share = (last.value / allocation.amount * 100).quantize(Decimal("0.1"))
        rows.append(row)
    return rows


def _outcome_summary(outcomes: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """An evaluation in a few words, and the rules that fired (breached), with their effect."""
    counts: dict[str, int] = {}
    fired = []
    for outcome in outcomes:
        status = str(outcome.get("status"))
        counts[status] = counts.get(status, 0) + 1
        if status == "breach":
            text = f"{outcome['rule_id']} ({outcome.get('action', '')}"
            if outcome.get("mode") == "shadow":
                text += ", shadow"
            breaker = outcome.get("breaker") or {}
            if "tripped" in breaker.get("signals", ()):
                text += ", breaker tripped"
            elif breaker.get("state"):
                text += f", breaker {breaker['state']}"
            fired.append(text + ")")
    problems = [
        f"{counts[s]} rule{'s' if counts[s] != 1 else ''} {word}"
        for s, word in (("breach", "breached"), ("missing", "missing an input"), ("error", "not computable"))
        if counts.get(s)
    ]
    summary = ", ".join(problems) if problems else f"all {counts.get('pass', 0)} rules pass"
    return summary, fired


def _acknowledged(state: str) -> str:
    if state == "acknowledged":
        return "Yes"
    if state == "tripped":
        return "No"
    return "—"


def _page_context(session: Session, request: Request, pilot: Pilot, actor: Actor) -> dict[str, Any]:
    today = bureau_today(request)
    program = session.get(Program, pilot.program_id)
    institution = session.get(Institution, pilot.institution_id)
    assert program is not None and institution is not None
    policy = _policy(session, program, today)
    granted = pilot_service.granted_quotas(session, pilot)
    frequency = evaluation_service.pilot_schedule(session, pilot).frequency
    versions = latest_versions(session, pilot.id)
    tripped = evaluation_repository.tripped_rules_by_period(session, pilot.id)
    metrics, unfiled_optional = _metrics(pilot, policy, frequency, versions, tripped, granted)
    quotas = _quotas(session, pilot, policy, metrics)
    breakers, breakers_total = breaker_service.list_breakers(
        session, actor=actor, pilot_id=pilot.id, states=None, offset=0, limit=MAX_BREAKERS
    )
    evaluations, evaluations_total = evaluation_service.list_evaluations(
        session, pilot.id, actor=actor, period=None, offset=0, limit=RECENT_EVALUATIONS
    )
    filings, filings_total = filing_service.list_filings(session, pilot.id, actor=actor, offset=0, limit=RECENT_FILINGS)
    events, events_total = risk_service.list_risk_events(
        session, pilot.id, actor=actor, offset=0, limit=RECENT_RISK_EVENTS
    )
    return {
        "pilot": pilot,
        "program": program,
        "institution": institution,
        "policy": policy,
        "frequency": frequency,
        "quotas": quotas,
        "metrics": metrics,
        "unfiled_optional": unfiled_optional,
        # Open breakers first: they are what keeps a pilot suspended.
        "breakers": sorted(
            ((b, _acknowledged(b.state)) for b, _ in breakers),
            key=lambda row: (row[0].state not in ("tripped", "acknowledged"), row[0].rule_id),
        ),
        "breakers_total": breakers_total,
        "evaluations": [(e, version, *_outcome_summary(e.outcomes)) for e, version in evaluations],
        "evaluations_total": evaluations_total,
        "filings": filings,
        "filings_total": filings_total,
        "risk_events": events,
        "risk_events_total": events_total,
        "risk_exemptions": risk_service.exemption_ids(session, events),
        "commands": [c for c in COMMAND_BUTTONS if c in pilot_service.allowed_commands(pilot, actor)],
        "command_buttons": COMMAND_BUTTONS,
        "command_headings": COMMAND_HEADINGS,
        "command_help": COMMAND_HELP,
        "can_report": actor.role in risk_service.REPORTER_ROLES and actor.institution_id == pilot.institution_id,
        "kind_words": KIND_WORDS,
        "operator_text": OPERATOR_TEXT,
        "risk_kinds": list(RiskEventKind),
        "today": today,
    }


def _risk_form(values: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"values": dict(values or {}), "errors": {}}


# -- form parsing ---------------------------------------------------------------------------------

# -- routes ---------------------------------------------------------------------------------------


@router.get("/pilots", response_class=HTMLResponse)
def pilots_page(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    state: Annotated[str, Query(max_length=20)] = "",
    program: Annotated[str, Query(max_length=40)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    if state and state not in {s.value for s in PilotState}:
        raise InvalidInput(f"unknown pilot state {state!r}; the states are {', '.join(s.value for s in PilotState)}")
    offset = (page - 1) * PAGE_SIZE
    pilots, total = pilot_service.list_pilots(
        session, actor=actor, state=state or None, program=program or None, offset=offset, limit=PAGE_SIZE
    )
    labels = pilot_repository.listing_labels(session, pilots)
    programs, _ = list_programs(session, 0, 200) if actor.is_bureau else ([], 0)
    filters = {k: v for k, v in (("state", state), ("program", program)) if v}
    context = {
        "rows": [(p, labels.get(p.id, ("", "", "", ""))) for p in pilots],
        **paging("/pilots", page=page, size=PAGE_SIZE, shown=len(pilots), total=total, filters=filters),
        "state": state,
        "program": program,
        "states": list(PilotState),
        "programs": programs,
    }
    return render(request, "pilots/list.html", context, actor=actor)


@router.get("/pilots/{pilot_id}", response_class=HTMLResponse)
def pilot_page(request: Request, pilot_id: str, session: DbSession, actor: RequiredWebActor) -> Response:
    pilot = pilot_service.get_pilot(session, id_from_url(pilot_id, "pilot"), actor=actor)
    context = _page_context(session, request, pilot, actor)
    context["risk_form"] = _risk_form({"occurred_on": context["today"].isoformat()})
    return render(request, "pilots/pilot.html", context, actor=actor)


def _risk_page(
    request: Request, session: Session, pilot: Pilot, actor: Actor, form: dict[str, Any], status_code: int = 200
) -> Response:
    program = session.get(Program, pilot.program_id)
    context = {
        "pilot": pilot,
        "program": program,
        "risk_form": form,
        "risk_kinds": list(RiskEventKind),
        "today": bureau_today(request),
    }
    return render(
        request,
        "pilots/risk_event_new.html",
        context,
        actor=actor,
        status_code=status_code,
    )


@router.get("/pilots/{pilot_id}/risk-events/new", response_class=HTMLResponse)
def new_risk_event_page(request: Request, pilot_id: str, session: DbSession, actor: RequiredWebActor) -> Response:
    pilot = pilot_service.get_pilot(session, id_from_url(pilot_id, "pilot"), actor=actor)
    actor.require(*risk_service.REPORTER_ROLES, doing="report a risk event")
    return _risk_page(request, session, pilot, actor, _risk_form({"occurred_on": bureau_today(request).isoformat()}))


@router.post("/pilots/{pilot_id}/risk-events", response_class=HTMLResponse)
def report_risk_event(
    request: Request,
    pilot_id: str,
    session: DbSession,
    actor: RequiredWebActor,
    kind: Annotated[str, Form(max_length=40)] = "",
    occurred_on: Annotated[str, Form(max_length=40)] = "",
    amount: Annotated[str, Form(max_length=80)] = "",
    description: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """A refused form is shown again on its own page (``/pilots/{id}/risk-events/new``'s form) with
    each field's error and the values typed, status 422."""
    pilot = pilot_service.get_pilot(session, id_from_url(pilot_id, "pilot"), actor=actor)
    # Who may report is checked first, so a user who may not gets the refusal, not field errors.
    actor.require(*risk_service.REPORTER_ROLES, doing="report a risk event")
    typed = {"kind": kind, "occurred_on": occurred_on, "amount": amount, "description": description}
    try:
        body = parse_form(RiskEventCreate, typed, RISK_FIELDS)
        event, assessed = risk_service.report_risk_event(
            session,
            pilot.id,
            kind=body.kind,
            occurred_on=body.occurred_on,
            amount=body.amount,
            description=body.description,
            actor=actor,
            at=_now(request),
            calendars=request.app.state.calendars,
        )
    except InvalidInput as exc:
        session.rollback()
        errors = {str(e["loc"][-1]): str(e["msg"]) for e in exc.extra.get("errors", []) if e.get("loc")} or {
            "": exc.detail
        }
        errors = {
            name: text if text.endswith(".") or name not in RISK_FIELDS else f"{RISK_FIELDS[name]}: {text}."
            for name, text in errors.items()
        }
        pilot = pilot_service.get_pilot(session, pilot.id, actor=actor)
        return _risk_page(request, session, pilot, actor, {"values": typed, "errors": errors}, status_code=422)
    notice = f"Risk event reported ({event.kind.replace('_', ' ')} on {event.occurred_on.isoformat()})."
    if assessed:
        findings = "; ".join(FINDINGS.get(e.finding, e.finding) for e in assessed)
        notice += f" The loss was assessed for a due-diligence exemption ({findings}); a supervisor decides it. See Exemptions."
    elif event.amount is not None and event.amount > 0:
        notice += " No exemption assessment was started: the program's policy has no due-diligence criteria."
    return redirect(request, f"/pilots/{pilot.id}", notice=notice)


@router.post("/pilots/{pilot_id}/{command}")
def pilot_command(
    request: Request,
    pilot_id: str,
    command: str,
    session: DbSession,
    actor: RequiredWebActor,
    reason: Annotated[str, Form(max_length=10_000)] = "",
    end_on: Annotated[str, Form(max_length=40)] = "",
    version: FormVersion = None,
) -> Response:
    """Suspend, resume, extend, complete, terminate or withdraw, through the pilot service; a
    refusal goes back to the page with the service's reason (WebRoute)."""
    target = id_from_url(pilot_id, "pilot")
    expected = version
    now = _now(request)
    if command == "extend":
        extend = parse_form(ExtendBody, {"end_on": end_on, "reason": reason}, COMMAND_FIELDS)
        pilot = pilot_service.extend(
            session, target, end_on=extend.end_on, reason=extend.reason, actor=actor, at=now, expected_version=expected
        )
        notice = f"Pilot extended to {pilot.end_on.isoformat()}."
    else:
        if command not in COMMAND_NOTICES:
            raise NotFound(f"unknown pilot command {command!r}")
        model: type[ReasonBody] | type[OptionalReasonBody] = OptionalReasonBody if command == "complete" else ReasonBody
        body = parse_form(model, {"reason": reason}, COMMAND_FIELDS)
        pilot = pilot_service.run_command(
            session, target, command, reason=body.reason, actor=actor, at=now, expected_version=expected
        )
        notice = COMMAND_NOTICES[command]
    return redirect(request, f"/pilots/{pilot.id}", notice=notice)


__all__ = ["router"]
