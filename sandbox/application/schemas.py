from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sandbox.rules.numbers import DecimalOut, ExactDecimal

LongText = Annotated[str, StringConstraints(min_length=1, max_length=20_000, strip_whitespace=True)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=5_000, strip_whitespace=True)]
ScopeValue = Annotated[str, StringConstraints(min_length=1, max_length=80)]
Scope = Annotated[dict[str, Annotated[list[ScopeValue], Field(max_length=200)]], Field(max_length=20)]
Quotas = Annotated[dict[str, ExactDecimal], Field(max_length=20)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplicationCreate(Body):
    program: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    title: Title
    description: LongText
    requested_scope: Scope
    requested_quotas: Quotas
    start_on: date
    end_on: date
    risk_controls: LongText
    consumer_protection: LongText
    exit_plan: LongText


class ApplicationUpdate(Body):
    title: Title | None = None
    description: LongText | None = None
    requested_scope: Scope | None = None
    requested_quotas: Quotas | None = None
    start_on: date | None = None
    end_on: date | None = None
    risk_controls: LongText | None = None
    consumer_protection: LongText | None = None
    exit_plan: LongText | None = None


class MessageCreate(Body):
    message: LongText


class ReasonBody(Body):
    reason: Reason


class RecommendBody(Body):
    recommendation: Literal["approve", "reject"]
    reason: Reason


class ApproveBody(Body):
    granted_scope: Scope | None = None
    granted_quotas: Quotas | None = None
    conditions: Annotated[list[Reason], Field(max_length=50)] = []
    reason: Reason | None = None


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    author_id: uuid.UUID
    kind: str
    body: str
    created_at: datetime


class ApplicationRead(BaseModel):
    id: uuid.UUID
    program: str
    institution_id: uuid.UUID
    institution_code: str
    state: str
    title: str
    description: str
    requested_scope: dict[str, list[str]]
    requested_quotas: dict[str, DecimalOut]
    start_on: date
    end_on: date
    risk_controls: str
    consumer_protection: str
    exit_plan: str
    eligibility: dict[str, Any] | None
    submitted_at: datetime | None
    recommendation: str | None
    recommendation_reason: str | None
    recommended_by_id: uuid.UUID | None
    recommended_at: datetime | None
    decided_by_id: uuid.UUID | None
    decided_at: datetime | None
    decision_reason: str | None
    pilot_id: uuid.UUID | None
    allowed_commands: list[str]
    created_at: datetime
    updated_at: datetime
    version: int
