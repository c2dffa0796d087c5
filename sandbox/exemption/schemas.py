from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

Text = Annotated[str, StringConstraints(min_length=1, max_length=5000, strip_whitespace=True)]


class ExemptionClaim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    risk_event_id: uuid.UUID
    statement: Text


class DecideBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["grant", "deny"]
    reason: Text


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text


class ExemptionRead(BaseModel):
    id: uuid.UUID
    pilot_id: uuid.UUID
    pilot_reference: str
    trigger: str
    risk_event_id: uuid.UUID | None
    rule_id: str | None
    evaluation_id: uuid.UUID | None
    policy_version: str
    state: str
    finding: str
    assessment: dict[str, Any]
    statement: str | None
    claimed_by_id: uuid.UUID | None
    decision: str | None
    decision_reason: str | None
    decided_by_id: uuid.UUID | None
    decided_at: datetime | None
    confirmed_by_id: uuid.UUID | None
    confirmation_reason: str | None
    confirmed_at: datetime | None
    allowed_commands: list[str]
    created_at: datetime
    updated_at: datetime
    version: int
