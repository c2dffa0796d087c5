"""What every CLI command shares: settings, the database, the clock and error mapping."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from sandbox.clock import Clock, bureau_today, clock_for
from sandbox.config import Settings
from sandbox.db import Database, SandboxSession
from sandbox.errors import SandboxError

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

# Exit codes by error kind, so scripts can tell a refusal from a crash.
EXIT_CODES = {400: 2, 401: 3, 403: 3, 404: 4, 409: 5, 412: 5, 413: 2, 422: 2}


def settings() -> Settings:
    return Settings()


def database(cfg: Settings) -> Database:
    return Database.from_url(cfg.effective_database_url, sqlite_busy_timeout_ms=cfg.sqlite_busy_timeout_ms)


@contextmanager
def session_scope(cfg: Settings) -> Iterator[SandboxSession]:
    """One command, one unit of work; the engine is disposed even when the command is refused."""
    db = database(cfg)
    try:
        with db.unit_of_work() as session:
            yield session
    finally:
        db.dispose()


def clock(cfg: Settings) -> Clock:
    return clock_for(cfg.now)


def as_of_date(value: str | None, cfg: Settings) -> date:
    if value is None:
        return bureau_today(clock(cfg))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def now(cfg: Settings) -> datetime:
    return clock(cfg).now()


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Map domain errors to a readable message and an exit code, once, for every command."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SandboxError as exc:
            err_console.print(f"[bold red]error:[/] {exc.detail}")
            for key, value in exc.extra.items():
                if value not in (None, [], {}):
                    err_console.print(f"  {key}: {_render(value)}")
            raise typer.Exit(EXIT_CODES.get(exc.status, 1)) from None

    return wrapper


def _render(value: Any) -> str:
    if isinstance(value, list):
        return "\n    " + "\n    ".join(_render(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
