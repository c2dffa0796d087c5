"""ASGI middleware: request ids, one structured log line per request, Prometheus metrics, and
body size limits enforced while the body streams in (before anything parses it)."""

from __future__ import annotations

import html
import json
import logging
import re
import time
import uuid

from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.api.problems import internal_error_response, log, problem_response
from sandbox.context import request_id_var

access_log = logging.getLogger("sandbox.access")
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sandbox_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sandbox_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics, log_requests: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests
        self._templates: dict[int, str] = {}

    def _route_template(self, scope: Scope) -> str:
        """The matched route's full path template ("/api/v1/pilots/{pilot_id}"), never the raw path,
        so metric labels stay few."""
        route = scope.get("route")
        if route is None:
            return "unmatched"
        # Since FastAPI 0.137 scope["route"] of an included router's route carries its path without
        # the include prefix; the app's route contexts know the full one.
        if id(route) not in self._templates and "router" in scope:
            for context in iter_route_contexts(scope["router"].routes):
                if context.path_format:
                    self._templates.setdefault(id(context.original_route), context.path_format)
        return self._templates.get(id(route)) or getattr(route, "path_format", None) or "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder: dict[str, int] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Starlette's own 500 handler runs outside this middleware, where the request id is
            # gone; answer here so the 500 carries it in its body and X-Request-ID header.
            if "status" in status_holder:
                raise
            log.error("unhandled error on %s (request %s)", scope.get("path"), request_id, exc_info=exc)
            await internal_error_response(scope.get("path", ""))(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            template = self._route_template(scope)
            method = scope.get("method", "")
            status = status_holder.get("status", 500)
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            if self.log_requests:
                access_log.info(
                    json.dumps(
                        {
                            "request_id": request_id,
                            "method": method,
                            "path": scope.get("path"),
                            "route": template,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                        }
                    )
                )
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413, whether or not Content-Length was declared."""

    def __init__(self, app: ASGIApp, default_limit: int, upload_limit: int, upload_suffix: str = "/upload") -> None:
        self.app = app
        self.default_limit = default_limit
        self.upload_limit = upload_limit
        self.upload_suffix = upload_suffix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].endswith(self.upload_suffix) else self.default_limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(scope, receive, send, limit)
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        headers = dict(scope["headers"])
        if not scope["path"].startswith("/api/") and b"text/html" in headers.get(b"accept", b""):
            # A person's browser posted a form (a spreadsheet upload): answer with a page.
            megabytes = f"{limit / 1_000_000:g} MB"
            body = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>File too large</title>'
                '<link rel="stylesheet" href="/static/app.css"></head><body><main><h1>The file is too large</h1>'
                f'<p class="error" role="alert">The upload exceeds the limit of {megabytes}; nothing was recorded. '
                "Split the file into smaller ones and upload each.</p>"
                f'<p><a href="{html.escape(scope["path"])}">Back</a></p></main></body></html>'
            )
            await HTMLResponse(body, status_code=413)(scope, receive, send)
            return
        response = problem_response(
            413,
            "payload-too-large",
            "Payload too large",
            f"the request body exceeds the limit of {limit} bytes",
            instance=scope["path"],
        )
        await response(scope, receive, send)


class _BodyTooLarge(HTTPException):
    # An HTTPException, because FastAPI turns any other error raised while it reads the body
    # into a 400 "error parsing the body"; the problem handler renders this one as a 413.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds the limit of {limit} bytes")


def render_metrics(metrics: HttpMetrics) -> bytes:
    return generate_latest(metrics.registry)
