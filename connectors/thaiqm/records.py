"""Validation of Thai QM records (API items and export rows) at the edge, with pydantic.

The shapes are those of ``openapi.yaml``. A record that fails raises ``RecordError`` with a short
reason (the DLQ's ``reason`` and the metric label) and a detail that never repeats a citizen ID.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connectors.areas import AreaError, check_area
from connectors.citizen_id import CitizenIdCheck, validate_citizen_id

Feed = Literal["households", "problems"]
FEEDS: tuple[Feed, ...] = ("households", "problems")
Status = Literal["REPORTED", "ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "RESOLVED", "SELF_RESOLVED", "REFERRED"]
Dimension = Literal["health", "living", "education", "income", "access"]

# Position in the lifecycle; a problem may skip steps forwards, never go back, and never leave a
# final status (a problem that comes back is reported as a new one).
_RANK: dict[str, int] = {"REPORTED": 0, "ACKNOWLEDGED": 1, "ASSIGNED": 2, "IN_PROGRESS": 3,
                         "RESOLVED": 4, "SELF_RESOLVED": 4, "REFERRED": 4}
FINAL = frozenset({"RESOLVED", "SELF_RESOLVED", "REFERRED"})
NEEDS_AGENCY = frozenset({"ASSIGNED", "IN_PROGRESS", "REFERRED"})
# Exports carry local wall-clock times without an offset; Thailand has no daylight saving.
BANGKOK = timezone(timedelta(hours=7), "Asia/Bangkok")


def _blank_to_none(v: object) -> object:
    return None if isinstance(v, str) and not v.strip() else v


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=BANGKOK)


BlankIsNone = BeforeValidator(_blank_to_none)
Timestamp = Annotated[datetime, AfterValidator(_aware)]
RecordId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
HouseCode = Annotated[Annotated[str, Field(pattern=r"^\d{11}$")] | None, BlankIsNone]


def _citizen_id(v: object) -> CitizenIdCheck:
    return v if isinstance(v, CitizenIdCheck) else validate_citizen_id(str(v))


CitizenId = Annotated[CitizenIdCheck, BeforeValidator(_citizen_id)]


class _Record(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore", frozen=True)

    case_id: RecordId
    house_code: HouseCode = None
    province: str = Field(pattern=r"^\d{2}$")
    district: str = Field(pattern=r"^\d{4}$")
    subdistrict: str = Field(pattern=r"^\d{6}$")
    village: Annotated[Annotated[str, Field(pattern=r"^\d{8}$")] | None, BlankIsNone] = None
    updated_at: Timestamp

    @property
    def area(self) -> dict[str, str | None]:
        return {"province": self.province, "district": self.district,
                "subdistrict": self.subdistrict, "village": self.village}


class Member(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore", frozen=True)

    citizen_id: CitizenId
    role: Literal["HEAD", "MEMBER"] = "MEMBER"


class HouseholdRecord(_Record):
    members: list[Member] = Field(min_length=1)
    surveyed_at: Timestamp

    @property
    def head(self) -> Member:
        return next(m for m in self.members if m.role == "HEAD")

    @property
    def record_id(self) -> str:
        return f"{self.case_id}/survey"

    @model_validator(mode="after")
    def _one_head(self) -> HouseholdRecord:
        heads = sum(m.role == "HEAD" for m in self.members)
        if heads != 1:
            raise PydanticCustomError("bad-members", "a household has exactly one HEAD, got {heads}", {"heads": heads})
        if len({m.citizen_id.citizen_id for m in self.members}) != len(self.members):
            raise PydanticCustomError("bad-members", "a person is listed twice in one household")
        return self


class ProblemRecord(_Record):
    problem_id: RecordId
    citizen_id: Annotated[CitizenId | None, BlankIsNone] = None
    dimension: Dimension
    problem_code: str = Field(min_length=1, max_length=64)
    description: Annotated[Annotated[str, Field(max_length=2000)] | None, BlankIsNone] = None
    status: Status
    previous_status: Annotated[Status | None, BlankIsNone] = None
    agency: Annotated[Annotated[str, Field(max_length=200)] | None, BlankIsNone] = None
    reported_at: Timestamp

    @property
    def record_id(self) -> str:
        return f"{self.case_id}/{self.problem_id}"

    # Exports are typed by hand; the API sends the canonical spelling.
    @field_validator("dimension", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("status", "previous_status", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.strip().upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _consistent(self) -> ProblemRecord:
        if self.house_code is None and self.citizen_id is None:
            raise PydanticCustomError("missing-household-and-person",
                                      "a problem names its house_code, its citizen_id, or both")
        if (self.previous_status is None) != (self.status == "REPORTED"):
            raise PydanticCustomError("bad-status-transition",
                                      "previous_status is null exactly when status is REPORTED")
        if self.previous_status is not None and (
                self.previous_status in FINAL or _RANK[self.status] <= _RANK[self.previous_status]):
            raise PydanticCustomError("bad-status-transition", "{before} -> {after} is not a lifecycle step",
                                      {"before": self.previous_status, "after": self.status})
        if self.status in NEEDS_AGENCY and not self.agency:
            raise PydanticCustomError("missing-agency", "status {status} names the agency", {"status": self.status})
        if self.updated_at < self.reported_at:
            raise PydanticCustomError("bad-timestamps", "updated_at is before reported_at")
        return self


_MODELS: dict[Feed, type[HouseholdRecord] | type[ProblemRecord]] = {
    "households": HouseholdRecord, "problems": ProblemRecord}


class RecordError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _reason(err: Any) -> str:
    if err["type"].startswith(("bad-", "missing-")):  # raised by the validators above
        return str(err["type"])
    field = next((str(p) for p in reversed(err["loc"]) if isinstance(p, str)), "record")
    kind = "missing" if err["type"] == "missing" else "bad"
    return f"{kind}-{field.replace('_', '-')}"


def parse_record(feed: Feed, raw: dict[str, Any]) -> HouseholdRecord | ProblemRecord:
    """Validate one record of `feed`; raise RecordError naming the first problem (never a citizen ID)."""
    try:
        record = _MODELS[feed].model_validate(raw)
    except ValidationError as e:
        err = e.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise RecordError(_reason(err), f"{where}: {msg}" if where else msg) from None
    try:
        check_area(record.province, record.district, record.subdistrict, record.village)
    except AreaError as e:
        raise RecordError("unknown-area", str(e)) from None
    return record


def masked(raw: dict[str, Any]) -> dict[str, Any]:
    """The record as a dead letter may keep it: every citizen ID reduced to its last digit."""
    out = dict(raw)
    if isinstance(out.get("citizen_id"), str | int):
        out["citizen_id"] = _mask(out["citizen_id"])
    members = out.get("members")
    if isinstance(members, list):
        out["members"] = [{**m, "citizen_id": _mask(m.get("citizen_id"))} if isinstance(m, dict) else _mask(m)
                          for m in members]
    return out


def _mask(value: object) -> str:
    text = str(value or "").strip()
    return "*" * 12 + text[-1:] if text else ""
