from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path

import pytest

from sandbox.rules import expr as expr_module
from sandbox.rules.expr import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_TEXT,
    ExprError,
    Expression,
    ScalarContext,
    ScalarResult,
    compile_expression,
    evaluate_scalar,
)

METRICS = (
    "npl_ratio",
    "exposure_outstanding",
    "loss_amount",
    "complaints_count",
    "coverage_min",
    "cea_price_change_20d",
    "a",
    "b",
    "c",
    "z",
)
QUOTAS = ("exposure_limit", "customers_limit")


def compile_(text: str, expect: str = "bool") -> Expression:
    return compile_expression(text, metrics=METRICS, quotas=QUOTAS, expect=expect)  # type: ignore[arg-type]


def refusal(text: str, expect: str = "bool") -> ExprError:
    with pytest.raises(ExprError) as caught:
        compile_(text, expect)
    return caught.value


def d(text: str) -> Decimal:
    return Decimal(text)


def context(
    *periods: dict[str, str],
    quotas: dict[str, str] | None = None,
    institution: dict[str, str | None] | None = None,
    days_late: str | None = "0",
    filed: bool = True,
) -> ScalarContext:
    return ScalarContext(
        history=[{k: d(v) for k, v in period.items()} for period in periods],
        quotas={k: d(v) for k, v in (quotas or {}).items()},
        institution={k: None if v is None else d(v) for k, v in (institution or {}).items()},
        days_late=None if days_late is None else d(days_late),
        filed=filed,
    )


def run(text: str, ctx: ScalarContext, expect: str = "bool") -> ScalarResult:
    return evaluate_scalar(compile_(text, expect), ctx)


def status(text: str, ctx: ScalarContext) -> str:
    return run(text, ctx).status


# -- what compiles, and what it reads -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names", "metrics", "lookback"),
    [
        ("npl_ratio > 0.03", ("npl_ratio",), {"npl_ratio"}, 1),
        (
            "exposure_outstanding / quota.exposure_limit >= 0.9",
            ("exposure_outstanding", "quota.exposure_limit"),
            {"exposure_outstanding"},
            1,
        ),
        ("npl_ratio >= institution.npl_ratio + 0.02", ("npl_ratio", "institution.npl_ratio"), {"npl_ratio"}, 1),
        (
            "pct_change(loss_amount) > 0.5",
            ("pct_change(loss_amount)", "loss_amount", "prev(loss_amount)"),
            {"loss_amount"},
            2,
        ),
        ("sum_to_date(loss_amount) > 50000000", ("sum_to_date(loss_amount)",), {"loss_amount"}, None),
        (
            "mean_last(complaints_count,3) >= 3 and not filing.filed",
            ("mean_last(complaints_count, 3)",),
            {"complaints_count"},
            3,
        ),
        ("filing.days_late > 90", ("filing.days_late",), set(), 1),
        ("npl_ratio > prev(npl_ratio) or npl_ratio >= 0.05", ("npl_ratio", "prev(npl_ratio)"), {"npl_ratio"}, 2),
        ("cea_price_change_20d <= -0.15", ("cea_price_change_20d",), {"cea_price_change_20d"}, 1),
        ("institution.rating >= 4", ("institution.rating",), set(), 1),
        ("true", (), set(), 1),
    ],
)
def test_an_expression_lists_the_values_it_reads_in_reading_order(
    text: str, names: tuple[str, ...], metrics: set[str], lookback: int | None
) -> None:
    compiled = compile_(text)
    assert compiled.kind == "bool"
    assert compiled.names == names
    assert compiled.metrics == metrics
    assert compiled.lookback == lookback


def test_a_value_read_twice_is_listed_once() -> None:
    compiled = compile_("a > 1 and a < 2 or pct_change(a) > 0 and prev(a) > 0")
    assert compiled.names == ("a", "pct_change(a)", "prev(a)")


def test_precedence_follows_arithmetic_then_comparison_then_not_and_or() -> None:
    ctx = context({"a": "2", "b": "3", "c": "4"})
    assert status("a + b * c == 14", ctx) == "true"
    assert status("(a + b) * c == 20", ctx) == "true"
    assert status("a - b - c == -5", ctx) == "true"  # left to right
    assert status("c / a / a == 1", ctx) == "true"
    assert status("-a * b == -6", ctx) == "true"
    assert status("- -a == 2", ctx) == "true"
    assert status("not a > 5 and b > 5", ctx) == "false"  # (not a > 5) and (b > 5)
    assert status("a > 5 and b > 5 or c > 3", ctx) == "true"  # (.. and ..) or ..
    assert status("a > 5 and (b > 5 or c > 3)", ctx) == "false"


def test_whitespace_and_line_breaks_do_not_matter() -> None:
    ctx = context({"a": "2"})
    assert status("a\n  >\t1", ctx) == status("a>1", ctx) == "true"


def test_a_number_expression_can_be_asked_for() -> None:
    compiled = compile_("exposure_outstanding / quota.exposure_limit", expect="number")
    assert compiled.kind == "number"
    result = evaluate_scalar(compiled, context({"exposure_outstanding": "450"}, quotas={"exposure_limit": "1000"}))
    assert (result.status, result.value) == ("value", d("0.45"))


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        # attribute access and code
        ("x.__class__", 1, "attribute access is not part of the language"),
        ("npl_ratio.real > 0", 1, "attribute access is not part of the language"),
        ("a.b.c > 1", 1, "attribute access is not part of the language"),
        ("quota.exposure_limit.real > 1", 1, "at most one dot"),
        ("npl_ratio > 1 and (a).__class__", 22, "attribute access is not part of the language"),
        ("open('/etc/passwd')", 1, "unknown function 'open' at column 1; the functions are prev, pct_change"),
        ('__import__("os").system("x")', 1, "unknown function '__import__'"),
        ("max(npl_ratio, 1) > 0", 1, "unknown function 'max'"),
        ("npl_ratio(1) > 0", 1, "unknown function 'npl_ratio'"),
        ("quota.exposure_limit(1) > 0", 1, "unknown function 'quota.exposure_limit'"),
        ("[npl_ratio] > 0", 1, "unexpected character '['"),
        ("npl_ratio > 0; import os", 14, "unexpected character ';'"),
        ("lambda: 1", 7, "unexpected character ':'"),
        ("lambda > 1", 1, "unknown metric 'lambda'"),
        # operators that are not ours
        ("10 ** 10 ** 10 > npl_ratio", 4, "'**' is not part of the language"),
        ("npl_ratio % 2 > 0", 11, "'%' is not part of the language"),
        ("npl_ratio // 2 > 0", 11, "'//' is not part of the language"),
        ("npl_ratio = 0.03", 11, "write '=='"),
        ("!filing.filed", 1, "write 'not'"),
        ("a > 1 && b > 1", 7, "write 'and'"),
        ("a > 1 || b > 1", 7, "write 'or'"),
        ("a > 'x'", 5, "text in quotes is not part of the language"),
        ("a < b < c", 7, "comparisons cannot be chained"),
        ("a == b == c", 8, "comparisons cannot be chained"),
        ("+a > 1", 1, "needs no plus sign"),
        # names
        ("npl_ratoi > 0.03", 1, "unknown metric 'npl_ratoi' at column 1 (did you mean npl_ratio?)"),
        ("quota.nope > 1", 1, "unknown quota 'nope'"),
        ("quota.exposure_limt > 1", 1, "did you mean exposure_limit?"),
        ("institution.name > 1", 1, "unknown institution field 'name'"),
        ("filing.amount > 1", 1, "unknown filing field 'amount'"),
        ("quota > 1", 1, "needs a name after a dot"),
        ("prev > 1", 1, "is a function: write prev(metric)"),
        ("npl_ratio > 1 AND a > 1", 15, "write 'and' in lower case"),
        ("True", 1, "write 'true' in lower case"),
        # functions
        ("prev() > 1", 1, "prev takes one argument"),
        ("prev(a, b) > 1", 1, "prev takes one argument"),
        ("pct_change(a, 2) > 1", 1, "pct_change takes one argument"),
        ("mean_last(a) > 1", 1, "mean_last takes two arguments"),
        ("mean_last(a, 3, 4) > 1", 1, "mean_last takes two arguments"),
        ("mean_last(a, n) > 1", 14, "must be a whole number from 1 to 36"),
        ("mean_last(a, 1 + 2) > 1", 14, "must be a whole number from 1 to 36"),
        ("mean_last(a, 2.0) > 1", 14, "must be a whole number from 1 to 36"),
        ("mean_last(a, 0) > 1", 14, "must be a whole number from 1 to 36"),
        ("mean_last(a, 37) > 1", 14, "must be a whole number from 1 to 36"),
        ("mean_last(a, 03) > 1", 14, "must be a whole number from 1 to 36"),
        ("mean_last(a, -3) > 1", 14, "must be a whole number from 1 to 36"),
        ("prev(quota.exposure_limit) > 1", 6, "the argument of prev at column 6 must be a metric name"),
        ("prev(a + b) > 1", 6, "must be a metric name alone"),
        ("prev(prev(a)) > 1", 6, "functions do not nest"),
        ("sum_to_date(1) > 1", 13, "must be a metric name"),
        ("prev(nope) > 1", 6, "unknown metric 'nope'"),
        # types
        ("npl_ratio and 1", 11, "'and' at column 11 joins conditions (true or false), but 'npl_ratio' is a number"),
        ("filing.filed > 2", 14, "'>' at column 14 compares numbers, but 'filing.filed' is a condition"),
        ("not npl_ratio", 1, "'not' at column 1 needs a condition"),
        ("-filing.filed", 1, "needs a number"),
        ("a + (b > 1) > 0", 3, "works on numbers"),
        ("npl_ratio", 1, "must be a condition (true or false), but 'npl_ratio' is a number"),
        ("true == false", 6, "compares numbers"),
        # numbers
        ("a > 1e31", 5, "exponent beyond +-30"),
        ("a > 1e-31", 5, "exponent beyond +-30"),
        ("a > 1e999", 5, "exponent beyond +-30"),
        ("a > 007", 5, "without leading zeros"),
        ("a > .5", 5, "0.5, not .5"),
        ("a > 1.", 5, "malformed number '1.'"),
        ("a > 1.2.3", 5, "malformed number '1.2.3'"),
        ("a > 3abc", 5, "malformed number '3abc'"),
        ("a > 1,000", 6, "after a complete expression"),
        ("a > ١", 5, "unexpected character"),
        ("a > １", 5, "U+FF11"),  # full-width digit one
        ("a / 0 > 1", 3, "division by zero"),
        # structure
        ("", 1, "the expression is empty"),
        ("   ", 1, "the expression is empty"),
        ("a >", 4, "found the end of the expression"),
        ("(a > 1", 1, "'(' at column 1 is never closed"),
        ("(a > 1 b", 8, "expected ')' to close the '(' of column 1"),
        ("a > 1)", 6, "no '(' is open"),
        ("a > 1 b > 2", 7, "after a complete expression; join conditions with 'and' or 'or'"),
        ("and a > 1", 1, "expected a value"),
    ],
)
def test_refusals_say_what_and_where(text: str, column: int, fragment: str) -> None:
    error = refusal(text)
    assert fragment in error.message
    assert error.column == column
    assert str(error) == error.message


def test_a_number_is_refused_where_a_condition_is_expected_and_the_other_way_round() -> None:
    assert "must be a number" in refusal("a > 1", expect="number").message
    assert "must be a condition" in refusal("a + 1").message


def test_long_text_is_refused_before_parsing() -> None:
    text = "a > 1 and " * 300 + "a > 1"
    error = refusal(text)
    assert error.message == f"the expression is {len(text)} characters long; at most {MAX_TEXT} are allowed"
    compile_(("a" + " " * (MAX_TEXT - 6) + "> 1")[:MAX_TEXT])


@pytest.mark.parametrize(
    "text",
    [
        "(" * 10_000 + "a > 1" + ")" * 10_000,
        "- " * 10_000 + "a > 1",
        "not " * 10_000 + "a > 1",
        "a+" * 5_000 + "a > 1",
    ],
)
def test_huge_inputs_are_refused_at_once(text: str) -> None:
    started = time.perf_counter()
    error = refusal(text)
    assert time.perf_counter() - started < 0.1
    assert "characters long" in error.message


@pytest.mark.parametrize(
    ("prefix", "suffix"),
    [("(", ")"), ("-", ""), ("not ", "")],
)
def test_nesting_is_bounded_without_recursion_errors(prefix: str, suffix: str) -> None:
    def nested(depth: int) -> str:
        core = "a" if prefix == "-" else "a > 1"
        text = prefix * depth + core + suffix * depth
        return text + " > 1" if prefix == "-" else text

    compile_(nested(MAX_DEPTH))
    error = refusal(nested(MAX_DEPTH + 1))
    assert f"at most {MAX_DEPTH} levels" in error.message
    assert error.column == MAX_DEPTH + 1 if prefix != "not " else error.column == 4 * MAX_DEPTH + 1
    # Deep within the length limit: refused quickly, never a RecursionError.
    started = time.perf_counter()
    deep = nested(900)[:MAX_TEXT]
    with pytest.raises(ExprError, match="nested too deeply"):
        compile_(deep)
    assert time.perf_counter() - started < 0.1


def test_the_number_of_parts_is_bounded() -> None:
    # not + 99 names + 98 pluses + == + literal = 200 parts
    at_limit = "not " + " + ".join(["a"] * 99) + " == 1"
    assert compile_(at_limit).nodes == MAX_NODES
    error = refusal("not not " + " + ".join(["a"] * 99) + " == 1")
    assert f"more than {MAX_NODES} parts" in error.message
    chained = refusal("+".join(["a"] * 300) + " > 1")
    assert f"more than {MAX_NODES} parts" in chained.message


def test_the_language_is_implemented_without_python_evaluation() -> None:
    source = Path(expr_module.__file__).read_text(encoding="utf-8")
    for forbidden in (r"\beval\(", r"\bexec\(", r"(?<![\w.])compile\(", r"^import ast", r"^from ast ", r"__import__\("):
        assert not re.search(forbidden, source, re.MULTILINE), forbidden


# -- exact comparisons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "filed", "expected"),
    [
        ("npl_ratio > 0.03", "0.03", "false"),
        ("npl_ratio > 0.03", "0.030", "false"),
        ("npl_ratio > 0.03", "0.0300001", "true"),
        ("npl_ratio >= 0.03", "0.03", "true"),
        ("npl_ratio >= 0.03", "0.0299999", "false"),
        ("npl_ratio < 0.03", "0.03", "false"),
        ("npl_ratio <= 0.03", "0.03", "true"),
        ("npl_ratio == 0.03", "0.0300", "true"),
        ("npl_ratio != 0.03", "0.03", "false"),
        ("npl_ratio == 3e-2", "0.03", "true"),
        # Values beyond float precision are still compared exactly.
        ("npl_ratio > 0.1", "0.1000000000000000000000000000000000001", "true"),
        ("npl_ratio < 0.3", "0.29999999999999999999", "true"),
        ("-npl_ratio < -0.1", "0.1000000000000000000000000000000000001", "true"),
    ],
)
def test_comparisons_are_exact_on_the_values_as_filed(text: str, filed: str, expected: str) -> None:
    assert status(text, context({"npl_ratio": filed})) == expected


def test_decimal_arithmetic_is_exact_where_floats_are_not() -> None:
    ctx = context({"a": "0.1", "b": "0.2"})
    assert status("a + b == 0.3", ctx) == "true"
    assert status("0.1 + 0.2 == 0.3", ctx) == "true"
    assert status("a * 3 == 0.3", ctx) == "true"
    assert status("exposure_outstanding / quota.exposure_limit >= 0.9", _exposure("4500000000", "5000000000")) == "true"
    assert status("exposure_outstanding / quota.exposure_limit >= 0.9", _exposure("4499999999.99", "5000000000")) == (
        "false"
    )


def test_arithmetic_keeps_34_significant_digits() -> None:
    result = run("a / 3", context({"a": "1"}), expect="number")
    assert result.value == Decimal("0." + "3" * 34)
    # So a third times three is not one: the definition of truth is this decimal arithmetic.
    assert status("a / 3 * 3 == 1", context({"a": "1"})) == "false"
    assert status("a / 3 * 3 < 1", context({"a": "1"})) == "true"


def _exposure(outstanding: str, limit: str) -> ScalarContext:
    return context({"exposure_outstanding": outstanding}, quotas={"exposure_limit": limit})


def test_a_comparison_against_the_institution_and_the_threshold_it_shows() -> None:
    compiled = compile_("npl_ratio >= institution.npl_ratio + 0.02")
    result = evaluate_scalar(compiled, context({"npl_ratio": "0.033"}, institution={"npl_ratio": "0.013"}))
    assert result.status == "true"
    assert result.reads == {"npl_ratio": d("0.033"), "institution.npl_ratio": d("0.013")}
    assert result.comparison == (d("0.033"), ">=", d("0.033"))
    assert result.error is None and result.value is None


# -- missing values and errors ---------------------------------------------------------------------


def test_a_missing_metric_makes_the_check_missing_never_a_pass() -> None:
    result = run("npl_ratio > 0.03", context({"a": "1"}))
    assert result.status == "missing"
    assert result.reads == {"npl_ratio": None}
    assert result.comparison == (None, ">", d("0.03"))
    assert status("not npl_ratio > 0.03", context({})) == "missing"
    assert status("npl_ratio > 0.03", context()) == "missing"  # no history at all


def test_a_missing_quota_institution_field_or_lateness_is_missing() -> None:
    ctx = context({"a": "1"}, institution={"npl_ratio": None}, days_late=None)
    assert status("a < quota.exposure_limit", ctx) == "missing"
    assert status("a < institution.npl_ratio", ctx) == "missing"
    assert status("a < institution.rating", ctx) == "missing"
    assert status("filing.days_late > 10", ctx) == "missing"


def test_division_by_zero_is_an_error_with_a_readable_reason() -> None:
    result = run("exposure_outstanding / quota.exposure_limit >= 0.9", _exposure("10", "0"))
    assert result.status == "error"
    assert result.error == "division by zero in exposure_outstanding / quota.exposure_limit: quota.exposure_limit is 0"
    assert result.comparison == (None, ">=", d("0.9"))
    nested = run("a / (b - c) > 1", context({"a": "1", "b": "2", "c": "2.0"}))
    assert nested.error == "division by zero in a / (b - c): (b - c) is 0"


def test_a_zero_divisor_is_an_error_even_when_the_numerator_is_missing() -> None:
    assert status("z / a > 1", context({"a": "0"})) == "error"
    assert status("z / a > 1", context({"z": "1"})) == "missing"


KLEENE_OPERANDS = {
    "true": "a >= 0",
    "false": "a < 0",
    "missing": "npl_ratio > 0",
    "error": "a / z > 0",
}
AND_TABLE = {
    ("true", "true"): "true",
    ("true", "false"): "false",
    ("true", "missing"): "missing",
    ("true", "error"): "error",
    ("false", "missing"): "false",
    ("false", "error"): "false",
    ("missing", "missing"): "missing",
    ("missing", "error"): "error",
    ("error", "error"): "error",
    ("false", "false"): "false",
}
OR_TABLE = {
    ("true", "true"): "true",
    ("true", "false"): "true",
    ("true", "missing"): "true",
    ("true", "error"): "true",
    ("false", "false"): "false",
    ("false", "missing"): "missing",
    ("false", "error"): "error",
    ("missing", "missing"): "missing",
    ("missing", "error"): "error",
    ("error", "error"): "error",
}
KLEENE_CTX = context({"a": "1", "z": "0"})


@pytest.mark.parametrize(("operands", "expected"), AND_TABLE.items())
def test_and_is_kleene_logic_where_error_beats_missing(operands: tuple[str, str], expected: str) -> None:
    left, right = (KLEENE_OPERANDS[o] for o in operands)
    assert status(f"{left} and {right}", KLEENE_CTX) == expected
    assert status(f"{right} and {left}", KLEENE_CTX) == expected


@pytest.mark.parametrize(("operands", "expected"), OR_TABLE.items())
def test_or_is_kleene_logic_where_error_beats_missing(operands: tuple[str, str], expected: str) -> None:
    left, right = (KLEENE_OPERANDS[o] for o in operands)
    assert status(f"{left} or {right}", KLEENE_CTX) == expected
    assert status(f"{right} or {left}", KLEENE_CTX) == expected


@pytest.mark.parametrize(
    ("operand", "expected"), [("true", "false"), ("false", "true"), ("missing", "missing"), ("error", "error")]
)
def test_not_keeps_missing_and_error(operand: str, expected: str) -> None:
    assert status(f"not ({KLEENE_OPERANDS[operand]})", KLEENE_CTX) == expected


def test_the_error_message_survives_logic_and_a_decided_row_has_none() -> None:
    assert run("a >= 0 and a / z > 0", KLEENE_CTX).error == "division by zero in a / z: z is 0"
    decided = run("a < 0 and a / z > 0", KLEENE_CTX)
    assert (decided.status, decided.error) == ("false", None)
    assert decided.comparison is None  # two comparisons: no single threshold to show


def test_filing_facts() -> None:
    late = context({"complaints_count": "4"}, days_late="91", filed=False)
    assert status("filing.days_late > 90", late) == "true"
    assert status("filing.days_late > 90", context({}, days_late="90")) == "false"
    assert status("not filing.filed", late) == "true"
    result = run("not filing.filed", late)
    assert result.reads == {}  # a yes/no fact, not a value to show


# -- window functions ------------------------------------------------------------------------------


def test_prev_is_the_previous_expected_period_and_missing_at_the_first() -> None:
    assert status("prev(a) == 1", context({"a": "1"}, {"a": "2"})) == "true"
    assert status("prev(a) == 1", context({"a": "1"})) == "missing"
    # A period with no filing is a gap, not skipped over.
    assert status("prev(a) == 1", context({"a": "1"}, {}, {"a": "3"})) == "missing"


def test_pct_change() -> None:
    assert run("pct_change(loss_amount)", context({"loss_amount": "80"}, {"loss_amount": "120"}), "number").value == (
        d("0.5")
    )
    assert status("pct_change(loss_amount) > 0.5", context({"loss_amount": "80"}, {"loss_amount": "120"})) == "false"
    assert status("pct_change(loss_amount) >= 0.5", context({"loss_amount": "80"}, {"loss_amount": "120"})) == "true"
    assert status("pct_change(loss_amount) < 0", context({"loss_amount": "80"}, {"loss_amount": "-40"})) == "true"
    assert status("pct_change(loss_amount) > 0.5", context({"loss_amount": "80"})) == "missing"
    assert status("pct_change(loss_amount) > 0.5", context({"loss_amount": "80"}, {})) == "missing"
    assert status("pct_change(loss_amount) > 0.5", context({}, {"loss_amount": "80"})) == "missing"
    zero = run("pct_change(loss_amount) > 0.5", context({"loss_amount": "0"}, {"loss_amount": "5"}))
    assert zero.status == "error"
    assert zero.error == "division by zero in pct_change(loss_amount): prev(loss_amount) is 0"
    assert zero.reads == {"pct_change(loss_amount)": None, "loss_amount": d("5"), "prev(loss_amount)": d("0")}


def test_sum_to_date_covers_every_expected_period_so_far() -> None:
    history = ({"loss_amount": "20000000"}, {"loss_amount": "20000000"}, {"loss_amount": "10000001"})
    assert status("sum_to_date(loss_amount) > 50000000", context(*history)) == "true"
    assert status("sum_to_date(loss_amount) > 50000000", context(*history[:2])) == "false"
    assert run("sum_to_date(loss_amount)", context(*history), "number").value == d("50000001")
    gappy = ({"loss_amount": "60000000"}, {}, {"loss_amount": "1"})
    assert status("sum_to_date(loss_amount) > 50000000", context(*gappy)) == "missing"
    assert status("sum_to_date(loss_amount) > 0", context()) == "missing"


def test_mean_last_needs_n_periods_without_gaps() -> None:
    history = (
        {"complaints_count": "9"},
        {"complaints_count": "2"},
        {"complaints_count": "3"},
        {"complaints_count": "4"},
    )
    assert run("mean_last(complaints_count, 3)", context(*history), "number").value == d("3")
    assert status("mean_last(complaints_count, 3) >= 3", context(*history)) == "true"
    assert status("mean_last(complaints_count, 3) > 3", context(*history)) == "false"
    assert status("mean_last(complaints_count, 4) > 4", context(*history)) == "true"  # 18 / 4
    assert status("mean_last(complaints_count, 5) > 0", context(*history)) == "missing"
    assert status("mean_last(complaints_count, 1) == 4", context(*history)) == "true"
    gappy = ({"complaints_count": "9"}, {}, {"complaints_count": "3"}, {"complaints_count": "4"})
    assert status("mean_last(complaints_count, 2) == 3.5", context(*gappy)) == "true"
    assert status("mean_last(complaints_count, 3) > 0", context(*gappy)) == "missing"


def test_mean_last_with_not_filed() -> None:
    text = "mean_last(complaints_count, 3) >= 3 and not filing.filed"
    history = ({"complaints_count": "3"}, {"complaints_count": "3"}, {"complaints_count": "3"})
    assert status(text, context(*history, filed=False)) == "true"
    assert status(text, context(*history, filed=True)) == "false"
    # A decided "false" side decides even when the window is missing.
    assert status(text, context({"complaints_count": "3"}, filed=True)) == "false"
    assert status(text, context({"complaints_count": "3"}, filed=False)) == "missing"
