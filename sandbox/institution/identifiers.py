"""Check-character arithmetic for the two identifiers an institution carries. Pure.

- Unified social credit code (USCC, GB 32100-2015): 18 characters over a 31-character alphabet;
  characters 3-8 are the administrative division code, 9-17 an organisation code (GB 11714)
  with its own mod-11 check character, and 18 a mod-31 check over the first 17.
- Legal Entity Identifier (LEI, ISO 17442): 20 characters [0-9A-Z]; the last two are check
  digits per ISO 7064 MOD 97-10 (letters count as 10..35).

Each ``validate_*`` returns the code upper-cased or raises ValueError saying exactly what is wrong.
"""

from __future__ import annotations

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
USCC_LENGTH = 18
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_CHARSET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_DIVISION = slice(2, 8)
_ORG_CODE = slice(8, 17)

LEI_LENGTH = 20
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = "0123456789"


def _upper_ascii(value: str) -> str:
    # str.upper() on non-ASCII text can change the length ("ß" -> "SS") or map a foreign letter
    # onto an ASCII one ("ı" -> "I"); only ASCII letters are folded.
    return "".join(ch.upper() if ch.isascii() else ch for ch in value)


def _org_char_value(ch: str) -> int:
    return int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10


def org_code_check_char(body8: str) -> str:
    """The 9th character of a GB 11714 organisation code from its first 8."""
    if len(body8) != 8 or any(ch not in _ALNUM for ch in body8):
        raise ValueError(f"an organisation-code body is 8 characters from 0-9, A-Z; got {body8!r}")
    total = sum(_org_char_value(ch) * w for ch, w in zip(body8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def uscc_check_char(first17: str) -> str:
    if len(first17) != USCC_LENGTH - 1:
        raise ValueError(f"the check character is computed over 17 characters; got {len(first17)}")
    for position, ch in enumerate(first17, start=1):
        if ch not in _USCC_VALUE:
            raise ValueError(f"bad character {ch!r} at position {position}")
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    code = _upper_ascii(value)
    if len(code) != USCC_LENGTH:
        raise ValueError(f"a unified social credit code has {USCC_LENGTH} characters; got {len(code)}")
    for position, ch in enumerate(code, start=1):
        if ch not in _USCC_VALUE:
            why = "; the letters I, O, S, V and Z are never used" if ch in "IOSVZ" else ""
            raise ValueError(f"bad character {ch!r} at position {position}{why}")
    for position in range(_DIVISION.start + 1, _DIVISION.stop + 1):
        if not code[position - 1].isdigit():
            raise ValueError(
                f"bad character {code[position - 1]!r} at position {position}: "
                "positions 3-8 are the administrative division code and must be digits"
            )
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise ValueError(f"bad check character {code[17]!r} at position 18 (expected {expected!r})")
    org = code[_ORG_CODE]
    org_expected = org_code_check_char(org[:8])
    if org[8] != org_expected:
        raise ValueError(
            f"bad organisation-code check: positions 9-17 ({org}) should end in {org_expected!r}, not {org[8]!r}"
        )
    return code


def make_uscc(prefix: str, division: str, org_body8: str) -> str:
    """A valid code from its parts: 2-character registration prefix (such as "91"), 6-digit
    division code, 8-character organisation-code body; both check characters are computed."""
    prefix, org_body8 = _upper_ascii(prefix), _upper_ascii(org_body8)
    if len(prefix) != 2 or any(ch not in _USCC_VALUE for ch in prefix):
        raise ValueError(f"the prefix is 2 characters from {USCC_CHARSET}; got {prefix!r}")
    if len(division) != 6 or any(ch not in _DIGITS for ch in division):
        raise ValueError(f"the division code is 6 digits; got {division!r}")
    if len(org_body8) != 8 or any(ch not in _USCC_VALUE for ch in org_body8):
        raise ValueError(f"the organisation-code body is 8 characters from {USCC_CHARSET}; got {org_body8!r}")
    first17 = prefix + division + org_body8 + org_code_check_char(org_body8)
    return validate_uscc(first17 + uscc_check_char(first17))


def _lei_number(text: str) -> int:
    return int("".join(str(_ALNUM.index(ch)) for ch in text))


def lei_check_digits(first18: str) -> str:
    if len(first18) != LEI_LENGTH - 2 or any(ch not in _ALNUM for ch in first18):
        raise ValueError(f"LEI check digits are computed over 18 characters from 0-9, A-Z; got {first18!r}")
    return f"{98 - _lei_number(first18) * 100 % 97:02d}"


def validate_lei(value: str) -> str:
    code = _upper_ascii(value)
    if len(code) != LEI_LENGTH:
        raise ValueError(f"an LEI has {LEI_LENGTH} characters; got {len(code)}")
    for position, ch in enumerate(code, start=1):
        if ch not in _ALNUM:
            raise ValueError(f"bad character {ch!r} at position {position}")
    for position in (19, 20):
        if code[position - 1] not in _DIGITS:
            raise ValueError(
                f"bad character {code[position - 1]!r} at position {position}: the check digits are digits"
            )
    # 00 and 01 satisfy mod 97 == 1 for some prefixes but are never issued (98 - r lies in 02..98).
    if _lei_number(code) % 97 != 1 or code[18:] in ("00", "01"):
        raise ValueError(f"bad check digits {code[18:]!r} (expected {lei_check_digits(code[:18])!r})")
    return code


def make_lei(first18: str) -> str:
    first18 = _upper_ascii(first18)
    return first18 + lei_check_digits(first18)
