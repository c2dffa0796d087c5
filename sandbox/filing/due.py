"""Which filings are due and overdue, and the recent filings an actor may see. Read-only.

Deadlines come from the same functions the daily scan uses to judge missing filings
(``sandbox.scan``): a pilot's periods from ``pilot_schedule`` and ``expected_periods``, each
period's schedule from the policy version in force on its last day, its due date from
``due_date`` on the program's working-day calendar, lateness from ``days_late`` (calendar days
after the due date). A period is *overdue* from the day after its due date while it is unfiled,
which is when a filing made then would be recorded as late; the scan acts on it (judges the
period as missing and tells the institution) once the policy's grace days have also passed
(``acts_on``). A period is *due* while it is unfiled and its due date has not passed: every
period that has ended, and the next period even before it ends, so a pilot whose filings are up
to date still shows what comes next. Only active and suspended pilots take filings, so only they
are listed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.evaluation.service import pilot_schedule, policy_for_period
from sandbox.filing import repository
from sandbox.filing.service import FILING_STATES
from sandbox.models import Filing, FilingVersion, Institution, Pilot
from sandbox.pilot.service import get_pilot
from sandbox.program.service import NoPolicyInForce, PolicyBook, policy_document
from sandbox.rules.calendar import WorkingCalendar, days_late, due_date
from sandbox.rules.periods import Period, expected_periods

DueStatus = Literal["overdue", "due"]
TEMPLATE_COLUMNS = ("pilot", "period", "metric", "value")  # the long upload format, no dimensions


@dataclass(frozen=True)
class DueFiling:
    pilot_id: uuid.UUID
    pilot_reference: str
    pilot_title: str
    pilot_state: str
    institution_code: str
    institution_name: str
    period: Period  # .label, .start, .end
    due_on: date
    due_estimated: bool  # counted on weekdays: the calendar does not cover the year, or is not installed
    acts_on: date  # the last day of grace: after it the scan judges the period as missing
    status: DueStatus
    days_overdue: int  # calendar days after the due date; 0 when not overdue
    past_grace: bool  # overdue beyond the grace days too: the scan acts on it
    can_file: bool  # the period has ended, so a filing for it is accepted now


@dataclass(frozen=True)
class RecentFiling:
    filing: Filing
    current: FilingVersion
    pilot: Pilot
    institution: Institution


def _pilot_due(
    session: Session,
    pilot: Pilot,
    institution: Institution,
    *,
    as_of: date,
    calendars: Mapping[str, WorkingCalendar],
    book: PolicyBook,
    filed: set[str],
) -> list[DueFiling]:
    try:
        frequency = pilot_schedule(session, pilot, book).frequency
    except NoPolicyInForce:
        return []
    found: list[DueFiling] = []
    next_listed = False
    for period in expected_periods(pilot.start_on, pilot.end_on, frequency):
        if period.label in filed:
            continue
        ended = period.end < as_of
        if not ended and next_listed:
            break  # later periods are not due yet
        try:
            schedule = policy_document(book.for_period(pilot.program_id, period)).schedule
        except NoPolicyInForce:
            continue
        # A calendar that is not installed: weekdays only, and the date says it is an estimate
        # (the scan does not judge such a pilot at all; a list should still show its deadlines).
        calendar = calendars.get(schedule.calendar) or WorkingCalendar(schedule.calendar)
        due = due_date(period, schedule.due_business_days, calendar)
        acts_on = calendar.add_working_days(due.date, schedule.grace_days).date if schedule.grace_days else due.date
        late = days_late(as_of, due.date)
        if late == 0:
            next_listed = True
        found.append(
            DueFiling(
                pilot_id=pilot.id,
                pilot_reference=pilot.reference,
                pilot_title=pilot.title,
                pilot_state=pilot.state,
                institution_code=institution.code,
                institution_name=institution.name,
                period=period,
                due_on=due.date,
                due_estimated=due.estimated or schedule.calendar not in calendars,
                acts_on=acts_on,
                status="overdue" if late > 0 else "due",
                days_overdue=late,
                past_grace=as_of > acts_on,
                can_file=ended,
            )
        )
    return found


def _order(item: DueFiling) -> tuple[int, int, date, str, int]:
    """Overdue before due; the most overdue first; then by due date, pilot and period."""
    return (
        0 if item.status == "overdue" else 1,
        -item.days_overdue,
        item.due_on,
        item.pilot_reference,
        item.period.ordinal,
    )


def due_filings(
    session: Session,
    *,
    actor: Actor,
    as_of: date,
    calendars: Mapping[str, WorkingCalendar],
    pilot_id: uuid.UUID | None = None,
) -> list[DueFiling]:
    """Every unfiled period due or overdue on ``as_of`` of the active and suspended pilots the actor
    may see (an institution's users: their own; the bureau: all), overdue first. ``calendars`` are
    the installed working-day calendars (``app.state.calendars``); for a pilot whose calendar is
    not installed, deadlines are counted on weekdays and marked estimated. ``pilot_id`` narrows the list to one pilot (404 for a
    pilot the actor may not see)."""
    if pilot_id is not None:
        get_pilot(session, pilot_id, actor=actor)
    institution_id = actor.institution_id if actor.is_institution else None
    rows = repository.filing_pilots(session, institution_id=institution_id, states=FILING_STATES, pilot_id=pilot_id)
    # Many pilots, few programs: each program's versions and every pilot's filed periods read once.
    book = PolicyBook(session, repository.programs_of(session, [pilot for pilot, _ in rows]))
    filed = repository.filed_periods_of(session, [pilot.id for pilot, _ in rows])
    found: list[DueFiling] = []
    for pilot, institution in rows:
        found.extend(
            _pilot_due(
                session,
                pilot,
                institution,
                as_of=as_of,
                calendars=calendars,
                book=book,
                filed=filed.get(pilot.id, set()),
            )
        )
    return sorted(found, key=_order)


def overdue_filings(
    session: Session,
    *,
    actor: Actor,
    as_of: date,
    calendars: Mapping[str, WorkingCalendar],
    pilot_id: uuid.UUID | None = None,
) -> list[DueFiling]:
    """Only the overdue periods of ``due_filings``, the most overdue first (the bureau's queue)."""
    found = due_filings(session, actor=actor, as_of=as_of, calendars=calendars, pilot_id=pilot_id)
    return [item for item in found if item.status == "overdue"]


def recent_filings(
    session: Session, *, actor: Actor, pilot_id: uuid.UUID | None, offset: int, limit: int
) -> tuple[Sequence[RecentFiling], int]:
    """Filings the actor may see, the most recently received (or amended) first; ``pilot_id``
    narrows them to one pilot (404 for a pilot the actor may not see)."""
    if pilot_id is not None:
        get_pilot(session, pilot_id, actor=actor)
    institution_id = actor.institution_id if actor.is_institution else None
    rows, total = repository.recent_page(
        session, institution_id=institution_id, pilot_id=pilot_id, offset=offset, limit=limit
    )
    return [RecentFiling(*row) for row in rows], total


def submitters(session: Session, versions: Sequence[FilingVersion]) -> dict[uuid.UUID, str]:
    """Who sent each version, by user id: display name and email."""
    return repository.user_labels(session, [v.submitted_by_id for v in versions if v.submitted_by_id is not None])


def upload_template(
    session: Session, *, actor: Actor, as_of: date, calendars: Mapping[str, WorkingCalendar]
) -> list[dict[str, str]]:
    """Rows of a long-format upload (``TEMPLATE_COLUMNS``) with the values left empty: one row per
    metric of the program's catalogue, by name, for each period the actor's institution can file
    now and has not (due or overdue). Bureau users file nothing: no rows."""
    if not actor.is_institution:
        return []
    rows: list[dict[str, str]] = []
    for item in due_filings(session, actor=actor, as_of=as_of, calendars=calendars):
        if not item.can_file:
            continue
        pilot = session.get(Pilot, item.pilot_id)
        assert pilot is not None
        catalogue = policy_document(policy_for_period(session, pilot, item.period)).metrics
        rows.extend(
            {"pilot": item.pilot_reference, "period": item.period.label, "metric": name, "value": ""}
            for name in sorted(catalogue)  # by name: PostgreSQL's JSONB keeps no key order
        )
    return rows


__all__ = [
    "TEMPLATE_COLUMNS",
    "DueFiling",
    "RecentFiling",
    "due_filings",
    "overdue_filings",
    "recent_filings",
    "submitters",
    "upload_template",
]
