from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.dtypes import StringDType

from sandbox.rules.expr import ExprError, Expression, ScalarContext, compile_expression, evaluate_scalar
from sandbox.rules.vector import (
    STATUS_CODES,
    STATUS_ERROR,
    STATUS_FALSE,
    STATUS_MISSING,
    STATUS_TRUE,
    STATUS_VALUE,
    DecimalText,
    Panel,
    PeriodInputs,
    PilotHistory,
    _csv_floats,
    decimal_floats,
    evaluate_vector,
    evaluate_vector_detailed,
    panel_from_histories,
    panel_from_long,
    text_floats,
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


def test_zeros_against_an_exact_literal_are_decided_in_floats() -> None:
    # A zero's float is exactly 0, and so is the literal's: no tie to settle on decimals.
    histories = [PilotHistory("P", [period(a=v) for v in ("0", "0.00", "-0", "1", "0.5", "1e-7")])]
    panel = panel_from_histories(histories)
    for text in ("a > 0", "a >= 0", "a == 0", "-a < 0", "a != 0.0", "a > 0.5"):
        outcome = evaluate_vector_detailed(compile_(text), panel)
        assert outcome.status.tolist() == scalar_statuses(compile_(text), histories), text
    assert evaluate_vector_detailed(compile_("a > 0"), panel).exact_decisions == 0
    # 0.1 has no exact float: a zero against it is still far apart, a 0.5 against 0.5 is a tie.
    assert evaluate_vector_detailed(compile_("a > 0.5"), panel).exact_decisions == 1


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


# -- text to floats --------------------------------------------------------------------------------

# Strings that trip parsers up: halfway cases, 2**53 + 1, the subnormal boundary, the largest
# float, long runs of digits, trailing zeros, values that need all 17 digits.
TRICKY = [
    "0.1",
    "0.2",
    "0.3",
    "0.30000000000000004",
    "0.030",
    "0.0300000",
    "9007199254740993",
    "9007199254740995",
    "18014398509481985",
    "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124",
    "1.00000000000000011102230246251565404236316680908203126",
    "2.2250738585072011e-308",
    "2.2250738585072012e-308",
    "2.225073858507201e-308",
    "4.9406564584124654e-324",
    "2.4703282292062328e-324",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "7.038531e-26",
    "9.999999999999999e22",
    "1e23",
    "8.98846567431158e307",
    "123456789012345678901234567890.123456789",
    "0.000000000000000000000000000000000000000001",
    "3.141592653589793238462643383279502884197169399375105820974944",
    "50000000.00",
    "49999999.99",
    "-0.0",
    "-12.5",
    "+12.5",
    ".5",
    "5.",
    "1E5",
    "1e+05",
    "00012.3400",
]


def random_decimal_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30)))
        point = rng.randint(0, len(digits))
        text = f"{digits[:point]}.{digits[point:]}" if point < len(digits) else digits
        if rng.random() < 0.3:
            text += f"e{rng.randint(-320, 300)}"
        texts.append(("-" if rng.random() < 0.3 else "") + text)
    return texts


def test_float_parsing_of_python_and_numpy_rounds_correctly() -> None:
    # The claim panel_from_long rests on: parsing the text gives float(Decimal(text)).
    texts = TRICKY + random_decimal_texts(3000, 1)
    nearest = np.array([float(Decimal(t)) for t in texts])
    assert [float(t) for t in texts] == nearest.tolist()
    assert np.array_equal(np.array(texts, dtype=object).astype(np.float64), nearest)
    assert np.array_equal(np.array(texts).astype(np.float64), nearest)  # fixed-width unicode
    assert np.array_equal(np.array(texts, dtype=StringDType()).astype(np.float64), nearest)


def in_range(texts: list[str]) -> list[str]:
    return [t for t in texts if (float(t) != 0 and abs(float(t)) != float("inf")) or Decimal(t) == 0]


@pytest.mark.parametrize("length", [40, 5000])  # numpy's loop; pandas' C reader
def test_text_floats_gives_each_texts_nearest_float(length: int) -> None:
    texts = in_range(TRICKY + random_decimal_texts(length, 2))[:length]
    values = np.array(texts, dtype=object)
    floats, exact = text_floats(values)
    assert np.array_equal(floats, [float(Decimal(t)) for t in texts])
    assert exact is values
    assert (_csv_floats(values) is not None) == (length >= 4096)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(10**25), 10**25), st.integers(-40, 40), st.integers(0, 3)).map(
            lambda t: format(Decimal(t[0]).scaleb(t[1]), "f" if t[2] else "e")
        ),
        min_size=1,
        max_size=50,
    )
)
def test_property_both_routes_give_the_nearest_float(texts: list[str]) -> None:
    nearest = [float(Decimal(t)) for t in texts]
    assert text_floats(np.array(texts, dtype=object))[0].tolist() == nearest
    long = np.array(texts * (4096 // len(texts) + 1), dtype=object)
    assert text_floats(long)[0].tolist() == nearest * (4096 // len(texts) + 1)


def test_text_floats_reads_missing_values_ints_and_decimals() -> None:
    floats, _ = text_floats(np.array(["1.5", None, np.nan, pd.NA, Decimal("0.1"), 7], dtype=object))
    assert np.isnan(floats[1:4]).all()
    assert floats[[0, 4, 5]].tolist() == [1.5, 0.1, 7.0]
    assert text_floats(np.array([3, 0, -2]))[0].tolist() == [3.0, 0.0, -2.0]
    assert text_floats(np.array([3, 0, -2]))[1].tolist() == [3, 0, -2]


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        "nan",
        "NaN",
        "inf",
        "-Infinity",
        "1e400",
        "1e-400",
        "",
        " ",
        "1,5",
        "1 2",
        "--1",
        "1..2",
        "1.5e",
        "1e+",
        "0x10",
        '"1"',
        "NA",
        "null",
        "\ufeff1",
        "1\x1f2",
        "1\n2",
        "1_0_",
        Decimal("NaN"),
    ],
)
@pytest.mark.parametrize("length", [1, 5000])
def test_text_floats_refuses_what_is_not_a_finite_decimal(bad: object, length: int) -> None:
    values = np.array(["1.25"] * (length - 1) + [bad], dtype=object)
    with pytest.raises(ValueError, match=r"decimal|range"):
        text_floats(values, "frame.value")


def test_a_float_column_is_refused() -> None:
    with pytest.raises(ValueError, match="not float64"):
        text_floats(np.array([0.1, 0.2]))


def test_decimal_text_parses_on_demand() -> None:
    column = DecimalText(np.array(["0.030", "1e2", "7"], dtype=object), np.array([2, -1, 0, 1]))
    assert len(column) == 4
    assert column[0] == Decimal(7) and column[1] is None and column[-1] == Decimal(100)
    assert str(column[2]) == "0.030"  # the digits as filed
    assert column[1:3] == [None, Decimal("0.030")]
    assert column.take(np.array([3, 1, 0])) == [Decimal(100), None, Decimal(7)]
    assert list(column) == [Decimal(7), None, Decimal("0.030"), Decimal(100)]
    with pytest.raises(IndexError):
        column[4]


# -- panels from long data -------------------------------------------------------------------------


def long_tables(
    histories: Sequence[PilotHistory],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The long frame, expected rows, filings, quotas and institution fields (both per pilot and
    period) of histories, every value as text."""
    long, expected, filings, quotas, institution = [], [], [], [], []
    for history in histories:
        for k, inputs in enumerate(history.periods):
            key = {"pilot": history.pilot, "period": f"m{k:02d}"}
            expected.append(key)
            if inputs.filed:
                filings.append(key | {"days_late": None if inputs.days_late is None else str(inputs.days_late)})
            long += [key | {"metric": name, "value": str(v)} for name, v in inputs.metrics.items()]
            quotas.append(key | {name: str(v) for name, v in inputs.quotas.items()})
            institution.append(key | {name: None if v is None else str(v) for name, v in inputs.institution.items()})
    columns = ["pilot", "period", "metric", "value"]
    return (
        pd.DataFrame(long, columns=columns, dtype=object),
        pd.DataFrame(expected, columns=["pilot", "period"]),
        pd.DataFrame(filings, columns=["pilot", "period", "days_late"], dtype=object),
        pd.DataFrame(quotas, dtype=object),
        pd.DataFrame(institution, dtype=object),
    )


def assert_same_panel(left: Panel, right: Panel) -> None:
    assert left.pilot.tolist() == right.pilot.tolist()
    assert left.filed.tolist() == right.filed.tolist()
    pairs = [
        (left.metrics, left.exact, right.metrics, right.exact),
        (left.quotas, left.quotas_exact, right.quotas, right.quotas_exact),
        (left.institution, left.institution_exact, right.institution, right.institution_exact),
        ({"": left.days_late}, {"": left.days_late_exact}, {"": right.days_late}, {"": right.days_late_exact}),
    ]
    for floats, exact, other_floats, other_exact in pairs:
        for name in set(floats) | set(other_floats):
            missing = np.full(len(left), np.nan)
            assert np.array_equal(floats.get(name, missing), other_floats.get(name, missing), equal_nan=True), name
            values = [exact[name][r] if name in exact else None for r in range(len(left))]
            others = [other_exact[name][r] if name in other_exact else None for r in range(len(left))]
            assert [None if v is None else (v, str(v)) for v in values] == [
                None if v is None else (v, str(v)) for v in others
            ], name


FILED_PERIODS = st.builds(
    PeriodInputs,
    metrics=st.fixed_dictionaries({}, optional={name: VALUES for name in METRICS}),
    quotas=st.fixed_dictionaries({}, optional={"q": VALUES}),
    institution=st.fixed_dictionaries({"npl_ratio": MAYBE_VALUES}),
    days_late=st.one_of(st.none(), st.integers(0, 120).map(Decimal)),
)
UNFILED_PERIODS = st.builds(
    PeriodInputs,
    quotas=st.fixed_dictionaries({}, optional={"q": VALUES}),
    institution=st.fixed_dictionaries({"npl_ratio": MAYBE_VALUES}),
    days_late=st.none(),
    filed=st.just(False),
)
LONG_HISTORIES = st.lists(
    st.lists(st.one_of(FILED_PERIODS, FILED_PERIODS, UNFILED_PERIODS), min_size=1, max_size=6), min_size=1, max_size=4
).map(lambda pilots: [PilotHistory(f"P{i}", periods) for i, periods in enumerate(pilots)])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=LONG_HISTORIES, text=CONDITIONS)
def test_property_a_panel_from_long_data_is_the_panel_of_the_same_histories(
    data: list[PilotHistory], text: str
) -> None:
    frame, expected, filings, quotas, institution = long_tables(data)
    panel = panel_from_long(
        frame, expected=expected, metrics=METRICS, filings=filings, quotas=quotas, institution=institution
    )
    reference = panel_from_histories(data)
    reference.quotas.setdefault("q", np.full(len(reference), np.nan))
    reference.quotas_exact.setdefault("q", [None] * len(reference))
    assert_same_panel(panel, reference)
    try:
        expr = compile_expression(text, metrics=METRICS, quotas=QUOTAS, expect="bool")
    except ExprError:
        return  # a literal division by zero
    assert evaluate_vector(expr, panel).tolist() == scalar_statuses(expr, data)


def test_expected_rows_as_a_multiindex_or_a_frame_give_one_panel() -> None:
    frame = pd.DataFrame(
        {
            "pilot": ["B", "B", "A", "B"],
            "period": ["2026-02", "2026-01", "2026-02", "2026-02"],
            "metric": ["a", "a", "a", "b"],
            "value": ["1.50", "2", "0.030", "7"],
        }
    )
    grid = pd.MultiIndex.from_product([["B", "A"], ["2026-01", "2026-02"]], names=["pilot", "period"])
    panel = panel_from_long(frame, expected=grid)
    assert panel.pilot.tolist() == ["B", "B", "A", "A"]
    assert panel.filed.tolist() == [True, True, False, True]  # no filings given: any row of frame
    assert np.array_equal(panel.metrics["a"], [2.0, 1.5, np.nan, 0.03], equal_nan=True)
    assert [panel.exact["a"][r] for r in range(4)] == [Decimal(2), Decimal("1.50"), None, Decimal("0.030")]
    assert np.isnan(panel.days_late).all() and panel.days_late_exact[0] is None
    assert_same_panel(panel, panel_from_long(frame, expected=grid.to_frame(index=False)))
    only_a = panel_from_long(frame, expected=grid, metrics=["a"])
    assert set(only_a.metrics) == {"a"} and only_a.filed.tolist() == panel.filed.tolist()


def test_rows_in_runs_or_shuffled_give_one_panel() -> None:
    # A filing's values come together (runs, looked up once each), or in any order at all.
    rows = [
        {"pilot": f"P{p}", "period": f"m{t}", "metric": name, "value": f"{p}.{t}{k}"}
        for p in range(10)
        for t in range(5)
        for k, name in enumerate(METRICS)
        if (p + t) % 4
    ]
    grid = pd.MultiIndex.from_product(
        [[f"P{p}" for p in range(10)], [f"m{t}" for t in range(5)]], names=["pilot", "period"]
    )
    in_runs = pd.DataFrame(rows)
    shuffled = in_runs.sample(frac=1, random_state=3)
    panel = panel_from_long(in_runs, expected=grid, metrics=METRICS)
    assert_same_panel(panel, panel_from_long(shuffled, expected=grid, metrics=METRICS))
    assert panel.exact["b"][7] == Decimal("1.21") and panel.filed.sum() == len(rows) // 3
    with_gap = in_runs.astype({"pilot": "string"})
    with_gap.loc[100, "pilot"] = pd.NA
    with pytest.raises(ValueError, match=r"not expected, e.g. \(<NA>"):
        panel_from_long(with_gap, expected=grid, metrics=METRICS)


def test_an_empty_frame_gives_every_expected_row_missing_values() -> None:
    empty = pd.DataFrame({"pilot": [], "period": [], "metric": [], "value": []}, dtype=object)
    grid = pd.MultiIndex.from_product([["A"], ["p1", "p2"]], names=["pilot", "period"])
    panel = panel_from_long(empty, expected=grid, metrics=["a"])
    assert panel.filed.tolist() == [False, False]
    assert evaluate_vector(compile_("a > 1"), panel).tolist() == [STATUS_MISSING, STATUS_MISSING]
    assert len(panel_from_long(empty, expected=grid[:0])) == 0
    # A row without a metric name holds no value, though it shows the period was filed.
    nameless = pd.DataFrame({"pilot": ["A", "A"], "period": ["p1", "p1"], "metric": [None, "a"], "value": ["1", "2"]})
    panel = panel_from_long(nameless, expected=grid)
    assert np.array_equal(panel.metrics["a"], [2.0, np.nan], equal_nan=True) and panel.filed.tolist() == [True, False]


def test_quotas_per_pilot_reach_every_period_and_a_missing_pilot_has_none() -> None:
    frame = pd.DataFrame({"pilot": ["A"], "period": ["p1"], "metric": ["a"], "value": ["1"]})
    grid = pd.MultiIndex.from_product([["A", "B"], ["p1", "p2"]], names=["pilot", "period"])
    quotas = pd.DataFrame({"pilot": ["A", "Z"], "q": ["100.5", "9"]})
    institution = pd.DataFrame({"pilot": ["B", "A"], "npl_ratio": ["0.013", None]})
    panel = panel_from_long(frame, expected=grid, quotas=quotas, institution=institution)
    assert np.array_equal(panel.quotas["q"], [100.5, 100.5, np.nan, np.nan], equal_nan=True)
    assert [panel.quotas_exact["q"][r] for r in range(4)] == [Decimal("100.5")] * 2 + [None] * 2
    assert [panel.institution_exact["npl_ratio"][r] for r in range(4)] == [
        None,
        None,
        Decimal("0.013"),
        Decimal("0.013"),
    ]
    assert dict(panel.scalar_context(0).quotas) == {"q": Decimal("100.5")}
    assert dict(panel.scalar_context(2).quotas) == {}


def test_exact_values_are_parsed_only_for_the_rows_the_evaluator_decides_on_decimals() -> None:
    values = ["0.030", "0.03", "0.0299", "0.5", "0.01", "0.0300000000000000001"]
    frame = pd.DataFrame({"pilot": "P", "period": [f"m{i}" for i in range(6)], "metric": "b", "value": values})
    panel = panel_from_long(frame, expected=frame[["pilot", "period"]])
    read: list[int] = []

    class Counting(Sequence[Decimal | None]):
        def __init__(self, column: Sequence[Decimal | None]) -> None:
            self.column = column

        def __len__(self) -> int:
            return len(self.column)

        def __getitem__(self, row: int) -> Decimal | None:  # type: ignore[override]
            read.append(row)
            return self.column[row]

        def __iter__(self) -> Iterator[Decimal | None]:
            return (self.column[r] for r in range(len(self)))

    panel.exact["b"] = Counting(panel.exact["b"])
    statuses = evaluate_vector(compile_("b > 0.03"), panel).tolist()
    assert statuses == [STATUS_FALSE, STATUS_FALSE, STATUS_FALSE, STATUS_TRUE, STATUS_FALSE, STATUS_TRUE]
    assert sorted(read) == [0, 1, 5]  # the three whose floats are 0.03's


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"frame": {"pilot": ["A", "C"], "period": ["p1", "p1"], "metric": ["a", "a"], "value": ["1", "2"]}},
            "frame: 1 row.* not expected, e.g. \\('C', 'p1'\\)",
        ),
        (
            {"frame": {"pilot": ["A", "A"], "period": ["p1", "p1"], "metric": ["a", "a"], "value": ["1", "2"]}},
            "more than one value",
        ),
        ({"expected": {"pilot": ["A", "B", "A"], "period": ["p1", "p1", "p2"]}}, "contiguous"),
        ({"expected": {"pilot": ["A", "A"], "period": ["p1", "p1"]}}, "listed twice"),
        ({"expected": {"pilot": ["A", None], "period": ["p1", "p2"]}}, "needs a pilot and a period"),
        ({"filings": {"pilot": ["A"], "period": ["p2"]}}, "filings say was not filed"),
        ({"filings": {"pilot": ["A", "A"], "period": ["p1", "p1"]}}, "filings: a \\(pilot, period\\) is listed twice"),
        ({"filings": {"pilot": ["A", "A"], "period": ["p1", "p9"]}}, "filings: 1 row"),
        ({"quotas": {"pilot": ["A", "A"], "q": ["1", "2"]}}, "quotas: a pilot is listed twice"),
        ({"frame": {"pilot": ["A"], "period": ["p1"], "metric": ["a"], "value": [0.1]}}, "not float64"),
        ({"frame": {"pilot": ["A"], "period": ["p1"], "metric": ["a"], "value": ["1e-400"]}}, "range"),
        ({"quotas": {"pilot": ["A"], "q": ["lots"]}}, "quotas.q: 'lots' is not a decimal number"),
    ],
)
def test_panel_from_long_refuses_data_that_does_not_fit(
    change: dict[str, dict[str, list[object]]], message: str
) -> None:
    tables: dict[str, dict[str, list[object]]] = {
        "frame": {"pilot": ["A", "B"], "period": ["p1", "p2"], "metric": ["a", "a"], "value": ["1", "2"]},
        "expected": {"pilot": ["A", "A", "B", "B"], "period": ["p1", "p2", "p1", "p2"]},
        "filings": {"pilot": ["A", "B"], "period": ["p1", "p2"]},
        "quotas": {"pilot": ["A", "B"], "q": ["5", "6"]},
    }
    tables.update(change)
    frames = {name: pd.DataFrame(columns) for name, columns in tables.items()}
    with pytest.raises(ValueError, match=message):
        panel_from_long(
            frames["frame"], expected=frames["expected"], filings=frames["filings"], quotas=frames["quotas"]
        )
