"""The synchronous path (one filing at a time, exact) and the vectorised batch path give the same
outcome for every rule and period, and the same breaker states, on generated histories with gaps,
zeros and values exactly on the thresholds."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from sandbox.rules import breaker as machine
from sandbox.rules.breaker import BreakerRule, Memory, State
from sandbox.rules.engine import (
    STATUS_NAMES,
    BreakerColumns,
    PeriodFacts,
    breach_streaks,
    compile_policy,
    fold_breaker,
    fold_breakers,
    fold_breakers_at_once,
    judge,
    judge_panel,
    panel_for,
)
from sandbox.rules.periods import parse_period
from sandbox.rules.policy_file import parse_policy
from sandbox.rules.rulebook import OnError, OnMissing
from sandbox.rules.vector import Panel, PeriodInputs, PilotHistory, panel_from_histories
from tests.support import ROOT

RULES = """
rules:
  - {id: npl-warn, when: npl_ratio >= 0.02, action: warn, message: "NPL {npl_ratio}"}
  - {id: npl-trip, when: npl_ratio > 0.03, clear_when: npl_ratio < 0.025, clear_after: 2, trip_after: 2, action: trip,
     on_missing: breach, message: "NPL {npl_ratio}"}
  - {id: cap, when: exposure_outstanding / quota.exposure_limit >= 0.9, action: trip, message: "use {value}"}
  - {id: growth, when: pct_change(exposure_outstanding) > 0.5, action: trip, on_error: breach, message: "growth"}
  - {id: losses, when: sum_to_date(new_lending_amount) > 300, action: terminate, on_missing: ignore, message: "sum"}
  - {id: mean, when: "mean_last(npl_ratio, 3) >= institution.npl_ratio + 0.01", action: trip, message: "mean"}
  - {id: late, when: filing.days_late > 5 or not filing.filed, action: trip, on_missing: keep_state, message: "late"}
probation:
  success_threshold: 2
"""
TEXT = (ROOT / "policies" / "SH-TECH-MA.yaml").read_text().partition("\nrules:")[0].rstrip() + "\n" + RULES
POLICY = compile_policy(parse_policy(TEXT, "SH-TECH-MA.yaml"))
QUOTAS = {"exposure_limit": Decimal("1000"), "per_deal_limit": Decimal("100")}

npl = st.sampled_from(["0.01", "0.02", "0.0249", "0.025", "0.03", "0.0301", "0.05", "0"]).map(Decimal)
exposure = st.sampled_from(["0", "100", "899.99", "900", "900.01", "1000", "1500"]).map(Decimal)
lending = st.sampled_from(["0", "50", "100", "150.5"]).map(Decimal)
period_metrics = st.one_of(
    st.none(),  # not filed
    st.fixed_dictionaries(
        {}, optional={"npl_ratio": npl, "exposure_outstanding": exposure, "new_lending_amount": lending}
    ),
)
period = st.tuples(period_metrics, st.sampled_from([0, 3, 6, 30]), st.booleans())
pilot = st.tuples(
    st.lists(period, min_size=1, max_size=10),
    st.sampled_from(["0.01", "0.015", "0.02"]).map(Decimal),
    st.lists(st.integers(0, 9), max_size=2),
)


def facts_for(spec: tuple[list[tuple[dict[str, Decimal] | None, int, bool]], Decimal, list[int]]) -> list[PeriodFacts]:
    periods, npl_bank, _ = spec
    label = parse_period("2026-01", "monthly")
    result = []
    for metrics, late, outside in periods:
        filed = metrics is not None
        result.append(
            PeriodFacts(
                period=label,
                filed=filed,
                metrics=metrics or {},
                days_late=Decimal(late) if filed else None,
                out_of_scope=("row outside",) if outside and filed else (),
                institution={"npl_ratio": npl_bank},
                ineligible=(),
                quotas=QUOTAS,
            )
        )
        label = label.next()
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pilot, min_size=1, max_size=5))
def test_both_paths_give_the_same_outcomes_and_breaker_states(pilots: list) -> None:
    histories = [(index, facts_for(spec)) for index, spec in enumerate(pilots)]
    resets = {}
    row = 0
    for (_, facts), spec in zip(histories, pilots, strict=True):
        for at in spec[2]:
            if at < len(facts):
                for rule in POLICY.rules:
                    resets[(rule.id, row + at)] = True
        row += len(facts)

    # Path 1: one period at a time, exact, breakers stepped after each evaluation.
    sequential_status: dict[str, list[str]] = {r.id: [] for r in POLICY.rules}
    sequential_state: dict[str, list[Memory]] = {r.id: [] for r in POLICY.rules if r.has_breaker}
    row = 0
    for _, facts in histories:
        memories = {rule_id: Memory() for rule_id in sequential_state}
        for k in range(len(facts)):
            outcomes = {o.rule_id: o for o in judge(POLICY, facts[: k + 1])}
            for rule in POLICY.rules:
                sequential_status[rule.id].append(outcomes[rule.id].status)
                if rule.id in memories:
                    if resets.get((rule.id, row)) and memories[rule.id].state in machine.HUMAN_COMMANDS["reset"]:
                        memories[rule.id] = machine.reset(memories[rule.id])
                    step = machine.step(
                        rule.breaker_rule(POLICY.success_threshold),
                        memories[rule.id],
                        outcomes[rule.id].status,
                        outcomes[rule.id].clear,
                    )
                    memories[rule.id] = step.memory
                    sequential_state[rule.id].append(step.memory)
            row += 1

    # Path 2: every pilot and period at once.
    panel, extras = panel_for(histories)
    statuses = judge_panel(POLICY, panel, extras)
    names = {0: "pass", 1: "breach", 2: "missing", 3: "error"}
    for rule in POLICY.rules:
        assert [names[int(c)] for c in statuses[rule.id][0]] == sequential_status[rule.id], rule.id
    assert fold_breakers(POLICY, panel, statuses, resets) == sequential_state


# -- breakers folded at once -----------------------------------------------------------------------

PASS, BREACH, MISSING, ERROR = 0, 1, 2, 3


def bare_panel(lengths: list[int]) -> Panel:
    return panel_from_histories([PilotHistory(p, [PeriodInputs()] * n) for p, n in enumerate(lengths)])


def stepped(
    rule: BreakerRule,
    lengths: list[int],
    codes: list[int],
    clear: list[int] | None,
    resets: Collection[int] = (),
) -> list[Memory]:
    """The breaker machine stepped row by row: the reference every fold must equal."""
    memories = []
    row = 0
    for n in lengths:
        memory = Memory()
        for _ in range(n):
            if row in resets and memory.state in machine.HUMAN_COMMANDS["reset"]:
                memory = machine.reset(memory)
            clear_value = None if clear is None or clear[row] < 0 else bool(clear[row])
            memory = machine.step(rule, memory, STATUS_NAMES[codes[row]], clear_value).memory
            memories.append(memory)
            row += 1
    return memories


BREAKER_RULES = st.builds(
    BreakerRule,
    trip_after=st.integers(1, 4),
    clear_after=st.integers(1, 4),
    has_clear=st.booleans(),
    on_missing=st.sampled_from(OnMissing),
    on_error=st.sampled_from(OnError),
    success_threshold=st.integers(1, 3),
)
# Breaches often enough that breakers trip, clear and trip again; every status and clear value.
ROW = st.tuples(st.sampled_from([PASS, PASS, BREACH, BREACH, BREACH, MISSING, ERROR]), st.sampled_from([-1, 0, 1, 1]))
PILOTS = st.lists(st.lists(ROW, min_size=1, max_size=14), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(rule=BREAKER_RULES, pilots=PILOTS, with_clear=st.booleans())
def test_property_the_fold_at_once_equals_the_machine_stepped_row_by_row(
    rule: BreakerRule, pilots: list[list[tuple[int, int]]], with_clear: bool
) -> None:
    lengths = [len(rows) for rows in pilots]
    codes = [code for rows in pilots for code, _ in rows]
    clear = [value for rows in pilots for _, value in rows] if with_clear else None
    panel = bare_panel(lengths)
    expected = stepped(rule, lengths, codes, clear)

    columns = fold_breaker(rule, panel, np.array(codes, dtype=np.int8), None if clear is None else np.array(clear))
    assert columns.memories() == expected
    assert [columns.memory(row) for row in range(len(codes))] == expected
    streaks = breach_streaks(np.array(codes), panel, on_missing=rule.on_missing, on_error=rule.on_error)
    assert streaks.tolist() == [m.breach_streak for m in expected]


def test_a_run_of_breaches_trips_and_a_skipped_period_breaks_it() -> None:
    # complaints_count > 20 for 2 consecutive periods, on_missing: ignore (a period without a
    # filing breaks the run), clear after 2 compliant periods.
    rule = BreakerRule(trip_after=2, clear_after=2, has_clear=True, on_missing=OnMissing.ignore)
    codes = np.array([BREACH, MISSING, BREACH, PASS, PASS, BREACH, BREACH, ERROR, PASS, PASS, PASS])
    clear = np.array([0, -1, 0, 1, 1, 0, 0, -1, 1, 1, 0])
    panel = bare_panel([len(codes)])
    columns = fold_breaker(rule, panel, codes, clear)
    watch, armed, tripped = State.watch, State.armed, State.tripped
    assert [m.state for m in columns.memories()] == [watch] * 4 + [armed, watch] + [tripped] * 5
    assert columns.breach_streak.tolist() == [1, 0, 1, 0, 0, 1, 2, 2, 0, 0, 0]  # an error holds (on_error: hold)
    assert columns.clear_streak.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 0]
    assert columns.cleared_signalled.tolist() == [False] * 9 + [True, True]  # said once, kept after a relapse
    streaks = breach_streaks(codes, panel, on_missing="ignore", on_error="hold")
    assert streaks.tolist() == columns.breach_streak.tolist()
    streaks = breach_streaks(codes, panel, on_missing="keep_state", on_error="breach")
    assert streaks.tolist() == [1, 1, 2, 0, 0, 1, 2, 3, 0, 0, 0]


def test_each_pilot_starts_from_a_fresh_breaker() -> None:
    codes = np.array([BREACH, BREACH, BREACH, BREACH])
    assert breach_streaks(codes, bare_panel([2, 2]), on_missing="ignore", on_error="hold").tolist() == [1, 2, 1, 2]


def test_memories_of_columns_too_varied_for_one_key_are_still_each_rows() -> None:
    big = 2**21  # three streaks this long: more combinations than an int64 key holds
    columns = BreakerColumns(
        state=np.array([2, 2, 0], dtype=np.int8),
        breach_streak=np.array([big, big, 0]),
        clear_streak=np.array([0, big, 0]),
        success_streak=np.array([big, 0, 0]),
        cleared_signalled=np.array([True, False, False]),
    )
    assert columns.memories() == [
        Memory(State.tripped, breach_streak=big, success_streak=big, cleared_signalled=True),
        Memory(State.tripped, breach_streak=big, clear_streak=big),
        Memory(),
    ]


@pytest.mark.parametrize(
    ("codes", "message"),
    [([PASS, BREACH], "one status per panel row"), ([PASS, BREACH, 4], "not pass, breach, missing or error")],
)
def test_statuses_that_do_not_fit_the_panel_are_refused(codes: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fold_breaker(BreakerRule(), bare_panel([3]), np.array(codes), None)
    with pytest.raises(ValueError, match=message):
        breach_streaks(np.array(codes), bare_panel([3]), on_missing="ignore", on_error="hold")


def old_fold_breakers(
    statuses: Mapping[str, tuple[np.ndarray, np.ndarray | None]], lengths: list[int], resets: set[tuple[str, int]]
) -> dict[str, list[Memory]]:
    result = {}
    for rule in POLICY.rules:
        if rule.has_breaker:
            codes, clear = statuses[rule.id]
            result[rule.id] = stepped(
                rule.breaker_rule(POLICY.success_threshold),
                lengths,
                codes.tolist(),
                None if clear is None else clear.tolist(),
                {row for rule_id, row in resets if rule_id == rule.id},
            )
    return result


@settings(max_examples=50, deadline=None)
@given(pilots=st.lists(st.integers(1, 12), min_size=1, max_size=4), data=st.data())
def test_property_fold_breakers_with_and_without_resets_equals_stepping(pilots: list[int], data: st.DataObject) -> None:
    rows = sum(pilots)
    panel = bare_panel(pilots)
    statuses: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for rule in POLICY.rules:
        codes = data.draw(
            st.lists(st.sampled_from([PASS, BREACH, BREACH, MISSING, ERROR]), min_size=rows, max_size=rows)
        )
        clear = data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=rows, max_size=rows))
        statuses[rule.id] = (np.array(codes, dtype=np.int8), np.array(clear) if rule.clear_when is not None else None)
    ids = [rule.id for rule in POLICY.rules if rule.has_breaker]
    resets = data.draw(st.sets(st.tuples(st.sampled_from(ids), st.integers(0, rows - 1)), max_size=4))

    assert fold_breakers(POLICY, panel, statuses, dict.fromkeys(resets, True)) == old_fold_breakers(
        statuses, pilots, resets
    )
    at_once = fold_breakers_at_once(POLICY, panel, statuses)
    assert {rule_id: columns.memories() for rule_id, columns in at_once.items()} == old_fold_breakers(
        statuses, pilots, set()
    )
