"""TPMAP export rows (one per person) -> households -> events.

Rows of a household are adjacent in TPMAP exports (sorted by house code); a household is emitted
when the house code changes. One file holds one data year. Event ids derive from the household's
content, so re-importing the same file publishes the same ids (consumers deduplicate) and a
corrected export gets new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from connectors.areas import AreaError, check_area
from connectors.tpmap.indicators import mapping_for
from connectors.pseudonym import Pseudonymiser
from connectors.tpmap.files import BadRecord, read_export
from connectors.tpmap.rows import (
    HOUSEHOLD_COLUMNS,
    HouseholdPart,
    PersonPart,
    Raw,
    RowError,
    household_part,
    masked,
    person_part,
)
from connectors.tpmap.state import Area
from schemas.dead_letter import dead_letter
from schemas.ids import now_ms, stable_id

SOURCE = "tpmap"
STAGE = "connector:tpmap"
SCHEMA_VERSION = 2  # schemas/avro/tpmap_household.v2.avsc
_ID_FLAG = {"no-thai-status": "NO_THAI_STATUS", "special-9": "SPECIAL_9"}
# position of each target-poor person flag (connectors/tpmap/indicators.py) in a member tuple below
_TARGET_POOR_FLAG = {"welfare_registered": 4, "welfare_validated": 5}
# every person's row repeats its household's area, and a year has ~7,400 sub-districts: look each up once
# (lru_cache keeps only valid areas: a raised AreaError is not cached)
_check_area = lru_cache(maxsize=1 << 16)(check_area)


@dataclass
class Rejected:
    line: int
    raw: Raw | str  # str: a record that is not a row (e.g. a line that is not JSON)
    reason: str
    detail: str
    house_code: str | None = None

    def dead_letter(self, file_name: str) -> dict[str, Any]:
        return dead_letter(
            source=SOURCE, stage=STAGE, reason=self.reason, detail=self.detail,
            source_record_id=f"{file_name}:{self.line}", household_key=self.house_code,
            original=masked(self.raw),
            origin_file=file_name, origin_line=self.line)


@dataclass
class Household:
    first_line: int
    fields: HouseholdPart  # as on its first row
    members: list[PersonPart]
    failed_indicators: set[int]  # of all its rows: some จปฐ. indicators are assessed per person

    @property
    def area(self) -> Area:
        f = self.fields
        return f.province_code, f.district_code, f.subdistrict_code, f.village_code or ""


def _shared(f: HouseholdPart) -> tuple:
    """What every row of one household must agree on."""
    return f.province_code, f.district_code, f.subdistrict_code, f.village_code, f.income_per_person_baht


def read_households(path: Path, data_year: int | None = None, fast: bool = True) -> Iterator[Household | Rejected]:
    """Yield households (with their valid member rows) and rejected rows, in file order.

    The file's data year is `data_year`, or else that of its first valid row; rows of another
    year are rejected. Raises ExportError (before yielding anything) for a file of the wrong type
    or with a required column missing. `fast=False` validates with the pydantic models alone
    (the reference the fast checks are compared with; see connectors/tpmap/rows.py).
    """
    seen: set[str] = set()
    current: Household | None = None
    last_cells: tuple | None = None  # household cells of the last row whose household part was valid
    hh: HouseholdPart | None = None
    for line, raw in read_export(path):
        if isinstance(raw, BadRecord):
            yield Rejected(line, raw.text, raw.reason, raw.detail)
            continue
        cells = tuple(map(raw.get, HOUSEHOLD_COLUMNS))
        try:
            if cells != last_cells:  # members' rows repeat these: validate them once per household
                parsed = household_part(raw, fast)
                _check_area(parsed.province_code, parsed.district_code, parsed.subdistrict_code, parsed.village_code)
                hh, last_cells = parsed, cells
            person = person_part(raw, fast)
        except RowError as e:
            yield Rejected(line, raw, e.reason, e.detail, raw.get("house_code"))
            continue
        except AreaError as e:
            yield Rejected(line, raw, "unknown-area", str(e), raw.get("house_code"))
            continue
        assert hh is not None
        house = hh.house_code
        if data_year is None:
            data_year = hh.data_year
        elif hh.data_year != data_year:
            yield Rejected(line, raw, "other-data-year",
                           f"data_year {hh.data_year} in a file of data year {data_year} (one data year per file)",
                           house)
            continue
        if current is not None and house == current.fields.house_code:
            if hh is not current.fields and _shared(hh) != _shared(current.fields):
                yield Rejected(line, raw, "household-conflict",
                               f"household {house}: area or income differ from its line {current.first_line}", house)
            else:
                current.members.append(person)
                current.failed_indicators.update(hh.failed_indicators)
            continue
        if house in seen:
            yield Rejected(line, raw, "household-split",
                           f"rows of household {house} are not adjacent (sort the export by house code)", house)
            continue
        if current is not None:
            yield current
        seen.add(house)
        current = Household(line, hh, [person], set(hh.failed_indicators))
    if current is not None:
        yield current


def household_event(h: Household, pseudonyms: Pseudonymiser, event_time: int) -> dict[str, Any]:
    head = h.fields
    mapping = mapping_for(head.data_year)
    failed = sorted(h.failed_indicators)
    dimensions = mapping.dimensions(h.failed_indicators)
    pseudonym = pseudonyms.person_id
    # (person_id, id_flag, age, sex, registered, validated, disabled, bedridden, chronic_illness):
    # a validated registrant is registered too (TPMAP's funnel: JPT.MOFreg holds JPT.MOFval)
    members = tuple((pseudonym(p.citizen_id.citizen_id), _ID_FLAG.get(p.citizen_id.flag), p.age, p.sex,
                     p.welfare_registered or p.welfare_validated, *p[4:]) for p in h.members)
    target_poor = sum(m[_TARGET_POOR_FLAG[mapping.target_poor_flag]] for m in members) if dimensions else 0
    area = (head.province_code, head.district_code, head.subdistrict_code, head.village_code)
    # the id is a digest of everything the event says (repr of plain tuples: deterministic, and
    # cheaper than JSON with sorted keys); pseudonyms, never clear IDs, go into it
    # Members as v1 events described them (without the registered flag), so a file that says
    # nothing v1 did not keeps the ids earlier versions published; registrations that are not
    # validated, and area names, are new content, added only when there are any
    described = (area, head.data_year, head.income_per_person_baht, failed, dimensions, mapping.version,
                 target_poor, tuple(m[:4] + m[5:] for m in members))
    registered_only = tuple(m[4] and not m[5] for m in members)
    names = (head.subdistrict_name, head.village_name)
    content = repr(described + (registered_only, names) if any(registered_only) or any(names) else described)
    province, district, subdistrict, village = area
    return {
        "event_id": stable_id(SOURCE, head.data_year, head.house_code, hashlib.sha256(content.encode()).hexdigest()),
        "source": SOURCE,
        "source_record_id": f"{head.data_year}:{head.house_code}",
        "event_time": event_time,
        "ingest_time": now_ms(),
        "schema_version": SCHEMA_VERSION,
        "household_key": head.house_code,
        "province": province, "district": district, "subdistrict": subdistrict, "village": village,
        "subdistrict_name": head.subdistrict_name, "village_name": head.village_name,
        "data_year": head.data_year,
        "change": "SNAPSHOT",
        "members": [{"person_id": person, "id_flag": flag, "age": age, "sex": sex, "welfare_registered": registered,
                     "welfare_validated": validated, "disabled": disabled, "bedridden": bedridden, "chronic_illness": ill}
                    for person, flag, age, sex, registered, validated, disabled, bedridden, ill in members],
        "income_per_person_baht": head.income_per_person_baht,
        "failed_indicators": failed,
        "failed_dimensions": dimensions,
        "mapping_version": mapping.version,
        "target_poor_persons": target_poor,
    }


def left_target_list_event(house_code: str, area: Area, data_year: int, event_time: int) -> dict[str, Any]:
    """The household was in the previous year's export and is not in `data_year`'s."""
    province, district, subdistrict, village = area
    return {
        "event_id": stable_id(SOURCE, data_year, house_code, "LEFT_TARGET_LIST"),
        "source": SOURCE,
        "source_record_id": f"{data_year}:{house_code}",
        "event_time": event_time,
        "ingest_time": now_ms(),
        "schema_version": SCHEMA_VERSION,
        "household_key": house_code,
        "province": province, "district": district, "subdistrict": subdistrict, "village": village or None,
        "subdistrict_name": None, "village_name": None,
        "data_year": data_year,
        "change": "LEFT_TARGET_LIST",
        "members": [],
        "income_per_person_baht": None,
        "failed_indicators": [],
        "failed_dimensions": [],
        "mapping_version": mapping_for(data_year).version,
        "target_poor_persons": 0,
    }
