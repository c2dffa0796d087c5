"""`python -m tests.alert.worker_main` runs the `sandbox worker` command, for as long as the
command is not yet registered in `sandbox.cli` (the tests use `sandbox worker` once it is)."""

from __future__ import annotations

import typer

from sandbox.cli.worker import worker

if __name__ == "__main__":
    typer.run(worker)
