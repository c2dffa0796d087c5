"""The level of a rule on a metric: what a chart can draw as a line.

A rule whose condition is one comparison of a metric (or a metric over a quota or a number) with
a fixed number or a granted quota has a level; ``exposure_outstanding / quota.exposure_limit >=
0.90`` is the level 0.90 x the granted quota. Any other condition (several tests, windows,
functions) has none, and the result says why instead of guessing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from sandbox.rules.engine import CompiledRule
from sandbox.rules.expr import Arithmetic, Compare, Input, Negate, Node, Number
from sandbox.rules.rulebook import Action, Mode

LevelKind = Literal["warn", "trip"]
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class RuleLevel:
    """A rule's level on one metric: the metric breaches when ``metric operator value``."""

    rule_id: str
    metric: str
    kind: LevelKind  # warn or trip
    action: str  # warn, trip or terminate (a trip that also asks the approvers to end the pilot)
    operator: str
    value: Decimal
    basis: str  # how the value follows from the rule, when it is not a plain number
    shadow: bool
    quota: str | None  # the quota the level is derived from, if any


@dataclass(frozen=True)
class RuleNote:
    """A rule that reads a metric but has no single level to draw."""

    rule_id: str
    action: str
    shadow: bool
    condition: str
    why: str


class _NoLevel(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _constant(node: Node, quotas: Mapping[str, Decimal]) -> Decimal:
    """The value of a sub-expression that reads no metric: numbers and granted quotas."""
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Negate):
        return -_constant(node.operand, quotas)
    if isinstance(node, Input) and node.source == "quota":
        if node.key not in quotas:
            raise _NoLevel(f"quota {node.key} is not granted to this pilot")
        return quotas[node.key]
    if isinstance(node, Arithmetic):
        left, right = _constant(node.left, quotas), _constant(node.right, quotas)
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if right == 0:
            raise _NoLevel("its level divides by zero")
        return left / right
    raise _NoLevel("its condition is not a comparison of the metric with a fixed level")


def _metric_side(node: Node) -> tuple[str, Node | None] | None:
    """``metric`` or ``metric / something``: the metric and the divisor (None: no divisor)."""
    if isinstance(node, Input) and node.source == "metric":
        return node.key, None
    if (
        isinstance(node, Arithmetic)
        and node.op == "/"
        and isinstance(node.left, Input)
        and node.left.source == "metric"
    ):
        return node.left.key, node.right
    return None


def _quota_names(node: Node | None) -> list[str]:
    if node is None:
        return []
    found = [node.key] if isinstance(node, Input) and node.source == "quota" else []
    for child in node.children():
        found.extend(_quota_names(child))
    return found


def rule_level(rule: CompiledRule, quotas: Mapping[str, Decimal]) -> RuleLevel | RuleNote | None:
    """The level of a rule's condition, or a note saying why it has none (None: a built-in rule,
    which reads no metric)."""
    if rule.when is None or not rule.when.metrics:
        return None
    kind: LevelKind = "warn" if rule.action is Action.warn else "trip"
    shadow = rule.mode is Mode.shadow
    root = rule.when.root

    def note(why: str) -> RuleNote:
        return RuleNote(rule.id, rule.action.value, shadow, rule.when.text if rule.when else "", why)

    if not isinstance(root, Compare):
        return note("its condition combines several tests")
    operator: str = root.op
    side = _metric_side(root.left)
    other = root.right
    if side is None:
        side, other, operator = _metric_side(root.right), root.left, _FLIPPED[root.op]
    if side is None:
        return note("its condition is not a comparison of the metric with a fixed level")
    metric, divisor = side
    try:
        level = _constant(other, quotas)
        if divisor is not None:
            scale = _constant(divisor, quotas)
            if scale == 0:
                return note("its level divides by zero")
            level *= scale
            if scale < 0:
                operator = _FLIPPED[operator]
    except _NoLevel as exc:
        return note(exc.why)
    used = _quota_names(other) + _quota_names(divisor)
    basis = f"{other.src} × {divisor.src}" if divisor is not None else ("" if isinstance(other, Number) else other.src)
    return RuleLevel(
        rule.id, metric, kind, rule.action.value, operator, level, basis, shadow, used[0] if used else None
    )
