"""The synchronous path (one filing at a time, exact) and the vectorised batch path give the same
outcome for every rule and period, and the same breaker states, on generated histories with gaps,
zeros and values exactly on the thresholds."""

from __future__ import annotations

from decimal import Decimal

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from sandbox.rules import breaker as machine
from sandbox.rules.breaker import Memory
from sandbox.rules.engine import PeriodFacts, compile_policy, fold_breakers, judge, judge_panel, panel_for
from sandbox.rules.periods import parse_period
from sandbox.rules.policy_file import parse_policy
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
