"""HTTP plumbing: problem details with request ids, body limits, metrics, access log, If-Match."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from sandbox.actor import SYSTEM
from sandbox.api.deps import DbSession, IfMatch, Now, get_if_match
from sandbox.audit.log import record
from sandbox.clock import FixedClock
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.errors import BadRequest
from sandbox.main import create_app
from sandbox.models import AuditEntry, User

BODY_LIMIT = 2048
PROBLEM_JSON = "application/problem+json"


class Widget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    count: int


def add_test_routes(app: FastAPI) -> dict[str, int]:
    """Throwaway routes that exercise the plumbing; returns how often the body route ran."""
    calls = {"widgets": 0}

    @app.post("/test/widgets")
    def create_widget(widget: Widget) -> Widget:
        calls["widgets"] += 1
        return widget

    @app.get("/test/widgets/{widget_id}")
    def read_widget(widget_id: str) -> dict[str, str]:
        return {"id": widget_id}

    @app.get("/test/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 leaked in a traceback")

    @app.post("/test/versioned")
    def versioned(if_match: IfMatch) -> dict[str, int | None]:
        return {"if_match": if_match}

    @app.post("/test/audited")
    def audited(session: DbSession, now: Now) -> dict[str, bool]:
        record(session, at=now, actor=SYSTEM, action="widget.touch", object_type="widget", object_id="w-1")
        return {"ok": True}

    @app.post("/test/doomed")
    def doomed(session: DbSession, now: Now) -> dict[str, bool]:
        # Not flushed here: the foreign key fails only when the dependency commits.
        session.add(User(email="ghost@bank.example", role="filer", institution_id=uuid.uuid4(), created_at=now))
        record(session, at=now, actor=SYSTEM, action="user.create", object_type="user", object_id="ghost")
        return {"ok": True}

    return calls


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_body_bytes": BODY_LIMIT})


@pytest.fixture
def test_app(app_settings: Settings, database: Database, clock: FixedClock) -> FastAPI:
    app = create_app(app_settings, database=database, clock=clock)
    app.state.calls = add_test_routes(app)
    return app


@pytest.fixture
def api(test_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(test_app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def calls(test_app: FastAPI) -> dict[str, int]:
    counts: dict[str, int] = test_app.state.calls
    return counts


def assert_problem(response: Any, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["type"] == type_
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_healthz_reports_the_database_reachable(client: TestClient, backend: str) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": {"status": "ok", "backend": backend}}}


def test_healthz_reports_an_unreachable_database_as_503(settings: Settings) -> None:
    unreachable = Database.from_url("postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2")
    with TestClient(create_app(settings, database=unreachable)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["database"]["status"] == "unreachable"


def test_unknown_route_is_a_not_found_problem(api: TestClient) -> None:
    body = assert_problem(api.get("/api/v1/no-such-thing"), 404, "/problems/not-found")
    assert body["instance"] == "/api/v1/no-such-thing"


def test_wrong_method_is_a_method_not_allowed_problem(api: TestClient) -> None:
    response = api.delete("/api/v1/audit")
    assert_problem(response, 405, "/problems/method-not-allowed")
    assert response.headers["allow"] == "GET"


def test_audit_entry_of_a_request_carries_its_request_id(api: TestClient, database: Database) -> None:
    response = api.post("/test/audited", headers={"X-Request-ID": "erp-batch-000123"})
    assert response.status_code == 200
    with database.sessions() as session:
        [entry] = session.scalars(select(AuditEntry)).all()
    assert entry.request_id == "erp-batch-000123"


def test_a_change_that_fails_to_commit_is_never_answered_with_a_2xx(api: TestClient, database: Database) -> None:
    body = assert_problem(api.post("/test/doomed"), 409, "/problems/constraint-violation")
    assert "ghost" not in body["detail"]
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_malformed_json_is_a_validation_problem_with_its_location(api: TestClient, calls: dict[str, int]) -> None:
    response = api.post(
        "/test/widgets", content=b'{"name": "w", "count": ', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "/problems/validation-error")
    [error] = body["errors"]
    assert error["loc"][0] == "body" and error["type"] == "json_invalid"
    assert calls["widgets"] == 0


def test_wrong_field_types_and_unknown_fields_name_each_field(api: TestClient, calls: dict[str, int]) -> None:
    response = api.post("/test/widgets", json={"name": ["not", "text"], "count": "many", "status": "approved"})
    body = assert_problem(response, 422, "/problems/validation-error")
    locations = sorted(tuple(error["loc"]) for error in body["errors"])
    assert locations == [("body", "count"), ("body", "name"), ("body", "status")]
    assert all(error["msg"] and error["type"] for error in body["errors"])
    assert calls["widgets"] == 0


def test_a_valid_body_under_the_limit_is_accepted(api: TestClient, calls: dict[str, int]) -> None:
    response = api.post("/test/widgets", json={"name": "w" * (BODY_LIMIT - 100), "count": 1})
    assert response.status_code == 200
    assert calls["widgets"] == 1


def test_body_over_the_limit_with_content_length_is_refused_unread(api: TestClient, calls: dict[str, int]) -> None:
    payload = json.dumps({"name": "w" * BODY_LIMIT, "count": 1}).encode()
    response = api.post("/test/widgets", content=payload, headers={"content-type": "application/json"})
    body = assert_problem(response, 413, "/problems/payload-too-large")
    assert str(BODY_LIMIT) in body["detail"]
    assert calls["widgets"] == 0


def test_chunked_body_over_the_limit_without_content_length_is_refused(api: TestClient, calls: dict[str, int]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(4):
            yield b"w" * 1000  # each chunk is under the limit; together they are over it
        yield b'", "count": 1}'

    request = api.build_request("POST", "/test/widgets", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in request.headers and request.headers["transfer-encoding"] == "chunked"
    body = assert_problem(api.send(request), 413, "/problems/payload-too-large")
    assert str(BODY_LIMIT) in body["detail"]
    assert calls["widgets"] == 0


def test_unexpected_exception_is_a_500_problem_without_internals(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="sandbox.api"):
        response = api.get("/test/boom")
    body = assert_problem(response, 500, "/problems/internal-error")
    assert "request id" in body["detail"]
    for leak in ("hunter2", "RuntimeError", "Traceback", 'File "'):
        assert leak not in response.text
    # The cause goes to the log, under the same request id the client was given.
    [logged] = [r for r in caplog.records if r.name == "sandbox.api"]
    assert body["request_id"] in logged.getMessage() and logged.exc_info is not None


def test_client_request_id_is_echoed_when_safe(api: TestClient) -> None:
    response = api.get("/api/v1/no-such-thing", headers={"X-Request-ID": "bank-a.job_42-7"})
    assert response.headers["x-request-id"] == "bank-a.job_42-7"
    assert response.json()["request_id"] == "bank-a.job_42-7"


@pytest.mark.parametrize("unsafe", ["has spaces in it", "a" * 200, "short", "semi;colon-123", "ünïcode-12345"])
def test_unsafe_client_request_id_is_replaced(api: TestClient, unsafe: str) -> None:
    response = api.get("/api/v1/no-such-thing", headers=[(b"X-Request-ID", unsafe.encode())])
    request_id = response.headers["x-request-id"]
    assert request_id != unsafe and len(request_id) == 32 and int(request_id, 16) >= 0
    assert response.json()["request_id"] == request_id


def test_every_response_gets_a_fresh_request_id(api: TestClient) -> None:
    ids = {api.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_metrics_count_requests_by_route_template(api: TestClient) -> None:
    api.get("/api/v1/audit")  # 401 without a token, still a matched route
    api.get("/test/widgets/abc123")
    api.get("/test/widgets/def456")
    api.get("/no-such-thing/xyz")

    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counts = {
        (sample.labels["method"], sample.labels["route"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(response.text)
        if family.name == "sandbox_http_requests"
        for sample in family.samples
        if sample.name == "sandbox_http_requests_total"
    }
    assert counts[("GET", "/api/v1/audit", "401")] == 1
    assert counts[("GET", "/test/widgets/{widget_id}", "200")] == 2
    assert counts[("GET", "unmatched", "404")] == 1
    routes = {route for _, route, _ in counts}
    assert not any(raw in route for route in routes for raw in ("abc123", "def456", "xyz"))
    assert "sandbox_http_request_duration_seconds_bucket" in response.text


def test_one_json_access_log_line_per_request(
    app_settings: Settings, database: Database, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(app_settings.model_copy(update={"log_requests": True}), database=database, clock=clock)
    add_test_routes(app)
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        caplog.at_level(logging.INFO, logger="sandbox.access"),
    ):
        responses = [client.get("/test/widgets/w-1"), client.get("/api/v1/nothing"), client.get("/test/boom")]
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "sandbox.access"]
    assert len(lines) == len(responses)
    for line, response in zip(lines, responses, strict=True):
        assert line["request_id"] == response.headers["x-request-id"]
        assert line["method"] == "GET"
        assert line["status"] == response.status_code
        assert isinstance(line["duration_ms"], float | int) and line["duration_ms"] >= 0
    assert [(line["path"], line["route"]) for line in lines] == [
        ("/test/widgets/w-1", "/test/widgets/{widget_id}"),
        ("/api/v1/nothing", "unmatched"),
        ("/test/boom", "/test/boom"),
    ]


def test_no_access_log_when_disabled(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sandbox.access"):
        api.get("/healthz")
    assert [r for r in caplog.records if r.name == "sandbox.access"] == []


@pytest.mark.parametrize(
    ("header", "version"), [(None, None), ("*", None), ('"v3"', 3), ('W/"v3"', 3), (' "v12" ', 12)]
)
def test_if_match_parses_the_etags_this_api_issues(header: str | None, version: int | None) -> None:
    assert get_if_match(header) == version


@pytest.mark.parametrize("header", ["v3", '"3"', '"v"', '"vx"', '"v3", "v4"', 'W/"v3', "**", '"v1234567890123"'])
def test_if_match_refuses_anything_else(header: str) -> None:
    with pytest.raises(BadRequest, match="If-Match"):
        get_if_match(header)


def test_garbage_if_match_is_a_bad_request_problem(api: TestClient) -> None:
    assert api.post("/test/versioned", headers={"If-Match": 'W/"v7"'}).json() == {"if_match": 7}
    assert_problem(api.post("/test/versioned", headers={"If-Match": "yesterday"}), 400, "/problems/bad-request")
