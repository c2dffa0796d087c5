from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response, status

from sandbox.api.deps import CurrentActor, DbSession, Now, Paging
from sandbox.api.routing import ExactJSONRoute
from sandbox.models import RiskEvent
from sandbox.risk import service
from sandbox.risk.schemas import RiskEventCreate, RiskEventRead

router = APIRouter(tags=["risk events"], route_class=ExactJSONRoute)


def _reads(session: DbSession, events: Sequence[RiskEvent]) -> list[RiskEventRead]:
    exemptions = service.exemption_ids(session, events)
    return [
        RiskEventRead(
            id=e.id,
            pilot_id=e.pilot_id,
            kind=e.kind,
            occurred_on=e.occurred_on,
            reported_at=e.reported_at,
            amount=e.amount,
            description=e.description,
            reported_by_id=e.reported_by_id,
            exemption_ids=exemptions[e.id],
        )
        for e in events
    ]


@router.post("/pilots/{pilot_id}/risk-events", status_code=status.HTTP_201_CREATED, response_model=RiskEventRead)
def report_risk_event(
    pilot_id: uuid.UUID,
    body: RiskEventCreate,
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    response: Response,
) -> RiskEventRead:
    """Report an incident. A loss (amount above zero) is assessed for a due-diligence exemption
    at once when the program's policy has criteria; ``exemption_ids`` lists the assessment."""
    event, _ = service.report_risk_event(
        session,
        pilot_id,
        kind=body.kind,
        occurred_on=body.occurred_on,
        amount=body.amount,
        description=body.description,
        actor=actor,
        at=now,
        calendars=request.app.state.calendars,
    )
    response.headers["Location"] = f"/api/v1/pilots/{pilot_id}/risk-events"
    return _reads(session, [event])[0]


@router.get("/pilots/{pilot_id}/risk-events")
def list_risk_events(pilot_id: uuid.UUID, session: DbSession, actor: CurrentActor, page: Paging) -> dict[str, Any]:
    rows, total = service.list_risk_events(session, pilot_id, actor=actor, offset=page.offset, limit=page.limit)
    return page.envelope([r.model_dump(mode="json") for r in _reads(session, rows)], total)
