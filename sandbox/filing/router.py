from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse

from sandbox.api.deps import CurrentActor, DbSession, Now, Paging
from sandbox.api.routing import ExactJSONRoute
from sandbox.errors import InvalidInput
from sandbox.evaluation.service import Judgement
from sandbox.filing import idempotency, service
from sandbox.filing.ingest import UploadRefused, read_upload
from sandbox.filing.schemas import FilingCreate, FilingRead, FilingVersionRead
from sandbox.filing.service import Breakdown, FilingInput
from sandbox.filing.upload import RowProblem, import_filings
from sandbox.models import Filing, FilingVersion
from sandbox.rules.calendar import WorkingCalendar

router = APIRouter(tags=["filings"], route_class=ExactJSONRoute)


def _calendars(request: Request) -> Mapping[str, WorkingCalendar]:
    calendars: Mapping[str, WorkingCalendar] = request.app.state.calendars
    return calendars


def version_read(version: FilingVersion) -> FilingVersionRead:
    return FilingVersionRead(
        id=version.id,
        version=version.version,
        metrics=version.metrics,
        breakdown=version.breakdown,
        received_at=version.received_at,
        days_late=version.days_late,
        channel=version.channel,
        reason=version.reason,
    )


def judgement_json(judgement: Judgement) -> dict[str, Any]:
    evaluation = judgement.evaluation
    return {
        "id": str(evaluation.id),
        "period": evaluation.period,
        "policy_version": judgement.policy.document.program.version,
        "outcomes": evaluation.outcomes,
    }


def filing_read(filing: Filing, current: FilingVersion, **extra: Any) -> FilingRead:
    return FilingRead(
        id=filing.id,
        pilot_id=filing.pilot_id,
        period=filing.period,
        due_on=filing.due_on,
        due_estimated=filing.due_estimated,
        latest_version=filing.latest_version,
        current=version_read(current),
        **extra,
    )


@router.post("/pilots/{pilot_id}/filings", status_code=status.HTTP_201_CREATED, response_model=FilingRead)
def create_filing(
    pilot_id: uuid.UUID,
    body: FilingCreate,
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    response: Response,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Any:
    """File one pilot-period. The answer includes every rule's outcome for the period."""
    digest = idempotency.request_hash(str(pilot_id), body.model_dump(mode="json"))
    if idempotency_key is not None and actor.institution_id is not None:
        replay = idempotency.claim(session, actor.institution_id, idempotency_key, digest, at=now)
        if replay is not None:
            # The first answer as it was, Location included (only 201s are remembered).
            headers = {"Idempotent-Replayed": "true", "Location": f"/api/v1/filings/{replay.body['id']}"}
            return JSONResponse(replay.body, status_code=replay.status_code, headers=headers)
    data = FilingInput(
        period=body.period,
        metrics=dict(body.metrics),
        breakdown=[Breakdown(b.metric, b.value, dict(b.dimensions)) for b in body.breakdown],
        amends=body.amends,
        reason=body.reason,
    )
    filing, version, judgement = service.submit_filing(
        session, pilot_id, data, actor=actor, at=now, channel="api", calendars=_calendars(request)
    )
    result = filing_read(filing, version, evaluation=judgement_json(judgement))
    if idempotency_key is not None and actor.institution_id is not None:
        idempotency.remember(
            session, actor.institution_id, idempotency_key, digest, 201, result.model_dump(mode="json"), at=now
        )
    response.headers["Location"] = f"/api/v1/filings/{filing.id}"
    return result


@router.get("/pilots/{pilot_id}/filings")
def list_filings(pilot_id: uuid.UUID, session: DbSession, actor: CurrentActor, page: Paging) -> dict[str, Any]:
    rows, total = service.list_filings(session, pilot_id, actor=actor, offset=page.offset, limit=page.limit)
    return page.envelope([filing_read(f, v).model_dump(mode="json") for f, v in rows], total)


@router.get("/filings/{filing_id}", response_model=FilingRead)
def get_filing(filing_id: uuid.UUID, session: DbSession, actor: CurrentActor) -> FilingRead:
    filing, versions = service.get_filing(session, filing_id, actor=actor)
    return filing_read(filing, versions[-1], versions=[version_read(v) for v in versions])


@router.post("/filings/upload", status_code=status.HTTP_201_CREATED)
def upload_filings(
    request: Request, session: DbSession, actor: CurrentActor, now: Now, file: Annotated[UploadFile, File()]
) -> dict[str, Any]:
    """A CSV or XLSX file of many pilot-periods (long or wide format): all accepted, or none."""
    settings = request.app.state.settings
    data = file.file.read(settings.max_upload_bytes + 1)
    try:
        parsed = read_upload(
            data, file.filename or "upload", max_bytes=settings.max_upload_bytes, max_rows=settings.max_upload_rows
        )
    except UploadRefused as refused:
        problems = [RowProblem(e.row, e.column, e.message) for e in refused.errors]
        raise InvalidInput(
            f"the file was refused and nothing was written: {len(problems)} problem(s)",
            [p.as_error() for p in problems],
        ) from None
    written = import_filings(session, parsed, actor=actor, at=now, calendars=_calendars(request))
    return {
        "filings": [
            {
                "id": str(f.id),
                "pilot_id": str(f.pilot_id),
                "period": f.period,
                "version": v.version,
                "breaches": [o.rule_id for o in j.outcomes if o.status == "breach"],
                "tripped": [b.rule_id for b, signals in j.breakers if "tripped" in signals],
            }
            for f, v, j in written
        ],
        "count": len(written),
    }
