from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.api.deps import CurrentActor, DbSession, IfMatch, Now, Paging, set_etag
from sandbox.api.routing import ExactJSONRoute
from sandbox.application import repository, service
from sandbox.application.schemas import (
    ApplicationCreate,
    ApplicationRead,
    ApplicationUpdate,
    ApproveBody,
    MessageCreate,
    MessageRead,
    ReasonBody,
    RecommendBody,
)
from sandbox.models import Application, ApplicationState

router = APIRouter(prefix="/applications", tags=["applications"], route_class=ExactJSONRoute)


def _read(session: Session, application: Application, actor: Actor) -> ApplicationRead:
    program, institution, pilot_id = repository.labels(session, [application])[application.id]
    return _to_read(application, program, institution, pilot_id, actor)


def _to_read(
    application: Application, program: str, institution: str, pilot_id: uuid.UUID | None, actor: Actor
) -> ApplicationRead:
    return ApplicationRead(
        **{
            name: getattr(application, name)
            for name in ApplicationRead.model_fields
            if hasattr(application, name) and name != "program"
        },
        program=program,
        institution_code=institution,
        pilot_id=pilot_id,
        allowed_commands=service.allowed_commands(application, actor),
    )


def _respond(session: Session, response: Response, application: Application, actor: Actor) -> ApplicationRead:
    set_etag(response, application.version)
    return _read(session, application, actor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApplicationRead)
def create_application(
    body: ApplicationCreate, session: DbSession, actor: CurrentActor, now: Now, response: Response
) -> ApplicationRead:
    application = service.create_application(session, body, actor=actor, at=now)
    response.headers["Location"] = f"/api/v1/applications/{application.id}"
    return _respond(session, response, application, actor)


@router.get("")
def list_applications(
    session: DbSession,
    actor: CurrentActor,
    page: Paging,
    state: Annotated[ApplicationState | None, Query()] = None,
    program: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    rows, total = service.list_applications(
        session, actor=actor, state=state, program=program, offset=page.offset, limit=page.limit
    )
    labels = repository.labels(session, rows)
    items = [_to_read(row, *labels[row.id], actor).model_dump(mode="json") for row in rows]
    return page.envelope(items, total)


@router.get("/{application_id}", response_model=ApplicationRead)
def get_application(
    application_id: uuid.UUID, session: DbSession, actor: CurrentActor, response: Response
) -> ApplicationRead:
    return _respond(session, response, service.get_application(session, application_id, actor=actor), actor)


@router.patch("/{application_id}", response_model=ApplicationRead)
def update_application(
    application_id: uuid.UUID,
    body: ApplicationUpdate,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
) -> ApplicationRead:
    application = service.update_application(
        session, application_id, body, actor=actor, at=now, expected_version=if_match
    )
    return _respond(session, response, application, actor)


@router.post("/{application_id}/recommend", response_model=ApplicationRead)
def recommend(
    application_id: uuid.UUID,
    body: RecommendBody,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
) -> ApplicationRead:
    application = service.recommend(
        session, application_id, body.recommendation, body.reason, actor=actor, at=now, expected_version=if_match
    )
    return _respond(session, response, application, actor)


@router.post("/{application_id}/approve", response_model=ApplicationRead)
def approve(
    application_id: uuid.UUID,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
    body: ApproveBody | None = None,
) -> ApplicationRead:
    application, pilot = service.approve(
        session, application_id, body or ApproveBody(), actor=actor, at=now, expected_version=if_match
    )
    response.headers["Location"] = f"/api/v1/pilots/{pilot.id}"
    return _respond(session, response, application, actor)


# Commands whose body is nothing, or one text (a message or a reason): registered from tables.
PlainCommand = Callable[..., Application]
TextCommand = Callable[..., Application]
PLAIN_COMMANDS: dict[str, PlainCommand] = {"submit": service.submit, "start-review": service.start_review}
MESSAGE_COMMANDS: dict[str, TextCommand] = {"request-info": service.request_info, "respond": service.respond}
REASON_COMMANDS: dict[str, TextCommand] = {"reject": service.reject, "withdraw": service.withdraw}


def _plain(command: str, run: PlainCommand) -> None:
    def endpoint(
        application_id: uuid.UUID,
        session: DbSession,
        actor: CurrentActor,
        now: Now,
        if_match: IfMatch,
        response: Response,
    ) -> ApplicationRead:
        application = run(session, application_id, actor=actor, at=now, expected_version=if_match)
        return _respond(session, response, application, actor)

    router.add_api_route(
        f"/{{application_id}}/{command}", endpoint, methods=["POST"], response_model=ApplicationRead, name=command
    )


def _with_message(command: str, run: TextCommand) -> None:
    def endpoint(
        application_id: uuid.UUID,
        body: MessageCreate,
        session: DbSession,
        actor: CurrentActor,
        now: Now,
        if_match: IfMatch,
        response: Response,
    ) -> ApplicationRead:
        application = run(session, application_id, body.message, actor=actor, at=now, expected_version=if_match)
        return _respond(session, response, application, actor)

    router.add_api_route(
        f"/{{application_id}}/{command}", endpoint, methods=["POST"], response_model=ApplicationRead, name=command
    )


def _with_reason(command: str, run: TextCommand) -> None:
    def endpoint(
        application_id: uuid.UUID,
        body: ReasonBody,
        session: DbSession,
        actor: CurrentActor,
        now: Now,
        if_match: IfMatch,
        response: Response,
    ) -> ApplicationRead:
        application = run(session, application_id, body.reason, actor=actor, at=now, expected_version=if_match)
        return _respond(session, response, application, actor)

    router.add_api_route(
        f"/{{application_id}}/{command}", endpoint, methods=["POST"], response_model=ApplicationRead, name=command
    )


for _command, _run in PLAIN_COMMANDS.items():
    _plain(_command, _run)
for _command, _run in MESSAGE_COMMANDS.items():
    _with_message(_command, _run)
for _command, _run in REASON_COMMANDS.items():
    _with_reason(_command, _run)


@router.get("/{application_id}/messages")
def list_messages(application_id: uuid.UUID, session: DbSession, actor: CurrentActor) -> dict[str, Any]:
    rows = service.list_messages(session, application_id, actor=actor)
    return {"items": [MessageRead.model_validate(row).model_dump(mode="json") for row in rows], "total": len(rows)}


@router.post("/{application_id}/messages", status_code=status.HTTP_201_CREATED, response_model=MessageRead)
def post_message(
    application_id: uuid.UUID, body: MessageCreate, session: DbSession, actor: CurrentActor, now: Now
) -> MessageRead:
    return MessageRead.model_validate(service.post_message(session, application_id, body.message, actor=actor, at=now))
