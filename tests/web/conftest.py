"""Helpers for page tests: a browser-like client signed in as a test user, and form posting with
the page's CSRF token and a Referer, as a browser sends them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sandbox.config import Settings
from sandbox.web.auth import COOKIE_NAME, encode_session, new_session
from tests.support import NOW, Login

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A TestClient with one user's session cookie; ``submit`` posts a form found on a page."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def csrf(self, path: str) -> str:
        page = self.client.get(path)
        assert page.status_code == 200, f"{path}: {page.status_code} {page.text[:300]}"
        match = CSRF_FIELD.search(page.text)
        assert match, f"{path} has no form with a CSRF field"
        return match.group(1)

    def submit(self, page: str, action: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Post ``data`` to ``action`` as the form on ``page`` would (CSRF token, Referer), without
        following the redirect."""
        form = {"csrf_token": self.csrf(page), **(data or {})}
        headers = {"Referer": f"http://testserver{page}"}
        return self.client.post(action, data=form, headers=headers, follow_redirects=False, **kwargs)

    def follow(self, response: Any) -> Any:
        """The page a 303 leads to, with its one-shot notice."""
        assert response.status_code == 303, f"{response.status_code}: {response.text[:300]}"
        return self.client.get(response.headers["location"])


@pytest.fixture
def browser(app: Any, settings: Settings) -> Iterator[Callable[[Login | None], Browser]]:
    """``browser(login)``: a client signed in as that user (``None``: signed out)."""
    clients: list[TestClient] = []

    def make(login: Login | None) -> Browser:
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        if login is not None:
            client.cookies.set(COOKIE_NAME, encode_session(settings, new_session(login.user.id, now=NOW)))
        return Browser(client)

    yield make
    for client in clients:
        client.close()
