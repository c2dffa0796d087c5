"""The application factory: routers, middleware and error handlers, over one Database."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from sandbox.alert.router import router as alert_router
from sandbox.api import problems
from sandbox.api.middleware import BodyLimitMiddleware, HttpMetrics, RequestContextMiddleware
from sandbox.application.router import router as application_router
from sandbox.audit.router import router as audit_router
from sandbox.breaker.router import router as breaker_router
from sandbox.clock import Clock, clock_for
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.evaluation.router import router as evaluation_router
from sandbox.exemption.router import router as exemption_router
from sandbox.filing.router import router as filing_router
from sandbox.institution.router import router as institution_router
from sandbox.pilot.router import router as pilot_router
from sandbox.program.calendars import load_calendars
from sandbox.program.router import router as program_router
from sandbox.public.router import router as public_router
from sandbox.risk.router import router as risk_router
from sandbox.service_api.router import router as service_router
from sandbox.web import install as install_web

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None, *, database: Database | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or Settings()
    database = database or Database.from_url(
        settings.effective_database_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    app = FastAPI(
        title="Regulatory sandbox pilot management",
        version="1.0",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.clock = clock or clock_for(settings.now)
    app.state.metrics = HttpMetrics()
    app.state.calendars = load_calendars(settings.policies_dir)

    problems.install(app)
    install_web(app)
    for router in (
        institution_router,
        program_router,
        application_router,
        pilot_router,
        filing_router,
        evaluation_router,
        breaker_router,
        risk_router,
        exemption_router,
        alert_router,
        audit_router,
        public_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(service_router)

    app.add_middleware(
        BodyLimitMiddleware, default_limit=settings.max_body_bytes, upload_limit=settings.max_upload_bytes
    )
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics, log_requests=settings.log_requests)
    logging.getLogger("sandbox").setLevel(logging.INFO)
    return app
