import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.citizen_id import (
    CitizenIdCheck,
    InvalidCitizenId,
    check_digit,
    plain_citizen_id,
    validate_citizen_id,
)

# Check digits worked out by hand from the formula, not by the code under test.
VALID = ["3100600445635", "1101700203450", "1509900123453", "3567890123451", "8100000000013"]

twelve_digits = st.text(alphabet="0123456789", min_size=12, max_size=12)


@pytest.mark.parametrize("cid", VALID)
def test_known_valid_ids_pass_unflagged(cid: str) -> None:
    assert validate_citizen_id(cid) == CitizenIdCheck(citizen_id=cid, flag=None)


def test_check_digit_of_the_stdnum_example() -> None:
    assert check_digit("310060044563") == 5


@pytest.mark.parametrize("raw", ["3-1006-00445-63-5", "3 1006 00445 63 5", " 3100600445635 "])
def test_dashes_and_spaces_are_normalised(raw: str) -> None:
    assert validate_citizen_id(raw).citizen_id == "3100600445635"


@pytest.mark.parametrize(
    ("cid", "flag"),
    [("0123456789016", "no-thai-status"), ("0000000000019", "no-thai-status"),
     ("9123456789010", "special-9")],
)
def test_leading_zero_and_nine_are_valid_but_flagged(cid: str, flag: str) -> None:
    assert validate_citizen_id(cid) == CitizenIdCheck(citizen_id=cid, flag=flag)


def test_bad_check_digit_is_rejected_with_the_expected_digit() -> None:
    with pytest.raises(InvalidCitizenId, match="expected 5"):
        validate_citizen_id("3100600445634")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("310060044563", "13 digits, got 12"), ("31006004456351", "13 digits, got 14"),
     ("", "13 digits, got 0"), ("31006004456x5", "only digits"),
     ("๓100600445635", "only digits"), ("3_100600445635", "only digits")],
)
def test_malformed_input_is_rejected(raw: str, reason: str) -> None:
    with pytest.raises(InvalidCitizenId, match=reason):
        validate_citizen_id(raw)


def test_invalid_citizen_id_is_a_value_error() -> None:
    assert issubclass(InvalidCitizenId, ValueError)


@pytest.mark.parametrize("bad", ["31006004456", "3100600445635", "31006004456a"])
def test_check_digit_needs_exactly_twelve_digits(bad: str) -> None:
    with pytest.raises(InvalidCitizenId):
        check_digit(bad)


@given(twelve_digits)
def test_check_digit_makes_any_twelve_digits_valid(first12: str) -> None:
    assert validate_citizen_id(first12 + str(check_digit(first12))).citizen_id.startswith(first12)


@given(twelve_digits, st.integers(min_value=1, max_value=9))
def test_any_other_last_digit_is_rejected(first12: str, shift: int) -> None:
    wrong = (check_digit(first12) + shift) % 10
    with pytest.raises(InvalidCitizenId):
        validate_citizen_id(first12 + str(wrong))


def validated(value: str) -> CitizenIdCheck | None:
    try:
        return validate_citizen_id(value)
    except InvalidCitizenId:
        return None


@given(st.one_of(twelve_digits.map(lambda d: d + str(check_digit(d))),
                 st.text(alphabet="0123456789", min_size=11, max_size=14),
                 st.text(alphabet="0123456789-๑ x", min_size=11, max_size=17)))
def test_the_fast_check_accepts_only_what_validation_accepts_with_the_same_result(value: str) -> None:
    # the import's per-row check (connectors/tpmap/rows.py); the rest goes to validate_citizen_id
    plain = plain_citizen_id(value)
    assert plain is None or plain == validated(value)
    if len(value) == 13 and value.isascii() and value.isdigit():
        assert plain == validated(value)


@pytest.mark.parametrize("cid", VALID + ["0123456789016", "9123456789010"])
def test_the_fast_check_takes_plain_valid_ids_flags_included(cid: str) -> None:
    assert plain_citizen_id(cid) == validate_citizen_id(cid)
