"""Validation of one TPMAP export row (one person) at the edge.

A row maps canonical column names to cell text, with None for a blank cell (the file readers do
that). A row is two parts: the household's fields, which every member's row repeats (validated
once per household), and the person's own.

The pydantic models are the rule. An export is millions of plainly written rows, so
``household_part`` and ``person_part`` first try a fast check that accepts only cells written the
plain way (ASCII digits, "0"/"1", "M"/"F", "|"-separated indicators) and hand every other row to
the models, which accept what they accept and word every error. The fast check never accepts a
row the models reject and builds the same values (tests/connectors/test_tpmap_rows.py proves both).
"""

from __future__ import annotations

import re

from typing import Annotated, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from connectors.citizen_id import CitizenIdCheck, plain_citizen_id, validate_citizen_id

HOUSEHOLD_COLUMNS = ("data_year", "house_code", "province_code", "district_code", "subdistrict_code", "village_code",
                     "income_per_person_baht", "failed_indicators", "subdistrict_name", "village_name")
PERSON_COLUMNS = ("citizen_id", "age", "sex", "welfare_registered", "welfare_validated", "disabled", "bedridden",
                  "chronic_illness")
TPMAP_COLUMNS = ("data_year", "house_code", "province_code", "district_code", "subdistrict_code", "village_code",
                 "citizen_id", "age", "sex", "welfare_registered", "welfare_validated", "disabled", "bedridden",
                 "chronic_illness", "income_per_person_baht", "failed_indicators", "subdistrict_name", "village_name")

Raw = dict[str, str | None]
AVRO_LONG_MAX = 2**63 - 1


def _split_indicators(v: object) -> object:
    if v is None:
        return []
    if isinstance(v, str):
        return [p for p in (x.strip() for x in v.replace(",", "|").split("|")) if p]
    return v


class HouseholdFields(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore", frozen=True)

    data_year: int = Field(ge=2500, le=2700, description="Buddhist Era")
    house_code: str = Field(pattern=r"^\d{11}$")
    province_code: str = Field(pattern=r"^\d{2}$")
    district_code: str = Field(pattern=r"^\d{4}$")
    subdistrict_code: str = Field(pattern=r"^\d{6}$")
    # 8 digits (DOPA) or 10 (TPMAP's village id: DOPA + 2); kept as given (connectors/areas.py)
    village_code: Annotated[str, Field(pattern=r"^\d{8}(\d{2})?$")] | None = None
    # the event's field is an Avro long: a larger number must be a bad row, not a failed import
    income_per_person_baht: Annotated[int, Field(ge=0, le=AVRO_LONG_MAX)] | None = None
    failed_indicators: Annotated[list[Annotated[int, Field(ge=1, le=31)]], BeforeValidator(_split_indicators)] = []
    # names as the export writes them: they name TPMAP's municipal tambons, which DOPA's list lacks
    subdistrict_name: Annotated[str, Field(max_length=200)] | None = None
    village_name: Annotated[str, Field(max_length=200)] | None = None


class PersonFields(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore", frozen=True)

    citizen_id: CitizenIdCheck
    age: Annotated[int, Field(ge=0, le=130)] | None = None
    sex: Literal["M", "F"] | None = None
    # a blank flag is an error, not a "no". MOFreg: registered for the state welfare card;
    # MOFval: registration validated (TPMAP's target poor are validated persons)
    welfare_registered: bool = False
    welfare_validated: bool = False
    disabled: bool = False
    bedridden: bool = False
    chronic_illness: bool = False

    @field_validator("citizen_id", mode="before")
    @classmethod
    def _citizen_id(cls, v: object) -> CitizenIdCheck:
        if isinstance(v, CitizenIdCheck):
            return v
        return validate_citizen_id("" if v is None else str(v))


class HouseholdPart(NamedTuple):
    """A valid household part of a row (the values of HouseholdFields)."""

    data_year: int
    house_code: str
    province_code: str
    district_code: str
    subdistrict_code: str
    village_code: str | None
    income_per_person_baht: int | None
    failed_indicators: tuple[int, ...]
    subdistrict_name: str | None = None
    village_name: str | None = None


class PersonPart(NamedTuple):
    """A valid person part of a row (the values of PersonFields)."""

    citizen_id: CitizenIdCheck
    age: int | None
    sex: Literal["M", "F"] | None
    welfare_registered: bool
    welfare_validated: bool
    disabled: bool
    bedridden: bool
    chronic_illness: bool


class RowError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


Part = TypeVar("Part", HouseholdFields, PersonFields)


def parse_part(model: type[Part], raw: Raw) -> Part:
    """Validate a row's part; raise RowError(reason, detail) naming the first bad field (never its citizen ID)."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors(include_input=False)[0]
        field = str(err["loc"][0]) if err["loc"] else "row"
        kind = "missing" if err["type"] == "missing" else "bad"
        msg = err["msg"].removeprefix("Value error, ")
        raise RowError(f"{kind}-{field.replace('_', '-')}", f"{field}: {msg}") from None


def household_part(raw: Raw, fast: bool = True) -> HouseholdPart:
    """The row's household part; RowError as from parse_part. `fast=False`: the pydantic model only."""
    if fast and (part := _plain_household(raw)) is not None:
        return part
    m = parse_part(HouseholdFields, raw)
    return HouseholdPart(m.data_year, m.house_code, m.province_code, m.district_code, m.subdistrict_code,
                         m.village_code, m.income_per_person_baht, tuple(m.failed_indicators),
                         m.subdistrict_name or None, m.village_name or None)


def person_part(raw: Raw, fast: bool = True) -> PersonPart:
    """The row's person part; RowError as from parse_part. `fast=False`: the pydantic model only."""
    if fast and (part := _plain_person(raw)) is not None:
        return part
    m = parse_part(PersonFields, raw)
    return PersonPart(m.citizen_id, m.age, m.sex, m.welfare_registered, m.welfare_validated, m.disabled, m.bedridden,
                      m.chronic_illness)


# The fast checks. Each returns None for anything not written the plain way: the models decide it.
_FLAG_CELLS = {"0": False, "1": True}
_FLAG_COLUMNS = PERSON_COLUMNS[3:]
_ABSENT_FLAGS = ("0",) * len(_FLAG_COLUMNS)  # map(get, ...)'s default of each
_SEXES = frozenset({None, "M", "F"})


def _digits(v: object, length: int) -> bool:
    # ASCII only: pydantic's \d and int() also take Thai and other Unicode digits, left to the models
    return type(v) is str and len(v) == length and v.isascii() and v.isdigit()


def _number(v: object) -> int | None:
    # at most 18 digits: int() of a huge string raises, and a longer number is the models' to judge
    return int(v) if type(v) is str and len(v) <= 18 and v.isascii() and v.isdigit() else None


def _plain_household(raw: Raw) -> HouseholdPart | None:
    year, house, province, district, subdistrict, village, income, failed, *names = map(raw.get, HOUSEHOLD_COLUMNS)
    if not all(n is None or (n == n.strip() and 0 < len(n) <= 200) for n in names):
        return None
    if not (_digits(house, 11) and _digits(province, 2) and _digits(district, 4) and _digits(subdistrict, 6)
            and (village is None or _digits(village, 8) or _digits(village, 10))):
        return None
    year = _number(year)
    if year is None or not 2500 <= year <= 2700:
        return None
    if income is not None and (income := _number(income)) is None:
        return None
    indicators: tuple[int, ...] = ()
    if failed is not None:
        indicators = tuple(map(_number, failed.split("|")))
        if not all(i is not None and 1 <= i <= 31 for i in indicators):
            return None
    return HouseholdPart(year, house, province, district, subdistrict, village, income, indicators, *names)


def _plain_person(raw: Raw) -> PersonPart | None:
    get = raw.get
    # an absent column is the model's default ("0"); a blank cell (None) is an error for the model to word
    flags = tuple(map(_FLAG_CELLS.get, map(get, _FLAG_COLUMNS, _ABSENT_FLAGS)))
    sex = get("sex")
    if None in flags or sex not in _SEXES:
        return None
    age = get("age")
    if age is not None and ((age := _number(age)) is None or age > 130):
        return None
    check = plain_citizen_id(get("citizen_id"))
    if check is None:
        return None
    return PersonPart(check, age, sex, *flags)


# 13 digits, bare or written 1-2345-67890-12-3 (or with spaces): a citizen ID in text that is not a row
_ID_IN_TEXT = re.compile(r"(?<!\d)\d(?:[- ]?\d){12}(?!\d)")


def masked(raw: Raw | str) -> Raw | str:
    """The record as it may appear in a dead letter: clear citizen IDs replaced by their last digit only.

    Text that is not a row (a line that is not JSON) may still hold an ID anywhere: every run of
    13 digits in it is masked."""
    if isinstance(raw, str):
        return _ID_IN_TEXT.sub(lambda m: "*" * 12 + m.group()[-1], raw)
    out = dict(raw)
    if out.get("citizen_id"):
        out["citizen_id"] = "*" * 12 + str(out["citizen_id"]).strip()[-1:]
    return out
