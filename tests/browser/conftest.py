"""Browser tests: Debian's Chromium driven by Playwright against the real server.

Each test gets its own copy of a database holding the demo (built once per backend, then cloned:
a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), a uvicorn server on a free
local port, and a fresh browser context. Chromium runs headless with background networking off, so
nothing leaves the machine. Screenshots go to ``test-output/screenshots/<backend>/``.

Without Chromium (or Playwright) the tests skip with a message saying what is missing; with
CI=true they fail instead, so CI can never pass without running them.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sandbox.clock import FixedClock
from sandbox.config import Environment, Settings
from sandbox.db import Database
from sandbox.demo.scenario import build
from sandbox.main import create_app
from tests.conftest import IN_CI, PG_ADMIN_URL, _pg_admin_engine, create_temp_database
from tests.support import NOW, ROOT

CHROMIUM = os.environ.get("SANDBOX_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
DEMO_AS_OF = date(2026, 11, 28)
PASSWORD = "sandbox-demo-2026"


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message}; browser tests are required when CI=true", pytrace=False)
    pytest.skip(f"{message}; browser tests skipped (install Debian's chromium and `pip install playwright`)")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package playwright is not installed")
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium not found at {CHROMIUM} (set SANDBOX_TEST_CHROMIUM to another path)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class DemoTemplate:
    backend: str
    url: str


@pytest.fixture(scope="session")
def demo_template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoTemplate]:
    """The demo built once per backend, to be copied by each test."""
    temp = create_temp_database(backend, tmp_path_factory.mktemp(f"demo-{backend}"))
    database = Database.from_url(temp.url)
    try:
        build(database, ROOT / "policies", DEMO_AS_OF)
    finally:
        database.dispose()
        temp.engine.dispose()
    yield DemoTemplate(backend, temp.url)
    temp.drop()


def _clone(template: DemoTemplate, tmp_path: Path) -> tuple[str, Any]:
    """A private copy of the demo database: its URL and how to drop it."""
    if template.backend == "sqlite":
        source = Path(str(make_url(template.url).database))
        target = tmp_path / "site.db"
        shutil.copyfile(source, target)
        return f"sqlite:///{target}", lambda: None
    name = f"sandbox_browser_{uuid.uuid4().hex[:12]}"
    source_name = make_url(template.url).database
    admin = _pg_admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source_name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False), drop


@dataclass
class Site:
    """A running server over a private demo database."""

    url: str
    database: Database
    backend: str

    def shot(self, page: Any, name: str) -> Path:
        """Save a full-page screenshot for reviewers."""
        folder = SCREENSHOTS / self.backend
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def site(demo_template: DemoTemplate, tmp_path: Path) -> Iterator[Site]:
    url, drop = _clone(demo_template, tmp_path)
    settings = Settings(
        environment=Environment.test,
        var_dir=tmp_path / "var",
        database_url=url,
        policies_dir=ROOT / "policies",
        secret_key="browser-test-secret-key-0123456789abcdef",
        now=NOW,
        log_requests=False,
    )
    database = Database.from_url(url)
    app = create_app(settings, database=database, clock=FixedClock(NOW))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{port}", database, demo_template.backend)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        database.dispose()
        drop()


@pytest.fixture
def page(chromium: Any, site: Site) -> Iterator[Any]:
    """A fresh browser tab (own cookies) on a laptop-sized screen."""
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, base_url=site.url, locale="en-GB")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page: Any, email: str) -> None:
    """Sign in through the form, as a person would."""
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/sign-in" not in url)


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in")
