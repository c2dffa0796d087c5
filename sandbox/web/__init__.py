"""The web UI: server-rendered pages over the same services as the API."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.errors import SandboxError
from sandbox.web import (
    admin,
    applications,
    audit,
    breakers,
    exemptions,
    filings,
    home,
    institutions,
    pilots,
    programs,
)
from sandbox.web.auth import CsrfRefused, SignInLimiter, SignInRequired, csrf_protected, sign_in_url
from sandbox.web.page import error_page, is_page, web_error_response
from sandbox.web.router import router

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    """Add the pages, their static files, the sign-in rate limiter and the web error handlers."""
    if getattr(app.state, "web_installed", False):
        return
    app.state.web_installed = True
    app.state.web_sign_in_limiter = SignInLimiter()
    protected = [Depends(csrf_protected)]
    app.include_router(router, dependencies=protected)
    for pages in (home, applications, pilots, breakers, exemptions, filings, audit, programs, institutions, admin):
        app.include_router(pages.router, dependencies=protected)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    api_http_error = app.exception_handlers[StarletteHTTPException]
    api_domain_error = app.exception_handlers[SandboxError]
    api_validation_error = app.exception_handlers[RequestValidationError]

    async def _delegate(handler: Any, request: Request, exc: Exception) -> Response:
        answer = handler(request, exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        return response

    @app.exception_handler(SandboxError)
    async def _domain_error(request: Request, exc: SandboxError) -> Response:
        return web_error_response(request, exc) if is_page(request) else await _delegate(api_domain_error, request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if is_page(request):
            return web_error_response(request, exc)
        return await _delegate(api_validation_error, request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Outside the API a person with a browser asked: answer with a page, not problem+json.
        wants_html = "text/html" in request.headers.get("accept", "")
        if request.url.path.startswith("/api/") or not wants_html:
            return await _delegate(api_http_error, request, exc)
        title = {404: "Page not found", 405: "Not allowed here"}.get(exc.status_code, "Something went wrong")
        detail = "There is no page at this address." if exc.status_code == 404 else str(exc.detail)
        return error_page(request, exc.status_code, title, detail)

    @app.exception_handler(SignInRequired)
    async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        detail = (
            "The form was missing its security token, or the token did not match your session (for "
            "example after signing in again in another tab). Nothing was changed. Go back, reload the "
            "page and send the form again."
        )
        return error_page(request, 403, "This form has expired", detail)


__all__ = ["install", "router"]
