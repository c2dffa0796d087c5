from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from sandbox.api.deps import CurrentActor, DbSession, Paging
from sandbox.evaluation import service
from sandbox.evaluation.schemas import EvaluationRead
from sandbox.models import Evaluation

router = APIRouter(tags=["evaluations"])


def evaluation_read(evaluation: Evaluation, policy_version: str) -> EvaluationRead:
    return EvaluationRead(
        id=evaluation.id,
        pilot_id=evaluation.pilot_id,
        period=evaluation.period,
        policy_version=policy_version,
        trigger=evaluation.trigger,
        filing_version_id=evaluation.filing_version_id,
        evaluated_at=evaluation.evaluated_at,
        outcomes=evaluation.outcomes,
    )


@router.get("/pilots/{pilot_id}/evaluations")
def list_evaluations(
    pilot_id: uuid.UUID,
    session: DbSession,
    actor: CurrentActor,
    page: Paging,
    period: Annotated[str | None, Query(max_length=10)] = None,
) -> dict[str, Any]:
    rows, total = service.list_evaluations(
        session, pilot_id, actor=actor, period=period, offset=page.offset, limit=page.limit
    )
    return page.envelope([evaluation_read(e, v).model_dump(mode="json") for e, v in rows], total)
