"""Batch rule evaluation: the product's vectorised path against DuckDB SQL and a bare-numpy floor.

One synthetic workload (pilots x monthly periods x 20 metrics, in long format, values as decimal
text) and one set of 12 rules, written three times: as a policy file evaluated by the product
(``compile_policy``, then ``panel_from_long`` + ``judge_panel`` + ``fold_breakers_at_once``), as
DuckDB SQL with window functions, and as numpy on arrays already laid out (pilots x periods).
The product's earlier route (a pandas pivot, every value a ``Decimal``, ``fold_breakers``' list of
``Memory`` objects) runs beside them, for contrast. All of them must fire on exactly the
same rows; the script refuses to print timings otherwise. It also times the exact one-filing path
(``judge``) on a sample of 36-period histories.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/rules_bench.py [--pilots 2000 --periods 36 --repeat 3 --seed 1] [--profile]

"Fires" means: the rule's condition is true (status ``breach``). A row whose inputs are missing
(status ``missing``) or cannot be computed (a division by zero: ``error``) does not fire, which is
what SQL's three-valued logic gives when a NULL or a guarded division reaches a WHERE-style test.
The two rules that must hold "for N consecutive periods" fire on a row when their condition
breached on that row and on the N-1 expected periods just before it (a period without a filing
breaks the run: the rules say ``on_missing: ignore``); on the product path this is read from the
breaker fold (``breach_streak >= trip_after``).

The product is exact (decimals); so are the SQL (DECIMAL(18,6), ratios compared by
cross-multiplying, because DuckDB divides DECIMALs in DOUBLE) and the numpy floor (int64 in
millionths). A naive float64 numpy version is also run, untimed, to count the rows it misjudges.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

from sandbox.rules.engine import (
    STATUS_NAMES,
    CompiledPolicy,
    PanelExtras,
    PeriodFacts,
    compile_policy,
    fold_breakers,
    fold_breakers_at_once,
    judge,
    judge_panel,
    panel_for,
)
from sandbox.rules.periods import Period
from sandbox.rules.policy_file import parse_policy
from sandbox.rules.vector import STATUS_TRUE, Panel, decimal_floats, evaluate_vector_detailed, panel_from_long

RESULTS = Path(__file__).resolve().parent / "results"
SCALE = 1_000_000  # the numpy floor holds every value in millionths (int64): 2-6 places are exact
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

# -- the workload ----------------------------------------------------------------------------------

# name -> (kind, decimal places as filed). Ratios are written with 4 to 6 places (trailing zeros
# vary, as they do between banks' systems); amounts with 2; counts as whole numbers.
METRICS: dict[str, tuple[str, int]] = {
    "npl_ratio": ("ratio", 4),
    "capital_adequacy_ratio": ("ratio", 4),
    "exposure_outstanding": ("CNY", 2),
    "complaints_count": ("count", 0),
    "customers_count": ("count", 0),
    "fraud_incidents": ("count", 0),
    "loss_amount": ("CNY", 2),
    "new_lending_amount": ("CNY", 2),
    "deals_count": ("count", 0),
    "overdue90_ratio": ("ratio", 4),
    "top1_share": ("ratio", 4),
    "liquidity_coverage_ratio": ("ratio", 4),
    "provision_coverage_ratio": ("ratio", 4),
    "interest_income": ("CNY", 2),
    "fee_income": ("CNY", 2),
    "borrowers_count": ("count", 0),
    "avg_loan_size": ("CNY", 2),
    "max_term_months": ("count", 0),
    "collateral_coverage": ("ratio", 4),
    "staff_count": ("count", 0),
}

# (id, condition, action/trip_after): the 12 rules of the brief, in order.
RULES: list[tuple[str, str, int]] = [
    ("npl-high", "npl_ratio > 0.03", 0),
    ("car-below-min", "capital_adequacy_ratio < 0.08", 0),
    ("filing-very-late", "filing.days_late > 90", 0),
    ("exposure-near-cap", "exposure_outstanding / quota.exposure_limit > 0.9", 0),
    ("complaint-rate", "complaints_count / customers_count > 0.005", 0),
    ("fraud", "fraud_incidents > 0", 0),
    ("complaints-sustained", "complaints_count > 20", 2),
    ("car-sustained", "capital_adequacy_ratio < 0.10", 3),
    ("loss-jump", "pct_change(loss_amount) > 0.5", 0),
    ("exposure-jump", "pct_change(exposure_outstanding) > 0.5", 0),
    ("loss-to-date", "sum_to_date(loss_amount) > 50000000", 0),
    ("filing-missing", "not filing.filed", 0),
]
RULE_IDS = [rule_id for rule_id, _, _ in RULES]
TRIP_AFTER = {rule_id: n for rule_id, _, n in RULES if n}
CODE = "SH-BENCH-RULES"


def policy_text() -> str:
    metrics = "\n".join(
        f"  {name}:\n    unit: {'ratio' if kind == 'ratio' else kind}\n    decimals: {places if kind != 'ratio' else 6}\n"
        "    min: 0"
        for name, (kind, places) in METRICS.items()
    )
    rules = []
    for rule_id, when, trip_after in RULES:
        action = f"action: trip\n    trip_after: {trip_after}\n    on_missing: ignore" if trip_after else "action: warn"
        rules.append(f"  - id: {rule_id}\n    when: '{when}'\n    {action}\n    message: {rule_id} breached")
    return f"""\
program:
  code: {CODE}
  title: Rule-evaluation benchmark
  area: inclusive_finance
  version: "1"
  effective_from: 2023-01-01
eligibility:
  institution_types: [domestic_bank]
scope:
  products: [bench_loan]
quotas:
  exposure_limit:
    unit: CNY
    per_pilot_cap: 10000000000
schedule:
  frequency: monthly
  due_business_days: 10
  max_duration_months: 120
metrics:
{metrics}
# The built-in rules are not among the 12 compared; as warnings they have no breaker to fold.
builtin_rules:
  within_scope:
    action: warn
  institution_eligible:
    action: warn
rules:
{chr(10).join(rules)}
"""


@dataclass
class Workload:
    pilots: list[str]
    periods: list[str]
    long: pd.DataFrame  # pilot, period, metric, value (decimal text): one row per filed value
    filings: pd.DataFrame  # pilot, period, days_late: one row per filed pilot-period
    quotas: pd.DataFrame  # pilot, exposure_limit (decimal text)
    # The same data laid out for the numpy floor: (pilots, periods) int64 millionths.
    values: dict[str, Ints]
    filed: Bools
    days_late: Ints
    limit: Ints  # (pilots,) millionths
    planted: dict[str, int] = field(default_factory=dict)


def _text(micro: int, places: int) -> str:
    """Decimal text of a value held in millionths, with at least ``places`` places and as many
    more as the value needs (never more than 6)."""
    whole, frac = divmod(micro, SCALE)
    if frac == 0 and places == 0:
        return str(whole)
    digits = f"{frac:06d}"
    needed = len(digits.rstrip("0"))
    return f"{whole}.{digits[: max(places, needed)]}"


def generate(n_pilots: int, n_periods: int, seed: int) -> Workload:
    rng = np.random.default_rng(seed)
    shape = (n_pilots, n_periods)
    pilots = [f"P{i:05d}" for i in range(1, n_pilots + 1)]
    periods = [f"{2023 + t // 12}-{t % 12 + 1:02d}" for t in range(n_periods)]
    planted: dict[str, int] = {}

    def plant(name: str, mask: Bools, array: Ints, value: Ints | int) -> None:
        array[mask] = value if isinstance(value, int) else value[mask]
        planted[name] = planted.get(name, 0) + int(mask.sum())

    def some(p: float) -> Bools:
        return rng.random(shape) < p

    v: dict[str, Ints] = {}
    # Ratios: a per-pilot level plus noise, in units of 0.0001, so breaches come in runs.
    npl_level = rng.uniform(50, 280, (n_pilots, 1))
    v["npl_ratio"] = np.clip(npl_level + rng.normal(0, 40, shape), 0, 2000).round().astype(np.int64) * 100
    plant("npl_ratio == 0.03", some(0.01), v["npl_ratio"], 30_000)
    car_level = rng.uniform(850, 1700, (n_pilots, 1))
    v["capital_adequacy_ratio"] = (
        np.clip(car_level + rng.normal(0, 60, shape), 300, 3000).round().astype(np.int64) * 100
    )
    plant("capital_adequacy_ratio == 0.08", some(0.005), v["capital_adequacy_ratio"], 80_000)
    plant("capital_adequacy_ratio == 0.10", some(0.01), v["capital_adequacy_ratio"], 100_000)
    # Quota: CNY 0.5bn-5bn in whole millions; exposure around 30-100% of it, in cents.
    limit_cny = rng.integers(500, 5001, n_pilots).astype(np.int64) * 1_000_000
    use = np.clip(rng.uniform(0.3, 0.85, (n_pilots, 1)) + rng.normal(0, 0.08, shape), 0.01, 1.2)
    v["exposure_outstanding"] = (limit_cny[:, None] * use * 100).round().astype(np.int64) * (SCALE // 100)
    plant(
        "exposure_outstanding == 0.9 * quota",
        some(0.01),
        v["exposure_outstanding"],
        np.broadcast_to(limit_cny[:, None] * 9 // 10 * SCALE, shape).copy(),
    )
    # Complaints: a per-pilot rate, some pilots often above 20; customers in the thousands.
    rate = rng.uniform(1, 28, (n_pilots, 1))
    v["complaints_count"] = rng.poisson(np.broadcast_to(rate, shape)).astype(np.int64) * SCALE
    plant("complaints_count == 20", some(0.01), v["complaints_count"], 20 * SCALE)
    v["customers_count"] = rng.integers(500, 20_000, shape).astype(np.int64) * SCALE
    rate_exact = some(0.01) & (v["complaints_count"] > 0)
    plant("complaints / customers == 0.005", rate_exact, v["customers_count"], v["complaints_count"] * 200)
    plant("customers_count == 0 (division by zero)", some(0.002), v["customers_count"], 0)
    v["fraud_incidents"] = np.where(some(0.03), rng.integers(1, 4, shape), 0).astype(np.int64) * SCALE
    # Losses in cents: zero in 10% of months, else around a per-pilot level; some jumps of
    # exactly +50%, and some pilots whose running total lands exactly on CNY 50m.
    level = rng.uniform(2e5, 2.5e6, (n_pilots, 1))
    loss_cents = (level * rng.lognormal(0, 0.6, shape) * 100).round().astype(np.int64)
    loss_cents[some(0.10)] = 0
    v["loss_amount"] = loss_cents * (SCALE // 100)
    jump = some(0.01)
    jump[:, 0] = False
    previous = np.zeros(shape, dtype=np.int64)
    previous[:, 1:] = v["loss_amount"][:, :-1]
    jump &= previous > 0
    plant("loss_amount == 1.5 * previous", jump, v["loss_amount"], previous * 3 // 2)
    exposure_previous = np.zeros(shape, dtype=np.int64)
    exposure_previous[:, 1:] = v["exposure_outstanding"][:, :-1]
    exposure_jump = some(0.005)
    exposure_jump[:, 0] = False
    plant(
        "exposure_outstanding == 1.5 * previous", exposure_jump, v["exposure_outstanding"], exposure_previous * 3 // 2
    )
    target = 50_000_000 * SCALE
    totals = np.cumsum(v["loss_amount"], axis=1)
    for p in np.flatnonzero(rng.random(n_pilots) < 0.05):
        t = int(rng.integers(1, n_periods))
        rest = target - int(totals[p, t - 1])
        if 0 <= rest <= 20_000_000 * SCALE:
            v["loss_amount"][p, t] = rest
            planted["sum_to_date(loss_amount) == 50000000"] = planted.get("sum_to_date(loss_amount) == 50000000", 0) + 1
    # The 13 metrics no rule reads: realistic noise that the batch paths must wade through.
    for name, (kind, _) in METRICS.items():
        if name in v:
            continue
        if kind == "ratio":
            v[name] = rng.integers(0, 20_000, shape).astype(np.int64) * 100
        elif kind == "CNY":
            v[name] = rng.integers(0, 10**12, shape).astype(np.int64) * (SCALE // 100)
        else:
            v[name] = rng.integers(0, 500, shape).astype(np.int64) * SCALE
    filed = rng.random(shape) >= 0.02
    days_late = np.where(rng.random(shape) < 0.03, rng.integers(60, 150, shape), rng.integers(0, 8, shape))
    days_late[some(0.01)] = 90
    days_late = days_late.astype(np.int64)

    # The long format: one row per filed (pilot, period, metric), the value as text.
    where = np.argwhere(filed)
    p_idx, t_idx = where[:, 0], where[:, 1]
    names = list(METRICS)
    columns: dict[str, list[str]] = {}
    for name in names:
        kind, places = METRICS[name]
        micro = v[name][p_idx, t_idx].tolist()
        if kind == "ratio":
            extra = rng.integers(0, 3, len(micro)).tolist()  # 4, 5 or 6 places as filed
            columns[name] = [_text(m, places + e) for m, e in zip(micro, extra, strict=True)]
        else:
            columns[name] = [_text(m, places) for m in micro]
    pilot_of = np.array(pilots, dtype=object)[p_idx]
    period_of = np.array(periods, dtype=object)[t_idx]
    n_filed, n_metrics = len(p_idx), len(names)
    long = pd.DataFrame(
        {
            "pilot": np.repeat(pilot_of, n_metrics),
            "period": np.repeat(period_of, n_metrics),
            "metric": np.tile(np.array(names, dtype=object), n_filed),
            "value": np.array([columns[name] for name in names], dtype=object).T.reshape(-1),
        }
    )
    filings = pd.DataFrame({"pilot": pilot_of, "period": period_of, "days_late": days_late[p_idx, t_idx]})
    quotas = pd.DataFrame({"pilot": pilots, "exposure_limit": [str(x) for x in limit_cny.tolist()]})
    return Workload(
        pilots=pilots,
        periods=periods,
        long=long,
        filings=filings,
        quotas=quotas,
        values=v,
        filed=filed,
        days_late=days_late,
        limit=limit_cny * SCALE,
        planted=planted,
    )


# -- (a) the product's batch path ------------------------------------------------------------------


def read_metrics(policy: CompiledPolicy) -> list[str]:
    return sorted({name for rule in policy.rules if rule.when is not None for name in rule.when.metrics})


def expected_rows(work: Workload) -> pd.MultiIndex:
    """Every pilot's every period: the rows a panel must have, filed or not."""
    return pd.MultiIndex.from_product([work.pilots, work.periods], names=["pilot", "period"])


def build_panel(work: Workload, policy: CompiledPolicy) -> tuple[Panel, PanelExtras]:
    """The product's route from long data to a Panel: ``panel_from_long`` parses each float from
    the text and each Decimal only when the evaluator asks for that row."""
    panel = panel_from_long(
        work.long,
        expected=expected_rows(work),
        metrics=read_metrics(policy),
        filings=work.filings,
        quotas=work.quotas,
    )
    none = np.zeros(len(panel), dtype=bool)
    return panel, PanelExtras(out_of_scope=none, ineligible=none)


def build_panel_eagerly(work: Workload, policy: CompiledPolicy) -> tuple[Panel, PanelExtras]:
    """The earlier route, for contrast: pandas pivots the long data, every value becomes a
    ``Decimal`` and ``decimal_floats`` converts them."""
    needed = read_metrics(policy)
    long = work.long
    wide = long[long["metric"].isin(needed)].pivot(index=["pilot", "period"], columns="metric", values="value")
    grid = expected_rows(work)
    wide = wide.reindex(grid)
    filings = work.filings.set_index(["pilot", "period"])["days_late"].reindex(grid)
    filed = filings.notna().to_numpy()
    days_late = [None if isinstance(d, float) and d != d else Decimal(int(d)) for d in filings.tolist()]

    def column(texts: npt.NDArray[Any]) -> tuple[npt.NDArray[np.float64], list[Decimal | None]]:
        exact = [None if isinstance(t, float) else Decimal(t) for t in texts.tolist()]
        return decimal_floats(exact), exact

    columns = {name: column(wide[name].to_numpy(dtype=object)) for name in needed}
    limit_texts = work.quotas.set_index("pilot")["exposure_limit"].reindex(work.pilots).to_numpy(dtype=object)
    limit_floats, limit_exact = column(np.repeat(limit_texts, len(work.periods)))
    pilot = np.empty(len(grid), dtype=object)
    pilot[:] = np.repeat(np.array(work.pilots, dtype=object), len(work.periods))
    panel = Panel(
        pilot=pilot,
        metrics={name: floats for name, (floats, _) in columns.items()},
        exact={name: exact for name, (_, exact) in columns.items()},
        quotas={"exposure_limit": limit_floats},
        quotas_exact={"exposure_limit": limit_exact},
        institution={},
        institution_exact={},
        days_late=decimal_floats(days_late),
        days_late_exact=days_late,
        filed=filed,
    )
    none = np.zeros(len(grid), dtype=bool)
    return panel, PanelExtras(out_of_scope=none, ineligible=none)


def histories(work: Workload, pilot_rows: list[int], upto: int | None = None) -> list[tuple[str, list[PeriodFacts]]]:
    """PeriodFacts for some pilots (all 20 metrics, as a filing carries them), for ``judge`` and
    for the ``panel_for`` route."""
    names = list(METRICS)
    texts = {name: work.long["value"].to_numpy()[i :: len(names)] for i, name in enumerate(names)}
    keys = work.long["pilot"].to_numpy()[:: len(names)], work.long["period"].to_numpy()[:: len(names)]
    index = {(p, t): i for i, (p, t) in enumerate(zip(*keys, strict=True))}
    late = work.filings["days_late"].to_numpy()
    limits = dict(zip(work.quotas["pilot"], work.quotas["exposure_limit"], strict=True))
    result = []
    periods = work.periods[: upto if upto is not None else len(work.periods)]
    for p in pilot_rows:
        pilot = work.pilots[p]
        quotas = {"exposure_limit": Decimal(limits[pilot])}
        facts = []
        for label in periods:
            period = Period("monthly", int(label[:4]), int(label[5:]))
            i = index.get((pilot, label))
            if i is None:
                facts.append(PeriodFacts(period=period, filed=False, quotas=quotas))
            else:
                metrics = {name: Decimal(texts[name][i]) for name in names}
                facts.append(
                    PeriodFacts(
                        period=period, filed=True, metrics=metrics, days_late=Decimal(int(late[i])), quotas=quotas
                    )
                )
        result.append((pilot, facts))
    return result


def product_firings(statuses: dict[str, tuple[Any, Any]], streaks: Mapping[str, Ints]) -> dict[str, Bools]:
    """A rule fires where it breached; a consecutive-period rule where its breaker's breach
    streak has reached trip_after."""
    fires: dict[str, Bools] = {}
    for rule_id in RULE_IDS:
        if rule_id in TRIP_AFTER:
            fires[rule_id] = streaks[rule_id] >= TRIP_AFTER[rule_id]
        else:
            fires[rule_id] = statuses[rule_id][0] == STATUS_TRUE
    return fires


def run_product(work: Workload, policy: CompiledPolicy) -> tuple[dict[str, float], dict[str, Bools]]:
    t0 = time.perf_counter()
    panel, extras = build_panel(work, policy)
    t1 = time.perf_counter()
    statuses = judge_panel(policy, panel, extras)
    t2 = time.perf_counter()
    breakers = fold_breakers_at_once(policy, panel, statuses)
    fires = product_firings(statuses, {rule_id: columns.breach_streak for rule_id, columns in breakers.items()})
    t3 = time.perf_counter()
    return {"pivot": t1 - t0, "evaluate": t2 - t1, "breakers": t3 - t2, "total": t3 - t0}, fires


def run_product_eagerly(work: Workload, policy: CompiledPolicy) -> tuple[dict[str, float], dict[str, Bools]]:
    """The earlier route: eager decimals, and ``fold_breakers``' list of Memory objects."""
    t0 = time.perf_counter()
    panel, extras = build_panel_eagerly(work, policy)
    t1 = time.perf_counter()
    statuses = judge_panel(policy, panel, extras)
    t2 = time.perf_counter()
    memories = fold_breakers(policy, panel, statuses)
    streaks = {
        rule_id: np.fromiter((m.breach_streak for m in rows), np.int64, len(panel))
        for rule_id, rows in memories.items()
    }
    fires = product_firings(statuses, streaks)
    t3 = time.perf_counter()
    return {"pivot": t1 - t0, "evaluate": t2 - t1, "breakers": t3 - t2, "total": t3 - t0}, fires


# -- (b) DuckDB --------------------------------------------------------------------------------------


def duckdb_sql(needed: list[str]) -> str:
    pivot = ",\n    ".join(
        f"CAST(first(value) FILTER (WHERE metric = '{name}') AS DECIMAL(18,6)) AS {name}" for name in needed
    )
    metric_list = ", ".join(f"'{name}'" for name in needed)

    def ratio_above(num: str, den: str, threshold: str) -> str:
        # num / den > threshold without dividing (DuckDB divides DECIMALs in DOUBLE): a zero
        # divisor matches neither branch, so it does not fire, as the product's "error".
        return f"(({den} > 0 AND {num} > {threshold} * {den}) OR ({den} < 0 AND {num} < {threshold} * {den}))"

    def run(condition: str, n: int) -> str:
        # Held on this row and the n-1 expected periods before it (a missing period is NULL,
        # so it breaks the run).
        return (
            f"(pos >= {n - 1} AND min(CAST(coalesce({condition}, false) AS INTEGER)) OVER "
            f"(PARTITION BY pilot ORDER BY pos ROWS {n - 1} PRECEDING) = 1)"
        )

    return f"""
WITH wide AS (
  SELECT pilot, period,
    {pivot}
  FROM long_values
  WHERE metric IN ({metric_list})
  GROUP BY pilot, period
),
expected AS (
  SELECT q.pilot, p.period, p.pos, CAST(q.exposure_limit AS DECIMAL(18,6)) AS exposure_limit
  FROM quotas q CROSS JOIN periods p
),
filled AS (
  SELECT e.pilot, e.pos, e.exposure_limit, f.days_late, f.pilot IS NOT NULL AS filed,
    w.* EXCLUDE (pilot, period),
    lag(w.loss_amount) OVER by_period AS prev_loss,
    lag(w.exposure_outstanding) OVER by_period AS prev_exposure,
    sum(w.loss_amount) OVER to_date AS loss_to_date,
    count(w.loss_amount) OVER to_date AS loss_periods
  FROM expected e
  LEFT JOIN filings f ON f.pilot = e.pilot AND f.period = e.period
  LEFT JOIN wide w ON w.pilot = e.pilot AND w.period = e.period
  WINDOW by_period AS (PARTITION BY e.pilot ORDER BY e.pos),
         to_date AS (PARTITION BY e.pilot ORDER BY e.pos ROWS UNBOUNDED PRECEDING)
)
SELECT
  coalesce(npl_ratio > 0.03, false) AS "npl-high",
  coalesce(capital_adequacy_ratio < 0.08, false) AS "car-below-min",
  coalesce(days_late > 90, false) AS "filing-very-late",
  coalesce({ratio_above("exposure_outstanding", "exposure_limit", "0.9")}, false) AS "exposure-near-cap",
  coalesce({ratio_above("complaints_count", "customers_count", "0.005")}, false) AS "complaint-rate",
  coalesce(fraud_incidents > 0, false) AS "fraud",
  {run("complaints_count > 20", TRIP_AFTER["complaints-sustained"])} AS "complaints-sustained",
  {run("capital_adequacy_ratio < 0.10", TRIP_AFTER["car-sustained"])} AS "car-sustained",
  coalesce({ratio_above("loss_amount - prev_loss", "prev_loss", "0.5")}, false) AS "loss-jump",
  coalesce({ratio_above("exposure_outstanding - prev_exposure", "prev_exposure", "0.5")}, false) AS "exposure-jump",
  -- sum_to_date is missing once any period so far lacks the value (SUM alone would skip NULLs)
  coalesce(loss_periods = pos + 1 AND loss_to_date > 50000000, false) AS "loss-to-date",
  NOT filed AS "filing-missing"
FROM filled
ORDER BY pilot, pos
"""


def run_duckdb(work: Workload, needed: list[str], threads: int) -> tuple[dict[str, float], dict[str, Bools]]:
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    periods = pd.DataFrame({"period": work.periods, "pos": np.arange(len(work.periods), dtype=np.int64)})
    con.register("long_values", work.long)
    con.register("filings", work.filings)
    con.register("quotas", work.quotas)
    con.register("periods", periods)
    result = con.execute(duckdb_sql(needed)).fetchnumpy()
    con.close()
    t1 = time.perf_counter()
    return {"total": t1 - t0}, {rule_id: np.asarray(result[rule_id], dtype=bool) for rule_id in RULE_IDS}


# -- (c) the numpy floor -----------------------------------------------------------------------------


def _before(x: npt.NDArray[Any], k: int = 1, fill: Any = False) -> Any:
    """x shifted k periods later along each pilot's row (the value k periods before)."""
    out = np.empty_like(x)
    out[:, :k] = fill
    out[:, k:] = x[:, :-k]
    return out


def _ratio_above(num: Ints, den: Ints, scaled: int, unit: int) -> Bools:
    """num / den > scaled / unit, exactly, in integers; a zero divisor does not fire."""
    return np.where(den > 0, num * unit > scaled * den, (den < 0) & (num * unit < scaled * den))


def numpy_floor(work: Workload) -> dict[str, Bools]:
    v, f = work.values, work.filed
    npl, car, exposure = v["npl_ratio"], v["capital_adequacy_ratio"], v["exposure_outstanding"]
    complaints, customers, loss = v["complaints_count"], v["customers_count"], v["loss_amount"]
    both = f & _before(f)
    complaints_high = f & (complaints > 20 * SCALE)
    car_low = f & (car < 100_000)
    prev_loss, prev_exposure = _before(loss, fill=0), _before(exposure, fill=0)
    return {
        "npl-high": f & (npl > 30_000),
        "car-below-min": f & (car < 80_000),
        "filing-very-late": f & (work.days_late > 90),
        "exposure-near-cap": f & _ratio_above(exposure, work.limit[:, None], 9, 10),
        "complaint-rate": f & _ratio_above(complaints, customers, 5, 1000),
        "fraud": f & (v["fraud_incidents"] > 0),
        "complaints-sustained": complaints_high & _before(complaints_high),
        "car-sustained": car_low & _before(car_low) & _before(car_low, 2),
        "loss-jump": both & _ratio_above(loss - prev_loss, prev_loss, 1, 2),
        "exposure-jump": both & _ratio_above(exposure - prev_exposure, prev_exposure, 1, 2),
        "loss-to-date": np.logical_and.accumulate(f, axis=1)
        & (np.cumsum(np.where(f, loss, 0), axis=1) > 50_000_000 * SCALE),
        "filing-missing": ~f,
    }


def numpy_float_naive(work: Workload) -> dict[str, Bools]:
    """What a float64 version gives (each value the nearest float of its decimal text)."""
    # The nearest float of m / 10**6: both are exact in float64 here, and IEEE division rounds
    # correctly, so this is float(Decimal(text)) without parsing the text again.
    v = {name: a.astype(np.float64) / SCALE for name, a in work.values.items()}
    f = work.filed
    limit = (work.limit.astype(np.float64) / SCALE)[:, None]
    with np.errstate(all="ignore"):
        both = f & _before(f)
        complaints_high = f & (v["complaints_count"] > 20)
        car_low = f & (v["capital_adequacy_ratio"] < 0.10)
        loss, exposure = v["loss_amount"], v["exposure_outstanding"]
        prev_loss, prev_exposure = _before(loss, fill=np.nan), _before(exposure, fill=np.nan)
        return {
            "npl-high": f & (v["npl_ratio"] > 0.03),
            "car-below-min": f & (v["capital_adequacy_ratio"] < 0.08),
            "filing-very-late": f & (work.days_late > 90),
            "exposure-near-cap": f & (exposure / limit > 0.9),
            "complaint-rate": f & (v["customers_count"] != 0) & (v["complaints_count"] / v["customers_count"] > 0.005),
            "fraud": f & (v["fraud_incidents"] > 0),
            "complaints-sustained": complaints_high & _before(complaints_high),
            "car-sustained": car_low & _before(car_low) & _before(car_low, 2),
            "loss-jump": both & (prev_loss != 0) & ((loss - prev_loss) / prev_loss > 0.5),
            "exposure-jump": both & (prev_exposure != 0) & ((exposure - prev_exposure) / prev_exposure > 0.5),
            "loss-to-date": np.logical_and.accumulate(f, axis=1) & (np.cumsum(np.where(f, loss, 0), axis=1) > 5e7),
            "filing-missing": ~f,
        }


# -- running -----------------------------------------------------------------------------------------


Run = Callable[[], tuple[dict[str, float], Any]]


def best(repeat: int, runs: dict[str, Run]) -> dict[str, tuple[dict[str, float], Any]]:
    """The best time of each stage of each path over ``repeat`` rounds, and each path's last
    answer. Rounds run every path once, in turn, so a busy spell on a shared machine slows
    all of them rather than one."""
    times: dict[str, dict[str, list[float]]] = {name: {} for name in runs}
    answers: dict[str, Any] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            stages, answers[name] = run()
            for stage, seconds in stages.items():
                times[name].setdefault(stage, []).append(seconds)
    return {
        name: ({stage: min(values) for stage, values in stages.items()}, answers[name])
        for name, stages in times.items()
    }


def timed(run: Callable[[], Any]) -> Run:
    def wrapper() -> tuple[dict[str, float], Any]:
        t0 = time.perf_counter()
        answer = run()
        return {"total": time.perf_counter() - t0}, answer

    return wrapper


def flat(fires: dict[str, Any]) -> dict[str, Bools]:
    return {rule_id: np.asarray(fires[rule_id], dtype=bool).reshape(-1) for rule_id in RULE_IDS}


def compare(reference: dict[str, Bools], other: dict[str, Bools]) -> dict[str, int]:
    return {rule_id: int(np.count_nonzero(reference[rule_id] != other[rule_id])) for rule_id in RULE_IDS}


def exact_path(work: Workload, policy: CompiledPolicy, sample: int, repeat: int, seed: int) -> dict[str, Any]:
    """``judge`` on the last period of full histories: one synchronous filing each. Per filing,
    the best of ``repeat`` calls (this machine is shared: a single call can be preempted)."""
    rng = np.random.default_rng(seed + 1)
    chosen = sorted(rng.choice(len(work.pilots), size=min(sample, len(work.pilots)), replace=False).tolist())
    sampled = histories(work, chosen)
    judge(policy, sampled[0][1])  # warm-up: first-call costs are not a filing's
    fastest = [float("inf")] * len(sampled)
    best_pass = float("inf")
    outcomes: list[dict[str, str]] = []
    for _ in range(repeat):
        start = time.perf_counter()
        for i, (_, history) in enumerate(sampled):
            t0 = time.perf_counter_ns()
            judged = judge(policy, history)
            fastest[i] = min(fastest[i], (time.perf_counter_ns() - t0) / 1000)
            if len(outcomes) < len(sampled):
                outcomes.append({o.rule_id: o.status for o in judged})
        best_pass = min(best_pass, time.perf_counter() - start)
    ordered = sorted(fastest)
    return {
        "calls": len(sampled),
        "history_periods": len(work.periods),
        "rules_judged_per_call": len(policy.rules),
        "us_per_call_mean": best_pass / len(sampled) * 1e6,
        "us_per_call_p50": statistics.median(ordered),
        "us_per_call_p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "us_per_call_max": ordered[-1],
        "us_per_rule_mean": best_pass / len(sampled) / len(policy.rules) * 1e6,
        "target_us": 5000,
        "rows": [work.pilots.index(pilot) * len(work.periods) + len(work.periods) - 1 for pilot, _ in sampled],
        "outcomes": outcomes,
    }


def profile_product(work: Workload, policy: CompiledPolicy, path: Path) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    run_product(work, policy)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(25)
    path.write_text(out.getvalue())
    return out.getvalue()


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "duckdb": duckdb.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Batch rule evaluation: product vs DuckDB vs numpy.")
    parser.add_argument("--pilots", type=int, default=2000)
    parser.add_argument("--periods", type=int, default=36)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, default=200, help="histories judged one by one on the exact path")
    parser.add_argument("--profile", action="store_true", help="cProfile one product run; saved beside the JSON")
    args = parser.parse_args(argv)
    if args.periods < 3 or args.pilots < 1 or args.repeat < 1:
        parser.error("need --periods >= 3 (the longest run is 3 periods), --pilots >= 1 and --repeat >= 1")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    info = machine()
    print(f"generating {args.pilots} pilots x {args.periods} periods x {len(METRICS)} metrics (seed {args.seed})...")
    t0 = time.perf_counter()
    work = generate(args.pilots, args.periods, args.seed)
    print(f"  {len(work.long):,} long rows, {len(work.filings):,} filings, in {time.perf_counter() - t0:.1f} s")
    policy = compile_policy(parse_policy(policy_text(), f"{CODE}.yaml"))
    needed = read_metrics(policy)
    rows = args.pilots * args.periods
    threads = os.cpu_count() or 1

    print(f"timing, best of {args.repeat} rounds (each round runs every path once)...")
    timings = best(
        args.repeat,
        {
            "product": lambda: run_product(work, policy),
            "eager": lambda: run_product_eagerly(work, policy),
            "duckdb": lambda: run_duckdb(work, needed, threads=threads),
            "duckdb_1": lambda: run_duckdb(work, needed, threads=1),
            "floor": timed(lambda: numpy_floor(work)),
        },
    )
    product_times, product = timings["product"]
    eager_times, eager = timings["eager"]
    duck_times, duck = timings["duckdb"]
    duck1_times, duck1 = timings["duckdb_1"]
    floor_times, floor = timings["floor"]
    naive = numpy_float_naive(work)

    product, eager, duck, duck1, floor, naive = (flat(x) for x in (product, eager, duck, duck1, floor, naive))
    mismatches = {
        "product_eager_decimals": compare(product, eager),
        "duckdb": compare(product, duck),
        "duckdb_1_thread": compare(product, duck1),
        "numpy_floor": compare(product, floor),
    }
    agree = all(n == 0 for table in mismatches.values() for n in table.values())

    # Untimed detail: the rows each rule sent back to the exact evaluator, and the statuses the
    # exact path is checked against.
    panel, extras = build_panel(work, policy)
    exactly: dict[str, dict[str, int | None]] = {}
    for rule in policy.rules:
        if rule.when is not None:
            outcome = evaluate_vector_detailed(rule.when, panel)
            exactly[rule.id] = {
                "rows_rechecked_by_evaluate_scalar": len(outcome.rechecked),
                # Newer vector.py only: close calls decided on exact decimals for those rows.
                "comparisons_decided_on_decimals": getattr(outcome, "exact_decisions", None),
            }
    statuses = judge_panel(policy, panel, extras)
    del panel, extras
    facts = histories(work, list(range(len(work.pilots))))
    start = time.perf_counter()
    panel_for(facts)
    panel_for_seconds = time.perf_counter() - start
    del facts

    exact = exact_path(work, policy, args.sample, max(args.repeat, 5), args.seed)
    exact_agree = all(
        exact["outcomes"][i][rule.id] == STATUS_NAMES[int(statuses[rule.id][0][row])]
        for i, row in enumerate(exact["rows"])
        for rule in policy.rules
    )

    total = product_times["total"]
    report: dict[str, Any] = {
        "when": stamp,
        "machine": info,
        "workload": {
            "pilots": args.pilots,
            "periods": args.periods,
            "metrics": len(METRICS),
            "metrics_read_by_rules": needed,
            "rules": len(RULE_IDS),
            "rows": rows,
            "long_rows": len(work.long),
            "filed_pilot_periods": len(work.filings),
            "seed": args.seed,
            "repeat": args.repeat,
            "planted_threshold_values": work.planted,
        },
        "seconds": {
            "product": product_times,
            "product_eager_decimals": eager_times,
            "duckdb": duck_times["total"],
            "duckdb_threads": threads,
            "duckdb_1_thread": duck1_times["total"],
            "numpy_floor": floor_times["total"],
            "panel_for_from_period_facts": panel_for_seconds,
        },
        "ratios": {
            "product_over_duckdb": total / duck_times["total"],
            "product_over_duckdb_1_thread": total / duck1_times["total"],
            "product_over_numpy": total / floor_times["total"],
            "product_eager_over_duckdb": eager_times["total"] / duck_times["total"],
            "evaluate_over_duckdb": product_times["evaluate"] / duck_times["total"],
            "evaluate_over_numpy": product_times["evaluate"] / floor_times["total"],
        },
        "agree": agree,
        "mismatches": mismatches,
        "firings": {rule_id: int(product[rule_id].sum()) for rule_id in RULE_IDS},
        "float64_naive_misjudged_rows": compare(product, naive),
        "decided_exactly": exactly,
        "exact_path": {k: v for k, v in exact.items() if k not in ("rows", "outcomes")}
        | {"agrees_with_batch": exact_agree},
    }

    print()
    print(f"{len(RULE_IDS)} rules over {rows:,} pilot-periods ({len(work.long):,} long rows); best of {args.repeat}")
    print(f"{'path':<50}{'seconds':>9}{'product/this':>14}")
    lines = [
        ("product batch, total", total, False),
        ("  pivot: panel_from_long", product_times["pivot"], False),
        ("  evaluate: judge_panel, 12 (+2 built-in) rules", product_times["evaluate"], False),
        ("  breakers: fold_breakers_at_once, 2 trip rules", product_times["breakers"], False),
        ("product batch, earlier route, total", eager_times["total"], False),
        ("  pivot: pandas pivot, Decimal, decimal_floats", eager_times["pivot"], False),
        ("  evaluate: judge_panel", eager_times["evaluate"], False),
        ("  breakers: fold_breakers, Memory objects", eager_times["breakers"], False),
        (f"DuckDB SQL ({threads} threads)", duck_times["total"], True),
        ("DuckDB SQL (1 thread)", duck1_times["total"], True),
        ("numpy floor (laid-out int64 arrays)", floor_times["total"], True),
    ]
    for label, seconds, show in lines:
        ratio = f"{total / seconds:.2f}x" if show else ""
        print(f"{label:<50}{seconds:>9.3f}{ratio:>14}")
    print(
        f"(the backtest's route, panel_for from PeriodFacts objects, builds the same Panel in {panel_for_seconds:.2f} s)"
    )
    print()
    print(
        "agreement: rows where each path's firing differs from the product's:", "none" if agree else "SOME (see JSON)"
    )
    print(f"{'rule':<22}{'fires':>7}{'eager':>6}{'duckdb':>8}{'numpy':>7}{'float64':>9}{'exact':>7}{'rescored':>10}")
    for rule_id in RULE_IDS:
        print(
            f"{rule_id:<22}{report['firings'][rule_id]:>7}{mismatches['product_eager_decimals'][rule_id]:>6}"
            f"{mismatches['duckdb'][rule_id]:>8}{mismatches['numpy_floor'][rule_id]:>7}"
            f"{report['float64_naive_misjudged_rows'][rule_id]:>9}"
            f"{_count(exactly[rule_id]['comparisons_decided_on_decimals']):>7}"
            f"{_count(exactly[rule_id]['rows_rechecked_by_evaluate_scalar']):>10}"
        )
    print("(float64: rows a naive float64 numpy version misjudges, for contrast;")
    print(" exact: close calls the vector path decided on exact decimals; rescored: rows it re-ran through")
    print(" evaluate_scalar whole; neither is a disagreement)")
    print()
    e = report["exact_path"]
    print(
        f"exact path: judge() on {e['calls']} histories of {e['history_periods']} periods, "
        f"{e['rules_judged_per_call']} rules each (12 + 2 built-in):\n"
        f"  mean {e['us_per_call_mean']:.0f} us, p50 {e['us_per_call_p50']:.0f} us, p99 {e['us_per_call_p99']:.0f} us, "
        f"max {e['us_per_call_max']:.0f} us per filing (target < 5000 us); {e['us_per_rule_mean']:.0f} us per rule; "
        f"statuses equal to the batch path's: {exact_agree}"
    )
    out = RESULTS / f"rules_bench-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"saved {out}")
    if args.profile:
        text = profile_product(work, policy, RESULTS / f"rules_bench-{stamp}-profile.txt")
        print()
        print("\n".join(text.strip().splitlines()[:32]))
    return 0 if agree and exact_agree else 1


if __name__ == "__main__":
    sys.exit(main())
