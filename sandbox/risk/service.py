from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from sandbox.actor import SYSTEM, Actor
from sandbox.audit.log import record
from sandbox.clock import bureau_date
from sandbox.errors import InvalidInput, NotFound, PermissionDenied
from sandbox.exemption.service import TRIGGER_RISK_EVENT, assess_risk_event
from sandbox.models import Exemption, RiskEvent, RiskEventKind, Role
from sandbox.pilot.service import get_pilot
from sandbox.risk import repository
from sandbox.rules.calendar import WorkingCalendar


def _field(name: str, message: str) -> dict[str, object]:
    return {"loc": ["body", name], "msg": message, "type": "value_error"}


# Who may report a risk event: the pilot's institution.
REPORTER_ROLES = (Role.filer, Role.institution_admin)


def report_risk_event(
    session: Session,
    pilot_id: uuid.UUID,
    *,
    kind: RiskEventKind,
    occurred_on: date,
    amount: Decimal | None,
    description: str,
    actor: Actor,
    at: datetime,
    calendars: Mapping[str, WorkingCalendar] | None = None,
) -> tuple[RiskEvent, list[Exemption]]:
    """The pilot's institution reports an incident. A loss (amount above zero) under a policy with
    due-diligence criteria is assessed for an exemption in the same transaction. Events may come
    after the pilot ended: existing business runs off and can still lose money."""
    pilot = get_pilot(session, pilot_id, actor=actor)
    actor.require(*REPORTER_ROLES, doing="report a risk event")
    if actor.institution_id != pilot.institution_id:
        raise NotFound("no such pilot")
    if actor.user_id is None:
        raise PermissionDenied("a risk event is reported by a person of the institution")
    errors = []
    today = bureau_date(at)
    if occurred_on > today:
        errors.append(
            _field("occurred_on", f"{occurred_on.isoformat()} is in the future (today is {today.isoformat()})")
        )
    if occurred_on < pilot.start_on:
        errors.append(
            _field(
                "occurred_on", f"{occurred_on.isoformat()} is before the pilot started ({pilot.start_on.isoformat()})"
            )
        )
    if amount is not None and amount < 0:
        errors.append(_field("amount", "an amount cannot be negative"))
    if errors:
        raise InvalidInput("the risk event was refused: " + "; ".join(str(e["msg"]) for e in errors), errors)
    event = RiskEvent(
        pilot_id=pilot.id,
        kind=kind.value,
        occurred_on=occurred_on,
        reported_at=at,
        amount=amount,
        description=description,
        reported_by_id=actor.user_id,
    )
    session.add(event)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="risk_event.create",
        object_type="risk_event",
        object_id=event.id,
        after={
            "pilot_id": pilot.id,
            "kind": event.kind,
            "occurred_on": occurred_on,
            "amount": amount,
            "description": description,
        },
    )
    assessed = []
    if amount is not None and amount > 0:
        exemption = assess_risk_event(
            session, pilot, event, trigger=TRIGGER_RISK_EVENT, actor=SYSTEM, at=at, calendars=calendars
        )
        if exemption is not None:
            assessed.append(exemption)
    return event, assessed


def list_risk_events(
    session: Session, pilot_id: uuid.UUID, *, actor: Actor, offset: int, limit: int
) -> tuple[Sequence[RiskEvent], int]:
    pilot = get_pilot(session, pilot_id, actor=actor)
    return repository.list_page(session, pilot.id, offset=offset, limit=limit)


def exemption_ids(session: Session, events: Sequence[RiskEvent]) -> dict[uuid.UUID, list[uuid.UUID]]:
    return repository.exemption_ids(session, [e.id for e in events])
