from __future__ import annotations

from sqlalchemy import func, select

from sandbox.evaluation.replay import replay
from sandbox.models import Breaker, BreakerEvent, Evaluation
from tests.evaluation.conftest import RULES, Live, rules_version
from tests.support import ROOT


def _history(live: Live) -> None:
    for period, npl in (
        ("2026-02", "0.021"),
        ("2026-03", "0.026"),
        ("2026-04", "0.031"),
        ("2026-05", "0.032"),
        ("2026-06", "0.01"),
    ):
        assert live.file(period, npl_ratio=npl).status_code == 201


def _counts(live: Live) -> tuple[int, int, int]:
    with live.database.sessions() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(m)) or 0) for m in (Evaluation, Breaker, BreakerEvent)
        )  # type: ignore[return-value]


def test_backtest_shows_what_a_stricter_draft_would_change_and_writes_nothing(live: Live) -> None:
    _history(live)
    before = _counts(live)
    stricter = RULES.replace("when: npl_ratio >= 0.03", "when: npl_ratio >= 0.025").replace(
        "trip_after: 2", "trip_after: 1"
    )
    draft = rules_version((ROOT / "policies" / "SH-TECH-MA.yaml").read_text(), version="2026.draft").replace(
        RULES, stricter
    )
    response = live.world.client.post(
        "/api/v1/policies/backtest",
        content=draft.encode(),
        headers={**live.world.supervisor.headers, "content-type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    npl = next(r for r in report["rules"] if r["rule_id"] == "npl-trip")
    assert (npl["breaches_current"], npl["breaches_draft"]) == (2, 3)
    assert (npl["trips_current"], npl["trips_draft"]) == (1, 1)
    assert {(c["period"], c["current"], c["draft"]) for c in report["changes"] if c["rule_id"] == "npl-trip"} == {
        ("2026-03", "pass", "breach")
    }
    assert _counts(live) == before

    refused = live.world.client.post(
        "/api/v1/policies/backtest",
        content=draft.replace("npl_ratio >= 0.025", "open(npl_ratio)").encode(),
        headers={**live.world.supervisor.headers, "content-type": "application/yaml"},
    )
    assert refused.status_code == 422 and "open" in refused.text
    assert (
        live.world.client.post(
            "/api/v1/policies/backtest",
            content=draft.encode(),
            headers={**live.world.filer_a.headers, "content-type": "application/yaml"},
        ).status_code
        == 403
    )


def test_replay_finds_no_difference_and_detects_an_altered_outcome(live: Live) -> None:
    _history(live)
    with live.database.sessions() as session:
        clean = replay(session)
        assert clean.differences == [] and clean.evaluations == 5 and clean.breaker_events > 0
        evaluation = session.scalars(select(Evaluation).where(Evaluation.period == "2026-04")).one()
        evaluation.outcomes = [
            {**o, "status": "pass"} if o["rule_id"] == "npl-trip" else o for o in evaluation.outcomes
        ]
        session.flush()
        tampered = replay(session)
        assert any(d.field == "status" and "2026-04" in d.where for d in tampered.differences)
        session.rollback()
