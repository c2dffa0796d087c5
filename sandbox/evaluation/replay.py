"""Replay: re-derive every stored outcome from the stored filing versions and policy versions,
and every breaker state from its events, and report any difference. A correct system reports
none; a difference means stored data was altered or the engine changed its judgement."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.breaker import repository as breakers
from sandbox.evaluation.facts import Inputs, build_history, versions_by_id
from sandbox.models import Breaker, BreakerEvent, Evaluation, Pilot, PolicyVersion
from sandbox.program.service import policy_document
from sandbox.rules import breaker as machine
from sandbox.rules.breaker import Memory
from sandbox.rules.engine import CompiledPolicy, compile_policy, judge
from sandbox.rules.periods import parse_period

COMPARED = ("status", "clear", "reads", "comparison", "error")


@dataclass(frozen=True)
class Difference:
    where: str
    field: str
    stored: Any
    derived: Any


@dataclass
class ReplayReport:
    evaluations: int = 0
    outcomes: int = 0
    breaker_events: int = 0
    differences: list[Difference] = field(default_factory=list)


class _Policies:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[uuid.UUID, CompiledPolicy] = {}

    def get(self, version_id: uuid.UUID) -> CompiledPolicy:
        if version_id not in self.cache:
            version = self.session.get(PolicyVersion, version_id)
            assert version is not None
            self.cache[version_id] = compile_policy(policy_document(version))
        return self.cache[version_id]


def count_work(session: Session) -> int:
    evaluations = session.scalar(select(func.count()).select_from(Evaluation)) or 0
    events = session.scalar(select(func.count()).select_from(BreakerEvent)) or 0
    return int(evaluations + events)


def replay(session: Session, *, progress: Callable[[int], None] = lambda _: None) -> ReplayReport:
    report = ReplayReport()
    policies = _Policies(session)
    pilots: dict[uuid.UUID, Pilot] = {}
    stored_outcomes: dict[uuid.UUID, dict[str, Any]] = {}
    last = uuid.UUID(int=0)
    while True:
        batch = session.scalars(select(Evaluation).where(Evaluation.id > last).order_by(Evaluation.id).limit(500)).all()
        if not batch:
            break
        for evaluation in batch:
            pilot = pilots.get(evaluation.pilot_id) or session.get(Pilot, evaluation.pilot_id)
            assert pilot is not None
            pilots[pilot.id] = pilot
            _replay_evaluation(session, evaluation, pilot, policies.get(evaluation.policy_version_id), report)
            stored_outcomes[evaluation.id] = {o["rule_id"]: o for o in evaluation.outcomes}
            progress(1)
        last = batch[-1].id
    for breaker in breakers.all_breakers(session):
        pilot = pilots.get(breaker.pilot_id) or session.get(Pilot, breaker.pilot_id)
        assert pilot is not None
        _replay_breaker(
            session, breaker, f"{pilot.reference} {breaker.rule_id}", policies, stored_outcomes, report, progress
        )
    return report


def _replay_evaluation(
    session: Session, evaluation: Evaluation, pilot: Pilot, policy: CompiledPolicy, report: ReplayReport
) -> None:
    inputs = Inputs.from_json(evaluation.inputs)
    frequency = policy.document.schedule.frequency
    periods = [parse_period(label, frequency) for label, _ in inputs.versions]
    by_id = versions_by_id(session, [vid for _, vid in inputs.versions if vid is not None])
    versions = {label: by_id[vid] for label, vid in inputs.versions if vid is not None and vid in by_id}
    missing = [str(vid) for _, vid in inputs.versions if vid is not None and vid not in by_id]
    where = f"{pilot.reference} {evaluation.period} (evaluation {evaluation.id})"
    report.evaluations += 1
    if missing:
        report.differences.append(Difference(where, "inputs", missing, "filing versions no longer stored"))
        return
    derived = {
        o.rule_id: o.to_json() for o in judge(policy, build_history(periods, versions, inputs, pilot.granted_scope))
    }
    stored = {o["rule_id"]: o for o in evaluation.outcomes}
    for rule_id in sorted(set(derived) | set(stored)):
        report.outcomes += 1
        left, right = stored.get(rule_id), derived.get(rule_id)
        if left is None or right is None:
            report.differences.append(Difference(f"{where} {rule_id}", "rule", left is not None, right is not None))
            continue
        for name in COMPARED:
            if left.get(name) != right.get(name):
                report.differences.append(Difference(f"{where} {rule_id}", name, left.get(name), right.get(name)))


def _replay_breaker(
    session: Session,
    breaker: Breaker,
    where: str,
    policies: _Policies,
    stored_outcomes: dict[uuid.UUID, dict[str, Any]],
    report: ReplayReport,
    progress: Callable[[int], None],
) -> None:
    memory = Memory()
    events: Sequence[BreakerEvent] = breakers.events(session, breaker.id)
    evaluations = {
        e.id: e
        for e in session.scalars(
            select(Evaluation).where(Evaluation.id.in_([ev.evaluation_id for ev in events if ev.evaluation_id]))
        )
    }
    for event in events:
        report.breaker_events += 1
        progress(1)
        if event.kind == "evaluated" and event.evaluation_id is not None:
            evaluation = evaluations[event.evaluation_id]
            outcome = stored_outcomes[evaluation.id][breaker.rule_id]
            policy = policies.get(evaluation.policy_version_id)
            rule = policy.rule(breaker.rule_id)
            memory = machine.step(
                rule.breaker_rule(policy.success_threshold), memory, outcome["status"], outcome.get("clear")
            ).memory
        elif event.kind == "acknowledged":
            memory = machine.acknowledge(memory)
        elif event.kind == "reset":
            memory = machine.reset(memory)
        if memory.to_json() != event.memory_after:
            report.differences.append(
                Difference(f"{where} event {event.id} ({event.kind})", "breaker", event.memory_after, memory.to_json())
            )
            return
    if memory.to_json() != breaker.memory:
        report.differences.append(Difference(where, "breaker state", breaker.memory, memory.to_json()))
