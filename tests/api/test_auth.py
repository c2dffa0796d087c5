"""Bearer tokens and users: every way in without a good token is a 401, tokens are random and
stored only as a hash, passwords only as argon2, and create_user refuses inconsistent users."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sandbox.actor import SYSTEM
from sandbox.db import Database, SandboxSession
from sandbox.errors import Conflict, InvalidInput, NotFound, SandboxError
from sandbox.models import Base, Institution, Role, User
from sandbox.user.service import (
    TOKEN_PREFIX,
    authenticate_token,
    check_password,
    create_user,
    issue_token,
    revoke_tokens,
)
from tests.support import NOW, Login

PROTECTED = "/api/v1/audit"


def add_institution(session: SandboxSession, code: str) -> Institution:
    institution = Institution(
        code=code,
        name=f"{code} Shanghai Branch",
        type="domestic_bank",
        uscc=f"{code:0>18}",
        region="Shanghai",
        rating=2,
        created_at=NOW,
        updated_at=NOW,
    )
    session.add(institution)
    session.flush()
    return institution


def assert_unauthenticated(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get(PROTECTED, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/unauthenticated"
    assert response.json()["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token sbx_abc"},
        {"Authorization": "Bearer sbx_" + "x" * 43},
        {"Authorization": "Bearer not-even-our-prefix"},
    ],
    ids=["none", "empty", "scheme-only", "blank-token", "basic", "wrong-scheme", "unknown", "foreign"],
)
def test_requests_without_a_valid_bearer_token_are_401(client: TestClient, headers: dict[str, str]) -> None:
    assert_unauthenticated(client, headers)


def test_a_valid_token_authenticates_with_any_scheme_case(client: TestClient, login: Callable[..., Login]) -> None:
    reviewer = login("reviewer")
    assert client.get(PROTECTED, headers=reviewer.headers).status_code == 200
    assert client.get(PROTECTED, headers={"Authorization": f"bearer {reviewer.token}"}).status_code == 200


def test_a_revoked_token_is_401(client: TestClient, database: Database, login: Callable[..., Login]) -> None:
    reviewer = login("reviewer")
    with database.unit_of_work() as session:
        assert revoke_tokens(session, session.get_one(User, reviewer.user.id), prefix=None, actor=SYSTEM, at=NOW) == 1
    assert_unauthenticated(client, reviewer.headers)


def test_a_token_of_an_inactive_user_is_401(
    client: TestClient, database: Database, login: Callable[..., Login]
) -> None:
    reviewer = login("reviewer")
    with database.unit_of_work() as session:
        session.get_one(User, reviewer.user.id).is_active = False
    assert_unauthenticated(client, reviewer.headers)


def test_revoking_one_token_leaves_the_users_other_tokens_working(session: SandboxSession) -> None:
    user = create_user(
        session, email="approver@bureau.example", role=Role.approver, institution_code=None, actor=SYSTEM, at=NOW
    )
    first = issue_token(session, user, label="laptop", actor=SYSTEM, at=NOW)
    second = issue_token(session, user, label="script", actor=SYSTEM, at=NOW)
    assert revoke_tokens(session, user, prefix=first.token[:14], actor=SYSTEM, at=NOW) == 1
    assert authenticate_token(session, second.token).user_id == user.id
    with pytest.raises(SandboxError) as refused:
        authenticate_token(session, first.token)
    assert refused.value.status == 401


def test_tokens_are_long_random_and_stored_only_as_a_hash(session: SandboxSession) -> None:
    user = create_user(
        session, email="reviewer@bureau.example", role=Role.reviewer, institution_code=None, actor=SYSTEM, at=NOW
    )
    issued = [issue_token(session, user, label=f"t{n}", actor=SYSTEM, at=NOW) for n in range(3)]
    session.flush()

    tokens = [item.token for item in issued]
    assert len(set(tokens)) == 3
    for item in issued:
        assert re.fullmatch(r"sbx_[A-Za-z0-9_-]{43}", item.token), item.token
        assert item.record.token_hash == hashlib.sha256(item.token.encode()).hexdigest()
        assert item.token.startswith(item.record.prefix) and len(item.record.prefix) < len(item.token) // 3

    # No column of any table holds a token, or the secret part of one.
    secrets = tokens + [token[len(TOKEN_PREFIX) + 8 :] for token in tokens]
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)).all():
            text = repr(tuple(row))
            assert not any(secret in text for secret in secrets), f"a token is stored in {table.name}"


def test_password_is_stored_as_argon2_and_verifies(session: SandboxSession) -> None:
    user = create_user(
        session,
        email="admin@bureau.example",
        role=Role.admin,
        institution_code=None,
        password="correct horse battery staple",
        actor=SYSTEM,
        at=NOW,
    )
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert check_password(user, "correct horse battery staple")
    assert not check_password(user, "correct horse battery stapler")

    without = create_user(
        session, email="nopass@bureau.example", role=Role.admin, institution_code=None, actor=SYSTEM, at=NOW
    )
    assert without.password_hash is None and not check_password(without, "")


def count_users(session: SandboxSession) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def test_short_password_is_refused_and_no_user_written(session: SandboxSession) -> None:
    with pytest.raises(InvalidInput) as refused:
        create_user(
            session,
            email="admin@bureau.example",
            role=Role.admin,
            institution_code=None,
            password="eleven-char",
            actor=SYSTEM,
            at=NOW,
        )
    assert refused.value.extra["errors"][0]["loc"] == ["password"]
    assert count_users(session) == 0


@pytest.mark.parametrize(
    ("email", "role", "institution", "error", "field"),
    [
        ("filer@bank-a.example", Role.filer, None, InvalidInput, "institution"),
        ("admin@bank-a.example", Role.institution_admin, None, InvalidInput, "institution"),
        ("reviewer@bureau.example", Role.reviewer, "BANK-A", InvalidInput, "institution"),
        ("filer@bank-z.example", Role.filer, "BANK-Z", NotFound, None),
        ("not-an-email", Role.reviewer, None, InvalidInput, "email"),
        ("two@@bureau.example", Role.reviewer, None, InvalidInput, "email"),
    ],
    ids=[
        "filer-without-institution",
        "institution-admin-without",
        "bureau-with-institution",
        "unknown-institution",
        "not-an-email",
        "double-at",
    ],
)
def test_create_user_refuses_inconsistent_users(
    session: SandboxSession,
    email: str,
    role: Role,
    institution: str | None,
    error: type[SandboxError],
    field: str | None,
) -> None:
    add_institution(session, "BANK-A")
    with pytest.raises(error) as refused:
        create_user(session, email=email, role=role, institution_code=institution, actor=SYSTEM, at=NOW)
    if field is not None:
        assert refused.value.status == 422
        assert refused.value.extra["errors"][0]["loc"] == [field]
    assert count_users(session) == 0


def test_create_user_refuses_a_duplicate_email_whatever_its_case(session: SandboxSession) -> None:
    create_user(
        session, email="Reviewer@Bureau.example", role=Role.reviewer, institution_code=None, actor=SYSTEM, at=NOW
    )
    with pytest.raises(Conflict) as refused:
        create_user(
            session, email="reviewer@bureau.EXAMPLE", role=Role.approver, institution_code=None, actor=SYSTEM, at=NOW
        )
    assert refused.value.status == 409
    assert count_users(session) == 1


def test_institution_user_acts_for_its_institution(session: SandboxSession) -> None:
    bank = add_institution(session, "BANK-A")
    user = create_user(
        session, email="filer@bank-a.example", role=Role.filer, institution_code="BANK-A", actor=SYSTEM, at=NOW
    )
    actor = authenticate_token(session, issue_token(session, user, label="erp", actor=SYSTEM, at=NOW).token)
    assert (actor.role, actor.institution_id, actor.is_bureau) == (Role.filer, bank.id, False)
