from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.institution.identifiers import (
    USCC_CHARSET,
    lei_check_digits,
    make_lei,
    make_uscc,
    org_code_check_char,
    uscc_check_char,
    validate_lei,
    validate_uscc,
)

# The worked example printed in GB 32100-2015; computed independently of our code.
STANDARD_USCC = "91350100M000100Y43"
# Published LEIs whose check digits were issued by LOUs, not by us.
PUBLISHED_LEIS = ["5493001KJTIIGC8Y1R12", "7LTWFZYICNSX8D621K86", "HWUPKR0MPOU8FGXBT394"]
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def test_standard_example_uscc_is_valid() -> None:
    assert validate_uscc(STANDARD_USCC) == STANDARD_USCC
    assert uscc_check_char(STANDARD_USCC[:17]) == "3"
    assert org_code_check_char("M000100Y") == "4"


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ("M000100Y", "4"),
        ("00000000", "0"),  # 11 - 0 = 11 -> '0'
        ("10000001", "6"),  # 3 + 2 = 5 -> 11 - 5 = 6
        ("00000006", "X"),  # 12 -> 11 - 1 = 10 -> 'X'
    ],
)
def test_organisation_code_check_character(body: str, check: str) -> None:
    assert org_code_check_char(body) == check


def test_lowercase_uscc_is_normalised() -> None:
    assert validate_uscc(STANDARD_USCC.lower()) == STANDARD_USCC


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "has 18 characters; got 0"),
        (STANDARD_USCC[:17], "has 18 characters; got 17"),
        (STANDARD_USCC + "0", "has 18 characters; got 19"),
        ("9I350100M000100Y43", "bad character 'I' at position 2; the letters I, O, S, V and Z are never used"),
        ("91350100M0001O0Y43", "bad character 'O' at position 14"),
        ("91350100M000100Y4-", "bad character '-' at position 18"),
        ("91350100M000100Y4 ", "bad character ' ' at position 18"),
        ("９1350100M000100Y43", "bad character '９' at position 1"),  # full-width digit
        ("ß1350100M000100Y4", "has 18 characters; got 17"),  # not folded to 'SS'
        ("913501A0M000100Y43", "bad character 'A' at position 7: positions 3-8 are the administrative division"),
        ("91350100M000100Y44", "bad check character '4' at position 18 (expected '3')"),
        ("91350100M000100Y4Y", "bad check character 'Y' at position 18 (expected '3')"),
    ],
)
def test_uscc_refusals_say_why(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        validate_uscc(value)


def test_uscc_with_correct_outer_check_but_wrong_organisation_check_is_refused() -> None:
    first17 = "91350100M000100Y5"  # organisation-code check should be '4'
    code = first17 + uscc_check_char(first17)
    with pytest.raises(
        ValueError, match=r"bad organisation-code check: positions 9-17 \(M000100Y5\) should end in '4'"
    ):
        validate_uscc(code)


def test_make_uscc_builds_codes_that_validate() -> None:
    assert make_uscc("91", "350100", "M000100Y") == STANDARD_USCC
    assert make_uscc("91", "310000", "ma1fl0ab") == validate_uscc(make_uscc("91", "310000", "MA1FL0AB"))


@pytest.mark.parametrize(
    ("prefix", "division", "body"),
    [
        ("9", "310000", "MA1FL0AB"),
        ("9I", "310000", "MA1FL0AB"),
        ("91", "31000A", "MA1FL0AB"),
        ("91", "310000", "MA1FL0A"),
    ],
)
def test_make_uscc_refuses_malformed_parts(prefix: str, division: str, body: str) -> None:
    with pytest.raises(ValueError):
        make_uscc(prefix, division, body)


@pytest.mark.parametrize("lei", PUBLISHED_LEIS)
def test_published_leis_are_valid_and_our_check_digits_match_theirs(lei: str) -> None:
    assert validate_lei(lei) == lei
    assert validate_lei(lei.lower()) == lei
    assert lei_check_digits(lei[:18]) == lei[18:]
    assert make_lei(lei[:18]) == lei


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "an LEI has 20 characters; got 0"),
        ("5493001KJTIIGC8Y1R1", "an LEI has 20 characters; got 19"),
        ("5493001KJTIIGC8Y1R123", "an LEI has 20 characters; got 21"),
        ("5493001KJTIIGC8Y-R12", "bad character '-' at position 17"),
        ("5493001KJTIIGC8Y1R1A", "bad character 'A' at position 20: the check digits are digits"),
        ("5493001KJTIIGC8Y1R13", "bad check digits '13' (expected '12')"),
        ("5493001KJTIIGC8Y1R21", "bad check digits '21' (expected '12')"),
    ],
)
def test_lei_refusals_say_why(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        validate_lei(value)


@pytest.mark.parametrize(("issued", "never_issued"), [("98", "01"), ("97", "00")])
def test_lei_check_digits_00_and_01_are_never_issued(issued: str, never_issued: str) -> None:
    # 98 - r lies in 02..98, but 01 = 98 - 97 and 00 = 97 - 97 also leave remainder 1.
    first18 = next(p for p in (f"{n:018d}" for n in range(1000)) if lei_check_digits(p) == issued)
    assert int(first18 + never_issued) % 97 == 1
    with pytest.raises(ValueError, match=re.escape(f"bad check digits '{never_issued}' (expected '{issued}')")):
        validate_lei(first18 + never_issued)


def test_lei_check_cannot_catch_every_digit_letter_substitution() -> None:
    # Documenting the limit of ISO 7064 over letters: a letter spans two digits, so swapping a
    # digit for a letter shifts everything before it and can land on the same remainder.
    original = make_lei("6K111Y0ODR1XESVZEM")
    assert validate_lei(original[:5] + "7" + original[6:])


uscc_codes = st.builds(
    make_uscc,
    st.text(USCC_CHARSET, min_size=2, max_size=2),
    st.text("0123456789", min_size=6, max_size=6),
    st.text(USCC_CHARSET, min_size=8, max_size=8),
)
lei_codes = st.text(ALNUM, min_size=18, max_size=18).map(make_lei)
# Any replacement, including characters outside the alphabets; a case change is not a change.
replacement = st.characters(codec="utf-8", exclude_categories=["Cs"])


@given(uscc_codes, st.integers(0, 17), replacement)
def test_any_single_character_change_of_a_uscc_is_refused(code: str, position: int, ch: str) -> None:
    if ch.upper() == code[position]:
        return
    with pytest.raises(ValueError):
        validate_uscc(code[:position] + ch + code[position + 1 :])


@given(uscc_codes, st.integers(0, 16))
def test_any_adjacent_transposition_of_a_uscc_is_refused(code: str, position: int) -> None:
    # Guaranteed: the weights are 3^i mod 31 (31 prime), so neighbours never share a weight, and
    # swapping positions 17 and 18 changes the sum by 27 * (difference), never 0 mod 31.
    a, b = code[position], code[position + 1]
    if a == b:
        return
    with pytest.raises(ValueError):
        validate_uscc(code[:position] + b + a + code[position + 2 :])


@given(lei_codes, st.integers(0, 19), st.data())
def test_any_same_class_single_character_change_of_an_lei_is_refused(
    code: str, position: int, data: st.DataObject
) -> None:
    # Guaranteed by MOD 97-10 only when the digit string keeps its length: digit for digit, letter
    # for letter (the change is (difference < 97) * 10^k, never 0 mod 97).
    pool = "0123456789" if code[position].isdigit() else "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ch = data.draw(st.sampled_from([c for c in pool if c != code[position]]))
    with pytest.raises(ValueError):
        validate_lei(code[:position] + ch + code[position + 1 :])


@given(lei_codes, st.integers(0, 19), replacement)
def test_an_lei_with_any_foreign_character_is_refused(code: str, position: int, ch: str) -> None:
    if ch.upper() in ALNUM:
        return
    with pytest.raises(ValueError):
        validate_lei(code[:position] + ch + code[position + 1 :])
