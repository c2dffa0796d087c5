"""Pages for filings: what is due and overdue, recent filings, one filing with its versions and
evaluation, and the spreadsheet upload (the same reader and import service as the API's
``POST /filings/upload``, with the same size and row limits).

An upload is accepted or refused whole. A refused file is answered with the upload page again
(422) listing every problem the reader or the import service found, row by row, so the filer can
fix them all at once; nothing is recorded (the unit of work is rolled back)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from sandbox.actor import Actor
from sandbox.api.deps import DbSession
from sandbox.config import Settings
from sandbox.errors import InvalidInput
from sandbox.evaluation.service import Judgement, list_evaluations, pilot_schedule, policy_for_period
from sandbox.filing import due
from sandbox.filing.export import filings_to_csv
from sandbox.filing.ingest import ParsedFiling, UploadRefused, read_upload
from sandbox.filing.service import get_filing
from sandbox.filing.upload import import_filings
from sandbox.models import Filing, FilingVersion, Institution, Pilot
from sandbox.pilot import repository as pilot_repository
from sandbox.pilot.service import get_pilot, list_pilots
from sandbox.program.service import policy_document
from sandbox.rules.calendar import WorkingCalendar
from sandbox.rules.periods import parse_period
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import WebRoute, bureau_today, id_from_url, paging, redirect, render

router = APIRouter(include_in_schema=False, route_class=WebRoute)

PAGE_SIZE = 50
DUE_SHOWN = 200
PILOT_CHOICES = 500
NOTICE_ITEMS = 10
TEMPLATE_NAME = "filings-template.csv"


def _calendars(request: Request) -> Mapping[str, WorkingCalendar]:
    calendars: Mapping[str, WorkingCalendar] = request.app.state.calendars
    return calendars


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _uuid(text: str | None, what: str) -> uuid.UUID | None:
    """An optional id from a URL: empty is none."""
    return id_from_url(text, what) if text else None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# --- the list ------------------------------------------------------------------------------------


@router.get("/filings", response_class=HTMLResponse)
def filings_page(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    pilot: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    pilot_id = _uuid(pilot, "pilot")
    today = bureau_today(request)
    # The bureau's list is the overdue queue; what is merely due is the institutions' business.
    listing = due.overdue_filings if actor.is_bureau else due.due_filings
    listed = listing(session, actor=actor, as_of=today, calendars=_calendars(request), pilot_id=pilot_id)
    offset = (page - 1) * PAGE_SIZE
    recent, total = due.recent_filings(session, actor=actor, pilot_id=pilot_id, offset=offset, limit=PAGE_SIZE)
    choices, _ = list_pilots(session, actor=actor, state=None, program=None, offset=0, limit=PILOT_CHOICES)
    context: dict[str, Any] = {
        "today": today,
        "due": listed[:DUE_SHOWN],
        "due_total": len(listed),
        "recent": recent,
        **paging(
            "/filings",
            page=page,
            size=PAGE_SIZE,
            shown=len(recent),
            total=total,
            filters={"pilot": pilot_id},
            fragment="#recent",
        ),
        "pilots": choices,
        "selected": pilot_id,
        "selected_pilot": next((p for p in choices if p.id == pilot_id), None),
    }
    return render(request, "filings/index.html", context, actor=actor)


# --- upload --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowIssue:
    row: int | None
    column: str | None
    value: str
    problem: str


def _check_may_upload(session: DbSession, request: Request, actor: Actor) -> None:
    """The upload service's own refusal for a user who may not upload (bureau staff, say): an
    empty upload goes through the service's checks and writes nothing."""
    import_filings(session, [], actor=actor, at=request.app.state.clock.now(), calendars=_calendars(request))


def _upload_context(request: Request) -> dict[str, Any]:
    settings = _settings(request)
    return {
        "max_megabytes": f"{settings.max_upload_bytes / 1_000_000:g}",
        "max_rows": settings.max_upload_rows,
        "issues": [],
        "summary": None,
        "filename": None,
    }


@router.get("/filings/upload", response_class=HTMLResponse)
def upload_page(request: Request, session: DbSession, actor: RequiredWebActor) -> Response:
    _check_may_upload(session, request, actor)
    return render(request, "filings/upload.html", _upload_context(request), actor=actor)


@router.get("/filings/template.csv")
def upload_template(request: Request, session: DbSession, actor: RequiredWebActor) -> Response:
    """A long-format CSV to fill in: the institution's periods that can be filed now, one row per
    metric of the program, values empty. Bureau users get the header row only."""
    rows = due.upload_template(session, actor=actor, as_of=bureau_today(request), calendars=_calendars(request))
    return Response(
        filings_to_csv(rows, due.TEMPLATE_COLUMNS),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{TEMPLATE_NAME}"', "Cache-Control": "no-store"},
    )


def _cell_values(parsed: Sequence[ParsedFiling]) -> dict[tuple[int, str], str]:
    """The text of each cell the import read, by (row, column), to show next to its problem."""
    values: dict[tuple[int, str], str] = {}
    for item in parsed:
        for row in item.rows:
            values[(row, "pilot")] = item.pilot
            values[(row, "period")] = item.period
        for cell in item.metrics.values():
            values[(cell.row, cell.column)] = cell.text
        for entry in item.breakdown:
            values[(entry.value.row, entry.value.column)] = entry.value.text
    return values


def _summary(issues: Sequence[RowIssue]) -> str:
    rows = {issue.row for issue in issues if issue.row is not None}
    if not rows and len(issues) == 1:
        problem = issues[0].problem
        return f"The file was not accepted: {problem.rstrip('.')}. Nothing was recorded."
    return (
        f"The file was not accepted: {_plural(len(issues), 'problem')} in {_plural(len(rows), 'row')}. "
        "Nothing was recorded."
    )


def _refused(
    request: Request, session: DbSession, actor: Actor, issues: list[RowIssue], filename: str | None
) -> Response:
    # Nothing the import did may be kept (it locked rows and read; it wrote nothing, by design).
    session.rollback()
    context = {**_upload_context(request), "issues": issues, "summary": _summary(issues), "filename": filename}
    return render(request, "filings/upload.html", context, actor=actor, status_code=422)


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:NOTICE_ITEMS])
    return shown + (f" and {len(items) - NOTICE_ITEMS} more" if len(items) > NOTICE_ITEMS else "")


def _accepted_notice(session: DbSession, written: Sequence[tuple[Filing, FilingVersion, Judgement]]) -> str:
    names: list[str] = []
    tripped: list[str] = []
    warnings: list[str] = []
    for filing, version, judgement in written:
        pilot = session.get(Pilot, filing.pilot_id)
        name = f"{pilot.reference if pilot else filing.pilot_id} {filing.period}"
        names.append(name if version.version == 1 else f"{name} (version {version.version})")
        tripped += [f"{b.rule_id} ({name})" for b, signals in judgement.breakers if "tripped" in signals]
        warnings += [
            f"{o.rule_id} ({name})"
            for o in judgement.outcomes
            if o.status == "breach" and o.action == "warn" and o.mode == "enforce"
        ]
    parts = [f"The file was accepted: {_plural(len(written), 'filing')} recorded: {_listed(names)}."]
    if tripped:
        parts.append(f"{_plural(len(tripped), 'breaker')} tripped: {_listed(tripped)}.")
    if warnings:
        parts.append(f"{_plural(len(warnings), 'warning')}: {_listed(warnings)}.")
    if not tripped and not warnings:
        parts.append("No breaker tripped and no warning was raised.")
    return " ".join(parts)


@router.post("/filings/upload", response_class=HTMLResponse)
def upload(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    _check_may_upload(session, request, actor)
    if file is None or not file.filename:
        issue = RowIssue(None, None, "", "no file was chosen; choose a .csv or .xlsx spreadsheet to upload")
        return _refused(request, session, actor, [issue], None)
    settings = _settings(request)
    data = file.file.read(settings.max_upload_bytes + 1)
    try:
        parsed = read_upload(
            data, file.filename, max_bytes=settings.max_upload_bytes, max_rows=settings.max_upload_rows
        )
    except UploadRefused as refused:
        issues = [RowIssue(e.row, e.column, "", e.message) for e in refused.errors]
        return _refused(request, session, actor, issues, file.filename)
    try:
        written = import_filings(
            session, parsed, actor=actor, at=request.app.state.clock.now(), calendars=_calendars(request)
        )
    except InvalidInput as exc:
        values = _cell_values(parsed)
        issues = []
        for error in exc.extra.get("errors", []):
            row, column = error.get("row"), error.get("column")
            value = values.get((row, column), "") if row is not None and column else ""
            issues.append(RowIssue(row, column, value, str(error.get("msg", ""))))
        return _refused(request, session, actor, issues, file.filename)
    return redirect(request, "/filings", notice=_accepted_notice(session, written))


# --- one filing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionView:
    version: FilingVersion
    submitted_by: str
    changes: list[str]


def _changes(previous: FilingVersion | None, current: FilingVersion) -> list[str]:
    """What a correction changed, metric by metric, against the version before it."""
    if previous is None:
        return []
    found = []
    for name in sorted(set(previous.metrics) | set(current.metrics)):
        before, after = previous.metrics.get(name), current.metrics.get(name)
        if before != after:
            found.append(
                f"{name}: {before if before is not None else '(not filed)'} → {after if after is not None else '(not filed)'}"
            )
    if previous.breakdown != current.breakdown:
        found.append(
            f"breakdown rows changed ({_plural(len(previous.breakdown), 'row')} → {_plural(len(current.breakdown), 'row')})"
        )
    return found


@router.get("/filings/{filing_id}", response_class=HTMLResponse)
def filing_page(request: Request, session: DbSession, actor: RequiredWebActor, filing_id: str) -> Response:
    found_id = _uuid(filing_id, "filing")
    assert found_id is not None
    filing, versions = get_filing(session, found_id, actor=actor)
    pilot = get_pilot(session, filing.pilot_id, actor=actor)
    institution = session.get(Institution, pilot.institution_id)
    program_code = pilot_repository.labels(session, [pilot]).get(pilot.id, ("", ""))[0]
    period = parse_period(filing.period, pilot_schedule(session, pilot).frequency)
    catalogue = policy_document(policy_for_period(session, pilot, period)).metrics
    evaluations, evaluations_total = list_evaluations(
        session, pilot.id, actor=actor, period=filing.period, offset=0, limit=PAGE_SIZE
    )
    names = due.submitters(session, versions)
    views = [
        VersionView(
            version,
            names.get(version.submitted_by_id, "") if version.submitted_by_id else "system",
            _changes(versions[index - 1] if index else None, version),
        )
        for index, version in enumerate(versions)
    ]
    version_numbers = {v.id: v.version for v in versions}
    current = versions[-1]
    context = {
        "filing": filing,
        "current": current,
        "pilot": pilot,
        "institution": institution,
        "program_code": program_code,
        "period": period,
        "units": {name: metric.unit for name, metric in catalogue.items()},
        "versions": list(reversed(views)),
        "evaluations": evaluations,
        "evaluations_total": evaluations_total,
        "version_numbers": version_numbers,
    }
    return render(request, "filings/detail.html", context, actor=actor)
