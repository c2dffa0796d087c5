"""Exemption pages: the list, each exemption with the system's assessment (every due-diligence
criterion, met or not, with the evidence it used and where that came from), the decision history
and the bureau's decide/confirm forms, and the institution's claim form."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.api.deps import DbSession, Now
from sandbox.errors import Conflict, InvalidInput
from sandbox.exemption import service
from sandbox.exemption.schemas import ConfirmBody, DecideBody, ExemptionClaim
from sandbox.models import Evaluation, Exemption, ExemptionState, FilingVersion, Pilot, RiskEvent, Role, User
from sandbox.pilot.service import get_pilot, list_pilots
from sandbox.risk.service import list_risk_events
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import FormVersion, WebRoute, paging, parse_form, redirect, render

router = APIRouter(include_in_schema=False, route_class=WebRoute)

PAGE_SIZE = 50
STATES = [s.value for s in ExemptionState]
DECISIONS: tuple[str, ...] = get_args(DecideBody.model_fields["decision"].annotation)
TRIGGERS = {
    service.TRIGGER_RISK_EVENT: "a reported loss",
    service.TRIGGER_RULE: "a loss rule's breach",
    service.TRIGGER_CLAIM: "the institution's claim",
}
# Each criterion's name on the page and where its evidence comes from (see
# sandbox.exemption.assessment for how each is judged).
CRITERIA: dict[str, tuple[str, str]] = {
    "filings_on_time": (
        "Filings on time",
        "The pilot's filings: the first version of every period due before the event, against its due date.",
    ),
    "within_scope_and_quota": (
        "Within the granted scope and quotas",
        "Every evaluation of the pilot up to the event's period: the built-in within-scope rule and the enforced "
        "trip rules that read a quota.",
    ),
    "reported_within_days": (
        "Reported in time",
        "The risk events the institution reported: when each occurred and when it was reported.",
    ),
    "no_new_business_while_suspended": (
        "No new business while suspended",
        "The pilot's state history (its audit trail) and the new-business metric filed for wholly suspended periods.",
    ),
    "no_prior_breach": (
        "No prior breach",
        "The evaluations of the periods before the event's: breaches of enforced trip rules.",
    ),
    "active_when_done": (
        "Pilot active when the business was done",
        "The pilot's state history (its audit trail) on the event's date.",
    ),
    "npl_tolerance": (
        "NPL ratio within tolerance",
        "The pilot's latest filed NPL metric and the institution's bank-wide NPL ratio on record.",
    ),
}
STATE_HISTORY_CRITERIA = frozenset({"no_new_business_while_suspended", "active_when_done"})
WORDS = {
    "risk_event_id": "Risk event",
    "rule_id": "Rule",
    "due_on": "Due on",
    "days_late": "Days late",
    "occurred_on": "Occurred on",
    "reported_on": "Reported on",
    "pilot_npl": "Pilot NPL",
    "institution_npl": "Institution NPL",
    "report_within_days": "Allowed days to report",
}


def _words(key: str) -> str:
    return WORDS.get(key) or key.replace("_", " ").capitalize()


def _text(value: Any) -> str:
    if value is None:
        return "not on record"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass
class Evidence:
    """One fact of a criterion's evidence, ready to show: a value, a list, or a small table."""

    label: str
    text: str | None = None
    items: list[str] | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class CriterionView:
    key: str
    title: str
    met: bool
    detail: str
    source: str
    evidence: list[Evidence]
    state_history: bool


def _evidence(evidence: dict[str, Any], describe: dict[str, str]) -> list[Evidence]:
    """Every fact in an assessment's evidence; risk event ids are shown as the events they are."""
    shown = []
    for key, value in evidence.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            keys = list(dict.fromkeys(k for row in value for k in row))
            rows = [
                [
                    describe.get(str(row.get(k)), _text(row.get(k))) if k == "risk_event_id" else _text(row.get(k))
                    for k in keys
                ]
                for row in value
            ]
            shown.append(Evidence(_words(key), columns=[_words(k) for k in keys], rows=rows))
        elif isinstance(value, list):
            shown.append(Evidence(_words(key), items=[_text(v) for v in value]))
        else:
            shown.append(Evidence(_words(key), text=_text(value)))
    return shown


def _risk_event_text(event: RiskEvent) -> str:
    amount = f", {event.amount}" if event.amount is not None else ""
    return f"{event.kind.replace('_', ' ')} of {event.occurred_on.isoformat()}{amount}"


def _criteria(session: Session, exemption: Exemption) -> list[CriterionView]:
    ids = {
        str(report.get("risk_event_id"))
        for criterion in exemption.assessment.get("criteria", [])
        for report in criterion.get("evidence", {}).get("reports", [])
        if report.get("risk_event_id")
    }
    describe = {}
    for text in ids:
        event = session.get(RiskEvent, uuid.UUID(text))
        if event is not None:
            describe[text] = _risk_event_text(event)
    views = []
    for criterion in exemption.assessment.get("criteria", []):
        key = str(criterion["criterion"])
        title, source = CRITERIA.get(key, (_words(key), ""))
        views.append(
            CriterionView(
                key,
                title,
                bool(criterion["met"]),
                str(criterion.get("detail", "")),
                source,
                _evidence(dict(criterion.get("evidence", {})), describe),
                key in STATE_HISTORY_CRITERIA,
            )
        )
    return views


def _user_name(session: Session, user_id: uuid.UUID | None) -> str:
    if user_id is None:
        return ""
    user = session.get(User, user_id)
    if user is None:
        return str(user_id)
    return f"{user.display_name} ({user.email})" if user.display_name else user.email


@dataclass(frozen=True)
class HistoryRow:
    at: datetime | None
    what: str
    who: str
    reason: str | None


def _history(session: Session, exemption: Exemption) -> list[HistoryRow]:
    rows = []
    if exemption.trigger == service.TRIGGER_CLAIM:
        rows.append(
            HistoryRow(
                exemption.created_at,
                f"Claimed; assessed by the system: finding {exemption.finding}",
                _user_name(session, exemption.claimed_by_id),
                exemption.statement,
            )
        )
    else:
        rows.append(
            HistoryRow(
                exemption.created_at,
                f"Assessed by the system after {TRIGGERS.get(exemption.trigger, exemption.trigger)}: finding {exemption.finding}",
                "system",
                None,
            )
        )
    if exemption.decided_at is not None:
        against = exemption.decision != exemption.finding
        what = f"Decided: {exemption.decision}"
        if against:
            what += ", against the system's finding; referred for a second bureau user's confirmation"
        rows.append(
            HistoryRow(
                exemption.decided_at, what, _user_name(session, exemption.decided_by_id), exemption.decision_reason
            )
        )
    if exemption.confirmed_at is not None:
        rows.append(
            HistoryRow(
                exemption.confirmed_at,
                f"Confirmed: {exemption.decision}",
                _user_name(session, exemption.confirmed_by_id),
                exemption.confirmation_reason,
            )
        )
    return rows


def _concerns(exemption: Exemption) -> str:
    """What the exemption is about, from the assessment's own record of the event."""
    event = exemption.assessment.get("event", {})
    if exemption.rule_id:
        return f"breach of {exemption.rule_id} in {event.get('period', '')}"
    return f"risk event of {event.get('on', '')}"


def _may_claim(actor: Actor) -> bool:
    return actor.role in service.CLAIMANT_ROLES


# -- the list -------------------------------------------------------------------------------------


@router.get("/exemptions", response_class=HTMLResponse)
def exemptions_list(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    state: str | None = None,
    pilot: uuid.UUID | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    chosen = state.strip() if state and state.strip() else None
    if chosen is not None and chosen not in STATES:
        message = f"state {chosen!r} is not one of: {', '.join(STATES)}"
        raise InvalidInput(message, [{"loc": ["query", "state"], "msg": message}])
    the_pilot = get_pilot(session, pilot, actor=actor) if pilot is not None else None
    offset = (page - 1) * PAGE_SIZE
    rows, total = service.list_exemptions(
        session, actor=actor, states=[chosen] if chosen else None, pilot_id=pilot, offset=offset, limit=PAGE_SIZE
    )
    query = {k: str(v) for k, v in (("state", chosen), ("pilot", pilot)) if v}
    context = {
        "rows": [(r, _concerns(r.exemption)) for r in rows],
        "states": STATES,
        "chosen_state": chosen or "",
        "pilot": the_pilot,
        **paging("/exemptions", page=page, size=PAGE_SIZE, shown=len(rows), total=total, filters=query),
        "may_claim": _may_claim(actor),
        "triggers": TRIGGERS,
    }
    return render(request, "exemptions/list.html", context, actor=actor)


# -- the claim form (before /exemptions/{id}, whose path would swallow "new") ----------------------


def _claim_page(
    request: Request,
    session: Session,
    actor: Actor,
    pilot: Pilot,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    events, total = list_risk_events(session, pilot.id, actor=actor, offset=0, limit=200)
    context = {
        "pilot": pilot,
        "events": [(e, _risk_event_text(e)) for e in events],
        "events_total": total,
        "values": values,
        "errors": errors or {},
        "error": error,
    }
    return render(
        request,
        "exemptions/new.html",
        context,
        actor=actor,
        status_code=status_code,
    )


@router.get("/exemptions/new", response_class=HTMLResponse)
def claim_form(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    pilot: uuid.UUID | None = None,
    risk_event: uuid.UUID | None = None,
) -> Response:
    actor.require(Role.institution_admin, doing="claim an exemption")
    if pilot is None:
        pilots, _ = list_pilots(session, actor=actor, state=None, program=None, offset=0, limit=200)
        context = {"pilots": pilots}
        return render(request, "exemptions/choose_pilot.html", context, actor=actor)
    the_pilot = get_pilot(session, pilot, actor=actor)
    values = {"risk_event_id": str(risk_event) if risk_event else "", "statement": ""}
    return _claim_page(request, session, actor, the_pilot, values=values)


def _field_errors(errors: list[dict[str, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for err in errors:
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query", "form")]
        name = loc[-1] if loc else ""
        found.setdefault(name, str(err.get("msg", "is not valid")))
    return found


@router.post("/exemptions/new", response_class=HTMLResponse)
def claim(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    pilot: Annotated[str, Form()] = "",
    risk_event_id: Annotated[str, Form()] = "",
    statement: Annotated[str, Form()] = "",
) -> Response:
    try:
        pilot_id = uuid.UUID(pilot)
    except ValueError:
        raise InvalidInput(f"{pilot!r} is not a pilot id") from None
    the_pilot = get_pilot(session, pilot_id, actor=actor)
    values = {"risk_event_id": risk_event_id, "statement": statement}
    try:
        body = ExemptionClaim.model_validate({"risk_event_id": risk_event_id, "statement": statement})
    except ValidationError as exc:
        errors = _field_errors([dict(e) for e in exc.errors()])
        if "risk_event_id" in errors:
            errors["risk_event_id"] = "choose one of the pilot's risk events"
        return _claim_page(
            request,
            session,
            actor,
            the_pilot,
            values=values,
            errors=errors,
            error="The claim was not accepted.",
            status_code=422,
        )
    try:
        with session.begin_nested():
            exemption = service.claim_exemption(
                session,
                the_pilot.id,
                risk_event_id=body.risk_event_id,
                statement=body.statement,
                actor=actor,
                at=now,
                calendars=request.app.state.calendars,
            )
    except (InvalidInput, Conflict) as exc:
        errors = _field_errors(list(exc.extra.get("errors", []))) if isinstance(exc, InvalidInput) else {}
        detail = exc.detail[:1].upper() + exc.detail[1:]
        detail = detail if detail.endswith((".", "!", "?")) else detail + "."
        return _claim_page(
            request, session, actor, the_pilot, values=values, errors=errors, error=detail, status_code=exc.status
        )
    notice = f"Claim submitted. The system assessed it: finding {exemption.finding}."
    return redirect(request, f"/exemptions/{exemption.id}", notice=notice)


# -- one exemption --------------------------------------------------------------------------------


@router.get("/exemptions/{exemption_id}", response_class=HTMLResponse)
def exemption_page(request: Request, exemption_id: uuid.UUID, session: DbSession, actor: RequiredWebActor) -> Response:
    labelled = service.get_exemption(session, exemption_id, actor=actor)
    exemption = labelled.exemption
    risk_event = session.get(RiskEvent, exemption.risk_event_id) if exemption.risk_event_id else None
    evaluation = session.get(Evaluation, exemption.evaluation_id) if exemption.evaluation_id else None
    outcome = None
    filing_id = None
    if evaluation is not None:
        outcome = next((o for o in evaluation.outcomes if o.get("rule_id") == exemption.rule_id), None)
        version = session.get(FilingVersion, evaluation.filing_version_id) if evaluation.filing_version_id else None
        filing_id = version.filing_id if version is not None else None
    context = {
        "labelled": labelled,
        "exemption": exemption,
        "concerns": _concerns(exemption),
        "trigger": TRIGGERS.get(exemption.trigger, exemption.trigger),
        "risk_event": risk_event,
        "risk_event_by": _user_name(session, risk_event.reported_by_id) if risk_event else "",
        "evaluation": evaluation,
        "outcome": outcome,
        "filing_id": filing_id,
        "criteria": _criteria(session, exemption),
        "history": _history(session, exemption),
        "decided_by": _user_name(session, exemption.decided_by_id),
        "commands": service.allowed_commands(exemption, actor),
        "decisions": DECISIONS,
        "min_reason": service.MIN_REASON_AGAINST_FINDING,
        "audit_url": f"/audit?object_type=exemption&object_id={exemption.id}",
    }
    return render(request, "exemptions/detail.html", context, actor=actor)


@router.post("/exemptions/{exemption_id}/decide")
def decide(
    request: Request,
    exemption_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    version: FormVersion = None,
) -> Response:
    body = parse_form(DecideBody, {"decision": decision, "reason": reason})
    exemption = service.decide(
        session, exemption_id, decision=body.decision, reason=body.reason, actor=actor, at=now, expected_version=version
    )
    if exemption.state == ExemptionState.awaiting_confirmation:
        notice = f"Decision to {exemption.decision} recorded; it takes effect when a second bureau user confirms it."
    else:
        notice = f"Exemption {exemption.state}."
    return redirect(request, f"/exemptions/{exemption_id}", notice=notice)


@router.post("/exemptions/{exemption_id}/confirm")
def confirm(
    request: Request,
    exemption_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    reason: Annotated[str, Form()] = "",
    version: FormVersion = None,
) -> Response:
    body = parse_form(ConfirmBody, {"reason": reason})
    exemption = service.confirm(
        session, exemption_id, reason=body.reason, actor=actor, at=now, expected_version=version
    )
    return redirect(request, f"/exemptions/{exemption_id}", notice=f"Decision confirmed: exemption {exemption.state}.")
