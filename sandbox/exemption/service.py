from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from sandbox.actor import SYSTEM, Actor
from sandbox.application.service import FourEyesViolation
from sandbox.audit.log import record
from sandbox.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from sandbox.exemption import repository
from sandbox.exemption.assessment import Facts, PeriodRecord, Report, RuleResult, StateChange, assess
from sandbox.exemption.repository import Labelled
from sandbox.lifecycle import TransitionTable, check_version
from sandbox.models import (
    Evaluation,
    Exemption,
    ExemptionState,
    Institution,
    Pilot,
    PolicyVersion,
    Program,
    RiskEvent,
    Role,
)
from sandbox.notify import service as notify
from sandbox.pilot.service import get_pilot
from sandbox.program.service import NoPolicyInForce, policy_document, policy_in_force
from sandbox.risk import repository as risk_repository
from sandbox.rules.calendar import WorkingCalendar, due_date
from sandbox.rules.periods import Period, expected_periods, period_of
from sandbox.rules.policy import PolicyDocument

TRIGGER_RISK_EVENT = "risk_event"
TRIGGER_RULE = "rule"
TRIGGER_CLAIM = "claim"
# A decision against the system's finding must say why at some length: it overrides the record.
MIN_REASON_AGAINST_FINDING = 80

S = ExemptionState
# Internal commands: a decision that agrees with the finding takes effect at once; one against it
# is referred for a second bureau user's confirmation. The API names them "decide" and "confirm".
TRANSITIONS: TransitionTable[ExemptionState] = TransitionTable(
    "exemption",
    {
        S.assessed: {"grant": S.granted, "deny": S.denied, "refer": S.awaiting_confirmation},
        S.awaiting_confirmation: {"confirm-grant": S.granted, "confirm-deny": S.denied},
    },
)
API_COMMANDS: Mapping[str, list[str]] = {S.assessed: ["decide"], S.awaiting_confirmation: ["confirm"]}
UNDECIDED = frozenset({S.assessed, S.awaiting_confirmation})


class NoExemptionCriteria(Conflict):
    type_slug = "no-exemption-criteria"
    title = "The policy defines no due-diligence criteria"


def _target(state: str, command: str, api_command: str) -> ExemptionState:
    try:
        return TRANSITIONS.target(state, command)
    except IllegalTransition:
        raise IllegalTransition("exemption", state, api_command, API_COMMANDS.get(state, [])) from None


# -- reading --------------------------------------------------------------------------------------


def _visible(labelled: Labelled | None, actor: Actor) -> Labelled:
    if labelled is None or (actor.is_institution and labelled.institution_id != actor.institution_id):
        raise NotFound("no such exemption")
    return labelled


def get_exemption(session: Session, exemption_id: uuid.UUID, *, actor: Actor) -> Labelled:
    return _visible(repository.find_labelled(session, exemption_id), actor)


def list_exemptions(
    session: Session,
    *,
    actor: Actor,
    states: Sequence[str] | None,
    pilot_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> tuple[list[Labelled], int]:
    return repository.list_page(
        session,
        institution_id=actor.institution_id if actor.is_institution else None,
        pilot_id=pilot_id,
        states=states,
        offset=offset,
        limit=limit,
    )


def allowed_commands(exemption: Exemption, actor: Actor) -> list[str]:
    if exemption.state == S.assessed and actor.role is Role.supervisor:
        return ["decide"]
    if (
        exemption.state == S.awaiting_confirmation
        and actor.role in (Role.supervisor, Role.approver)
        and actor.user_id != exemption.decided_by_id
    ):
        return ["confirm"]
    return []


# -- assessing ------------------------------------------------------------------------------------


def _facts(
    session: Session,
    pilot: Pilot,
    document: PolicyDocument,
    *,
    event_on: date,
    event_period: Period,
    reports: Sequence[Report],
    rule_id: str | None,
    calendars: Mapping[str, WorkingCalendar] | None,
) -> Facts:
    schedule = document.schedule
    frequency = schedule.frequency
    # Without the program's calendar (the evaluation hook has none), unfiled periods' due dates
    # are counted on weekdays and flagged as estimated in the evidence.
    calendar = (calendars or {}).get(schedule.calendar) or WorkingCalendar(schedule.calendar)
    filed = repository.filed_periods(session, pilot.id)
    records = []
    for period in expected_periods(pilot.start_on, pilot.end_on, frequency):
        if period > event_period:
            break
        found = filed.get(period.label)
        if found is not None:
            records.append(
                PeriodRecord(
                    period,
                    found.filing.due_on,
                    found.first.days_late,
                    {name: Decimal(text) for name, text in found.latest.metrics.items()},
                    found.filing.due_estimated,
                )
            )
        else:
            due = due_date(period, schedule.due_business_days, calendar)
            records.append(PeriodRecord(period, due.date, None, {}, due.estimated))
    results = [
        RuleResult(
            Period.from_ordinal(frequency, evaluation.period_ordinal),
            str(outcome["rule_id"]),
            str(outcome["status"]),
            str(outcome.get("action", "")),
            str(outcome.get("mode", "enforce")),
            frozenset(outcome.get("reads") or {}),
            evaluation.id,
        )
        for evaluation in repository.evaluations_up_to(session, pilot.id, event_period.ordinal)
        for outcome in evaluation.outcomes
    ]
    states = [StateChange(at, state) for at, state in repository.pilot_state_changes(session, pilot.id)]
    # Audit entries are written at commit: a change made earlier in this transaction is known
    # only from the pilot row itself.
    if not states or states[-1].state != pilot.state:
        states.append(StateChange(pilot.updated_at, pilot.state))
    institution = session.get(Institution, pilot.institution_id)
    assert institution is not None
    return Facts(
        event_on=event_on,
        event_period=event_period,
        reports=reports,
        periods=records,
        results=results,
        states=states,
        institution_npl=institution.npl_ratio,
        rule_id=rule_id,
    )


def _create(
    session: Session,
    pilot: Pilot,
    version: PolicyVersion,
    document: PolicyDocument,
    facts: Facts,
    *,
    trigger: str,
    actor: Actor,
    at: datetime,
    risk_event: RiskEvent | None = None,
    evaluation: Evaluation | None = None,
    statement: str | None = None,
) -> Exemption:
    assert document.exemption is not None
    assessment = assess(document.exemption, facts, as_of=at, policy_version=version.version)
    exemption = Exemption(
        pilot_id=pilot.id,
        trigger=trigger,
        risk_event_id=risk_event.id if risk_event else None,
        rule_id=facts.rule_id,
        evaluation_id=evaluation.id if evaluation else None,
        policy_version_id=version.id,
        state=S.assessed,
        assessment=assessment,
        finding=assessment["finding"],
        statement=statement,
        claimed_by_id=actor.user_id if trigger == TRIGGER_CLAIM else None,
        created_at=at,
        updated_at=at,
    )
    session.add(exemption)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="exemption.claim" if trigger == TRIGGER_CLAIM else "exemption.assess",
        object_type="exemption",
        object_id=exemption.id,
        after={
            "state": exemption.state,
            "pilot_id": pilot.id,
            "trigger": trigger,
            "risk_event_id": exemption.risk_event_id,
            "rule_id": exemption.rule_id,
            "evaluation_id": exemption.evaluation_id,
            "policy_version": version.version,
            "finding": exemption.finding,
            "unmet": [c["criterion"] for c in assessment["criteria"] if not c["met"]],
        },
    )
    notify.exemption_assessed(session, exemption, pilot, at=at)
    return exemption


def _policy_on(session: Session, pilot: Pilot, day: date) -> PolicyVersion:
    program = session.get(Program, pilot.program_id)
    assert program is not None
    return policy_in_force(session, program, day)


def assess_risk_event(
    session: Session,
    pilot: Pilot,
    risk_event: RiskEvent,
    *,
    trigger: str,
    actor: Actor,
    at: datetime,
    statement: str | None = None,
    calendars: Mapping[str, WorkingCalendar] | None = None,
) -> Exemption | None:
    """Assess a reported event under the policy in force on the day it occurred (staff are judged
    by the rules in force when the business was done). None if that policy has no criteria."""
    try:
        version = _policy_on(session, pilot, risk_event.occurred_on)
    except NoPolicyInForce:
        if trigger == TRIGGER_CLAIM:
            raise
        return None
    document = policy_document(version)
    if document.exemption is None:
        if trigger == TRIGGER_CLAIM:
            raise NoExemptionCriteria(
                f"the policy of this pilot's program in force on {risk_event.occurred_on.isoformat()} "
                f"(version {version.version}) defines no due-diligence exemption criteria",
                policy_version=version.version,
            )
        return None
    facts = _facts(
        session,
        pilot,
        document,
        event_on=risk_event.occurred_on,
        event_period=period_of(risk_event.occurred_on, document.schedule.frequency),
        reports=[Report(risk_event.occurred_on, risk_event.reported_at, risk_event.id)],
        rule_id=None,
        calendars=calendars,
    )
    return _create(
        session,
        pilot,
        version,
        document,
        facts,
        trigger=trigger,
        actor=actor,
        at=at,
        risk_event=risk_event,
        statement=statement,
    )


def assess_after_evaluation(
    session: Session,
    pilot: Pilot,
    evaluation: Evaluation,
    *,
    at: datetime,
    calendars: Mapping[str, WorkingCalendar] | None = None,
) -> list[Exemption]:
    """After every evaluation: each enforced loss rule of the policy that breached makes one
    assessment per pilot, rule and period (an amendment breaching again adds none)."""
    version = session.get(PolicyVersion, evaluation.policy_version_id)
    assert version is not None
    document = policy_document(version)
    if document.exemption is None or not document.exemption.loss_rules:
        return []
    breached = {
        outcome["rule_id"]
        for outcome in evaluation.outcomes
        if outcome.get("status") == "breach" and outcome.get("mode") != "shadow"
    }
    period = Period.from_ordinal(document.schedule.frequency, evaluation.period_ordinal)
    created = []
    for rule_id in document.exemption.loss_rules:
        if rule_id not in breached or repository.has_rule_assessment(session, pilot.id, rule_id, evaluation.period):
            continue
        # The reports of a rule's loss are the losses the institution reported for the period.
        losses = [
            Report(e.occurred_on, e.reported_at, e.id)
            for e in risk_repository.occurred_between(session, pilot.id, period.start, period.end)
            if e.amount is not None and e.amount > 0
        ]
        facts = _facts(
            session,
            pilot,
            document,
            event_on=period.end,
            event_period=period,
            reports=losses,
            rule_id=rule_id,
            calendars=calendars,
        )
        created.append(
            _create(
                session,
                pilot,
                version,
                document,
                facts,
                trigger=TRIGGER_RULE,
                actor=SYSTEM,
                at=at,
                evaluation=evaluation,
            )
        )
    return created


# Who may claim an exemption for the institution's staff.
CLAIMANT_ROLES = (Role.institution_admin,)


def claim_exemption(
    session: Session,
    pilot_id: uuid.UUID,
    *,
    risk_event_id: uuid.UUID,
    statement: str,
    actor: Actor,
    at: datetime,
    calendars: Mapping[str, WorkingCalendar] | None = None,
) -> Exemption:
    """An institution admin claims an exemption for one of the pilot's risk events; the system
    assesses it now. One open claim per event; none once an exemption was granted for it."""
    pilot = get_pilot(session, pilot_id, actor=actor)
    actor.require(*CLAIMANT_ROLES, doing="claim an exemption")
    if actor.institution_id != pilot.institution_id:
        raise NotFound("no such pilot")
    risk_event = session.get(RiskEvent, risk_event_id)
    if risk_event is None or risk_event.pilot_id != pilot.id:
        raise InvalidInput(
            f"no risk event {risk_event_id} on pilot {pilot.reference}",
            [
                {
                    "loc": ["body", "risk_event_id"],
                    "msg": f"not a risk event of pilot {pilot.reference}",
                    "type": "value_error",
                }
            ],
        )
    for earlier in repository.for_risk_event(session, risk_event.id):
        if earlier.state == S.granted:
            raise Conflict("an exemption was already granted for this risk event", exemption_id=str(earlier.id))
        if earlier.trigger == TRIGGER_CLAIM and earlier.state in UNDECIDED:
            raise Conflict("this risk event is already claimed and awaits a decision", exemption_id=str(earlier.id))
    exemption = assess_risk_event(
        session, pilot, risk_event, trigger=TRIGGER_CLAIM, actor=actor, at=at, statement=statement, calendars=calendars
    )
    assert exemption is not None  # a claim raises rather than going unassessed
    return exemption


# -- deciding -------------------------------------------------------------------------------------


def _locked(session: Session, exemption_id: uuid.UUID, actor: Actor) -> Exemption:
    exemption = repository.get_for_update(session, exemption_id)
    if exemption is not None and actor.is_institution:
        pilot = session.get(Pilot, exemption.pilot_id)
        if pilot is None or pilot.institution_id != actor.institution_id:
            exemption = None
    if exemption is None:
        raise NotFound("no such exemption")
    return exemption


def decide(
    session: Session,
    exemption_id: uuid.UUID,
    *,
    decision: str,
    reason: str,
    actor: Actor,
    at: datetime,
    expected_version: int | None = None,
) -> Exemption:
    """A supervisor grants or denies. Agreeing with the finding decides; going against it needs a
    reason of at least 80 characters and waits for a second bureau user's confirmation."""
    exemption = _locked(session, exemption_id, actor)
    actor.require(Role.supervisor, doing="decide an exemption")
    check_version("exemption", exemption.version, expected_version)
    if decision not in ("grant", "deny"):
        raise InvalidInput(f"unknown decision {decision!r}", [{"loc": ["body", "decision"], "msg": "grant or deny"}])
    against = decision != exemption.finding
    target = _target(exemption.state, "refer" if against else decision, "decide")
    if against and len(reason.strip()) < MIN_REASON_AGAINST_FINDING:
        message = (
            f"deciding {decision} against the system's finding ({exemption.finding}) needs a reason of at least "
            f"{MIN_REASON_AGAINST_FINDING} characters; this one has {len(reason.strip())}"
        )
        raise InvalidInput(message, [{"loc": ["body", "reason"], "msg": message, "type": "too_short"}])
    before = exemption.state
    exemption.state = target
    exemption.decision = decision
    exemption.decision_reason = reason
    exemption.decided_by_id = actor.user_id
    exemption.decided_at = at
    exemption.updated_at = at
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="exemption.decide",
        object_type="exemption",
        object_id=exemption.id,
        before={"state": before},
        after={
            "state": target,
            "decision": decision,
            "finding": exemption.finding,
            "against_finding": against,
            "reason": reason,
        },
    )
    if not against:
        notify.exemption_decided(session, exemption, _pilot_of(session, exemption), actor=actor, at=at)
    return exemption


def confirm(
    session: Session,
    exemption_id: uuid.UUID,
    *,
    reason: str,
    actor: Actor,
    at: datetime,
    expected_version: int | None = None,
) -> Exemption:
    """A second bureau user (supervisor or approver, never the decider) confirms a decision taken
    against the finding, which then takes effect."""
    exemption = _locked(session, exemption_id, actor)
    actor.require(Role.supervisor, Role.approver, doing="confirm an exemption decision")
    check_version("exemption", exemption.version, expected_version)
    target = _target(exemption.state, f"confirm-{exemption.decision}", "confirm")
    if exemption.decided_by_id == actor.user_id:
        raise FourEyesViolation(
            "you took this decision; another supervisor or approver must confirm it",
            decided_by=str(exemption.decided_by_id),
        )
    before = exemption.state
    exemption.state = target
    exemption.confirmed_by_id = actor.user_id
    exemption.confirmation_reason = reason
    exemption.confirmed_at = at
    exemption.updated_at = at
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="exemption.confirm",
        object_type="exemption",
        object_id=exemption.id,
        before={"state": before},
        after={"state": target, "decision": exemption.decision, "reason": reason},
    )
    notify.exemption_decided(session, exemption, _pilot_of(session, exemption), actor=actor, at=at)
    return exemption


def _pilot_of(session: Session, exemption: Exemption) -> Pilot:
    pilot = session.get(Pilot, exemption.pilot_id)
    assert pilot is not None
    return pilot
