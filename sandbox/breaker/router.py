from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from sandbox.actor import Actor
from sandbox.api.deps import CurrentActor, DbSession, IfMatch, Now, Paging, set_etag
from sandbox.api.routing import ExactJSONRoute
from sandbox.breaker import repository, service
from sandbox.breaker.schemas import AcknowledgeBody, BreakerEventRead, BreakerRead, ResetBody
from sandbox.models import Breaker, BreakerState, Pilot

router = APIRouter(prefix="/breakers", tags=["breakers"], route_class=ExactJSONRoute)


def _read(breaker: Breaker, reference: str, actor: Actor, events: list[BreakerEventRead] | None = None) -> BreakerRead:
    commands = service.allowed_commands(breaker, actor)
    return BreakerRead(
        id=breaker.id,
        pilot_id=breaker.pilot_id,
        pilot_reference=reference,
        rule_id=breaker.rule_id,
        action=breaker.action,
        severity=breaker.severity,
        state=breaker.state,
        memory=breaker.memory,
        trips=breaker.trips,
        last_tripped_at=breaker.last_tripped_at,
        reset_at=breaker.reset_at,
        allowed_commands=commands,
        updated_at=breaker.updated_at,
        version=breaker.version,
        events=events,
    )


@router.get("")
def list_breakers(
    session: DbSession,
    actor: CurrentActor,
    page: Paging,
    state: Annotated[list[BreakerState] | None, Query()] = None,
    pilot_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    rows, total = service.list_breakers(
        session, actor=actor, pilot_id=pilot_id, states=state, offset=page.offset, limit=page.limit
    )
    return page.envelope([_read(b, ref, actor).model_dump(mode="json") for b, ref in rows], total)


def _respond(
    session: DbSession, response: Response, breaker: Breaker, actor: Actor, with_events: bool = False
) -> BreakerRead:
    pilot = session.get(Pilot, breaker.pilot_id)
    assert pilot is not None
    set_etag(response, breaker.version)
    events = None
    if with_events:
        events = [
            BreakerEventRead(
                kind=e.kind,
                period=e.period,
                status=e.status,
                state_before=e.state_before,
                state_after=e.state_after,
                signals=e.signals,
                actor=e.actor,
                note=e.note,
                at=e.at,
            )
            for e in repository.events(session, breaker.id)
        ]
    return _read(breaker, pilot.reference, actor, events)


@router.get("/{breaker_id}", response_model=BreakerRead)
def get_breaker(breaker_id: uuid.UUID, session: DbSession, actor: CurrentActor, response: Response) -> BreakerRead:
    return _respond(session, response, service.get_breaker(session, breaker_id, actor=actor), actor, with_events=True)


@router.post("/{breaker_id}/acknowledge", response_model=BreakerRead)
def acknowledge(
    breaker_id: uuid.UUID,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
    body: AcknowledgeBody | None = None,
) -> BreakerRead:
    breaker = service.acknowledge(
        session, breaker_id, body.note if body else None, actor=actor, at=now, expected_version=if_match
    )
    return _respond(session, response, breaker, actor)


@router.post("/{breaker_id}/reset", response_model=BreakerRead)
def reset(
    breaker_id: uuid.UUID,
    body: ResetBody,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
) -> BreakerRead:
    breaker = service.reset(session, breaker_id, body.reason, actor=actor, at=now, expected_version=if_match)
    return _respond(session, response, breaker, actor)
