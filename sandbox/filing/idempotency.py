"""Idempotency-Key for filings: the same key and body replays the first answer; the same key
with another body is refused (422); a request still in flight with the key gets 409. Keys are
scoped to the institution and kept 30 days. The key row commits with the filing it answers, so
a failed request leaves no key behind and can simply be retried."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sandbox.errors import BadRequest, Conflict, InvalidInput
from sandbox.models import IdempotencyKey

KEEP = timedelta(days=30)
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: dict[str, Any]


def request_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def claim(session: Session, institution_id: uuid.UUID, key: str, digest: str, *, at: datetime) -> Replay | None:
    """None: go ahead (and call ``remember`` with the answer). A Replay: answer with it."""
    if not _KEY.match(key):
        raise BadRequest("Idempotency-Key must be 1 to 200 visible ASCII characters")
    if session.get_bind().dialect.name == "postgresql":
        # A second request with the key while the first is still running: say so at once
        # rather than queue behind it (SQLite serialises writers, so this cannot happen there).
        lock_id = int.from_bytes(hashlib.sha256(f"{institution_id}:{key}".encode()).digest()[:8], "big", signed=True)
        if not session.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id}).scalar_one():
            raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
    row = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.institution_id == institution_id, IdempotencyKey.key == key)
    )
    if row is None:
        return None
    if row.expires_at <= at:
        session.delete(row)
        session.flush()
        return None
    if row.request_hash != digest:
        raise InvalidInput(
            "this Idempotency-Key was used with a different request body; use a new key for a new request",
            [{"loc": ["header", "Idempotency-Key"], "msg": "reused with another body", "type": "idempotency"}],
        )
    assert row.status_code is not None and row.response is not None
    return Replay(row.status_code, row.response)


def remember(
    session: Session,
    institution_id: uuid.UUID,
    key: str,
    digest: str,
    status_code: int,
    body: dict[str, Any],
    *,
    at: datetime,
) -> None:
    session.add(
        IdempotencyKey(
            institution_id=institution_id,
            key=key,
            request_hash=digest,
            status_code=status_code,
            response=body,
            created_at=at,
            expires_at=at + KEEP,
        )
    )
    session.flush()
