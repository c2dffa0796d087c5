"""The daily scan: every time-driven change, for an explicit as-of date, idempotent (running it
twice for the same date changes nothing the second time).

It activates pilots whose start date has come, expires those past their end date, and judges
every period whose filing is missing past its due date plus grace (working days): the rules
see the period as unfiled, so each acts per its on_missing setting, and the built-in
"filing.filed" is false for rules that watch for missing filings."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sandbox.clock import bureau_date
from sandbox.evaluation import repository as evaluations
from sandbox.evaluation.service import evaluate_period, pilot_schedule, policy_for_period
from sandbox.filing import repository as filings
from sandbox.models import Breaker, Pilot, PilotState
from sandbox.notify import service as notify
from sandbox.pilot.service import activate_due, expire_past_end
from sandbox.program.service import NoPolicyInForce, policy_document
from sandbox.rules.calendar import WorkingCalendar, days_late, due_date
from sandbox.rules.periods import expected_periods
from sandbox.rules.rulebook import AlertsPolicy

TIMERS_LOCK = 0x5CA77131  # one worker at a time runs the timers (PostgreSQL advisory lock)


@dataclass
class ScanReport:
    as_of: date
    activated: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)  # "<pilot reference> <period>"
    notes: list[str] = field(default_factory=list)


def run_scan(session: Session, *, as_of: date, at: datetime, calendars: Mapping[str, WorkingCalendar]) -> ScanReport:
    report = ScanReport(as_of)
    report.expired = [p.reference for p in expire_past_end(session, as_of=as_of, at=at)]
    report.activated = [p.reference for p in activate_due(session, as_of=as_of, at=at)]
    live = session.scalars(
        select(Pilot).where(Pilot.state.in_([PilotState.active, PilotState.suspended])).order_by(Pilot.reference)
    ).all()
    for pilot in live:
        _overdue(session, pilot, as_of=as_of, at=at, calendars=calendars, report=report)
    run_timers(session, now=at)
    return report


def run_timers(session: Session, *, now: datetime) -> int:
    """Reminders and escalations of unacknowledged trips (idempotent; the worker runs this
    every pass, the scan too)."""
    if (
        session.get_bind().dialect.name == "postgresql"
        and not session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": TIMERS_LOCK}).scalar_one()
    ):
        return 0  # another worker is running the timers right now
    tripped = session.execute(
        select(Breaker, Pilot).join(Pilot, Pilot.id == Breaker.pilot_id).where(Breaker.state == "tripped")
    ).all()
    policies: dict[uuid.UUID, AlertsPolicy] = {}  # one policy lookup per program per pass
    for breaker, pilot in tripped:
        if pilot.program_id not in policies:
            policies[pilot.program_id] = notify.alerts_policy(session, pilot.program_id, bureau_date(now))
        notify.breaker_timers(session, breaker, pilot, now=now, alerts=policies[pilot.program_id])
    return len(tripped)


def _due_soon(
    session: Session,
    pilot: Pilot,
    period: str,
    due_on: date,
    as_of: date,
    calendar: WorkingCalendar,
    *,
    alerts: AlertsPolicy,
    at: datetime,
) -> None:
    """Tell the institution a configured number of working days before a filing falls due."""
    if period in filings.filed_periods(session, pilot.id) or as_of > due_on:
        return
    left = calendar.working_days_between(as_of, due_on)
    if left <= alerts.due_soon_working_days:
        notify.filing_due_soon(session, pilot, period, due_on=due_on, working_days_left=left, at=at)


def _overdue(
    session: Session,
    pilot: Pilot,
    *,
    as_of: date,
    at: datetime,
    calendars: Mapping[str, WorkingCalendar],
    report: ScanReport,
) -> None:
    filed = filings.filed_periods(session, pilot.id)
    try:
        frequency = pilot_schedule(session, pilot).frequency
    except NoPolicyInForce:
        report.notes.append(f"{pilot.reference}: no policy in force for its first period")
        return
    for period in expected_periods(pilot.start_on, min(pilot.end_on, as_of), frequency):
        if period.label in filed or period.end >= as_of:
            continue
        try:
            document = policy_document(policy_for_period(session, pilot, period))
        except NoPolicyInForce:
            continue
        schedule = document.schedule
        calendar = calendars.get(schedule.calendar)
        if calendar is None:
            report.notes.append(f"{pilot.reference}: calendar {schedule.calendar!r} missing; deadlines not checked")
            return
        due = due_date(period, schedule.due_business_days, calendar)
        acts_on = calendar.add_working_days(due.date, schedule.grace_days).date if schedule.grace_days else due.date
        if as_of <= acts_on:
            _due_soon(session, pilot, period.label, due.date, as_of, calendar, alerts=document.alerts, at=at)
            continue
        if evaluations.has_evaluation(session, pilot.id, period.label):
            continue
        late = days_late(as_of, due.date)
        evaluate_period(session, pilot, period, trigger="missing", filing_version=None, at=at, days_late_unfiled=late)
        notify.filing_overdue(session, pilot, period.label, due_on=due.date, days_late=late, at=at)
        report.overdue.append(f"{pilot.reference} {period.label}")
