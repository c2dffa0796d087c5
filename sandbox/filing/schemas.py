from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sandbox.rules.numbers import DecimalOut, ExactDecimal

MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class BreakdownIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: MetricName
    value: ExactDecimal
    dimensions: Annotated[dict[MetricName, Text], Field(min_length=1, max_length=10)]


class FilingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Annotated[str, StringConstraints(min_length=1, max_length=10)]
    metrics: Annotated[dict[MetricName, ExactDecimal], Field(max_length=200)]
    breakdown: Annotated[list[BreakdownIn], Field(max_length=5000)] = []
    amends: bool = False
    reason: Annotated[str, StringConstraints(min_length=1, max_length=5000, strip_whitespace=True)] | None = None


class FilingVersionRead(BaseModel):
    id: uuid.UUID
    version: int
    metrics: dict[str, DecimalOut]
    breakdown: list[dict[str, Any]]
    received_at: datetime
    days_late: int
    channel: str
    reason: str | None


class FilingRead(BaseModel):
    id: uuid.UUID
    pilot_id: uuid.UUID
    period: str
    due_on: date
    due_estimated: bool
    latest_version: int
    current: FilingVersionRead
    versions: list[FilingVersionRead] | None = None
    evaluation: dict[str, Any] | None = None
