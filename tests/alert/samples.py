"""One realistic context per alert kind: what the hooks that emit alerts must supply."""

from __future__ import annotations

from typing import Any

PILOT = {"reference": "PILOT-2026-001", "title": "Cross-border payments for SMEs", "institution": "Bank A"}

FINDINGS: list[dict[str, Any]] = [
    {
        "rule_id": "npl-ratio-ceiling",
        "severity": "critical",
        "outcome": "tripped",
        "explanation": "npl_ratio 0.061 > 0.05 for 2 consecutive periods",
        "comparison": {"left": "0.061", "operator": ">", "threshold": "0.05"},
    },
    {
        "rule_id": "complaints-rising",
        "severity": "medium",
        "outcome": "warning",
        "explanation": "complaints per 10k customers 4.2 > 3",
        "comparison": {"left": "4.2", "operator": ">", "threshold": "3"},
    },
    {
        "rule_id": "filing-missing",
        "severity": "high",
        "outcome": "repeat_trip",
        "explanation": "no filing received for 2026-10 by its due date",
        "comparison": None,
    },
]

EVALUATION: dict[str, Any] = {"pilot": PILOT, "period": "2026-10", "policy_version": 3, "findings": FINDINGS}

SAMPLES: dict[str, dict[str, Any]] = {
    "breaker.tripped": EVALUATION,
    "breaker.condition_cleared": {**EVALUATION, "findings": [{**FINDINGS[0], "outcome": "condition_cleared"}]},
    "rule.warning": {**EVALUATION, "findings": [FINDINGS[1]]},
    "breaker.reset": {
        "pilot": PILOT,
        "rule_id": "npl-ratio-ceiling",
        "reason": "remediation plan filed",
        "by": "sup@x",
    },
    "breaker.reminder": {
        "pilot": PILOT,
        "rule_id": "npl-ratio-ceiling",
        "tripped_at": "2026-11-28T02:00:00+00:00",
        "reminder": 2,
    },
    "breaker.escalated": {
        "pilot": PILOT,
        "rule_id": "npl-ratio-ceiling",
        "tripped_at": "2026-11-28T02:00:00+00:00",
        "unacknowledged_for": "4 hours",
    },
    "pilot.suspended": {"pilot": PILOT, "reason": "breaker npl-ratio-ceiling tripped", "by": "system"},
    "pilot.resumed": {"pilot": PILOT, "reason": "remediation verified", "by": "approver@bureau.example"},
    "pilot.terminated": {"pilot": PILOT, "reason": "repeated breaches", "by": "approver@bureau.example"},
    "filing.due_soon": {"pilot": PILOT, "period": "2026-11", "due_on": "2026-12-15", "working_days_left": 3},
    "filing.overdue": {"pilot": PILOT, "period": "2026-10", "due_on": "2026-11-16", "days_late": 1},
    "application.decided": {
        "application": {"title": "Cross-border payments for SMEs", "institution": "Bank A", "program": "TECH-MA"},
        "decision": "approved",
        "reason": "sound risk controls",
        "pilot": PILOT,
    },
    "exemption.assessed": {
        "pilot": PILOT,
        "trigger": "risk event",
        "finding": "met",
        "policy_version": 3,
        "criteria": [
            {"name": "disclosed within 24 hours", "met": True, "evidence": "reported 3 h after the event"},
            {"name": "loss under the cap", "met": True, "evidence": "CNY 120,000 < CNY 500,000"},
        ],
    },
    "exemption.decided": {
        "pilot": PILOT,
        "decision": "granted",
        "finding": "met",
        "reason": "due diligence shown",
        "by": "supervisor@bureau.example",
    },
}
