from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class DeliveryRead(BaseModel):
    recipient: str
    state: str
    attempts: int
    message_id: str
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None


class AlertRead(BaseModel):
    id: uuid.UUID
    kind: str
    severity: str
    state: str
    subject: str
    pilot_id: uuid.UUID | None
    pilot_reference: str | None
    note: str | None
    created_at: datetime
    updated_at: datetime
    deliveries: list[DeliveryRead]
