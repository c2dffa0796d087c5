"""RFC 9457 problem details: every error the API returns has this shape and a stable ``type``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.context import request_id_var
from sandbox.errors import SandboxError

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"
log = logging.getLogger("sandbox.api")

_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_body(
    status: int, slug: str, title: str, detail: str, *, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    body["request_id"] = request_id_var.get()
    return body


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, slug, title, detail, instance=instance, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_error(err: Mapping[str, Any]) -> dict[str, Any]:
    """One field error: where, what, and for a body that is not JSON, the parser's reason."""
    message = str(err.get("msg", ""))
    reason = (err.get("ctx") or {}).get("error")
    if err.get("type") == "json_invalid" and reason:
        message = f"{message}: {reason}"
    return {"loc": list(err.get("loc", ())), "msg": message, "type": err.get("type", "")}


def install(app: FastAPI) -> None:
    @app.exception_handler(SandboxError)
    async def _sandbox_error(request: Request, exc: SandboxError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(
            exc.status, exc.type_slug, exc.title, exc.detail, instance=request.url.path, headers=headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(err) for err in exc.errors()]
        if errors and all(e["type"] == "json_invalid" for e in errors):
            detail = "the body is not valid JSON: " + "; ".join(e["msg"] for e in errors)
        else:
            detail = f"{len(errors)} invalid field(s): " + ", ".join(
                ".".join(str(p) for p in e["loc"]) for e in errors[:5]
            )
        return problem_response(
            422, "validation-error", "Invalid request", detail, instance=request.url.path, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        return problem_response(
            exc.status_code,
            slug,
            title,
            str(exc.detail),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return problem_response(
            409,
            "concurrent-update",
            "Modified concurrently",
            "the resource was changed by another request at the same time; fetch it again and retry",
            instance=request.url.path,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # A constraint caught what a service check missed (usually a race): never a 500, never silent.
        log.warning("integrity error on %s: %s", request.url.path, exc.orig)
        return problem_response(
            409,
            "constraint-violation",
            "Conflicts with existing data",
            "the change conflicts with data written at the same time; fetch the resource again and retry",
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Only reached for errors raised outside RequestContextMiddleware, which handles the rest.
        log.exception("unhandled error on %s", request.url.path)
        return internal_error_response(request.url.path)


def internal_error_response(instance: str) -> JSONResponse:
    """The answer to an unexpected exception: no cause or traceback, only the request id to quote."""
    return problem_response(
        500,
        "internal-error",
        "Internal error",
        "an unexpected error occurred; quote the request id when reporting it",
        instance=instance,
    )
