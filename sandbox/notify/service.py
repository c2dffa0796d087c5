from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.alert import repository as alert_repository
from sandbox.alert.outbox import emit
from sandbox.clock import bureau_date
from sandbox.models import Application, Breaker, Exemption, Institution, Pilot, PilotState, PolicyVersion, Program
from sandbox.program.service import NoPolicyInForce, policy_document, policy_in_force
from sandbox.rules.breaker import Signal
from sandbox.rules.engine import CompiledPolicy, Outcome
from sandbox.rules.policy import PolicyDocument
from sandbox.rules.rulebook import AlertsPolicy, Mode, Severity, parse_duration

SEVERITY_ORDER = list(Severity)


def _pilot(session: Session, pilot: Pilot) -> dict[str, Any]:
    institution = session.get(Institution, pilot.institution_id)
    return {"reference": pilot.reference, "title": pilot.title, "institution": institution.name if institution else ""}


def _contacts(session: Session, institution_id: uuid.UUID) -> list[str]:
    institution = session.get(Institution, institution_id)
    return list(institution.contact_emails) if institution else []


def policy_now(session: Session, program_id: uuid.UUID, day: date) -> PolicyDocument | None:
    program = session.get(Program, program_id)
    if program is None:
        return None
    try:
        return policy_document(policy_in_force(session, program, day))
    except NoPolicyInForce:
        return None


def _alerts(document: PolicyDocument | None) -> AlertsPolicy:
    return document.alerts if document is not None else AlertsPolicy()


def _highest(severities: Iterable[str]) -> Severity:
    return max((Severity(s) for s in severities), key=SEVERITY_ORDER.index, default=Severity.medium)


def _recipients(*groups: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for address in group:
            seen.setdefault(address.lower(), None)
    return list(seen)


def _finding(outcome: Outcome, kind: str) -> dict[str, Any]:
    return {
        "rule_id": outcome.rule_id,
        "severity": outcome.severity,
        "outcome": kind,
        "explanation": outcome.explanation,
        "comparison": outcome.comparison,
    }


def after_evaluation(
    session: Session,
    pilot: Pilot,
    policy: CompiledPolicy,
    outcomes: Sequence[Outcome],
    signals: dict[str, tuple[Signal, ...]],
    *,
    evaluation_id: uuid.UUID,
    period: str,
    version: PolicyVersion,
    at: datetime,
) -> None:
    """One email per recipient for everything one evaluation found: trips (and repeats), cleared
    conditions, and warnings (held back while the pilot is suspended)."""
    alerts = policy.document.alerts
    findings: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.mode == Mode.shadow.value:
            continue
        fired = signals.get(outcome.rule_id, ())
        if Signal.repeat_trip in fired:
            findings.append(_finding(outcome, "repeat_trip"))
        elif Signal.tripped in fired:
            findings.append(_finding(outcome, "tripped"))
        elif Signal.condition_cleared in fired and alerts.send_resolved:
            findings.append(_finding(outcome, "condition_cleared"))
        elif outcome.action == "warn" and outcome.status == "breach":
            findings.append(_finding(outcome, "warning"))
    trips = [f for f in findings if f["outcome"] in ("tripped", "repeat_trip")]
    if not trips and pilot.state == PilotState.suspended:
        findings = [f for f in findings if f["outcome"] != "warning"]
    if not findings:
        return
    kind = (
        "breaker.tripped"
        if trips
        else (
            "breaker.condition_cleared"
            if any(f["outcome"] == "condition_cleared" for f in findings)
            else "rule.warning"
        )
    )
    severity = _highest(f["severity"] for f in (trips or findings))
    emit(
        session,
        kind=kind,
        severity=severity.value,
        pilot_id=pilot.id,
        subject=f"{pilot.reference} {period}: "
        + ", ".join(f"{f['rule_id']} {f['outcome'].replace('_', ' ')}" for f in findings),
        context={
            "pilot": _pilot(session, pilot),
            "period": period,
            "policy_version": version.version,
            "findings": findings,
        },
        recipients=_recipients(alerts.for_severity(severity), _contacts(session, pilot.institution_id)),
        dedupe_key=f"evaluation:{evaluation_id}",
        at=at,
    )


def pilot_changed(
    session: Session, pilot: Pilot, command: str, *, reason: str | None, actor: Actor, at: datetime
) -> None:
    """A person suspended, resumed or terminated a pilot (a breaker's suspension is in its trip email)."""
    kind = {"suspend": "pilot.suspended", "resume": "pilot.resumed", "terminate": "pilot.terminated"}.get(command)
    if kind is None:
        return
    alerts = _alerts(policy_now(session, pilot.program_id, bureau_date(at)))
    severity = Severity.high
    emit(
        session,
        kind=kind,
        severity=severity.value,
        pilot_id=pilot.id,
        subject=f"{pilot.reference}: {kind.split('.')[1]}",
        context={"pilot": _pilot(session, pilot), "reason": reason or "", "by": actor.label},
        recipients=_recipients(alerts.for_severity(severity), _contacts(session, pilot.institution_id)),
        dedupe_key=f"pilot:{pilot.id}:{command}:{pilot.version}",
        at=at,
    )


def breaker_reset(session: Session, breaker: Breaker, pilot: Pilot, *, reason: str, actor: Actor, at: datetime) -> None:
    alerts = _alerts(policy_now(session, pilot.program_id, bureau_date(at)))
    severity = Severity(breaker.severity)
    emit(
        session,
        kind="breaker.reset",
        severity=severity.value,
        pilot_id=pilot.id,
        subject=f"{pilot.reference}: breaker {breaker.rule_id} reset (probation)",
        context={"pilot": _pilot(session, pilot), "rule_id": breaker.rule_id, "reason": reason, "by": actor.label},
        recipients=_recipients(alerts.for_severity(severity), _contacts(session, pilot.institution_id)),
        dedupe_key=f"reset:{breaker.id}:{breaker.version}",
        at=at,
    )


def application_decided(session: Session, application: Application, pilot: Pilot | None, *, at: datetime) -> None:
    program = session.get(Program, application.program_id)
    institution = session.get(Institution, application.institution_id)
    assert program is not None and institution is not None
    emit(
        session,
        kind="application.decided",
        severity=Severity.medium.value,
        pilot_id=pilot.id if pilot else None,
        subject=f"{program.code}: application {application.state} - {application.title}",
        context={
            "application": {"title": application.title, "institution": institution.name, "program": program.code},
            "decision": application.state,
            "reason": application.decision_reason or "",
            "pilot": _pilot(session, pilot) if pilot else None,
        },
        recipients=list(institution.contact_emails),
        dedupe_key=f"application:{application.id}:decided",
        at=at,
    )


def exemption_assessed(session: Session, exemption: Exemption, pilot: Pilot, *, at: datetime) -> None:
    document = policy_now(session, pilot.program_id, bureau_date(at))
    alerts = _alerts(document)
    assessment = exemption.assessment
    criteria = [
        {"name": c["criterion"], "met": c["met"], "evidence": c.get("detail", "")}
        for c in assessment.get("criteria", [])
    ]
    version = session.get(PolicyVersion, exemption.policy_version_id)
    emit(
        session,
        kind="exemption.assessed",
        severity=Severity.high.value,
        pilot_id=pilot.id,
        subject=f"{pilot.reference}: due-diligence exemption assessed ({exemption.finding})",
        context={
            "pilot": _pilot(session, pilot),
            "trigger": exemption.trigger.replace("_", " "),
            "finding": exemption.finding,
            "policy_version": version.version if version else "",
            "criteria": criteria,
        },
        recipients=_recipients(alerts.for_severity(Severity.high), _contacts(session, pilot.institution_id)),
        dedupe_key=f"exemption:{exemption.id}:assessed",
        at=at,
    )


def exemption_decided(session: Session, exemption: Exemption, pilot: Pilot, *, actor: Actor, at: datetime) -> None:
    alerts = _alerts(policy_now(session, pilot.program_id, bureau_date(at)))
    emit(
        session,
        kind="exemption.decided",
        severity=Severity.high.value,
        pilot_id=pilot.id,
        subject=f"{pilot.reference}: due-diligence exemption {exemption.state}",
        context={
            "pilot": _pilot(session, pilot),
            "decision": exemption.state,
            "finding": exemption.finding,
            "reason": exemption.decision_reason or "",
            "by": actor.label,
        },
        recipients=_recipients(alerts.for_severity(Severity.high), _contacts(session, pilot.institution_id)),
        dedupe_key=f"exemption:{exemption.id}:decided",
        at=at,
    )


def filing_overdue(session: Session, pilot: Pilot, period: str, *, due_on: date, days_late: int, at: datetime) -> None:
    emit(
        session,
        kind="filing.overdue",
        severity=Severity.medium.value,
        pilot_id=pilot.id,
        subject=f"{pilot.reference}: filing for {period} is overdue",
        context={
            "pilot": _pilot(session, pilot),
            "period": period,
            "due_on": due_on.isoformat(),
            "days_late": days_late,
        },
        recipients=_contacts(session, pilot.institution_id),
        dedupe_key=f"overdue:{pilot.id}:{period}",
        at=at,
    )


def filing_due_soon(
    session: Session, pilot: Pilot, period: str, *, due_on: date, working_days_left: int, at: datetime
) -> None:
    emit(
        session,
        kind="filing.due_soon",
        severity=Severity.low.value,
        pilot_id=pilot.id,
        subject=f"{pilot.reference}: filing for {period} due on {due_on.isoformat()}",
        context={
            "pilot": _pilot(session, pilot),
            "period": period,
            "due_on": due_on.isoformat(),
            "working_days_left": working_days_left,
        },
        recipients=_contacts(session, pilot.institution_id),
        dedupe_key=f"due-soon:{pilot.id}:{period}",
        at=at,
    )


def breaker_timers(session: Session, breaker: Breaker, pilot: Pilot, *, now: datetime, alerts: AlertsPolicy) -> None:
    """Remind an unacknowledged trip every repeat_every; escalate once after escalate_after.
    Idempotent: each reminder's number is part of its dedupe key. Cheap when nothing is due:
    the worker runs this every pass for every tripped breaker."""
    if breaker.state != "tripped" or breaker.last_tripped_at is None:
        return
    waited = now - breaker.last_tripped_at
    every, escalate = parse_duration(alerts.repeat_every), parse_duration(alerts.escalate_after)
    reminders = int(waited / every) if waited >= every else 0
    due: list[tuple[str, str]] = []
    if reminders:
        due.append(("breaker.reminder", f"reminder:{breaker.id}:{breaker.trips}:{reminders}"))
    if waited >= escalate and alerts.escalation:
        due.append(("breaker.escalated", f"escalation:{breaker.id}:{breaker.trips}"))
    due = [(kind, key) for kind, key in due if alert_repository.find_by_dedupe_key(session, key) is None]
    if not due:
        return
    severity = Severity(breaker.severity)
    context = {
        "pilot": _pilot(session, pilot),
        "rule_id": breaker.rule_id,
        "tripped_at": breaker.last_tripped_at.isoformat(),
    }
    for kind, key in due:
        if kind == "breaker.reminder":
            emit(
                session,
                kind=kind,
                severity=severity.value,
                pilot_id=pilot.id,
                subject=f"Reminder {reminders}: {pilot.reference} breaker {breaker.rule_id} unacknowledged",
                context={**context, "reminder": reminders},
                recipients=_recipients(alerts.for_severity(severity)),
                dedupe_key=key,
                at=now,
            )
        else:
            hours = int(waited / timedelta(hours=1))
            emit(
                session,
                kind=kind,
                severity=Severity.critical.value,
                pilot_id=pilot.id,
                subject=f"Escalation: {pilot.reference} breaker {breaker.rule_id} unacknowledged for {hours} hours",
                context={**context, "unacknowledged_for": f"{hours} hours"},
                recipients=_recipients(alerts.escalation, alerts.for_severity(severity)),
                dedupe_key=key,
                at=now,
            )


def alerts_policy(session: Session, program_id: uuid.UUID, day: date) -> AlertsPolicy:
    return _alerts(policy_now(session, program_id, day))
