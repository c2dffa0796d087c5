from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.audit.log import record
from sandbox.clock import bureau_date
from sandbox.errors import Conflict, InvalidInput, NotFound
from sandbox.evaluation.service import Judgement, evaluate_period, pilot_schedule, policy_for_period
from sandbox.filing import repository
from sandbox.models import Filing, FilingVersion, Pilot, PilotState, Role
from sandbox.pilot import repository as pilot_repository
from sandbox.pilot.service import get_pilot
from sandbox.program.service import policy_document
from sandbox.rules.calendar import WorkingCalendar, days_late, due_date
from sandbox.rules.numbers import decimal_places
from sandbox.rules.periods import Period, PeriodError, expected_periods, parse_period
from sandbox.rules.policy import PolicyDocument

FILING_STATES = frozenset({PilotState.active, PilotState.suspended})


class PilotNotFiling(Conflict):
    type_slug = "pilot-not-filing"
    title = "The pilot does not take filings"


@dataclass(frozen=True)
class Breakdown:
    metric: str
    value: Decimal
    dimensions: dict[str, str]


@dataclass(frozen=True)
class FilingInput:
    """One pilot-period's values, from the API or one group of spreadsheet rows."""

    period: str
    metrics: dict[str, Decimal]
    breakdown: list[Breakdown] = field(default_factory=list)
    amends: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class Problem:
    """A value the program refuses: ``where`` is ("metrics", name), ("breakdown", i, part) or
    (field,), mapped by the caller to a body location or a spreadsheet row and column."""

    where: tuple[Any, ...]
    message: str
    conflict: bool = False  # the period is already filed: a 409 when it is the only problem


def check_values(document: PolicyDocument, data: FilingInput) -> list[Problem]:
    """Each value against the program's metric catalogue: known, within its decimals and bounds;
    every required metric present; breakdown rows by known metrics and scope dimensions."""
    problems: list[Problem] = []
    catalogue = document.metrics

    def check(where: tuple[Any, ...], name: str, value: Decimal) -> None:
        spec = catalogue.get(name)
        if spec is None:
            problems.append(
                Problem(where, f"unknown metric {name!r}; the program's metrics are {', '.join(catalogue)}")
            )
            return
        if decimal_places(value) > spec.decimals:
            problems.append(Problem(where, f"{value} has more than the {spec.decimals} decimal place(s) {name} allows"))
        if spec.min is not None and value < spec.min:
            problems.append(Problem(where, f"{value} is below {name}'s minimum {spec.min}"))
        if spec.max is not None and value > spec.max:
            problems.append(Problem(where, f"{value} is above {name}'s maximum {spec.max}"))

    for name, value in data.metrics.items():
        check(("metrics", name), name, value)
    for name, spec in catalogue.items():
        if spec.required and name not in data.metrics:
            problems.append(Problem(("metrics", name), f"{name} is required by the program"))
    for index, row in enumerate(data.breakdown):
        check(("breakdown", index, "value"), row.metric, row.value)
        unknown = [d for d in row.dimensions if d not in document.scope]
        if unknown:
            problems.append(
                Problem(
                    ("breakdown", index, "dimensions"),
                    f"unknown scope dimension(s) {', '.join(unknown)}; the program has {', '.join(document.scope)}",
                )
            )
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for index, row in enumerate(data.breakdown):
        key = (row.metric, tuple(sorted(row.dimensions.items())))
        if key in seen:
            problems.append(Problem(("breakdown", index), "the same metric and dimensions appear twice"))
        seen.add(key)
    return problems


def _body_errors(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    return [{"loc": ["body", *p.where], "msg": p.message, "type": "filing"} for p in problems]


@dataclass(frozen=True)
class Admitted:
    """A filing that passed every check, ready to be written."""

    pilot: Pilot
    period: Period
    document: PolicyDocument
    data: FilingInput
    existing: Filing | None


def admit(
    session: Session, pilot: Pilot, data: FilingInput, *, at: datetime, lock: bool = True
) -> tuple[Admitted | None, list[Problem]]:
    """Every check on one filing short of writing it; problems are returned, not raised, so an
    upload can list the problems of all its rows."""
    program_frequency = pilot_schedule(session, pilot).frequency
    try:
        period = parse_period(data.period, program_frequency)
    except PeriodError as exc:
        return None, [Problem(("period",), str(exc))]
    today = bureau_date(at)
    if period not in expected_periods(pilot.start_on, pilot.end_on, program_frequency):
        return None, [
            Problem(
                ("period",),
                f"{period.label} is outside the pilot's dates ({pilot.start_on.isoformat()} to {pilot.end_on.isoformat()})",
            )
        ]
    if period.end >= today:
        return None, [
            Problem(
                ("period",),
                f"{period.label} has not ended yet (it ends on {period.end.isoformat()}); file it from the day after",
            )
        ]
    document = policy_document(policy_for_period(session, pilot, period))
    problems = check_values(document, data)
    existing = repository.find(session, pilot.id, period.label, lock=lock)
    if existing is not None and not data.amends:
        already = Problem(
            ("period",),
            f"{period.label} is already filed (version {existing.latest_version}); send amends: true with a reason to amend it",
            conflict=True,
        )
        return None, [*problems, already]
    if data.amends and existing is None:
        problems.append(Problem(("amends",), f"{period.label} has not been filed yet, so there is nothing to amend"))
    if data.amends and not data.reason:
        problems.append(Problem(("reason",), "an amendment needs a reason"))
    if problems:
        return None, problems
    return Admitted(pilot, period, document, data, existing), []


def write(
    session: Session,
    admitted: Admitted,
    *,
    actor: Actor,
    at: datetime,
    channel: str,
    calendars: Mapping[str, WorkingCalendar],
) -> tuple[Filing, FilingVersion, Judgement]:
    pilot, period, data = admitted.pilot, admitted.period, admitted.data
    schedule = admitted.document.schedule
    calendar = calendars.get(schedule.calendar)
    if calendar is None:
        raise Conflict(f"the program's calendar {schedule.calendar!r} is not installed under policies/calendars")
    due = due_date(period, schedule.due_business_days, calendar)
    received_on = bureau_date(at)
    filing = admitted.existing
    if filing is None:
        filing = Filing(
            pilot_id=pilot.id,
            period=period.label,
            period_ordinal=period.ordinal,
            due_on=due.date,
            due_estimated=due.estimated,
            latest_version=1,
            created_at=at,
            updated_at=at,
        )
        session.add(filing)
        session.flush()
    else:
        filing.latest_version += 1
        filing.updated_at = at
    version = FilingVersion(
        filing_id=filing.id,
        version=filing.latest_version,
        metrics={k: format(v, "f") for k, v in data.metrics.items()},
        breakdown=[
            {"metric": b.metric, "value": format(b.value, "f"), "dimensions": b.dimensions} for b in data.breakdown
        ],
        received_at=at,
        received_on=received_on,
        days_late=days_late(received_on, filing.due_on),
        channel=channel,
        submitted_by_id=actor.user_id,
        reason=data.reason,
    )
    session.add(version)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="filing.amend" if version.version > 1 else "filing.create",
        object_type="filing",
        object_id=filing.id,
        after={
            "pilot_id": pilot.id,
            "period": period.label,
            "version": version.version,
            "channel": channel,
            "days_late": version.days_late,
            "reason": data.reason,
        },
    )
    judgement = evaluate_period(
        session, pilot, period, trigger="amendment" if version.version > 1 else "filing", filing_version=version, at=at
    )
    return filing, version, judgement


def _filing_pilot(session: Session, pilot_id: uuid.UUID, actor: Actor) -> Pilot:
    pilot = get_pilot(session, pilot_id, actor=actor)
    actor.require(Role.filer, Role.institution_admin, doing="file metrics")
    if actor.institution_id != pilot.institution_id:
        raise NotFound("no such pilot")
    locked = pilot_repository.get_for_update(session, pilot.id)
    assert locked is not None
    if locked.state not in FILING_STATES:
        raise PilotNotFiling(
            f"pilot {locked.reference} is {locked.state}; filings are taken while it is active or suspended",
            current_state=locked.state,
        )
    return locked


def submit_filing(
    session: Session,
    pilot_id: uuid.UUID,
    data: FilingInput,
    *,
    actor: Actor,
    at: datetime,
    channel: str,
    calendars: Mapping[str, WorkingCalendar],
) -> tuple[Filing, FilingVersion, Judgement]:
    """One pilot-period through the API: checked, written, and judged in the same transaction."""
    pilot = _filing_pilot(session, pilot_id, actor)
    admitted, problems = admit(session, pilot, data, at=at)
    if admitted is None:
        if len(problems) == 1 and problems[0].conflict:
            raise Conflict(problems[0].message, period=data.period)
        raise InvalidInput(
            f"{len(problems)} problem(s) with the filing: " + "; ".join(p.message for p in problems[:3]),
            _body_errors(problems),
        )
    return write(session, admitted, actor=actor, at=at, channel=channel, calendars=calendars)


def get_filing(session: Session, filing_id: uuid.UUID, *, actor: Actor) -> tuple[Filing, Sequence[FilingVersion]]:
    filing = session.get(Filing, filing_id)
    if filing is None:
        raise NotFound("no such filing")
    try:
        get_pilot(session, filing.pilot_id, actor=actor)
    except NotFound:
        raise NotFound("no such filing") from None
    return filing, repository.versions(session, filing.id)


def list_filings(
    session: Session, pilot_id: uuid.UUID, *, actor: Actor, offset: int, limit: int
) -> tuple[Sequence[tuple[Filing, FilingVersion]], int]:
    pilot = get_pilot(session, pilot_id, actor=actor)
    return repository.list_page(session, pilot.id, offset, limit)
