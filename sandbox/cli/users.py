from __future__ import annotations

import typer

from sandbox.actor import SYSTEM
from sandbox.cli import common
from sandbox.models import Role
from sandbox.user.service import (
    create_user,
    deactivate_user,
    get_user_by_email,
    issue_token,
    revoke_tokens,
)

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
    at = common.now(cfg)
    with common.session_scope(cfg) as session:
        user = create_user(
            session,
            email=email,
            role=role,
            institution_code=institution,
            display_name=name,
            password=password,
            actor=SYSTEM,
            at=at,
        )
        issued = issue_token(session, user, label="cli", actor=SYSTEM, at=at)
    common.console.print(f"created {user.email} ({user.role})", highlight=False)
    print(issued.token)


@app.command("token")
@common.handle_errors
def token(
    email: str = typer.Option(..., help="The user's email"),
    label: str = typer.Option("cli", help="What the token is for (shown in lists and the audit log)"),
) -> None:
    """Issue another bearer token for a user; prints it as the last line."""
    cfg = common.settings()
    at = common.now(cfg)
    with common.session_scope(cfg) as session:
        issued = issue_token(session, get_user_by_email(session, email), label=label, actor=SYSTEM, at=at)
    print(issued.token)


@app.command("revoke")
@common.handle_errors
def revoke(
    email: str = typer.Option(..., help="The user's email"),
    prefix: str | None = typer.Option(None, help="Revoke only the token starting with this (default: all)"),
) -> None:
    """Revoke a user's bearer tokens; requests with them get 401 from then on."""
    cfg = common.settings()
    at = common.now(cfg)
    with common.session_scope(cfg) as session:
        revoked = revoke_tokens(session, get_user_by_email(session, email), prefix=prefix, actor=SYSTEM, at=at)
    common.console.print(f"revoked {revoked} token(s) of {email}", highlight=False)


@app.command("deactivate")
@common.handle_errors
def deactivate(email: str = typer.Option(..., help="The user's email")) -> None:
    """Deactivate a user: every token and sign-in stops working; the history stays."""
    cfg = common.settings()
    with common.session_scope(cfg) as session:
        deactivate_user(session, get_user_by_email(session, email), actor=SYSTEM, at=common.now(cfg))
    common.console.print(f"deactivated {email}", highlight=False)
