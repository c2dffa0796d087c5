"""Constants and small types shared by the fixtures and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sandbox.actor import Actor
from sandbox.models import User

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


@dataclass
class Login:
    user: User
    token: str
    actor: Actor

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}
