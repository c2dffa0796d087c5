"""Transition tables: every command on a stateful aggregate is looked up here, so an illegal
one is refused the same way everywhere (409 naming the state and the allowed commands)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from sandbox.errors import IllegalTransition, PreconditionFailed

S = TypeVar("S", bound=StrEnum)


class TransitionTable(Generic[S]):
    def __init__(self, kind: str, table: Mapping[str, Mapping[str, S]]) -> None:
        self.kind = kind
        self._table = table

    def allowed(self, state: S | str) -> list[str]:
        return sorted(self._table.get(state, {}))

    def target(self, state: S | str, command: str) -> S:
        commands = self._table.get(state, {})
        if command not in commands:
            raise IllegalTransition(self.kind, str(state), command, self.allowed(state))
        result: S = commands[command]
        return result


def check_version(kind: str, current: int, expected: int | None) -> None:
    """Honour If-Match: refuse a command made against a stale copy of the resource."""
    if expected is not None and expected != current:
        raise PreconditionFailed(
            f"the {kind} has changed since you read it (your version {expected}, current {current}); "
            "fetch it again and retry",
            current_etag=f'"v{current}"',
        )
