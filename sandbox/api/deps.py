"""Dependencies: the unit of work per request, the acting user, the clock, ETags, paging."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Response

from sandbox.actor import Actor
from sandbox.clock import Clock
from sandbox.config import Settings
from sandbox.db import Database, SandboxSession
from sandbox.errors import BadRequest, PermissionDenied, Unauthenticated
from sandbox.user.service import authenticate_token


def get_session(request: Request) -> Iterator[SandboxSession]:
    database: Database = request.app.state.database
    with database.unit_of_work() as session:
        yield session


# scope="function": the commit runs when the endpoint returns, before the response is sent,
# so a client never sees a 2xx for a change that then failed to commit.
DbSession = Annotated[SandboxSession, Depends(get_session, scope="function")]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_now(clock: Annotated[Clock, Depends(get_clock)]) -> datetime:
    return clock.now()


Now = Annotated[datetime, Depends(get_now)]


def get_actor(
    session: DbSession,
    authorization: Annotated[str | None, Header(description="Bearer token")] = None,
) -> Actor:
    if not authorization:
        raise Unauthenticated("send the header 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must use the Bearer scheme")
    return authenticate_token(session, token.strip())


CurrentActor = Annotated[Actor, Depends(get_actor)]


def get_bureau_actor(actor: CurrentActor) -> Actor:
    if not actor.is_bureau:
        raise PermissionDenied("only bureau users may do this")
    return actor


BureauActor = Annotated[Actor, Depends(get_bureau_actor)]

_ETAG = re.compile(r'^(?:W/)?"v(\d{1,12})"$')


def etag(version: int) -> str:
    return f'"v{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def get_if_match(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """The version the client last saw, from ``If-Match``; None when absent or ``*``."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match.strip())
    if not match:
        raise BadRequest(f"If-Match must be an ETag this API issued, such as {etag(3)}; got {if_match!r}")
    return int(match.group(1))


IfMatch = Annotated[int | None, Depends(get_if_match)]


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int

    def envelope(self, items: list[Any], total: int) -> dict[str, Any]:
        return {"items": items, "total": total, "offset": self.offset, "limit": self.limit}


def get_page(
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page:
    return Page(offset, limit)


Paging = Annotated[Page, Depends(get_page)]
