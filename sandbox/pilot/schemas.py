from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from sandbox.rules.numbers import DecimalOut

Reason = Annotated[str, StringConstraints(min_length=1, max_length=5_000, strip_whitespace=True)]


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class OptionalReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class ExtendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    end_on: date
    reason: Reason


class PilotRead(BaseModel):
    id: uuid.UUID
    reference: str
    program: str
    institution_id: uuid.UUID
    institution_code: str
    application_id: uuid.UUID
    title: str
    state: str
    state_reason: str | None
    granted_scope: dict[str, list[str]]
    granted_quotas: dict[str, DecimalOut]
    conditions: list[str]
    start_on: date
    end_on: date
    original_end_on: date
    extensions: int
    approved_by_id: uuid.UUID
    approved_at: datetime
    allowed_commands: list[str]
    created_at: datetime
    updated_at: datetime
    version: int


class PublicPilot(BaseModel):
    reference: str
    institution: str
    program: str
    program_title: str
    title: str
    start_on: date
    end_on: date
    state: str
