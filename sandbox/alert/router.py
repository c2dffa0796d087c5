from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from sandbox.alert import repository
from sandbox.alert.render import KINDS
from sandbox.alert.schemas import AlertRead, DeliveryRead
from sandbox.api.deps import BureauActor, DbSession, Paging
from sandbox.api.routing import ExactJSONRoute
from sandbox.errors import InvalidInput
from sandbox.models import FINAL_DELIVERY_STATES as SETTLED
from sandbox.models import AlertState

router = APIRouter(prefix="/alerts", tags=["alerts"], route_class=ExactJSONRoute)


@router.get("")
def list_alerts(
    session: DbSession,
    actor: BureauActor,
    page: Paging,
    state: Annotated[list[AlertState] | None, Query()] = None,
    kind: Annotated[list[str] | None, Query(max_length=60)] = None,
    pilot_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Alerts, newest first, each with every recipient's delivery: its state, attempts and last
    error (bureau users only)."""
    unknown = sorted(set(kind or ()) - KINDS.keys())
    if unknown:
        raise InvalidInput(
            f"unknown alert kind(s): {', '.join(unknown)}",
            [{"loc": ["query", "kind"], "msg": f"one of {', '.join(sorted(KINDS))}"}],
        )
    rows, total = repository.list_page(
        session, states=state, kinds=kind, pilot_id=pilot_id, offset=page.offset, limit=page.limit
    )
    deliveries = repository.deliveries_of(session, [alert.id for alert, _ in rows])
    items = [
        AlertRead(
            id=alert.id,
            kind=alert.kind,
            severity=alert.severity,
            state=alert.state,
            subject=alert.subject,
            pilot_id=alert.pilot_id,
            pilot_reference=reference,
            note=alert.note,
            created_at=alert.created_at,
            updated_at=alert.updated_at,
            deliveries=[
                DeliveryRead(
                    recipient=d.recipient,
                    state=d.state,
                    attempts=d.attempts,
                    message_id=d.message_id,
                    # When it will be tried (again); meaningless once it settled.
                    next_attempt_at=None if d.state in SETTLED else d.next_attempt_at,
                    last_attempt_at=d.last_attempt_at,
                    last_error=d.last_error,
                    sent_at=d.sent_at,
                )
                for d in deliveries[alert.id]
            ],
        ).model_dump(mode="json")
        for alert, reference in rows
    ]
    return page.envelope(items, total)
