"""The ``sandbox`` command: thin commands over the same services the API uses."""

from __future__ import annotations

import typer

from sandbox.cli import audit, db, demo, filings, policies, replay, scan, serve, users, worker

app = typer.Typer(help="Regulatory-sandbox pilot management.", no_args_is_help=True, add_completion=False)
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(audit.app, name="audit")
app.add_typer(policies.app, name="policies")
app.command("demo")(demo.demo)
app.add_typer(filings.app, name="filings")
app.command("replay")(replay.replay_command)
app.command("worker")(worker.worker)
app.command("scan")(scan.scan)
app.command("serve")(serve.serve)


def main() -> None:
    app()
