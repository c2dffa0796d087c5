from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

Note = Annotated[str, StringConstraints(min_length=1, max_length=5000, strip_whitespace=True)]


class AcknowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class ResetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Note


class BreakerEventRead(BaseModel):
    kind: str
    period: str | None
    status: str | None
    state_before: str
    state_after: str
    signals: list[str]
    actor: str
    note: str | None
    at: datetime


class BreakerRead(BaseModel):
    id: uuid.UUID
    pilot_id: uuid.UUID
    pilot_reference: str
    rule_id: str
    action: str
    severity: str
    state: str
    memory: dict[str, Any]
    trips: int
    last_tripped_at: datetime | None
    reset_at: datetime | None
    allowed_commands: list[str]
    updated_at: datetime
    version: int
    events: list[BreakerEventRead] | None = None
