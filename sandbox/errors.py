"""Typed domain errors. Each kind carries its HTTP status and a stable problem type;
presentations (API, CLI, web) map them once."""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    status: int = 400
    type_slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(SandboxError):
    status = 400
    type_slug = "bad-request"
    title = "Bad request"


class InvalidInput(SandboxError):
    """The payload is well-formed JSON but a value is not acceptable (422, with field locations)."""

    status = 422
    type_slug = "validation-error"
    title = "Invalid request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail, errors=errors or [], **extra)


class Unauthenticated(SandboxError):
    status = 401
    type_slug = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(SandboxError):
    status = 403
    type_slug = "forbidden"
    title = "Not allowed"


class NotFound(SandboxError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(SandboxError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class IllegalTransition(Conflict):
    type_slug = "illegal-transition"
    title = "Command not allowed in the current state"

    def __init__(self, kind: str, state: str, command: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none (final state)"
        super().__init__(
            f"cannot {command} a {kind} in state '{state}'; allowed commands: {allowed_text}",
            current_state=state,
            command=command,
            allowed_commands=allowed,
        )


class PreconditionFailed(SandboxError):
    status = 412
    type_slug = "precondition-failed"
    title = "Stale ETag"


class PreconditionRequired(SandboxError):
    status = 428
    type_slug = "precondition-required"
    title = "If-Match required"


class PayloadTooLarge(SandboxError):
    status = 413
    type_slug = "payload-too-large"
    title = "Payload too large"
