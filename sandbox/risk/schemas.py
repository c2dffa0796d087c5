from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from sandbox.models import RiskEventKind
from sandbox.rules.numbers import DecimalOut, ExactDecimal, decimal_places

# Amounts are stored as NUMERIC(38, 12): at most 12 decimal places and 26 digits before the point.
MAX_AMOUNT = Decimal(10) ** 26


def _storable(value: Decimal) -> Decimal:
    if decimal_places(value) > 12:
        raise ValueError(f"{value} has more than 12 decimal places")
    if value >= MAX_AMOUNT:
        raise ValueError(f"{value} is too large (at most 26 digits before the decimal point)")
    return value


Amount = Annotated[ExactDecimal, Field(ge=0), AfterValidator(_storable)]
Description = Annotated[str, StringConstraints(min_length=1, max_length=5000, strip_whitespace=True)]


class RiskEventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: RiskEventKind
    occurred_on: date
    amount: Amount | None = None
    description: Description


class RiskEventRead(BaseModel):
    id: uuid.UUID
    pilot_id: uuid.UUID
    kind: str
    occurred_on: date
    reported_at: datetime
    amount: DecimalOut | None
    description: str
    reported_by_id: uuid.UUID
    exemption_ids: list[uuid.UUID]
