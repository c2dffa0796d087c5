from __future__ import annotations

import typer

from sandbox.actor import SYSTEM
from sandbox.cli import common
from sandbox.models import Role
from sandbox.user.service import create_user, issue_token

app = typer.Typer(help="Users and their bearer tokens.", no_args_is_help=True)


@app.command("create")
@common.handle_errors
def create(
    email: str = typer.Option(..., help="Sign-in email"),
    role: Role = typer.Option(..., help="One role"),
    institution: str | None = typer.Option(None, help="Institution code (institution roles only)"),
    name: str = typer.Option("", help="Display name"),
    password: str | None = typer.Option(None, help="Password for the web UI (12+ characters)"),
) -> None:
    """Create a user; prints the new bearer token as the last line."""
    cfg = common.settings()
    db = common.database(cfg)
    at = common.now(cfg)
    try:
        with db.unit_of_work() as session:
            user = create_user(
                session, email=email, role=role, institution_code=institution, display_name=name,
                password=password, actor=SYSTEM, at=at,
            )
            issued = issue_token(session, user, label="cli", actor=SYSTEM, at=at)
    finally:
        # Also on a refusal: an undisposed engine leaves its connection open.
        db.dispose()
    common.console.print(f"created {user.email} ({user.role})", highlight=False)
    print(issued.token)
