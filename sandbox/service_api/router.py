from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sandbox.api.middleware import render_metrics
from sandbox.db import Database

router = APIRouter(tags=["service"])


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    database: Database = request.app.state.database
    checks: dict[str, Any] = {}
    try:
        with database.sessions() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = {"status": "ok", "backend": database.engine.dialect.name}
    except SQLAlchemyError as exc:
        checks["database"] = {"status": "unreachable", "error": type(exc).__name__}
    healthy = all(check["status"] == "ok" for check in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks}, status_code=200 if healthy else 503
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(render_metrics(request.app.state.metrics), media_type="text/plain; version=0.0.4; charset=utf-8")
