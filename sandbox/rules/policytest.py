"""A policy's own tests (the ``tests`` section): example histories and the outcome each rule
must give, period by period, breaker state included. Pure: ``sandbox policies test`` runs them
like a policy engine's unit tests, before a policy is ever loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sandbox.rules import breaker as machine
from sandbox.rules.breaker import Memory
from sandbox.rules.engine import CompiledPolicy, PeriodFacts, compile_policy, judge
from sandbox.rules.periods import PeriodError, parse_period
from sandbox.rules.policy import PolicyDocument
from sandbox.rules.rulebook import PolicyTest


@dataclass
class TestResult:
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def run_policy_tests(document: PolicyDocument) -> list[TestResult]:
    policy = compile_policy(document)
    return [_run(policy, case) for case in document.tests]


def _run(policy: CompiledPolicy, case: PolicyTest) -> TestResult:
    result = TestResult(case.name)
    document = policy.document
    frequency = document.schedule.frequency
    quotas = {name: spec.per_pilot_cap for name, spec in document.quotas.items()} | dict(case.quotas)
    institution: dict[str, Decimal | None] = {k: v for k, v in case.institution.items()}
    rule_ids = {r.id for r in policy.rules}
    memories = {r.id: Memory() for r in policy.rules if r.has_breaker}
    history: list[PeriodFacts] = []
    for step in case.periods:
        try:
            period = parse_period(step.period, frequency)
        except PeriodError as exc:
            result.failures.append(f"{step.period}: {exc}")
            return result
        if history and period != history[-1].period.next():
            result.failures.append(
                f"{period.label}: test periods must be consecutive (after {history[-1].period.label})"
            )
            return result
        for rule_id in step.reset:
            memory = memories.get(rule_id)
            if memory is None or memory.state not in machine.HUMAN_COMMANDS["reset"]:
                result.failures.append(
                    f"{period.label}: cannot reset {rule_id} ({memory.state if memory else 'no breaker'})"
                )
                continue
            memories[rule_id] = machine.reset(memory)
        filed = step.metrics is not None
        history.append(
            PeriodFacts(
                period=period,
                filed=filed,
                metrics=dict(step.metrics or {}),
                days_late=Decimal(step.days_late) if filed else None,
                out_of_scope=("a test breakdown row outside the granted scope",)
                if step.breakdown_outside_scope
                else (),
                institution=institution,
                quotas=quotas,
            )
        )
        outcomes = {o.rule_id: o for o in judge(policy, history)}
        for rule in policy.rules:
            if rule.id in memories:
                outcome = outcomes[rule.id]
                memories[rule.id] = machine.step(
                    rule.breaker_rule(policy.success_threshold), memories[rule.id], outcome.status, outcome.clear
                ).memory
        for rule_id, expected in step.expect.items():
            if rule_id not in rule_ids:
                result.failures.append(f"{period.label}: expects an outcome of unknown rule {rule_id!r}")
                continue
            status, _, state = expected.partition("/")
            got = outcomes[rule_id].status
            if got != status:
                result.failures.append(
                    f"{period.label} {rule_id}: expected {status}, got {got} ({outcomes[rule_id].explanation})"
                )
            if state:
                actual = memories[rule_id].state.value if rule_id in memories else "no breaker"
                if actual != state:
                    result.failures.append(f"{period.label} {rule_id}: expected breaker {state}, got {actual}")
    return result
