from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.audit.log import record
from sandbox.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sandbox.institution import repository
from sandbox.institution.schemas import (
    InstitutionCreate,
    InstitutionUpdate,
    canonical_decimal,
)
from sandbox.lifecycle import check_version
from sandbox.models import Institution, InstitutionStatus, Role
from sandbox.rules.eligibility import InstitutionFacts

OBJECT_TYPE = "institution"
RECORDED_FIELDS = (
    "code",
    "name",
    "type",
    "uscc",
    "lei",
    "region",
    "rating",
    "capital_adequacy_ratio",
    "npl_ratio",
    "solvency_comprehensive",
    "solvency_core",
    "last_major_penalty_on",
    "status",
    "contact_emails",
)
# SPEC 1: the institution admin "manages the institution's contacts"; everything else is the bureau's.
INSTITUTION_ADMIN_FIELDS = frozenset({"contact_emails"})
_UNIQUE_LOOKUPS: tuple[tuple[str, Callable[[Session, str], Institution | None]], ...] = (
    ("code", repository.find_by_code),
    ("uscc", repository.find_by_uscc),
    ("lei", repository.find_by_lei),
)


def _stored(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return canonical_decimal(value)
    return value


def _recorded(institution: Institution, fields: Sequence[str]) -> dict[str, Any]:
    # Decimals canonical: PostgreSQL hands back NUMERIC(38, 12) with its trailing zeros.
    return {name: _stored(getattr(institution, name)) for name in fields}


def _not_found(institution_id: uuid.UUID) -> NotFound:
    return NotFound(f"no institution with id {institution_id}")


def _refuse_taken(session: Session, values: Mapping[str, Any], *, current_id: uuid.UUID | None) -> None:
    for field, find in _UNIQUE_LOOKUPS:
        value = values.get(field)
        if value is None:
            continue
        holder = find(session, value)
        if holder is not None and holder.id != current_id:
            raise Conflict(f"institution {holder.code} already has {field} {value}", field=field)


def _refuse_future_penalty(day: date | None, at: datetime) -> None:
    if day is not None and day > at.date():
        raise InvalidInput(
            "last_major_penalty_on is in the future",
            [
                {
                    "loc": ["body", "last_major_penalty_on"],
                    "msg": f"{day.isoformat()} is after today ({at.date().isoformat()})",
                }
            ],
        )


def create_institution(session: Session, data: InstitutionCreate, *, actor: Actor, at: datetime) -> Institution:
    actor.require(Role.admin, doing="registering an institution")
    _refuse_future_penalty(data.last_major_penalty_on, at)
    values = {name: _stored(getattr(data, name)) for name in RECORDED_FIELDS if name != "status"}
    _refuse_taken(session, values, current_id=None)
    institution = Institution(**values, status=InstitutionStatus.active.value, created_at=at, updated_at=at)
    session.add(institution)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="institution.create",
        object_type=OBJECT_TYPE,
        object_id=institution.id,
        after=_recorded(institution, RECORDED_FIELDS),
    )
    return institution


def _authorise_update(actor: Actor, fields: Sequence[str]) -> None:
    if actor.role == Role.institution_admin:
        others = sorted(set(fields) - INSTITUTION_ADMIN_FIELDS)
        if others:
            raise PermissionDenied(
                f"an institution admin may change only {', '.join(sorted(INSTITUTION_ADMIN_FIELDS))}; "
                f"not {', '.join(others)}",
                fields=others,
            )
        return
    actor.require(Role.admin, doing="changing an institution")


def update_institution(
    session: Session,
    institution_id: uuid.UUID,
    data: InstitutionUpdate,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
) -> Institution:
    """A bureau admin may change any field, status included (active, suspended, revoked); an
    institution admin only its own institution's contacts. A PATCH that changes nothing writes
    nothing and keeps the version."""
    institution = get_institution(session, institution_id, actor=actor)
    requested = {name: _stored(value) for name, value in data.changes().items()}
    _authorise_update(actor, list(requested))
    check_version(OBJECT_TYPE, institution.version, expected_version)
    changed = {name: value for name, value in requested.items() if getattr(institution, name) != value}
    if not changed:
        return institution
    if "last_major_penalty_on" in changed:
        _refuse_future_penalty(changed["last_major_penalty_on"], at)
    _refuse_taken(session, changed, current_id=institution.id)
    before = _recorded(institution, list(changed))
    for name, value in changed.items():
        setattr(institution, name, value)
    institution.updated_at = at
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="institution.update",
        object_type=OBJECT_TYPE,
        object_id=institution.id,
        before=before,
        after=_recorded(institution, list(changed)),
    )
    return institution


def get_institution(session: Session, institution_id: uuid.UUID, *, actor: Actor) -> Institution:
    """Another institution's row is refused exactly like a missing one."""
    if actor.institution_id is not None and actor.institution_id != institution_id:
        raise _not_found(institution_id)
    institution = repository.find_institution(session, institution_id)
    if institution is None:
        raise _not_found(institution_id)
    return institution


def list_institutions(session: Session, *, actor: Actor, offset: int, limit: int) -> tuple[Sequence[Institution], int]:
    return repository.list_institutions(session, only_id=actor.institution_id, offset=offset, limit=limit)


def get_institution_by_code(session: Session, code: str) -> Institution:
    institution = repository.find_by_code(session, code)
    if institution is None:
        raise NotFound(f"no institution with code {code!r}")
    return institution


def institution_facts(institution: Institution) -> InstitutionFacts:
    return InstitutionFacts(
        code=institution.code,
        type=institution.type,
        region=institution.region,
        status=institution.status,
        rating=institution.rating,
        capital_adequacy_ratio=institution.capital_adequacy_ratio,
        npl_ratio=institution.npl_ratio,
        solvency_comprehensive=institution.solvency_comprehensive,
        solvency_core=institution.solvency_core,
        last_major_penalty_on=institution.last_major_penalty_on,
    )
