"""Settings: embedded defaults, refusals in production, and a UTC clock override."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sandbox.config import DEV_SECRET, Environment, Settings

GOOD_SECRET = "9f4c2a7e1b8d6f3a0c5e9b2d7a4f1c8e"


def test_defaults_give_a_sqlite_database_and_maildir_under_var_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SANDBOX_DATABASE_URL", "SANDBOX_ENVIRONMENT", "SANDBOX_NOW"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(var_dir=tmp_path / "var")
    assert settings.environment is Environment.development
    assert settings.effective_database_url == f"sqlite:///{(tmp_path / 'var' / 'sandbox.db').as_posix()}"
    assert settings.maildir == tmp_path / "var" / "maildir"
    assert settings.now is None


def test_an_explicit_database_url_wins() -> None:
    url = "postgresql://sandbox@db.internal/sandbox"
    assert Settings(database_url=url).effective_database_url == url


@pytest.mark.parametrize("secret", ["", "changeme", "secret", DEV_SECRET, "x" * 31])
def test_production_refuses_a_placeholder_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="SANDBOX_SECRET_KEY"):
        Settings(environment=Environment.production, secret_key=secret)


def test_production_refuses_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="SANDBOX_SECRET_KEY"):
        Settings(environment=Environment.production)


def test_production_accepts_a_long_random_secret_and_development_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_SECRET_KEY", raising=False)
    assert Settings(environment=Environment.production, secret_key=GOOD_SECRET).secret_key == GOOD_SECRET
    assert Settings(environment=Environment.development).secret_key == DEV_SECRET


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-11-28T10:00:00", datetime(2026, 11, 28, 10, 0, tzinfo=UTC)),
        (datetime(2026, 11, 28, 10, 0), datetime(2026, 11, 28, 10, 0, tzinfo=UTC)),
        ("2026-11-28T10:00:00+08:00", datetime(2026, 11, 28, 2, 0, tzinfo=UTC)),
        ("2026-11-28T02:00:00Z", datetime(2026, 11, 28, 2, 0, tzinfo=UTC)),
    ],
)
def test_now_is_always_utc(given: Any, expected: datetime) -> None:
    now = Settings(now=given).now
    assert now == expected
    assert now is not None and now.tzinfo is UTC


def test_settings_come_from_the_environment_with_the_sandbox_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_DATABASE_URL", "sqlite:////srv/sandbox/sandbox.db")
    monkeypatch.setenv("SANDBOX_NOW", "2026-11-28T10:00:00")
    monkeypatch.setenv("SANDBOX_SMTP_URL", "smtp://mail.bureau.example:25")
    monkeypatch.setenv("SANDBOX_POLICIES_DIR", "/srv/sandbox/policies")
    monkeypatch.setenv("SANDBOX_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("SANDBOX_ENVIRONMENT", "production")
    settings = Settings()
    assert settings.effective_database_url == "sqlite:////srv/sandbox/sandbox.db"
    assert settings.now == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert settings.smtp_url == "smtp://mail.bureau.example:25"
    assert settings.policies_dir == Path("/srv/sandbox/policies")
    assert settings.environment is Environment.production


@pytest.mark.parametrize("field", ["max_body_bytes", "max_upload_bytes"])
def test_body_limits_below_one_kilobyte_are_refused(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings.model_validate({field: 100})
