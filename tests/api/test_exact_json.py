"""JSON bodies are parsed exactly: no floats, no NaN, no repeated keys."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from sandbox.api.routing import ExactJSONRoute, loads_exact
from tests.factories import tech_ma_application
from tests.world import World


def test_fractions_become_exact_decimals() -> None:
    value = loads_exact('{"x": 15000000000.123456789012, "n": 3}')
    assert value == {"x": Decimal("15000000000.123456789012"), "n": 3}


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}'])
def test_repeated_keys_and_special_values_are_not_json(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads_exact(text)


def _post(client: TestClient, world: World, raw: str) -> dict[str, object]:
    response = client.post(
        "/api/v1/applications", content=raw, headers={**world.bank_a.headers, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return dict(response.json())


def test_api_refuses_a_repeated_key_naming_it(client: TestClient, world: World) -> None:
    body = json.dumps(tech_ma_application())
    raw = body[:-1] + ', "title": "second title"}'
    problem = _post(client, world, raw)
    assert "duplicate key 'title'" in str(problem["detail"])
    assert client.get("/api/v1/applications", headers=world.bank_a.headers).json()["total"] == 0


@pytest.mark.parametrize("amount", ["NaN", "Infinity", '"1e400"', '"1,000"', '"１０"', "true", '" 10"', '"0x10"'])
def test_api_refuses_numbers_outside_the_grammar(client: TestClient, world: World, amount: str) -> None:
    body = json.dumps(tech_ma_application(requested_quotas={"exposure_limit": "__A__"})).replace('"__A__"', amount)
    _post(client, world, body)
    assert client.get("/api/v1/applications", headers=world.bank_a.headers).json()["total"] == 0


def test_api_keeps_every_digit_of_a_json_number(client: TestClient, world: World) -> None:
    body = json.dumps(tech_ma_application(requested_quotas={"exposure_limit": "__A__"})).replace(
        '"__A__"', "4999999999.99"
    )
    response = client.post(
        "/api/v1/applications", content=body, headers={**world.bank_a.headers, "content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["requested_quotas"] == {"exposure_limit": "4999999999.99"}


def test_every_route_that_takes_a_json_body_parses_it_exactly(app: FastAPI) -> None:
    loose = [
        route.path
        for route in app.routes
        if isinstance(route, APIRoute) and route.body_field is not None and not isinstance(route, ExactJSONRoute)
    ]
    assert loose == []
