from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from sandbox.actor import Actor
from sandbox.context import request_id_var
from sandbox.db import SandboxSession
from sandbox.models import AuditEntry, AuditHead

_PENDING_KEY = "sandbox.audit.pending"
_SAVEPOINTS_KEY = "sandbox.audit.savepoints"


def jsonable(value: Any) -> Any:
    """Reduce a value to JSON types that survive a round trip through JSON/JSONB unchanged
    (no floats: decimals become their exact text)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, float):
        raise TypeError("floats are not allowed in audit records; use Decimal")
    raise TypeError(f"cannot record {type(value).__name__} in the audit log")


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {name: jsonable(getattr(obj, name)) for name in fields}


@dataclass
class _Pending:
    at: datetime
    actor: Actor
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None = field(default=None)


def record(
    session: Session,
    *,
    at: datetime,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: uuid.UUID | str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Queue an audit entry; it is written when (and only if) the unit of work commits."""
    if at.tzinfo is None:
        raise ValueError("audit entries need a timezone-aware time")
    pending: list[_Pending] = session.info.setdefault(_PENDING_KEY, [])
    pending.append(
        _Pending(
            # The hash covers at.isoformat(); the column gives it back in UTC, so hash it in UTC.
            at=at.astimezone(UTC),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=jsonable(before) if before is not None else None,
            after=jsonable(after) if after is not None else None,
            request_id=request_id_var.get(),
        )
    )


def entry_hash(fields: Mapping[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hashed_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor_id": str(entry.actor_id) if entry.actor_id else None,
        "actor": entry.actor,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "request_id": entry.request_id,
        "prev_hash": entry.prev_hash,
    }


def _write_pending(session: Session) -> None:
    pending: list[_Pending] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    seq, prev = head.last_seq, head.last_hash
    for item in pending:
        seq += 1
        entry = AuditEntry(
            seq=seq,
            at=item.at,
            actor_id=item.actor.user_id,
            actor=item.actor.label,
            action=item.action,
            object_type=item.object_type,
            object_id=item.object_id,
            before=item.before,
            after=item.after,
            request_id=item.request_id,
            prev_hash=prev,
        )
        entry.hash = entry_hash(hashed_fields(entry))
        prev = entry.hash
        session.add(entry)
    head.last_seq, head.last_hash = seq, prev
    session.flush()


@event.listens_for(SandboxSession, "before_commit")
def _before_commit(session: Session) -> None:
    # Releasing a savepoint fires before_commit too; the entries wait for the real commit, so the
    # head lock is still taken last.
    if session.in_nested_transaction():
        return
    _write_pending(session)


@event.listens_for(SandboxSession, "after_transaction_create")
def _after_begin(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        marks: dict[SessionTransaction, int] = session.info.setdefault(_SAVEPOINTS_KEY, {})
        marks[transaction] = len(session.info.get(_PENDING_KEY, []))


@event.listens_for(SandboxSession, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.nested:
        # Only the entries queued inside the savepoint go; those queued before it still commit.
        mark = session.info.get(_SAVEPOINTS_KEY, {}).pop(previous, 0)
        del session.info.get(_PENDING_KEY, [])[mark:]
        return
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_SAVEPOINTS_KEY, None)


@event.listens_for(SandboxSession, "after_transaction_end")
def _after_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_SAVEPOINTS_KEY, None)
