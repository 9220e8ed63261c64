"""An อปท. update as the HTTP API receives it: pydantic models that validate at the edge.

The Avro schema ``localgov_update.v1.avsc`` is the contract on the bus; the kinds, enums and
detail records here use its names and symbols, and ``tests/connectors/test_localgov_updates.py`` proves they
agree field by field. Errors never echo a citizen ID (they end up in logs and the DLQ).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from connectors.areas import (
    check_district,
    check_province,
    check_subdistrict,
    check_village,
)
from connectors.citizen_id import CitizenIdCheck, validate_citizen_id

MAX_BATCH = 500
# Clocks of small offices drift; anything further ahead is a typo (e.g. a Buddhist Era year).
_FUTURE_SLACK = timedelta(minutes=10)

AssistanceKind = Literal["CASH", "IN_KIND", "HOUSE_REPAIR", "LONG_TERM_CARE", "WATER_SUPPLY", "OTHER"]
VisitFinding = Literal["ELDERLY_DEPENDANT", "DISABLED_DEPENDANT", "BEDRIDDEN", "NO_CAREGIVER", "CHILD_OUT_OF_SCHOOL",
                       "INSECURE_HOUSING", "NO_INCOME", "FOOD_SHORTAGE", "UNTREATED_ILLNESS", "NO_WELFARE_CARD",
                       "OTHER"]
AllowanceType = Literal["ELDERLY", "DISABILITY", "HIV"]
AllowanceStatus = Literal["ENROLLED", "STOPPED"]

# Each area level with the level it must nest in.
_PARENT = {"district": ("province", check_district), "subdistrict": ("district", check_subdistrict),
           "village": ("subdistrict", check_village)}

Baht = Annotated[float, Field(ge=0, le=100_000_000, allow_inf_nan=False)]
# Lone surrogates cannot be encoded as UTF-8 (on the bus, in ClickHouse); control characters other
# than tab and line breaks are binary garbage or a mis-decoded file, never what an officer typed.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _plain_text(v: str) -> str:
    bad = _NOT_TEXT.search(v)
    if bad:
        raise ValueError(f"text holds U+{ord(bad.group()):04X} at position {bad.start()}: control characters "
                         "(other than tab and line breaks) and lone surrogates are not text")
    return v


Text = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_plain_text)]
Note = Annotated[str, Field(max_length=2000), AfterValidator(_plain_text)]


def _code(digits: int) -> str:
    # [0-9], not \d: \d also matches Thai (and other) digits, which would pass as codes that match no area
    return f"^[0-9]{{{digits}}}$"


def _citizen_id(v: object) -> CitizenIdCheck:
    if isinstance(v, CitizenIdCheck):
        return v
    if not isinstance(v, str):
        # a JSON number drops the leading 0 of IDs of persons without Thai status: never guess it back
        raise ValueError("citizen_id must be a JSON string (as a number it loses a leading 0)")
    return validate_citizen_id(v)


# Clients send a string; the model holds the checked ID (with its 0/9 flag) until it is pseudonymised.
CitizenId = Annotated[CitizenIdCheck, BeforeValidator(_citizen_id),
                      WithJsonSchema({"type": "string", "pattern": r"^[0-9\- ]{13,17}$",
                                      "examples": ["3-1006-00445-63-5"]})]


class _Detail(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Assistance(_Detail):
    kind: AssistanceKind
    amount_baht: Baht | None = None
    programme: Text | None = Field(None, description="programme or regulation, e.g. ระเบียบ มท. ว่าด้วยการช่วยเหลือประชาชน 2560")


class HomeVisit(_Detail):
    """A Knock Knock home visit."""

    findings: list[VisitFinding] = Field(default_factory=list, max_length=len(VisitFinding.__args__))
    note: Note | None = None
    visitor_role: Text | None = Field(None, description="e.g. อสม., นักพัฒนาชุมชน")


class Referral(_Detail):
    to_agency: Text
    reason: Text


class Allowance(_Detail):
    allowance_type: AllowanceType
    status: AllowanceStatus
    monthly_amount_baht: Baht | None = None


class UpdateBase(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    record_id: str = Field(pattern=r"^[A-Za-z0-9._:/-]{1,100}$",
                           description="your system's id for this record: sending it again yields the same event id")
    occurred_at: AwareDatetime = Field(description="when it happened, ISO 8601 with a time zone")
    house_code: str | None = Field(None, pattern=_code(11), description="11-digit DOPA house code (รหัสบ้าน)")
    citizen_id: CitizenId | None = Field(None, description="13-digit citizen ID; pseudonymised on arrival")
    province: str = Field(pattern=_code(2))
    district: str = Field(pattern=_code(4))
    subdistrict: str = Field(pattern=_code(6))
    village: str | None = Field(None, pattern=_code(8), description="sub-district + หมู่ที่, when known")

    @field_validator("occurred_at")
    @classmethod
    def _not_in_future(cls, v: datetime) -> datetime:
        if v > datetime.now(UTC) + _FUTURE_SLACK:
            raise ValueError("occurred_at is in the future (a Buddhist Era year? use the Gregorian calendar)")
        return v

    # Each level is checked against the one above it, so the error names the field that is wrong;
    # a level whose parent already failed is not checked again.
    @field_validator("province")
    @classmethod
    def _province(cls, v: str) -> str:
        check_province(v)
        return v

    @field_validator("district", "subdistrict", "village")
    @classmethod
    def _nests(cls, v: str | None, info: ValidationInfo) -> str | None:
        parent, check = _PARENT[info.field_name]
        if v is not None and parent in info.data:
            check(v, info.data[parent])
        return v

    @model_validator(mode="after")
    def _names_someone(self) -> UpdateBase:
        if self.house_code is None and self.citizen_id is None:
            raise ValueError("an update names a household (house_code), a person (citizen_id) or both")
        return self


class AssistanceUpdate(UpdateBase):
    kind: Literal["ASSISTANCE"]
    assistance: Assistance


class HomeVisitUpdate(UpdateBase):
    kind: Literal["HOME_VISIT"]
    visit: HomeVisit


class ReferralUpdate(UpdateBase):
    kind: Literal["REFERRAL"]
    referral: Referral


class AllowanceUpdate(UpdateBase):
    kind: Literal["ALLOWANCE"]
    allowance: Allowance

    @model_validator(mode="after")
    def _names_a_person(self) -> AllowanceUpdate:
        if self.citizen_id is None:
            raise ValueError("an allowance belongs to a person: citizen_id is required")
        return self


AnyUpdate = AssistanceUpdate | HomeVisitUpdate | ReferralUpdate | AllowanceUpdate
LocalGovUpdate = Annotated[AnyUpdate, Field(discriminator="kind")]


class UpdateBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    updates: list[LocalGovUpdate] = Field(min_length=1, max_length=MAX_BATCH)
