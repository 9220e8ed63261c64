"""Validation of one TPMAP export row (one person) at the edge, with pydantic.

A row maps canonical column names to cell text, with None for a blank cell (the file readers do
that, so pydantic's core validates every field but two without calling back into Python). A row
is two parts: the household's fields, which every member's row repeats (validated once per
household), and the person's own.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from connectors.citizen_id import CitizenIdCheck, validate_citizen_id

HOUSEHOLD_COLUMNS = ("data_year", "house_code", "province_code", "district_code", "subdistrict_code", "village_code",
                     "income_per_person_baht", "failed_indicators")
PERSON_COLUMNS = ("citizen_id", "age", "sex", "welfare_card", "disabled", "bedridden", "chronic_illness")
TPMAP_COLUMNS = ("data_year", "house_code", "province_code", "district_code", "subdistrict_code", "village_code",
                 "citizen_id", "age", "sex", "welfare_card", "disabled", "bedridden", "chronic_illness",
                 "income_per_person_baht", "failed_indicators")

Raw = dict[str, str | None]


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
    village_code: Annotated[str, Field(pattern=r"^\d{8}$")] | None = None
    income_per_person_baht: Annotated[int, Field(ge=0)] | None = None
    failed_indicators: Annotated[list[Annotated[int, Field(ge=1, le=31)]], BeforeValidator(_split_indicators)] = []


class PersonFields(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore", frozen=True)

    citizen_id: CitizenIdCheck
    age: Annotated[int, Field(ge=0, le=130)] | None = None
    sex: Literal["M", "F"] | None = None
    # a blank flag is an error, not a "no"
    welfare_card: bool = False
    disabled: bool = False
    bedridden: bool = False
    chronic_illness: bool = False

    @field_validator("citizen_id", mode="before")
    @classmethod
    def _citizen_id(cls, v: object) -> CitizenIdCheck:
        if isinstance(v, CitizenIdCheck):
            return v
        return validate_citizen_id("" if v is None else str(v))


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


def masked(raw: Raw) -> Raw:
    """The row as it may appear in a dead letter: the clear citizen ID replaced by its last digit only."""
    out = dict(raw)
    if out.get("citizen_id"):
        out["citizen_id"] = "*" * 12 + str(out["citizen_id"]).strip()[-1:]
    return out
