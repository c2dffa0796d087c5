from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.rules.expr import ExprError, Expression, ScalarContext, compile_expression, evaluate_scalar
from sandbox.rules.vector import (
    STATUS_CODES,
    STATUS_ERROR,
    STATUS_FALSE,
    STATUS_MISSING,
    STATUS_TRUE,
    STATUS_VALUE,
    Panel,
    PeriodInputs,
    PilotHistory,
    decimal_floats,
    evaluate_vector,
    evaluate_vector_detailed,
    panel_from_histories,
)

METRICS = ("a", "b", "c")
QUOTAS = ("q",)


def compile_(text: str, expect: str = "bool") -> Expression:
    return compile_expression(text, metrics=METRICS, quotas=QUOTAS, expect=expect)  # type: ignore[arg-type]


def d(text: str) -> Decimal:
    return Decimal(text)


def period(
    filed: bool = True,
    quota: str | None = "100",
    npl: str | None = "0.013",
    days_late: str | None = "0",
    **metrics: str,
) -> PeriodInputs:
    return PeriodInputs(
        metrics={k: d(v) for k, v in metrics.items()},
        quotas={} if quota is None else {"q": d(quota)},
        institution={"npl_ratio": None if npl is None else d(npl)},
        days_late=None if days_late is None else d(days_late),
        filed=filed,
    )


def direct_context(histories: Sequence[PilotHistory], row: int) -> ScalarContext:
    """The scalar context of a row, built straight from the histories (not through the panel)."""
    for history in histories:
        if row < len(history.periods):
            current = history.periods[row]
            return ScalarContext(
                history=[p.metrics for p in history.periods[: row + 1]],
                quotas=current.quotas,
                institution=current.institution,
                days_late=current.days_late,
                filed=current.filed,
            )
        row -= len(history.periods)
    raise IndexError(row)


def scalar_statuses(expr: Expression, histories: Sequence[PilotHistory]) -> list[int]:
    rows = sum(len(h.periods) for h in histories)
    return [STATUS_CODES[evaluate_scalar(expr, direct_context(histories, row)).status] for row in range(rows)]


TWO_PILOTS = [
    PilotHistory("P1", [period(a="1", b="0"), period(a="2", b="0.03"), period(b="0.1"), period(a="4", b="0.2")]),
    PilotHistory("P2", [period(a="8", b="0.3"), period(a="0", b="0.030", filed=False), period(a="5", quota="0")]),
]


# -- the panel -------------------------------------------------------------------------------------


def test_a_panel_gives_back_each_rows_exact_context() -> None:
    panel = panel_from_histories(TWO_PILOTS)
    assert len(panel) == 7
    assert list(panel.pilot) == ["P1"] * 4 + ["P2"] * 3
    assert np.isnan(panel.metrics["a"][2]) and panel.exact["a"][2] is None
    for row in range(7):
        ctx, direct = panel.scalar_context(row), direct_context(TWO_PILOTS, row)
        assert [dict(h) for h in ctx.history] == [dict(h) for h in direct.history]
        assert (dict(ctx.quotas), dict(ctx.institution), ctx.days_late, ctx.filed) == (
            dict(direct.quotas),
            dict(direct.institution),
            direct.days_late,
            direct.filed,
        )


def test_a_pilot_split_across_the_panel_is_refused() -> None:
    panel = panel_from_histories(TWO_PILOTS)
    panel.pilot = np.array(["P1", "P2", "P1", "P1", "P2", "P2", "P2"], dtype=object)
    with pytest.raises(ValueError, match="contiguous"):
        evaluate_vector(compile_("a > 1"), panel)


def test_columns_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="one value per row"):
        Panel(
            pilot=np.arange(3),
            metrics={"a": np.zeros(2)},
            exact={"a": [d("0")] * 2},
            quotas={},
            quotas_exact={},
            institution={},
            institution_exact={},
            days_late=np.zeros(3),
            days_late_exact=[d("0")] * 3,
            filed=np.ones(3, dtype=bool),
        )


def test_decimal_floats_refuses_values_a_float_cannot_hold_apart_from_zero() -> None:
    assert decimal_floats([d("0.1"), None, d("0")]).tolist()[::2] == [0.1, 0.0]
    with pytest.raises(ValueError, match="outside the range"):
        decimal_floats([d("1e-400")])
    with pytest.raises(ValueError, match="outside the range"):
        decimal_floats([d("1e400")])


def test_an_empty_panel_gives_no_statuses() -> None:
    assert evaluate_vector(compile_("sum_to_date(a) > 1"), panel_from_histories([])).tolist() == []


# -- agreement on chosen cases ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "b > 0.03",
        "b >= 0.03",
        "b == 0.03",
        "a / quota.q >= 0.02",
        "a / (b - b) > 1",
        "prev(a) < a",
        "pct_change(a) > 0.5",
        "sum_to_date(a) >= 7",
        "mean_last(a, 2) >= 3",
        "mean_last(b, 3) < 0.1 or not filing.filed",
        "b + b == 0.06 and filing.filed",
        "a > 100 and a / quota.q > 1",
        "a < 100 or a / quota.q > 1",
        "filing.days_late > institution.npl_ratio",
    ],
)
def test_the_batch_agrees_with_the_scalar_evaluator_row_by_row(text: str) -> None:
    expr = compile_(text)
    expected = scalar_statuses(expr, TWO_PILOTS)
    assert evaluate_vector(expr, panel_from_histories(TWO_PILOTS)).tolist() == expected
    assert evaluate_vector_detailed(expr, panel_from_histories(TWO_PILOTS), block=2).status.tolist() == expected


def test_windows_never_reach_into_the_previous_pilot() -> None:
    panel = panel_from_histories(TWO_PILOTS)
    assert evaluate_vector(compile_("prev(a) > 0"), panel).tolist() == [
        STATUS_MISSING,
        STATUS_TRUE,
        STATUS_TRUE,
        STATUS_MISSING,  # prev is the gap in P1's third period
        STATUS_MISSING,  # P2's first period: P1's 4 is not its previous
        STATUS_TRUE,
        STATUS_FALSE,
    ]
    assert evaluate_vector(compile_("sum_to_date(a) == 8"), panel).tolist()[4] == STATUS_TRUE
    assert evaluate_vector(compile_("mean_last(a, 2) == 6"), panel).tolist()[4] == STATUS_MISSING


def test_division_by_zero_is_an_error_in_the_batch_too() -> None:
    panel = panel_from_histories(TWO_PILOTS)
    assert evaluate_vector(compile_("a / quota.q > 1"), panel).tolist()[6] == STATUS_ERROR
    statuses = evaluate_vector(compile_("pct_change(a) > 0"), panel).tolist()
    assert statuses[6] == STATUS_ERROR  # prev(a) is 0
    assert statuses == scalar_statuses(compile_("pct_change(a) > 0"), TWO_PILOTS)


def test_number_expressions_report_value_missing_or_error() -> None:
    expr = compile_("a / quota.q", expect="number")
    assert evaluate_vector(expr, panel_from_histories(TWO_PILOTS)).tolist() == [
        STATUS_VALUE,
        STATUS_VALUE,
        STATUS_MISSING,
        STATUS_VALUE,
        STATUS_VALUE,
        STATUS_VALUE,
        STATUS_ERROR,
    ]


def test_ties_between_values_as_filed_are_decided_exactly_without_the_scalar_fallback() -> None:
    values = ("0.03", "0.030", "0.0300000000000000001", "0.02")
    histories = [PilotHistory(i, [period(b=v) for v in values]) for i in range(3)]
    panel = panel_from_histories(histories)
    for text in ("b > 0.03", "b >= 0.03", "b == 0.03", "-b <= -0.03", "b > prev(b)"):
        outcome = evaluate_vector_detailed(compile_(text), panel)
        assert outcome.status.tolist() == scalar_statuses(compile_(text), histories), text
        assert outcome.rechecked.size == 0, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a + b == 0.3", [STATUS_TRUE, STATUS_TRUE]),  # floats alone say 0.1 + 0.2 != 0.3
        ("a + b > 0.3", [STATUS_FALSE, STATUS_FALSE]),
        ("b / a == 2", [STATUS_TRUE, STATUS_FALSE]),
        ("pct_change(a) == 2", [STATUS_MISSING, STATUS_TRUE]),  # 0.1 -> 0.3
        ("sum_to_date(a) == 0.4", [STATUS_FALSE, STATUS_TRUE]),
        ("mean_last(a, 2) == 0.2", [STATUS_MISSING, STATUS_TRUE]),
        ("-(a * 3) == -0.3", [STATUS_TRUE, STATUS_FALSE]),
    ],
)
def test_computed_ties_are_decided_on_exact_decimals(text: str, expected: list[int]) -> None:
    histories = [PilotHistory("P", [period(a="0.1", b="0.2"), period(a="0.3", b="0")])]
    outcome = evaluate_vector_detailed(compile_(text), panel_from_histories(histories))
    assert outcome.status.tolist() == expected == scalar_statuses(compile_(text), histories)
    assert outcome.rechecked.size == 0
    assert outcome.exact_decisions >= 1


def test_a_divisor_that_may_be_zero_is_rechecked_by_the_scalar_evaluator() -> None:
    histories = [PilotHistory("P", [period(a="1", b="0.3", c="0.1"), period(a="1", b="0.3", c="0.2")])]
    text = "a / (b - c - c - c) > 0"  # 0.3 - 0.1 - 0.1 - 0.1 is 0 exactly, not in floats
    outcome = evaluate_vector_detailed(compile_(text), panel_from_histories(histories))
    assert outcome.status.tolist() == [STATUS_ERROR, STATUS_FALSE] == scalar_statuses(compile_(text), histories)
    assert outcome.rechecked.tolist() == [0]


@pytest.mark.parametrize(
    "lengths",
    [
        [3, 3, 3],  # a rectangle: the rows are the grid
        [1, 4, 2],  # a padded grid
        [300] + [1] * 20,  # too uneven for a grid: period by period
    ],
)
def test_running_sums_for_every_shape_of_panel(lengths: list[int]) -> None:
    values = ["0.1", "0.2", "0.3", "1000000", "0"]
    histories = [
        PilotHistory(p, [period(a=values[(p + i) % len(values)]) for i in range(length)])
        for p, length in enumerate(lengths)
    ]
    histories[0] = PilotHistory(0, [*histories[0].periods[:-1], period()])  # a gap at the end of the first
    panel = panel_from_histories(histories)
    for text in ("sum_to_date(a) >= 0.6", "sum_to_date(a) == 1000000.6", "sum_to_date(a) / 3 < 0.2"):
        expr = compile_(text)
        assert evaluate_vector(expr, panel).tolist() == scalar_statuses(expr, histories), text


# -- property: the two evaluators agree on every row -----------------------------------------------

POOL = (
    "0",
    "0.03",
    "0.030",
    "0.1",
    "0.2",
    "0.3",
    "0.5",
    "1",
    "1.5",
    "2",
    "3",
    "10",
    "0.333333",
    "0.000001",
    "123456.789012",
    "100000000",
    # next to a float boundary: these must never be decided on a float that cannot tell them apart
    "0.30000000000000004",
    "0.1000000000000000055511151231257827",
    "1.0000000000000001",
)


# Strategies are built once: drawing from them is cheap, building them is not.
VALUES = st.one_of(
    st.just(Decimal(0)),  # zero divisors, often
    st.sampled_from([Decimal(x) for x in POOL]),
    st.tuples(st.integers(-1_000_000_000, 1_000_000_000), st.integers(0, 6)).map(lambda t: Decimal(t[0]).scaleb(-t[1])),
    st.sampled_from([-Decimal(x) for x in POOL]),
)
MAYBE_VALUES = st.one_of(st.none(), VALUES, VALUES, VALUES)
LITERALS = VALUES.map(lambda v: format(abs(v), "f"))
PERIODS = st.builds(
    PeriodInputs,
    metrics=st.fixed_dictionaries({}, optional={name: VALUES for name in METRICS}),
    quotas=st.fixed_dictionaries({}, optional={"q": VALUES}),
    institution=st.fixed_dictionaries({"npl_ratio": MAYBE_VALUES}),
    days_late=st.one_of(st.none(), st.integers(0, 120).map(Decimal), VALUES),
    filed=st.booleans(),
)
HISTORIES = st.lists(st.lists(PERIODS, min_size=1, max_size=7), min_size=1, max_size=4).map(
    lambda pilots: [PilotHistory(f"P{i}", periods) for i, periods in enumerate(pilots)]
)


NUMBER_LEAVES = (
    "a",
    "b",
    "c",
    "a",
    "b",
    "quota.q",
    "institution.npl_ratio",
    "filing.days_late",
    "prev(a)",
    "prev(b)",
    "pct_change(a)",
    "pct_change(c)",
    "sum_to_date(b)",
    "mean_last(a, 1)",
    "mean_last(c, 2)",
    "mean_last(b, 3)",
)


def numbers(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(NUMBER_LEAVES), LITERALS)
    if depth == 0:
        return leaf
    sub = numbers(depth - 1)
    return st.one_of(
        leaf,
        leaf,
        st.tuples(sub, st.sampled_from("+-*/"), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda x: f"-{x}"),
    )


def conditions(depth: int) -> st.SearchStrategy[str]:
    comparison = st.tuples(numbers(2), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), numbers(2)).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    )
    leaf = st.one_of(comparison, comparison, comparison, st.sampled_from(["filing.filed", "true", "false"]))
    if depth == 0:
        return leaf
    sub = conditions(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda x: f"not ({x})"),
    )


NUMBERS = numbers(3)
CONDITIONS = conditions(2)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(CONDITIONS, CONDITIONS, NUMBERS),
    data=HISTORIES,
    block=st.sampled_from([1, 3, 16384]),
)
def test_property_vector_equals_scalar_on_every_row(text: str, data: list[PilotHistory], block: int) -> None:
    try:
        expr = compile_expression(text, metrics=METRICS, quotas=QUOTAS, expect="bool")
    except ExprError:
        try:
            expr = compile_expression(text, metrics=METRICS, quotas=QUOTAS, expect="number")
        except ExprError as exc:
            # Only a literal division by zero or size limits are refused from this grammar.
            assert "division by zero" in exc.message or "more than" in exc.message
            return
    expected = scalar_statuses(expr, data)
    outcome = evaluate_vector_detailed(expr, panel_from_histories(data), block=block)
    assert outcome.status.tolist() == expected


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.sampled_from(POOL).map(Decimal), min_size=2, max_size=12),
    literal=st.sampled_from(POOL),
    op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
    shape=st.sampled_from(
        ["a {op} {lit}", "a + b {op} {lit}", "a * b {op} {lit}", "a / b {op} {lit}", "a - b {op} -{lit}"]
    ),
)
def test_property_boundaries_near_the_data_agree(values: list[Decimal], literal: str, op: str, shape: str) -> None:
    # Every literal is one of the data values, and sums like 0.1 + 0.2 meet 0.3: ties everywhere.
    periods = [PeriodInputs(metrics={"a": x, "b": y}) for x, y in zip(values, values[1:] + values[:1], strict=True)]
    data = [PilotHistory("P", periods)]
    try:
        expr = compile_(shape.format(op=op, lit=literal))
    except ExprError:
        return  # a / 0
    assert evaluate_vector(expr, panel_from_histories(data)).tolist() == scalar_statuses(expr, data)


# -- speed -----------------------------------------------------------------------------------------


def big_panel(pilots: int = 2000, periods: int = 36) -> Panel:
    rng = np.random.default_rng(7)
    rows = pilots * periods
    exposure = [Decimal(int(x)).scaleb(-2) for x in rng.integers(0, 6_000_000_000_00, rows)]
    for row in rng.choice(rows, rows // 50, replace=False).tolist():
        exposure[row] = None  # type: ignore[call-overload]
    limit = [Decimal(int(x)) for x in np.repeat(rng.integers(1, 6, pilots) * 1_000_000_000, periods)]
    npl = [Decimal("0.013")] * rows
    return Panel(
        pilot=np.repeat(np.arange(pilots), periods),
        metrics={"exposure_outstanding": decimal_floats(exposure)},
        exact={"exposure_outstanding": exposure},
        quotas={"exposure_limit": decimal_floats(limit)},
        quotas_exact={"exposure_limit": limit},
        institution={"npl_ratio": decimal_floats(npl)},
        institution_exact={"npl_ratio": npl},
        days_late=np.zeros(rows),
        days_late_exact=[Decimal(0)] * rows,
        filed=np.ones(rows, dtype=bool),
    )


def test_72000_rows_evaluate_well_under_half_a_second() -> None:
    panel = big_panel()
    expr = compile_expression(
        "exposure_outstanding / quota.exposure_limit >= 0.9",
        metrics=["exposure_outstanding"],
        quotas=["exposure_limit"],
    )
    assert expr.nodes == 5
    evaluate_vector(expr, panel)  # warm the per-panel layout
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        statuses = evaluate_vector(expr, panel)
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.5, timings
    assert len(statuses) == 72_000
    counts = np.bincount(statuses, minlength=4)
    assert counts[STATUS_TRUE] > 0 and counts[STATUS_FALSE] > 0 and counts[STATUS_MISSING] == 72_000 // 50
    sample = np.random.default_rng(1).choice(72_000, 300, replace=False).tolist()
    assert [statuses[r] for r in sample] == [
        STATUS_CODES[evaluate_scalar(expr, panel.scalar_context(r)).status] for r in sample
    ]
