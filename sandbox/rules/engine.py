"""Judging one pilot-period under a policy: every rule's outcome, explained.

``judge`` is the synchronous path (one filing at a time, exact decimals); ``judge_panel`` is the
vectorised path over many pilots and periods. Both produce the same statuses for every rule and
row: the vectorised evaluator decides in floating point only where the answer is certain and
defers the rest to the exact evaluator (see ``sandbox.rules.vector``). On the vectorised path the
breakers are folded over all rows at once (``fold_breaker``), equal row by row to stepping the
breaker machine (``sandbox.rules.breaker``)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

from sandbox.rules import breaker as breaker_machine
from sandbox.rules.breaker import BreakerRule, Memory, State
from sandbox.rules.expr import ExprError, Expression, ScalarContext, ScalarResult, compile_expression, evaluate_scalar
from sandbox.rules.periods import Period
from sandbox.rules.policy import PolicyDocument
from sandbox.rules.rulebook import Action, BuiltinRule, Mode, OnError, OnMissing, Rule, Severity
from sandbox.rules.vector import (
    STATUS_ERROR,
    STATUS_FALSE,
    STATUS_MISSING,
    STATUS_TRUE,
    Panel,
    PeriodInputs,
    PilotHistory,
    evaluate_vector,
    panel_from_histories,
)

WITHIN_SCOPE = "within-scope"
INSTITUTION_ELIGIBLE = "institution-eligible"
STATUS_NAMES = {STATUS_FALSE: "pass", STATUS_TRUE: "breach", STATUS_MISSING: "missing", STATUS_ERROR: "error"}


@dataclass(frozen=True)
class PeriodFacts:
    """What is known about one expected period of a pilot when it is judged."""

    period: Period
    filed: bool
    metrics: Mapping[str, Decimal] = field(default_factory=dict)
    days_late: Decimal | None = None
    out_of_scope: tuple[str, ...] = ()  # breakdown rows outside the granted scope, described
    institution: Mapping[str, Decimal | None] = field(default_factory=dict)
    ineligible: tuple[str, ...] = ()  # eligibility criteria the institution fails now
    quotas: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledRule:
    id: str
    action: Action
    severity: Severity
    mode: Mode
    trip_after: int
    clear_after: int
    on_missing: OnMissing
    on_error: OnError
    message: str
    when: Expression | None = None  # None: a built-in rule
    clear_when: Expression | None = None

    @property
    def has_breaker(self) -> bool:
        return self.action is not Action.warn and self.mode is Mode.enforce

    def breaker_rule(self, success_threshold: int) -> BreakerRule:
        return BreakerRule(
            trip_after=self.trip_after,
            clear_after=self.clear_after,
            has_clear=self.clear_when is not None,
            on_missing=self.on_missing,
            on_error=self.on_error,
            success_threshold=success_threshold,
        )


@dataclass(frozen=True)
class CompiledPolicy:
    document: PolicyDocument
    rules: tuple[CompiledRule, ...]

    @property
    def success_threshold(self) -> int:
        return self.document.probation.success_threshold

    def rule(self, rule_id: str) -> CompiledRule:
        return next(r for r in self.rules if r.id == rule_id)


@dataclass(frozen=True)
class RuleProblem:
    index: int
    rule_id: str
    field: str
    message: str
    column: int | None = None


class PolicyRulesInvalid(Exception):
    def __init__(self, problems: list[RuleProblem]) -> None:
        super().__init__("; ".join(f"{p.rule_id}.{p.field}: {p.message}" for p in problems))
        self.problems = problems


def _builtin(rule_id: str, config: BuiltinRule, message: str) -> CompiledRule:
    return CompiledRule(
        id=rule_id,
        action=config.action,
        severity=config.severity,
        mode=config.mode,
        trip_after=config.trip_after,
        clear_after=1,
        on_missing=OnMissing.keep_state,
        on_error=OnError.hold,
        message=message,
    )


def _compile_rule(index: int, rule: Rule, document: PolicyDocument, problems: list[RuleProblem]) -> CompiledRule | None:
    compiled: dict[str, Expression | None] = {"when": None, "clear_when": None}
    for name in ("when", "clear_when"):
        text = getattr(rule, name)
        if text is None:
            continue
        try:
            compiled[name] = compile_expression(text, metrics=document.metrics.keys(), quotas=document.quotas.keys())
        except ExprError as exc:
            problems.append(RuleProblem(index, rule.id, name, exc.message, exc.column))
    when = compiled["when"]
    if when is not None:
        allowed = {
            *when.names,
            *(compiled["clear_when"].names if compiled["clear_when"] else ()),
            "value",
            "threshold",
            "period",
        }
        unknown = [p for p in rule.placeholders() if p not in allowed]
        if unknown:
            problems.append(
                RuleProblem(
                    index,
                    rule.id,
                    "message",
                    f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
                    f"use names the condition reads ({', '.join(when.names)}), value, threshold or period",
                )
            )
    if when is None or (rule.clear_when is not None and compiled["clear_when"] is None):
        return None
    return CompiledRule(
        id=rule.id,
        action=rule.action,
        severity=rule.severity,
        mode=rule.mode,
        trip_after=rule.trip_after,
        clear_after=rule.clear_after,
        on_missing=rule.on_missing,
        on_error=rule.on_error,
        message=rule.message,
        when=when,
        clear_when=compiled["clear_when"],
    )


_COMPILED: dict[str, CompiledPolicy] = {}


def compile_policy(document: PolicyDocument) -> CompiledPolicy:
    """Compile every rule's expressions against the program's catalogue; all problems at once.
    Cached by content hash: a policy version is immutable."""
    key = document.content_hash()
    cached = _COMPILED.get(key)
    if cached is None:
        cached = _COMPILED[key] = _compile(document)
    return cached


def _compile(document: PolicyDocument) -> CompiledPolicy:
    problems: list[RuleProblem] = []
    rules = [
        _builtin(WITHIN_SCOPE, document.builtin_rules.within_scope, "business reported outside the granted scope"),
        _builtin(
            INSTITUTION_ELIGIBLE,
            document.builtin_rules.institution_eligible,
            "the institution no longer meets the program's eligibility criteria",
        ),
    ]
    for index, rule in enumerate(document.rules):
        compiled = _compile_rule(index, rule, document, problems)
        if compiled is not None:
            rules.append(compiled)
    if problems:
        raise PolicyRulesInvalid(problems)
    return CompiledPolicy(document, tuple(rules))


# -- explanation ---------------------------------------------------------------------------------


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


@dataclass(frozen=True)
class Outcome:
    rule_id: str
    action: str
    severity: str
    mode: str
    status: str  # pass | breach | missing | error
    clear: bool | None
    reads: dict[str, str | None]
    comparison: dict[str, str | None] | None
    error: str | None
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "action": self.action,
            "severity": self.severity,
            "mode": self.mode,
            "status": self.status,
            "clear": self.clear,
            "reads": self.reads,
            "comparison": self.comparison,
            "error": self.error,
            "explanation": self.explanation,
        }


def _render(template: str, values: Mapping[str, str | None]) -> str:
    out = template
    for name, value in values.items():
        out = out.replace("{" + name + "}", value if value is not None else "(missing)")
    return out


def _explain(rule: CompiledRule, period: Period, status: str, result: ScalarResult | None, detail: str = "") -> str:
    if result is None:  # built-in rule
        if status == "breach":
            return f"{period.label}: {rule.message}: {detail}"
        if status == "missing":
            return f"{period.label}: no filing, so {rule.id} could not be checked"
        return f"{period.label}: {rule.id} holds"
    values = {k: _text(v) for k, v in result.reads.items()}
    if result.comparison is not None:
        left, op, right = result.comparison
        values.update(value=_text(left), threshold=_text(right))
        test = f"{_text(left)} {op} {_text(right)}"
    else:
        test = rule.when.text if rule.when else ""
    values["period"] = period.label
    if status == "breach":
        return (
            f"{period.label}: {_render(rule.message, values)} ({rule.when.text if rule.when else ''}: {test} is true)"
        )
    if status == "pass":
        return f"{period.label}: {rule.id} not breached ({test} is false)"
    if status == "missing":
        absent = [name for name, value in result.reads.items() if value is None]
        return f"{period.label}: {rule.id} could not be judged: {', '.join(absent) or 'an input'} missing; missing data is never read as compliance"
    return f"{period.label}: {rule.id} could not be computed: {result.error}"


def _context(history: Sequence[PeriodFacts]) -> ScalarContext:
    current = history[-1]
    return ScalarContext(
        history=[p.metrics for p in history],
        quotas=current.quotas,
        institution=current.institution,
        days_late=current.days_late,
        filed=current.filed,
    )


_BOOL_STATUS = {"true": "breach", "false": "pass", "missing": "missing", "error": "error"}


def judge_rule(rule: CompiledRule, history: Sequence[PeriodFacts], context: ScalarContext | None = None) -> Outcome:
    current = history[-1]
    base = {"rule_id": rule.id, "action": rule.action.value, "severity": rule.severity.value, "mode": rule.mode.value}
    if rule.when is None:
        if rule.id == WITHIN_SCOPE:
            status = "missing" if not current.filed else ("breach" if current.out_of_scope else "pass")
            detail = "; ".join(current.out_of_scope)
            reads: dict[str, str | None] = (
                {"rows_outside_scope": str(len(current.out_of_scope))} if current.filed else {}
            )
        else:
            status = "breach" if current.ineligible else "pass"
            detail = "; ".join(current.ineligible)
            reads = {"failed_criteria": detail or None}
        return Outcome(
            **base,
            status=status,
            clear=None,
            reads=reads,
            comparison=None,
            error=None,
            explanation=_explain(rule, current.period, status, None, detail),
        )
    ctx = context or _context(history)
    result = evaluate_scalar(rule.when, ctx)
    status = _BOOL_STATUS[result.status]
    clear: bool | None = None
    if rule.clear_when is not None:
        cleared = evaluate_scalar(rule.clear_when, ctx)
        clear = True if cleared.status == "true" else False if cleared.status == "false" else None
    comparison = None
    if result.comparison is not None:
        left, op, right = result.comparison
        comparison = {"left": _text(left), "operator": op, "threshold": _text(right)}
    return Outcome(
        **base,
        status=status,
        clear=clear,
        reads={k: _text(v) for k, v in result.reads.items()},
        comparison=comparison,
        error=result.error,
        explanation=_explain(rule, current.period, status, result),
    )


def judge(policy: CompiledPolicy, history: Sequence[PeriodFacts]) -> list[Outcome]:
    """Every rule's outcome for the last period of ``history`` (the pilot's expected periods up to
    and including the one judged, oldest first)."""
    context = _context(history)
    return [judge_rule(rule, history, context) for rule in policy.rules]


# -- the vectorised path ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelExtras:
    """Per-row facts the built-in rules read (aligned with the panel's rows)."""

    out_of_scope: np.ndarray  # bool
    ineligible: np.ndarray  # bool


def judge_panel(
    policy: CompiledPolicy, panel: Panel, extras: PanelExtras
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """For each rule: its status per row (0 pass, 1 breach, 2 missing, 3 error) and, for rules with
    clear_when, the clear value per row (1 true, 0 false, -1 unknown)."""
    result: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for rule in policy.rules:
        if rule.when is None:
            flags = extras.out_of_scope if rule.id == WITHIN_SCOPE else extras.ineligible
            status = np.where(flags, STATUS_TRUE, STATUS_FALSE).astype(np.int8)
            if rule.id == WITHIN_SCOPE:
                status = np.where(panel.filed, status, STATUS_MISSING).astype(np.int8)
            result[rule.id] = (status, None)
            continue
        status = evaluate_vector(rule.when, panel)
        clear = None
        if rule.clear_when is not None:
            cleared = evaluate_vector(rule.clear_when, panel)
            clear = np.where(cleared == STATUS_TRUE, 1, np.where(cleared == STATUS_FALSE, 0, -1)).astype(np.int8)
        result[rule.id] = (status, clear)
    return result


def panel_for(histories: Sequence[tuple[Hashable, Sequence[PeriodFacts]]]) -> tuple[Panel, PanelExtras]:
    """One panel row per (pilot, expected period), pilots contiguous, periods in order."""
    panel = panel_from_histories(
        [
            PilotHistory(
                pilot=key,
                periods=[
                    PeriodInputs(
                        metrics=f.metrics,
                        quotas=f.quotas,
                        institution=f.institution,
                        days_late=f.days_late,
                        filed=f.filed,
                    )
                    for f in facts
                ],
            )
            for key, facts in histories
        ]
    )
    rows = [f for _, facts in histories for f in facts]
    extras = PanelExtras(
        out_of_scope=np.array([bool(f.out_of_scope) for f in rows], dtype=bool),
        ineligible=np.array([bool(f.ineligible) for f in rows], dtype=bool),
    )
    return panel, extras


_CODE_NAMES = np.array(["pass", "breach", "missing", "error"], dtype=object)


def fold_breakers(
    policy: CompiledPolicy,
    panel: Panel,
    statuses: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    resets: Mapping[tuple[str, int], bool] | None = None,
) -> dict[str, list[Memory]]:
    """Run every enforced trip rule's breaker over the panel's rows, pilot by pilot, in order;
    ``resets[(rule_id, row)]`` applies a supervisor's reset just before that row is judged.
    Returns each rule's breaker memory after every row.

    Pilots without a reset are folded at once by ``fold_breaker``; only a pilot with a reset
    for the rule steps through ``breaker.step`` row by row."""
    resets = resets or {}
    result: dict[str, list[Memory]] = {}
    layout = panel.layout
    n = len(panel)
    reset_rows: dict[str, list[int]] = {}
    for (rule_id, row), wanted in resets.items():
        if wanted:
            reset_rows.setdefault(rule_id, []).append(row)
    for rule in policy.rules:
        if not rule.has_breaker:
            continue
        codes, clear = statuses[rule.id]
        breaker_rule = rule.breaker_rule(policy.success_threshold)
        memories = fold_breaker(breaker_rule, panel, codes, clear).memories()
        # The pilots with a reset, again, row by row from their first period.
        firsts = sorted({int(layout.start[row]) for row in reset_rows.get(rule.id, ()) if 0 <= row < n})
        for first in firsts:
            memory = Memory()
            row = first
            while row < n and layout.group[row] == layout.group[first]:
                if resets.get((rule.id, row)) and memory.state in breaker_machine.HUMAN_COMMANDS["reset"]:
                    memory = breaker_machine.reset(memory)
                clear_value = None if clear is None or clear[row] < 0 else bool(clear[row])
                memory = breaker_machine.step(breaker_rule, memory, str(_CODE_NAMES[codes[row]]), clear_value).memory
                memories[row] = memory
                row += 1
        result[rule.id] = memories
    return result


# -- breakers folded at once ---------------------------------------------------------------------

BREAKER_STATES: tuple[State, ...] = tuple(State)  # BreakerColumns.state holds indexes into this
_ARMED, _WATCH, _TRIPPED = (BREAKER_STATES.index(s) for s in (State.armed, State.watch, State.tripped))
Counts = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BreakerColumns:
    """One breaker's memory after every row of a panel, field by field: row ``i`` is the memory
    ``fold_breakers`` gives for it (``memory(i)``, ``memories()``)."""

    state: npt.NDArray[np.int8]  # an index into BREAKER_STATES
    breach_streak: Counts
    clear_streak: Counts
    success_streak: Counts
    cleared_signalled: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.state)

    def memory(self, row: int) -> Memory:
        return Memory(
            state=BREAKER_STATES[int(self.state[row])],
            breach_streak=int(self.breach_streak[row]),
            clear_streak=int(self.clear_streak[row]),
            success_streak=int(self.success_streak[row]),
            cleared_signalled=bool(self.cleared_signalled[row]),
        )

    def memories(self) -> list[Memory]:
        """Every row's Memory. Rows with the same memory share one (frozen) object: most rows
        of a panel are "armed, nothing counted", so there are few distinct ones to build."""
        n = len(self.state)
        if n == 0:
            return []
        fields = [
            self.state.astype(np.int64),
            self.cleared_signalled.astype(np.int64),
            self.success_streak,
            self.clear_streak,
            self.breach_streak,
        ]
        sizes = [int(values.max()) + 1 for values in fields]
        if math.prod(sizes) >= 2**62:  # too many combinations for one int64 key per row
            return [self.memory(row) for row in range(n)]
        key = np.zeros(n, dtype=np.int64)
        for values, size in zip(fields, sizes, strict=True):
            key *= size
            key += values
        codes, distinct = pd.factorize(key)
        example = np.empty(len(distinct), dtype=np.intp)
        example[codes] = np.arange(n)  # a row of each distinct memory (any will do)
        shared = np.empty(len(distinct), dtype=object)
        shared[:] = [self.memory(row) for row in example.tolist()]
        memories: list[Memory] = shared[codes].tolist()
        return memories


def _effects(rule: BreakerRule) -> npt.NDArray[np.int8]:
    """Status code -> what it means for the breaker (0 pass, 1 breach, 2 hold, 3 skip), taken
    from the breaker machine itself so the two can never disagree."""
    meaning = {"pass": 0, "breach": 1, "hold": 2, "skip": 3}
    return np.array(
        [meaning[breaker_machine._effective(STATUS_NAMES[code], rule)[0]] for code in sorted(STATUS_NAMES)],
        dtype=np.int8,
    )


def _effective_codes(rule: BreakerRule, codes: np.ndarray, n: int) -> npt.NDArray[np.int8]:
    codes = np.asarray(codes)
    if len(codes) != n:
        raise ValueError(f"one status per panel row is needed ({n}), not {len(codes)}")
    if n and (codes.min() < 0 or codes.max() >= len(STATUS_NAMES)):
        raise ValueError("a status code is not pass, breach, missing or error")
    effects: npt.NDArray[np.int8] = _effects(rule)[codes]
    return effects


def _runs(counted: npt.NDArray[np.bool_], restart: npt.NDArray[np.bool_], first: npt.NDArray[np.bool_]) -> Counts:
    """Per row: how many ``counted`` rows there have been since the last ``restart`` row (or the
    pilot's first row), this row included. Rows that are neither leave the count as it is."""
    total = np.cumsum(counted, dtype=np.int64)
    # The count already reached where the run last started; the starts only ever grow.
    base = np.where(restart | first, total - counted, 0)
    np.maximum.accumulate(base, out=base)
    runs: Counts = total - base
    return runs


def _since_first(flags: npt.NDArray[np.bool_], first: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Per row: whether ``flags`` held on this row or an earlier row of the same pilot."""
    seen: npt.NDArray[np.bool_] = _runs(flags, np.zeros_like(flags), first) > 0
    return seen


def _first_rows(panel: Panel) -> npt.NDArray[np.bool_]:
    first: npt.NDArray[np.bool_] = panel.layout.pos == 0
    return first


def breach_streaks(codes: np.ndarray, panel: Panel, *, on_missing: OnMissing | str, on_error: OnError | str) -> Counts:
    """Per row: the breaker's ``breach_streak`` after that row, for a rule whose breaker no one
    resets (``fold_breakers`` without resets gives the same): consecutive breaching periods,
    where a missing or error status counts as the rule's on_missing / on_error say (a held period
    is passed over, a skipped one ends the run)."""
    rule = BreakerRule(on_missing=OnMissing(on_missing), on_error=OnError(on_error))
    effect = _effective_codes(rule, codes, len(panel))
    return _runs(effect == 1, (effect == 0) | (effect == 3), _first_rows(panel))


def fold_breaker(rule: BreakerRule, panel: Panel, codes: np.ndarray, clear: np.ndarray | None) -> BreakerColumns:
    """One rule's breaker run over every pilot of the panel at once, with no supervisor acting
    (no acknowledgement, no reset): equal, row by row, to stepping ``breaker.step`` from a fresh
    ``Memory`` at each pilot's first row. ``codes`` are the rule's statuses (0 pass, 1 breach,
    2 missing, 3 error) and ``clear`` its clear_when values (1 true, 0 false, -1 unknown), as
    ``judge_panel`` gives them.

    Without people, a breaker only goes armed -> watch -> tripped (and watch back to armed), and
    tripped is for good; so every field is a count of rows since some event, pilot by pilot:

    - breach_streak: breaches since the last pass or skip (a held row changes nothing);
    - a run of compliant passes (a pass whose clear_when holds, when the rule has one) since the
      last breach, non-compliant pass or skip: the clear_streak in watch and in tripped;
    - tripped from the first breach whose streak reaches trip_after;
    - before that, watch from a breach until the compliant run reaches clear_after, armed
      otherwise; in tripped, cleared_signalled once the run has reached clear_after since the
      last breach."""
    n = len(panel)
    effect = _effective_codes(rule, codes, n)
    first = _first_rows(panel)
    breach, passed, skip = effect == 1, effect == 0, effect == 3
    if not rule.has_clear:
        compliant = passed
    elif clear is None:
        compliant = np.zeros(n, dtype=bool)
    else:
        compliant = passed & (np.asarray(clear) == 1)
    streak = _runs(breach, passed | skip, first)
    clearing = _runs(compliant, breach | (passed & ~compliant) | skip, first)
    tripped = _since_first(breach & (streak >= rule.trip_after), first)
    # Since the last breach, has the compliant run reached clear_after (watch -> armed, or the
    # tripped breaker's one "condition cleared" signal)?
    cleared = _runs(compliant & (clearing >= rule.clear_after), breach, first) > 0
    watch = ~tripped & _since_first(breach, first) & ~cleared
    state = np.full(n, _ARMED, dtype=np.int8)
    state[watch] = _WATCH
    state[tripped] = _TRIPPED
    return BreakerColumns(
        state=state,
        breach_streak=streak,
        clear_streak=np.where(watch | tripped, clearing, 0),
        success_streak=np.zeros(n, dtype=np.int64),
        cleared_signalled=tripped & cleared,
    )


def fold_breakers_at_once(
    policy: CompiledPolicy, panel: Panel, statuses: Mapping[str, tuple[np.ndarray, np.ndarray | None]]
) -> dict[str, BreakerColumns]:
    """``fold_breakers`` without resets, as columns: each enforced trip rule's breaker after
    every row."""
    return {
        rule.id: fold_breaker(rule.breaker_rule(policy.success_threshold), panel, *statuses[rule.id])
        for rule in policy.rules
        if rule.has_breaker
    }
