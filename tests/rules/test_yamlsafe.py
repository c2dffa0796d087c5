from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.rules.yamlsafe import MAX_BYTES, MAX_DEPTH, YamlProblem, load_strict

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]
"""


def refusal(text: str | bytes) -> YamlProblem:
    with pytest.raises(YamlProblem) as caught:
        load_strict(text)
    return caught.value


@pytest.mark.parametrize(
    "text",
    [
        "run: !!python/object/apply:os.system ['echo pwned']",
        "run: !!python/name:os.system",
        "x: !!binary aGVsbG8=",
        "x: !!set {a, b}",
        "x: !custom thing",
    ],
)
def test_non_standard_tags_are_refused_before_anything_is_constructed(text: str) -> None:
    problem = refusal(text)
    assert problem.line == 1
    assert "tag" in problem.message and "not allowed" in problem.message


def test_anchor_and_alias_bomb_is_refused_at_the_first_anchor() -> None:
    problem = refusal(BILLION_LAUGHS)
    assert (problem.line, problem.message) == (1, "anchors (&name) are not allowed in policy files")


def test_alias_without_anchor_is_refused() -> None:
    assert "aliases" in refusal("a: 1\nb: *a\n").message


def test_duplicate_key_is_refused_with_its_line() -> None:
    problem = refusal("program:\n  code: SH-A\n  title: One\n  code: SH-B\n")
    assert (problem.line, problem.message) == (4, "duplicate key 'code'")


def test_non_utf8_is_refused() -> None:
    assert "not UTF-8" in refusal("title: café".encode("latin-1")).message


def test_oversize_file_is_refused_before_parsing() -> None:
    problem = refusal(b"# " + b"x" * MAX_BYTES)
    assert problem.line is None and f"the limit is {MAX_BYTES}" in problem.message


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 10_000 + "]" * 10_000,  # would exhaust Python's stack without the bound
        "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 2)) + "  " * (MAX_DEPTH + 2) + "leaf: 1\n",
    ],
)
def test_over_deep_document_is_refused(text: str) -> None:
    assert f"nesting deeper than {MAX_DEPTH} levels" in refusal(text).message


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert load_strict("a: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)).data is not None


@pytest.mark.parametrize("text", ["x: .nan", "x: .NaN", "x: .inf", "x: -.Inf", "x: !!float nan"])
def test_nan_and_infinities_are_refused(text: str) -> None:
    assert "not a finite number" in refusal(text).message


@pytest.mark.parametrize(
    "text, fault",
    [
        ("x: " + "9" * 5000, "digits"),
        ("x: 1.0e+999999999", "out of range"),
        ("x: !!int 0x1F", "not a plain decimal integer"),
    ],
)
def test_numbers_are_bounded_and_plain(text: str, fault: str) -> None:
    assert fault in refusal(text).message


def test_several_documents_are_refused() -> None:
    assert "single document" in refusal("a: 1\n---\nb: 2\n").message


def test_non_text_keys_are_refused() -> None:
    assert "keys must be text" in refusal("1.5: a\n").message


def test_numbers_are_exact_decimals_and_dates_stay_text() -> None:
    data = load_strict("r: 0.105\nm: 15000000000\ne: 15e9\nd: 2026-01-01\nq: '2026.1'\n").data
    assert data == {"r": Decimal("0.105"), "m": 15000000000, "e": Decimal("15e9"), "d": "2026-01-01", "q": "2026.1"}
    assert isinstance(data["r"], Decimal)


def test_yaml_1_1_surprises_stay_text() -> None:
    # Norway's code is not False, 010 is not 8 and 1:30 is not 90.
    data = load_strict("c: [NO, yes, on, 'true', true, False]\no: 010\ns: 1:30\nh: 0x1F\n").data
    assert data == {"c": ["NO", "yes", "on", "true", True, False], "o": 10, "s": "1:30", "h": "0x1F"}


def test_line_of_follows_a_pydantic_location_to_its_line() -> None:
    document = load_strict(
        "program:\n  code: X\nquotas:\n  exposure_limit:\n    unit: CNY\n    per_pilot_cap: 5\nlist:\n  - a\n  - b\n"
    )
    assert document.line_of(("quotas", "exposure_limit", "per_pilot_cap")) == 6
    assert document.line_of(("list", 1)) == 9
    assert document.line_of(("quotas", "missing_key")) == 4  # nearest parent
    assert document.line_of(()) == 1
