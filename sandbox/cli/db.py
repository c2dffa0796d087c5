from __future__ import annotations

import typer

from sandbox import migrate
from sandbox.cli import common

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Migrate the database (any older revision, or an empty one) to the latest schema."""
    cfg = common.settings()
    db = common.database(cfg)
    try:
        before = migrate.current_revision(db.engine)
        migrate.upgrade(db.engine, revision)
        after = migrate.current_revision(db.engine)
    finally:
        db.dispose()
    common.console.print(f"database at revision {after} (was {before or 'empty'})")
