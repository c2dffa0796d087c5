"""Spreadsheet uploads: many pilot-periods of one institution, accepted or refused whole.

Every row is checked before anything is written; the refusal lists every bad row and column.
Accepted filings are then written and judged one by one, in period order per pilot, in the
one transaction of the upload, through the same path as an API filing (each stored evaluation
explains itself with exact values)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.errors import InvalidInput, PermissionDenied
from sandbox.evaluation.service import Judgement
from sandbox.filing import repository
from sandbox.filing.ingest import Cell, ParsedFiling
from sandbox.filing.service import FILING_STATES, Admitted, Breakdown, FilingInput, Problem, admit, write
from sandbox.models import Filing, FilingVersion, Pilot, Role
from sandbox.pilot import repository as pilot_repository
from sandbox.rules.calendar import WorkingCalendar
from sandbox.rules.numbers import parse_exact

MAX_REPORTED = 1000


@dataclass(frozen=True)
class RowProblem:
    row: int | None
    column: str | None
    message: str

    def as_error(self) -> dict[str, object]:
        return {
            "loc": ["file", f"row {self.row}" if self.row else "file", self.column or ""],
            "row": self.row,
            "column": self.column,
            "msg": self.message,
            "type": "upload",
        }


def _value(cell: Cell, problems: list[RowProblem]) -> Decimal | None:
    try:
        return parse_exact(cell.text)
    except ValueError as exc:
        problems.append(RowProblem(cell.row, cell.column, str(exc)))
        return None


def _locate(parsed: ParsedFiling, problem: Problem) -> RowProblem:
    head = problem.where[0]
    first_row = parsed.rows[0] if parsed.rows else None
    if head == "metrics" and problem.where[1] in parsed.metrics:
        cell = parsed.metrics[problem.where[1]]
        return RowProblem(cell.row, cell.column, problem.message)
    if head == "breakdown":
        cell = parsed.breakdown[problem.where[1]].value
        return RowProblem(cell.row, cell.column, problem.message)
    return RowProblem(
        first_row, "period" if head == "period" else None, f"{parsed.pilot} {parsed.period}: {problem.message}"
    )


def import_filings(
    session: Session,
    parsed: Sequence[ParsedFiling],
    *,
    actor: Actor,
    at: datetime,
    calendars: Mapping[str, WorkingCalendar],
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[tuple[Filing, FilingVersion, Judgement]]:
    """``progress(done, total)`` is called as the accepted filings are written and judged."""
    actor.require(Role.filer, Role.institution_admin, doing="upload filings")
    if actor.institution_id is None:
        raise PermissionDenied("uploads are made by an institution's users")
    problems: list[RowProblem] = []
    found = repository.pilots_by_reference(session, actor.institution_id, sorted({p.pilot for p in parsed}))
    # Locked as the API path locks its pilot (in one order, against deadlocks), so a pilot
    # completed or withdrawn meanwhile cannot take filings between the check and the write.
    pilots: dict[str, Pilot] = {}
    for reference, found_pilot in sorted(found.items()):
        locked = pilot_repository.get_for_update(session, found_pilot.id)
        assert locked is not None
        pilots[reference] = locked
    admitted: list[Admitted] = []
    for item in parsed:
        first_row = item.rows[0] if item.rows else None
        pilot = pilots.get(item.pilot)
        if pilot is None:
            problems.append(RowProblem(first_row, "pilot", f"no pilot {item.pilot!r} of your institution"))
            continue
        if pilot.state not in FILING_STATES:
            problems.append(RowProblem(first_row, "pilot", f"pilot {item.pilot} is {pilot.state}; it takes no filings"))
            continue
        before = len(problems)
        metrics = {name: _value(cell, problems) for name, cell in item.metrics.items()}
        rows = [
            Breakdown(b.metric, value, b.dimensions)
            for b in item.breakdown
            if (value := _value(b.value, problems)) is not None
        ]
        if len(problems) > before:
            continue
        data = FilingInput(
            period=item.period, metrics={k: v for k, v in metrics.items() if v is not None}, breakdown=rows
        )
        ok, refused = admit(session, pilot, data, at=at)
        problems.extend(_locate(item, p) for p in refused)
        if ok is not None:
            admitted.append(ok)
    if problems:
        shown = problems[:MAX_REPORTED]
        raise InvalidInput(
            f"the file was refused and nothing was written: {len(problems)} problem(s)",
            [p.as_error() for p in shown]
            + (
                [{"loc": ["file"], "msg": f"and {len(problems) - MAX_REPORTED} more", "type": "upload"}]
                if len(problems) > MAX_REPORTED
                else []
            ),
        )
    admitted.sort(key=lambda a: (a.pilot.reference, a.period.ordinal))
    written = []
    for accepted in admitted:
        written.append(write(session, accepted, actor=actor, at=at, channel="upload", calendars=calendars))
        progress(len(written), len(admitted))
    return written
