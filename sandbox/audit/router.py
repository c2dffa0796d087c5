from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from sandbox.api.deps import BureauActor, DbSession, Paging
from sandbox.audit import repository
from sandbox.audit.schemas import AuditEntryRead, ChainVerification
from sandbox.audit.verify import verify_chain

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("")
def list_audit_entries(
    session: DbSession,
    actor: BureauActor,
    page: Paging,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    rows, total = repository.list_entries(
        session, object_type=object_type, object_id=object_id, offset=page.offset, limit=page.limit
    )
    return page.envelope([AuditEntryRead.model_validate(row).model_dump(mode="json") for row in rows], total)


@router.get("/verify", response_model=ChainVerification)
def verify_audit_chain(session: DbSession, actor: BureauActor) -> ChainVerification:
    return ChainVerification(**asdict(verify_chain(session)))
