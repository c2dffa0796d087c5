from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class EvaluationRead(BaseModel):
    id: uuid.UUID
    pilot_id: uuid.UUID
    period: str
    policy_version: str
    trigger: str
    filing_version_id: uuid.UUID | None
    evaluated_at: datetime
    outcomes: list[dict[str, Any]]
