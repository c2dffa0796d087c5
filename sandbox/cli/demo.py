from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from sandbox import migrate
from sandbox.cli import common
from sandbox.config import Settings
from sandbox.demo.data import DEMO_PASSWORD
from sandbox.demo.scenario import build
from sandbox.models import Institution


def _reset_sqlite(cfg: Settings) -> None:
    url = make_url(cfg.effective_database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        common.err_console.print(
            "--reset only deletes the embedded SQLite database; drop a PostgreSQL database yourself"
        )
        raise typer.Exit(2)
    path = Path(url.database)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@common.handle_errors
def demo(
    reset: bool = typer.Option(False, "--reset", help="Delete the embedded SQLite database first"),
    as_of: str | None = typer.Option(None, "--as-of", help="Run the final scan for this date (default: today)"),
) -> None:
    """Load the demo: programs, institutions, a user of every role, applications and pilots."""
    cfg = common.settings()
    if reset:
        _reset_sqlite(cfg)
    day = common.as_of_date(as_of, cfg)
    db = common.database(cfg)
    migrate.upgrade(db.engine)
    with db.unit_of_work() as session:
        if session.scalar(select(func.count()).select_from(Institution)):
            common.err_console.print("the database already holds data; run `sandbox demo --reset` to start over")
            raise typer.Exit(5)
    result = build(db, cfg.policies_dir, day)
    db.dispose()

    print(f"Demo users (web password for every one: {DEMO_PASSWORD}); API: Authorization: Bearer <token>")
    for email, (role, institution, token) in result.tokens.items():
        print(f"  {email:<28} {role:<18} {institution:<7} {token}")
    for note in result.notes:
        common.console.print(f"note: {note}")
    tokens_file = cfg.var_dir / "demo-tokens.txt"
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text(
        "".join(f"{email}\t{role}\t{inst}\t{token}\n" for email, (role, inst, token) in result.tokens.items())
    )
    tokens_file.chmod(0o600)
    common.console.print(f"tokens also written to {tokens_file}")
