"""The circuit breaker of one trip rule on one pilot, as a pure state machine.

armed -> watch (breaching, fewer consecutive periods than trip_after) -> tripped (the caller
suspends the pilot) -> acknowledged (a supervisor saw it) -> probation (a supervisor reset it,
with a reason) -> armed after success_threshold consecutive compliant periods. A breach in
probation trips again at once and is marked as a repeat. watch returns to armed when the clear
condition has held for clear_after periods. A breaker never leaves tripped by itself: when the
condition clears it signals "condition_cleared" once and waits for people.

"Compliant" means the rule did not breach and, when it has a clear_when condition, that
condition holds (the hysteresis band between the two counts as neither).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from sandbox.rules.rulebook import OnError, OnMissing


class State(StrEnum):
    armed = "armed"
    watch = "watch"
    tripped = "tripped"
    acknowledged = "acknowledged"
    probation = "probation"


OPEN_STATES = frozenset({State.tripped, State.acknowledged})  # a pilot cannot resume past these


class Signal(StrEnum):
    watch = "watch"
    tripped = "tripped"
    repeat_trip = "repeat_trip"
    condition_cleared = "condition_cleared"
    rearmed = "rearmed"  # probation passed
    cleared_watch = "cleared_watch"  # watch back to armed
    error_warning = "error_warning"


@dataclass(frozen=True)
class Memory:
    state: State = State.armed
    breach_streak: int = 0
    clear_streak: int = 0
    success_streak: int = 0
    cleared_signalled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Memory:
        return cls(**{**data, "state": State(data["state"])})


@dataclass(frozen=True)
class BreakerRule:
    trip_after: int = 1
    clear_after: int = 1
    has_clear: bool = False
    on_missing: OnMissing = OnMissing.keep_state
    on_error: OnError = OnError.hold
    success_threshold: int = 3


@dataclass(frozen=True)
class Step:
    memory: Memory
    signals: tuple[Signal, ...]


def _effective(status: str, rule: BreakerRule) -> tuple[str, tuple[Signal, ...]]:
    """What a period's outcome means for the breaker: breach, pass, hold or skip."""
    if status in ("breach", "pass"):
        return status, ()
    if status == "missing":
        return {"keep_state": "hold", "breach": "breach", "ignore": "skip"}[rule.on_missing.value], ()
    if status == "error":
        effect = {"hold": "hold", "warn": "hold", "breach": "breach"}[rule.on_error.value]
        return effect, (Signal.error_warning,) if rule.on_error is OnError.warn else ()
    raise ValueError(f"unknown outcome status {status!r}")


def step(rule: BreakerRule, memory: Memory, status: str, clear: bool | None) -> Step:
    """Advance the breaker by one evaluated period. ``clear`` is the clear_when value (None when
    the rule has none or it could not be computed)."""
    effect, signals = _effective(status, rule)
    state = memory.state
    if effect == "hold":
        return Step(memory, signals)
    if effect == "skip":
        return Step(replace(memory, breach_streak=0, clear_streak=0), signals)
    if effect == "breach":
        if state in (State.armed, State.watch):
            streak = memory.breach_streak + 1
            if streak >= rule.trip_after:
                return Step(Memory(State.tripped, breach_streak=streak), (*signals, Signal.tripped))
            return Step(
                Memory(State.watch, breach_streak=streak), (*signals, Signal.watch) if state is State.armed else signals
            )
        if state is State.probation:
            return Step(Memory(State.tripped, breach_streak=1), (*signals, Signal.tripped, Signal.repeat_trip))
        # tripped or acknowledged: still breaching; a later clearing must be announced afresh
        return Step(
            replace(memory, breach_streak=memory.breach_streak + 1, clear_streak=0, cleared_signalled=False), signals
        )
    compliant = clear is True if rule.has_clear else True
    if state is State.armed:
        # The common case (armed and passing) allocates nothing.
        return Step(memory if memory.breach_streak == 0 else replace(memory, breach_streak=0), signals)
    if state is State.watch:
        if not compliant:
            return Step(replace(memory, breach_streak=0, clear_streak=0), signals)
        cleared = memory.clear_streak + 1
        if cleared >= rule.clear_after:
            return Step(Memory(State.armed), (*signals, Signal.cleared_watch))
        return Step(replace(memory, breach_streak=0, clear_streak=cleared), signals)
    if state is State.probation:
        if not compliant:
            return Step(replace(memory, success_streak=0), signals)
        successes = memory.success_streak + 1
        if successes >= rule.success_threshold:
            return Step(Memory(State.armed), (*signals, Signal.rearmed))
        return Step(replace(memory, success_streak=successes), signals)
    # tripped or acknowledged
    if not compliant:
        return Step(replace(memory, breach_streak=0, clear_streak=0), signals)
    cleared = memory.clear_streak + 1
    announce = cleared >= rule.clear_after and not memory.cleared_signalled
    return Step(
        replace(memory, breach_streak=0, clear_streak=cleared, cleared_signalled=memory.cleared_signalled or announce),
        (*signals, Signal.condition_cleared) if announce else signals,
    )


def acknowledge(memory: Memory) -> Memory:
    return replace(memory, state=State.acknowledged)


def reset(memory: Memory) -> Memory:
    return Memory(State.probation)


HUMAN_COMMANDS: dict[str, frozenset[State]] = {
    "acknowledge": frozenset({State.tripped}),
    "reset": frozenset({State.tripped, State.acknowledged}),
}
