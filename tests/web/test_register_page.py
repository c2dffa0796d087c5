from __future__ import annotations

from html import escape
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from sandbox.clock import FixedClock
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.main import create_app
from sandbox.models import Institution
from sandbox.web import install
from tests.support import ROOT
from tests.world import World

CHINESE_NAME = "上海浦东科技银行"


@pytest.fixture
def app(settings: Settings, database: Database, clock: FixedClock) -> Any:
    app = create_app(settings, database=database, clock=clock)
    install(app)
    return app


def test_register_needs_no_sign_in_and_shows_chinese_names(world: World, database: Database) -> None:
    pilot = world.to_pilot(approve_body={"conditions": ["Confidential condition"]})
    with database.unit_of_work() as session:
        institution = session.scalars(select(Institution).where(Institution.code == "BANK-A")).one()
        institution.name = CHINESE_NAME
    client: TestClient = world.client
    client.cookies.clear()
    response = client.get("/register")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert CHINESE_NAME in response.content.decode("utf-8")
    assert '<html lang="en">' in response.text and '<meta charset="utf-8">' in response.text
    for value in (pilot["title"], pilot["start_on"], pilot["end_on"], pilot["state"]):
        assert escape(value) in response.text
    assert "1 pilot" in response.text and "Sign in" in response.text


def test_register_shows_no_email_condition_or_metric(world: World) -> None:
    world.to_pilot(approve_body={"conditions": ["Confidential condition"]})
    world.client.cookies.clear()
    text = world.client.get("/register").text
    assert "@" not in text and "Confidential" not in text
    policy = yaml.safe_load((ROOT / "policies" / "SH-TECH-MA.yaml").read_text(encoding="utf-8"))
    for metric in policy["metrics"]:
        assert metric not in text
    for quota in policy.get("quotas", {}):
        assert quota not in text


def test_register_is_empty_and_pages_are_validated(client: TestClient) -> None:
    response = client.get("/register")
    assert response.status_code == 200 and "No pilots have been admitted yet." in response.text
    assert client.get("/register", params={"page": 0}).status_code == 422


def test_static_css_is_served_without_external_resources(client: TestClient) -> None:
    css = client.get("/static/app.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    page = client.get("/register").text
    for text in (css.text, page):
        assert "http://" not in text and "https://" not in text and "@import" not in text
