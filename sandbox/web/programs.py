"""Pages for programs (to be built)."""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.web.page import WebRoute

router = APIRouter(include_in_schema=False, route_class=WebRoute)
