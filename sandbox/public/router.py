from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sandbox.api.deps import DbSession, Paging
from sandbox.pilot import repository
from sandbox.pilot.schemas import PublicPilot

router = APIRouter(prefix="/public", tags=["public"])


@router.get("/pilots")
def public_pilots(session: DbSession, page: Paging) -> dict[str, Any]:
    rows, total = repository.public_register(session, page.offset, page.limit)
    items = [
        PublicPilot(
            reference=pilot.reference,
            institution=institution.name,
            program=program.code,
            program_title=program.title,
            title=pilot.title,
            start_on=pilot.start_on,
            end_on=pilot.end_on,
            state=pilot.state,
        ).model_dump(mode="json")
        for pilot, institution, program in rows
    ]
    return page.envelope(items, total)
