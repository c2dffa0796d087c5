from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel


class PolicyVersionRead(BaseModel):
    version: str
    content_hash: str
    effective_from: date
    loaded_at: datetime
    source_name: str
    in_force: bool
    loaded_by: str | None = None  # bureau users only


class ProgramRead(BaseModel):
    code: str
    title: str
    area: str
    current_version: str | None
    effective_from: date | None
    content_hash: str | None
    created_at: datetime


class ProgramDetail(ProgramRead):
    versions: list[PolicyVersionRead]


class PolicyRead(BaseModel):
    program: str
    as_of: date
    version: str
    content_hash: str
    effective_from: date
    loaded_at: datetime
    document: dict[str, Any]


class PolicyProblemRead(BaseModel):
    source: str
    line: int | None
    location: str
    message: str


class PolicyValidation(BaseModel):
    ok: bool
    source: str
    program: str | None
    version: str | None
    effective_from: date | None
    content_hash: str | None
    problems: list[PolicyProblemRead]
