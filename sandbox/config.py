"""Settings: one class, read from the environment (prefix ``SANDBOX_``), built once and passed down."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "development-only-secret"})
DEV_SECRET = "development-only-secret"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    environment: Environment = Environment.development
    var_dir: Path = Path("var")
    database_url: str = ""
    policies_dir: Path = Path("policies")
    secret_key: str = DEV_SECRET
    now: datetime | None = Field(
        default=None, description="Fixes the server's clock (demos and tests); UTC if no offset."
    )
    base_url: str = "http://127.0.0.1:8000"

    # Mail (delivery arrives with the alerts issue; the settings are fixed now).
    smtp_url: str = ""
    mail_from: str = "sandbox-alerts@bureau.example"

    # Request limits, enforced before a body is parsed.
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    max_upload_bytes: int = Field(default=20_000_000, ge=1_024)
    max_upload_rows: int = Field(default=200_000, ge=1)

    # SQLite: how long a writer waits for the lock before giving up.
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)

    log_requests: bool = True

    # The delivery worker: how often it looks for alerts to send.
    worker_poll_seconds: float = Field(default=1.0, gt=0)

    @field_validator("now")
    @classmethod
    def _now_is_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Self:
        if self.environment is Environment.production and (
            self.secret_key in PLACEHOLDER_SECRETS or len(self.secret_key) < 32
        ):
            raise ValueError("SANDBOX_SECRET_KEY must be set to a random value of at least 32 characters in production")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'sandbox.db').as_posix()}"

    @property
    def maildir(self) -> Path:
        return self.var_dir / "maildir"
