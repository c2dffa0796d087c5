"""User administration in the service: only a bureau admin (or the system, for the CLI) creates
users, sets passwords, issues and revokes tokens, deactivates and lists users; a password is
stored only as a hash and never written to the audit log; an admin cannot deactivate themselves."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import select

from sandbox.actor import SYSTEM, Actor
from sandbox.db import SandboxSession
from sandbox.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sandbox.models import AuditEntry, Role, User
from sandbox.user import service
from sandbox.user.service import actor_for, check_password
from tests.factories import add_institution
from tests.support import NOW

SECRET = "correct-horse-battery-42"
NON_ADMIN_ROLES = [Role.reviewer, Role.approver, Role.supervisor, Role.institution_admin, Role.filer]


def make(
    session: SandboxSession, email: str, role: Role, institution: str | None = None, password: str | None = None
) -> User:
    return service.create_user(
        session, email=email, role=role, institution_code=institution, password=password, actor=SYSTEM, at=NOW
    )


@pytest.fixture
def people(session: SandboxSession) -> dict[str, User]:
    add_institution(session, "BANK-A", NOW)
    add_institution(session, "BANK-B", NOW)
    return {
        "admin": make(session, "admin@bureau.example", Role.admin),
        "reviewer": make(session, "reviewer@bureau.example", Role.reviewer, password=SECRET),
        "approver": make(session, "approver@bureau.example", Role.approver),
        "supervisor": make(session, "supervisor@bureau.example", Role.supervisor),
        "institution_admin": make(session, "admin@bank-a.example", Role.institution_admin, "BANK-A"),
        "filer": make(session, "filer@bank-a.example", Role.filer, "BANK-A"),
        "filer_b": make(session, "filer@bank-b.example", Role.filer, "BANK-B"),
    }


Command = Callable[[SandboxSession, User, Actor], object]
COMMANDS: dict[str, Command] = {
    "create": lambda s, u, a: service.create_user(
        s, email="new@bureau.example", role=Role.reviewer, institution_code=None, actor=a, at=NOW
    ),
    "set_password": lambda s, u, a: service.set_password(s, u, "another-password-9", actor=a, at=NOW),
    "issue_token": lambda s, u, a: service.issue_token(s, u, label="x", actor=a, at=NOW),
    "revoke_tokens": lambda s, u, a: service.revoke_tokens(s, u, prefix=None, actor=a, at=NOW),
    "deactivate": lambda s, u, a: service.deactivate_user(s, u, actor=a, at=NOW),
    "reactivate": lambda s, u, a: service.reactivate_user(s, u, actor=a, at=NOW),
    "list": lambda s, u, a: service.list_users(s, actor=a, offset=0, limit=10),
    "get": lambda s, u, a: service.get_user(s, u.id, actor=a),
    "tokens": lambda s, u, a: service.list_tokens(s, u, actor=a),
}


@pytest.mark.parametrize("role", NON_ADMIN_ROLES, ids=lambda r: r.value)
def test_only_an_admin_manages_users(session: SandboxSession, people: dict[str, User], role: Role) -> None:
    target = people["filer_b"]
    service.issue_token(session, target, label="live", actor=SYSTEM, at=NOW)
    session.commit()  # audit entries are written at commit
    entries_before = len(session.scalars(select(AuditEntry)).all())
    for name, command in COMMANDS.items():
        with pytest.raises(PermissionDenied, match="needs the role admin"):
            command(session, target, actor_for(people[role.value]))
        session.commit()
        assert target.password_hash is None and target.is_active, name
    assert len(session.scalars(select(AuditEntry)).all()) == entries_before
    assert [t.revoked_at for t in service.list_tokens(session, target, actor=SYSTEM)] == [None]


@pytest.mark.parametrize("who", ["admin", "system"])
def test_the_admin_and_the_system_may(session: SandboxSession, people: dict[str, User], who: str) -> None:
    actor = SYSTEM if who == "system" else actor_for(people["admin"])
    for command in COMMANDS.values():
        command(session, people["filer_b"], actor)


def test_set_password_replaces_the_old_one_and_audits_without_it(
    session: SandboxSession, people: dict[str, User]
) -> None:
    target = people["reviewer"]
    new = "a-new-password-for-you"
    service.set_password(session, target, new, actor=actor_for(people["admin"]), at=NOW)
    assert check_password(target, new) and not check_password(target, SECRET)
    session.commit()  # audit entries are written at commit
    assert target.password_hash is not None and new not in target.password_hash
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "user.set_password", AuditEntry.object_id == str(target.id))
    ).one()
    recorded = json.dumps([entry.before, entry.after])
    assert new not in recorded and target.password_hash not in recorded
    assert entry.actor == "admin@bureau.example"


@pytest.mark.parametrize("password", ["", "tiny-pass", "x" * 11, "y" * 1025])
def test_set_password_applies_the_create_rules(session: SandboxSession, people: dict[str, User], password: str) -> None:
    target = people["reviewer"]
    with pytest.raises(InvalidInput) as refused:
        service.set_password(session, target, password, actor=SYSTEM, at=NOW)
    assert password not in refused.value.detail or not password
    assert check_password(target, SECRET)


def test_an_admin_cannot_deactivate_themselves(session: SandboxSession, people: dict[str, User]) -> None:
    admin = people["admin"]
    with pytest.raises(Conflict, match="cannot deactivate your own account"):
        service.deactivate_user(session, admin, actor=actor_for(admin), at=NOW)
    assert admin.is_active
    other = make(session, "admin2@bureau.example", Role.admin)
    service.deactivate_user(session, admin, actor=actor_for(other), at=NOW)
    assert not admin.is_active


def test_list_users_filters_by_role_institution_and_status(session: SandboxSession, people: dict[str, User]) -> None:
    admin = actor_for(people["admin"])
    everyone, total = service.list_users(session, actor=admin, offset=0, limit=100)
    assert total == 7 and [u.email for u in everyone] == sorted(u.email for u in people.values())
    filers, count = service.list_users(session, actor=admin, offset=0, limit=100, role=Role.filer)
    assert count == 2 and {u.email for u in filers} == {"filer@bank-a.example", "filer@bank-b.example"}
    bank_a, _ = service.list_users(session, actor=admin, offset=0, limit=100, institution_code="BANK-A")
    assert {u.email for u in bank_a} == {"admin@bank-a.example", "filer@bank-a.example"}
    service.deactivate_user(session, people["filer"], actor=admin, at=NOW)
    gone, _ = service.list_users(session, actor=admin, offset=0, limit=100, active=False)
    assert [u.email for u in gone] == ["filer@bank-a.example"]
    active, active_total = service.list_users(session, actor=admin, offset=0, limit=2, active=True)
    assert active_total == 6 and len(active) == 2
    with pytest.raises(NotFound):
        service.list_users(session, actor=admin, offset=0, limit=10, institution_code="NOPE")


def test_labels_and_display_names_are_checked(session: SandboxSession, people: dict[str, User]) -> None:
    with pytest.raises(InvalidInput, match="label"):
        service.issue_token(session, people["filer"], label="  ", actor=SYSTEM, at=NOW)
    with pytest.raises(InvalidInput, match="too long"):
        service.issue_token(session, people["filer"], label="x" * 101, actor=SYSTEM, at=NOW)
    with pytest.raises(InvalidInput, match="display name too long"):
        service.create_user(
            session,
            email="long@bureau.example",
            role=Role.reviewer,
            institution_code=None,
            display_name="名" * 201,
            actor=SYSTEM,
            at=NOW,
        )
    named = service.create_user(
        session,
        email="wang@bureau.example",
        role=Role.reviewer,
        institution_code=None,
        display_name="  王芳 ",
        actor=SYSTEM,
        at=NOW,
    )
    assert named.display_name == "王芳"
