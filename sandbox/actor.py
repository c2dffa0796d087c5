"""Who is acting: a signed-in user (from a bearer token or a web session) or the system."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sandbox.errors import PermissionDenied
from sandbox.models import BUREAU_ROLES, Role


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None
    label: str
    role: Role | None
    institution_id: uuid.UUID | None = None

    @property
    def is_system(self) -> bool:
        return self.role is None

    @property
    def is_bureau(self) -> bool:
        return self.role in BUREAU_ROLES

    @property
    def is_institution(self) -> bool:
        return self.institution_id is not None

    def require(self, *roles: Role, doing: str) -> None:
        """Refuse unless the actor holds one of ``roles`` (the system may do anything)."""
        if self.is_system or self.role in roles:
            return
        allowed = ", ".join(sorted(r.value for r in roles))
        raise PermissionDenied(
            f"{doing} needs the role {allowed}; you are {self.role.value if self.role else 'unknown'}",
            required_roles=sorted(r.value for r in roles),
        )


SYSTEM = Actor(user_id=None, label="system", role=None)
