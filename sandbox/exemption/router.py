from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from sandbox.actor import Actor
from sandbox.api.deps import CurrentActor, DbSession, IfMatch, Now, Paging, set_etag
from sandbox.api.routing import ExactJSONRoute
from sandbox.exemption import service
from sandbox.exemption.repository import Labelled
from sandbox.exemption.schemas import ConfirmBody, DecideBody, ExemptionClaim, ExemptionRead
from sandbox.models import ExemptionState

router = APIRouter(tags=["exemptions"], route_class=ExactJSONRoute)


def exemption_read(labelled: Labelled, actor: Actor) -> ExemptionRead:
    e = labelled.exemption
    return ExemptionRead(
        id=e.id,
        pilot_id=e.pilot_id,
        pilot_reference=labelled.pilot_reference,
        trigger=e.trigger,
        risk_event_id=e.risk_event_id,
        rule_id=e.rule_id,
        evaluation_id=e.evaluation_id,
        policy_version=labelled.policy_version,
        state=e.state,
        finding=e.finding,
        assessment=e.assessment,
        statement=e.statement,
        claimed_by_id=e.claimed_by_id,
        decision=e.decision,
        decision_reason=e.decision_reason,
        decided_by_id=e.decided_by_id,
        decided_at=e.decided_at,
        confirmed_by_id=e.confirmed_by_id,
        confirmation_reason=e.confirmation_reason,
        confirmed_at=e.confirmed_at,
        allowed_commands=service.allowed_commands(e, actor),
        created_at=e.created_at,
        updated_at=e.updated_at,
        version=e.version,
    )


def _respond(session: DbSession, response: Response, exemption_id: uuid.UUID, actor: Actor) -> ExemptionRead:
    labelled = service.get_exemption(session, exemption_id, actor=actor)
    set_etag(response, labelled.exemption.version)
    return exemption_read(labelled, actor)


@router.post("/pilots/{pilot_id}/exemptions", status_code=status.HTTP_201_CREATED, response_model=ExemptionRead)
def claim_exemption(
    pilot_id: uuid.UUID,
    body: ExemptionClaim,
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    response: Response,
) -> ExemptionRead:
    """An institution admin claims a due-diligence exemption for one of the pilot's risk events;
    the answer carries the system's assessment."""
    exemption = service.claim_exemption(
        session,
        pilot_id,
        risk_event_id=body.risk_event_id,
        statement=body.statement,
        actor=actor,
        at=now,
        calendars=request.app.state.calendars,
    )
    response.headers["Location"] = f"/api/v1/exemptions/{exemption.id}"
    return _respond(session, response, exemption.id, actor)


@router.get("/exemptions")
def list_exemptions(
    session: DbSession,
    actor: CurrentActor,
    page: Paging,
    state: Annotated[list[ExemptionState] | None, Query()] = None,
    pilot_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    rows, total = service.list_exemptions(
        session, actor=actor, states=state, pilot_id=pilot_id, offset=page.offset, limit=page.limit
    )
    return page.envelope([exemption_read(r, actor).model_dump(mode="json") for r in rows], total)


@router.get("/exemptions/{exemption_id}", response_model=ExemptionRead)
def get_exemption(
    exemption_id: uuid.UUID, session: DbSession, actor: CurrentActor, response: Response
) -> ExemptionRead:
    return _respond(session, response, exemption_id, actor)


@router.post("/exemptions/{exemption_id}/decide", response_model=ExemptionRead)
def decide(
    exemption_id: uuid.UUID,
    body: DecideBody,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
) -> ExemptionRead:
    """A supervisor grants or denies; against the assessment's finding, the reason must be at
    least 80 characters and a second bureau user must confirm."""
    service.decide(
        session,
        exemption_id,
        decision=body.decision,
        reason=body.reason,
        actor=actor,
        at=now,
        expected_version=if_match,
    )
    return _respond(session, response, exemption_id, actor)


@router.post("/exemptions/{exemption_id}/confirm", response_model=ExemptionRead)
def confirm(
    exemption_id: uuid.UUID,
    body: ConfirmBody,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
) -> ExemptionRead:
    service.confirm(session, exemption_id, reason=body.reason, actor=actor, at=now, expected_version=if_match)
    return _respond(session, response, exemption_id, actor)
