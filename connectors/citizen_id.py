"""Thai 13-digit citizen ID (เลขประจำตัวประชาชน) validation.

The last digit is a mod-11 check digit over the first twelve. IDs starting with 0 (persons
without Thai registration status) or 9 (meaning disputed in the sources) are valid but
flagged, not rejected as python-stdnum does: poverty data includes stateless and highland
people, and rejecting them would drop real households (research/domain.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import mul
from typing import Literal

CitizenIdFlag = Literal["no-thai-status", "special-9"]

_LENGTH = 13
# weights 13..2 of the first twelve digits; summed over ASCII codes, then the codes' "0"s taken off
_WEIGHTS = tuple(range(_LENGTH, 1, -1))
_ZERO = ord("0")
_ZEROS = _ZERO * sum(_WEIGHTS)
# Separators people type when copying an ID from a card: "3-1006-00445-63-5".
_SEPARATORS = str.maketrans("", "", "- ")
_FLAGS: dict[str, CitizenIdFlag] = {"0": "no-thai-status", "9": "special-9"}


class InvalidCitizenId(ValueError):
    """The value is not a 13-digit citizen ID with a correct check digit."""


@dataclass(frozen=True, slots=True)
class CitizenIdCheck:
    citizen_id: str
    flag: CitizenIdFlag | None


def check_digit(first12: str) -> int:
    """The 13th digit that makes `first12` a valid citizen ID."""
    if len(first12) != _LENGTH - 1 or not _ascii_digits(first12):
        # The value is not echoed: error messages end up in logs and the DLQ.
        raise InvalidCitizenId(f"a check digit needs 12 digits, got {len(first12)} characters")
    return _check_digit(first12.encode("ascii"))


def _check_digit(codes: bytes) -> int:
    """The check digit of the first twelve ASCII digit codes of `codes` (a thirteenth is ignored:
    there are twelve weights)."""
    total = sum(map(mul, codes, _WEIGHTS)) - _ZEROS  # C loops: this runs per row
    return (11 - total % 11) % 10


def _ascii_digits(s: str) -> bool:
    # Not str.isdigit() alone: it accepts Thai and other Unicode digits, which int() would
    # silently read, so "๓" would pass as "3".
    return s.isascii() and s.isdigit()


def plain_citizen_id(value: object) -> CitizenIdCheck | None:
    """validate_citizen_id's check of 13 ASCII digits with the right check digit, in the fewest
    steps (an import checks one per row); None for any other value: validate_citizen_id words why."""
    if type(value) is not str or len(value) != _LENGTH or not _ascii_digits(value):
        return None
    codes = value.encode("ascii")
    if _check_digit(codes) != codes[-1] - _ZERO:
        return None
    return CitizenIdCheck(value, _FLAGS.get(value[0]))


def validate_citizen_id(value: str) -> CitizenIdCheck:
    """Normalise `value` to 13 digits and check it; raise InvalidCitizenId if it is not valid."""
    digits = value.translate(_SEPARATORS)
    if digits and not _ascii_digits(digits):
        raise InvalidCitizenId("a citizen ID may contain only digits, dashes and spaces")
    if len(digits) != _LENGTH:
        raise InvalidCitizenId(f"a citizen ID has {_LENGTH} digits, got {len(digits)}")
    expected = check_digit(digits[:-1])
    if int(digits[-1]) != expected:
        raise InvalidCitizenId(
            f"citizen ID check digit is {digits[-1]}, expected {expected} for these 12 digits"
        )
    return CitizenIdCheck(citizen_id=digits, flag=_FLAGS.get(digits[0]))
