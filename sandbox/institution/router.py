from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.api.deps import CurrentActor, DbSession, IfMatch, Now, Paging, set_etag
from sandbox.api.routing import ExactJSONRoute
from sandbox.institution import service
from sandbox.institution.schemas import (
    InstitutionCreate,
    InstitutionRead,
    InstitutionUpdate,
)

router = APIRouter(prefix="/institutions", tags=["institutions"], route_class=ExactJSONRoute)


@router.get("")
def list_institutions(session: DbSession, actor: CurrentActor, page: Paging) -> dict[str, Any]:
    rows, total = service.list_institutions(session, actor=actor, offset=page.offset, limit=page.limit)
    return page.envelope([InstitutionRead.model_validate(row).model_dump(mode="json") for row in rows], total)


@router.post("", status_code=201, response_model=InstitutionRead)
def create_institution(
    data: InstitutionCreate, session: DbSession, actor: CurrentActor, now: Now, request: Request, response: Response
) -> InstitutionRead:
    institution = service.create_institution(session, data, actor=actor, at=now)
    response.headers["Location"] = request.app.url_path_for("read_institution", institution_id=str(institution.id))
    set_etag(response, institution.version)
    return InstitutionRead.model_validate(institution)


@router.get("/{institution_id}", response_model=InstitutionRead)
def read_institution(
    institution_id: uuid.UUID, session: DbSession, actor: CurrentActor, response: Response
) -> InstitutionRead:
    institution = service.get_institution(session, institution_id, actor=actor)
    set_etag(response, institution.version)
    return InstitutionRead.model_validate(institution)


@router.patch("/{institution_id}", response_model=InstitutionRead)
def update_institution(
    institution_id: uuid.UUID,
    data: InstitutionUpdate,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    if_match: IfMatch,
    response: Response,
) -> InstitutionRead:
    institution = service.update_institution(
        session, institution_id, data, actor=actor, at=now, expected_version=if_match
    )
    set_etag(response, institution.version)
    return InstitutionRead.model_validate(institution)
