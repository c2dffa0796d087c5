"""The web UI: server-rendered pages over the same services as the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from sandbox.web import applications, audit, breakers, exemptions, filings, home, pilots
from sandbox.web.auth import CsrfRefused, SignInLimiter, SignInRequired, sign_in_url
from sandbox.web.router import router

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    """Add the pages, their static files, the sign-in rate limiter and the web error handlers."""
    if getattr(app.state, "web_installed", False):
        return
    app.state.web_installed = True
    app.state.web_sign_in_limiter = SignInLimiter()
    app.include_router(router)
    for pages in (home, applications, pilots, breakers, exemptions, filings, audit):
        app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Form expired</title></head>'
            "<body><main><h1>This form has expired</h1><p>The form was missing its security token or the "
            'token did not match your session. <a href="/sign-in">Reload the page</a> and try again.</p>'
            "</main></body></html>"
        )
        return HTMLResponse(body, status_code=403)


__all__ = ["install", "router"]
