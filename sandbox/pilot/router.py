from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.api.deps import CurrentActor, DbSession, IfMatch, Now, Paging, set_etag
from sandbox.api.routing import ExactJSONRoute
from sandbox.models import Pilot, PilotState
from sandbox.pilot import repository, service
from sandbox.pilot.schemas import ExtendBody, OptionalReasonBody, PilotRead, ReasonBody

router = APIRouter(prefix="/pilots", tags=["pilots"], route_class=ExactJSONRoute)


def _reads(session: Session, pilots: Sequence[Pilot], actor: Actor) -> list[PilotRead]:
    labels = repository.labels(session, pilots)
    quotas = repository.allocations_for(session, [p.id for p in pilots])
    return [
        PilotRead(
            **{name: getattr(p, name) for name in PilotRead.model_fields if hasattr(p, name)},
            program=labels[p.id][0],
            institution_code=labels[p.id][1],
            granted_quotas=quotas[p.id],
            allowed_commands=service.allowed_commands(p, actor),
        )
        for p in pilots
    ]


def _respond(session: Session, response: Response, pilot: Pilot, actor: Actor) -> PilotRead:
    set_etag(response, pilot.version)
    return _reads(session, [pilot], actor)[0]


@router.get("")
def list_pilots(
    session: DbSession,
    actor: CurrentActor,
    page: Paging,
    state: Annotated[PilotState | None, Query()] = None,
    program: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    rows, total = service.list_pilots(
        session, actor=actor, state=state, program=program, offset=page.offset, limit=page.limit
    )
    return page.envelope([r.model_dump(mode="json") for r in _reads(session, rows, actor)], total)


@router.get("/{pilot_id}", response_model=PilotRead)
def get_pilot(pilot_id: uuid.UUID, session: DbSession, actor: CurrentActor, response: Response) -> PilotRead:
    return _respond(session, response, service.get_pilot(session, pilot_id, actor=actor), actor)


def _command(
    command: str,
    reason: str | None,
    pilot_id: uuid.UUID,
    session: Session,
    actor: Actor,
    now: datetime,
    if_match: int | None,
    response: Response,
) -> PilotRead:
    pilot = service.run_command(
        session, pilot_id, command, reason=reason, actor=actor, at=now, expected_version=if_match
    )
    return _respond(session, response, pilot, actor)


@router.post("/{pilot_id}/complete", response_model=PilotRead)
def complete(
    pilot_id: uuid.UUID,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
    body: OptionalReasonBody | None = None,
) -> PilotRead:
    return _command("complete", body.reason if body else None, pilot_id, session, actor, now, if_match, response)


REASONED_COMMANDS = {
    "suspend": "Force-suspend (a supervisor): new business stops; existing business is still serviced.",
    "resume": "Resume (an approver), once no breaker is tripped or acknowledged.",
    "terminate": "End the pilot (an approver); its quotas are released.",
    "withdraw": "The institution withdraws its pilot; its quotas are released.",
}


def _reasoned(command: str, description: str) -> None:
    def endpoint(
        pilot_id: uuid.UUID,
        body: ReasonBody,
        session: DbSession,
        actor: CurrentActor,
        now: Now,
        if_match: IfMatch,
        response: Response,
    ) -> PilotRead:
        return _command(command, body.reason, pilot_id, session, actor, now, if_match, response)

    router.add_api_route(
        f"/{{pilot_id}}/{command}",
        endpoint,
        methods=["POST"],
        response_model=PilotRead,
        name=command,
        description=description,
    )


for _name, _description in REASONED_COMMANDS.items():
    _reasoned(_name, _description)


@router.post("/{pilot_id}/extend", response_model=PilotRead)
def extend(
    pilot_id: uuid.UUID,
    body: ExtendBody,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
) -> PilotRead:
    pilot = service.extend(
        session, pilot_id, end_on=body.end_on, reason=body.reason, actor=actor, at=now, expected_version=if_match
    )
    return _respond(session, response, pilot, actor)
