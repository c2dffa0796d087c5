"""Backtest: a draft policy over the stored history, through the vectorised path, with breaker
state replayed (supervisors' resets kept where they happened), compared rule by rule with what
the policies in force decided. Reads only; changes nothing."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.evaluation.facts import Inputs, decimals, latest_versions, out_of_scope
from sandbox.models import Breaker, BreakerEvent, Evaluation, Pilot
from sandbox.program.service import get_program
from sandbox.rules.engine import STATUS_NAMES, PeriodFacts, compile_policy, fold_breakers, judge_panel, panel_for
from sandbox.rules.periods import parse_period
from sandbox.rules.policy import PolicyDocument


@dataclass(frozen=True)
class Change:
    pilot: str
    period: str
    rule_id: str
    current: str
    draft: str


@dataclass
class RuleSummary:
    rule_id: str
    in_current: bool
    in_draft: bool
    breaches_current: int = 0
    breaches_draft: int = 0
    trips_current: int = 0
    trips_draft: int = 0
    changed: int = 0


@dataclass
class BacktestReport:
    program: str
    draft_version: str
    pilots: int = 0
    periods: int = 0
    rules: dict[str, RuleSummary] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)


def backtest(
    session: Session, draft: PolicyDocument, *, progress: Callable[[int], None] = lambda _: None
) -> BacktestReport:
    policy = compile_policy(draft)
    program = get_program(session, draft.program.code)
    report = BacktestReport(program.code, draft.program.version)
    frequency = draft.schedule.frequency
    latest: dict[tuple[uuid.UUID, str], Evaluation] = {}
    for evaluation in session.scalars(
        select(Evaluation)
        .join(Pilot, Pilot.id == Evaluation.pilot_id)
        .where(Pilot.program_id == program.id)
        .order_by(Evaluation.id)
    ):
        latest[(evaluation.pilot_id, evaluation.period)] = evaluation
    by_pilot: dict[uuid.UUID, list[Evaluation]] = defaultdict(list)
    for (pilot_id, _), evaluation in latest.items():
        by_pilot[pilot_id].append(evaluation)
    histories: list[tuple[str, list[PeriodFacts]]] = []
    stored: list[dict[str, str]] = []
    resets: dict[tuple[str, int], bool] = {}
    current_trips: dict[str, int] = defaultdict(int)
    row = 0
    for pilot_id, evaluations in sorted(by_pilot.items(), key=lambda item: str(item[0])):
        pilot = session.get(Pilot, pilot_id)
        assert pilot is not None
        evaluations.sort(key=lambda e: e.period_ordinal)
        versions = latest_versions(session, pilot.id)
        facts = []
        for evaluation in evaluations:
            inputs = Inputs.from_json(evaluation.inputs)
            version = versions.get(evaluation.period)
            facts.append(
                PeriodFacts(
                    period=parse_period(evaluation.period, frequency),
                    filed=version is not None,
                    metrics=decimals(version.metrics) if version else {},
                    days_late=Decimal(version.days_late)
                    if version
                    else (Decimal(inputs.days_late) if inputs.days_late else None),
                    out_of_scope=out_of_scope(version.breakdown, pilot.granted_scope) if version else (),
                    institution={k: Decimal(v) if v is not None else None for k, v in inputs.institution.items()},
                    ineligible=tuple(inputs.ineligible),
                    quotas=decimals(inputs.quotas),
                )
            )
            stored.append({o["rule_id"]: o["status"] for o in evaluation.outcomes})
        _resets(session, pilot.id, evaluations, row, resets)
        _count_current_trips(session, pilot.id, current_trips)
        histories.append((pilot.reference, facts))
        row += len(facts)
        progress(len(facts))
    report.pilots, report.periods = len(histories), row
    current_ids = {rule_id for outcome in stored for rule_id in outcome}
    draft_ids = {r.id for r in policy.rules}
    for rule_id in sorted(current_ids | draft_ids):
        report.rules[rule_id] = RuleSummary(
            rule_id, rule_id in current_ids, rule_id in draft_ids, trips_current=current_trips.get(rule_id, 0)
        )
    if not histories:
        return report
    panel, extras = panel_for(histories)
    statuses = judge_panel(policy, panel, extras)
    labels = [(reference, f.period.label) for reference, facts in histories for f in facts]
    for rule_id, summary in report.rules.items():
        draft_codes = statuses[rule_id][0] if rule_id in statuses else None
        for index, (reference, period) in enumerate(labels):
            now = stored[index].get(rule_id, "absent")
            then = STATUS_NAMES[int(draft_codes[index])] if draft_codes is not None else "absent"
            summary.breaches_current += now == "breach"
            summary.breaches_draft += then == "breach"
            if now != then:
                summary.changed += 1
                report.changes.append(Change(reference, period, rule_id, now, then))
    for rule_id, memories in fold_breakers(policy, panel, statuses, resets).items():
        trips = 0
        for index, memory in enumerate(memories):
            before = (
                memories[index - 1].state.value if index and panel.pilot[index] == panel.pilot[index - 1] else "armed"
            )
            trips += memory.state.value == "tripped" and before != "tripped"
        report.rules[rule_id].trips_draft = trips
    return report


def _resets(
    session: Session,
    pilot_id: uuid.UUID,
    evaluations: list[Evaluation],
    first_row: int,
    resets: dict[tuple[str, int], bool],
) -> None:
    """A reset between two evaluations applies before the next evaluated period."""
    rows = session.execute(
        select(Breaker.rule_id, BreakerEvent.at)
        .join(Breaker, Breaker.id == BreakerEvent.breaker_id)
        .where(Breaker.pilot_id == pilot_id, BreakerEvent.kind == "reset")
    ).all()
    for rule_id, at in rows:
        later = [i for i, e in enumerate(evaluations) if e.evaluated_at >= at]
        if later:
            resets[(rule_id, first_row + later[0])] = True


def _count_current_trips(session: Session, pilot_id: uuid.UUID, trips: dict[str, int]) -> None:
    for rule_id, signals in session.execute(
        select(Breaker.rule_id, BreakerEvent.signals)
        .join(Breaker, Breaker.id == BreakerEvent.breaker_id)
        .where(Breaker.pilot_id == pilot_id)
    ):
        if "tripped" in signals:
            trips[rule_id] += 1
