"""TPMAP import: an export file (one row per person) becomes one event per household.

Rows of a household are adjacent in TPMAP exports (sorted by house code); a household is emitted
when the house code changes. Event ids derive from the household's content, so re-importing the
same file publishes the same ids (consumers deduplicate) and a corrected export gets new ones.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.areas import AreaError, check_area
from connectors.indicators import mapping_for
from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from connectors.tpmap_rows import RowError, TpmapRow, masked, parse_row
from schemas.dead_letter import dead_letter
from schemas.ids import now_ms, stable_id
from schemas.topics import TPMAP_HOUSEHOLD

SOURCE = "tpmap"
STAGE = "connector:tpmap"
_ID_FLAG = {"no-thai-status": "NO_THAI_STATUS", "special-9": "SPECIAL_9"}


@dataclass
class Rejected:
    line: int
    raw: dict[str, str]
    reason: str
    detail: str
    house_code: str | None = None


@dataclass
class Household:
    first_line: int
    rows: list[TpmapRow] = field(default_factory=list)

    @property
    def head(self) -> TpmapRow:
        return self.rows[0]


def _household_fields(r: TpmapRow) -> tuple:
    return (r.data_year, r.province_code, r.district_code, r.subdistrict_code, r.village_code, r.income_per_person_baht)


def read_households(path: Path) -> Iterator[Household | Rejected]:
    """Yield households (with their valid member rows) and rejected rows, in file order."""
    seen: set[str] = set()
    current: Household | None = None
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        for raw in reader:
            line = reader.line_num
            try:
                row = parse_row(raw)
                check_area(row.province_code, row.district_code, row.subdistrict_code, row.village_code)
            except RowError as e:
                yield Rejected(line, raw, e.reason, e.detail, raw.get("house_code"))
                continue
            except AreaError as e:
                yield Rejected(line, raw, "unknown-area", str(e), row.house_code)
                continue
            if current is not None and row.house_code == current.head.house_code:
                if _household_fields(row) != _household_fields(current.head):
                    yield Rejected(line, raw, "household-conflict",
                                   f"household {row.house_code}: year, area or income differ from its line "
                                   f"{current.first_line}", row.house_code)
                else:
                    current.rows.append(row)
                continue
            if row.house_code in seen:
                yield Rejected(line, raw, "household-split",
                               f"rows of household {row.house_code} are not adjacent (sort the export by house code)",
                               row.house_code)
                continue
            if current is not None:
                yield current
            seen.add(row.house_code)
            current = Household(line, [row])
    if current is not None:
        yield current


def household_event(h: Household, pseudonyms: Pseudonymiser, event_time: int) -> dict[str, Any]:
    head = h.head
    mapping = mapping_for(head.data_year)
    failed = sorted({i for r in h.rows for i in r.failed_indicators})
    dimensions = mapping.dimensions(set(failed))
    members = [{
        "person_id": pseudonyms.person_id(r.citizen_id.citizen_id),
        "id_flag": _ID_FLAG.get(r.citizen_id.flag) if r.citizen_id.flag else None,
        "age": r.age, "sex": r.sex, "welfare_card": r.welfare_card,
        "disabled": r.disabled, "bedridden": r.bedridden, "chronic_illness": r.chronic_illness,
    } for r in h.rows]
    body = {
        "data_year": head.data_year,
        "change": "SNAPSHOT",
        "members": members,
        "income_per_person_baht": head.income_per_person_baht,
        "failed_indicators": failed,
        "failed_dimensions": dimensions,
        "mapping_version": mapping.version,
        "target_poor_persons": sum(m["welfare_card"] for m in members) if dimensions else 0,
    }
    area = {"province": head.province_code, "district": head.district_code,
            "subdistrict": head.subdistrict_code, "village": head.village_code}
    content = hashlib.sha256(json.dumps([area, body], sort_keys=True).encode()).hexdigest()
    return {
        "event_id": stable_id(SOURCE, head.data_year, head.house_code, content),
        "source": SOURCE,
        "source_record_id": f"{head.data_year}:{head.house_code}",
        "event_time": event_time,
        "ingest_time": now_ms(),
        "schema_version": 1,
        "household_key": head.house_code,
        **area,
        **body,
    }


@dataclass
class ImportSummary:
    file: str
    rows_read: int = 0
    households_published: int = 0
    persons_published: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    households_by_province: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = [f"{self.file}: {self.rows_read} rows read, {self.households_published} households "
               f"({self.persons_published} persons) published, {sum(self.rejected.values())} rows rejected"]
        out += [f"  rejected {reason}: {n}" for reason, n in sorted(self.rejected.items())]
        return out


def import_tpmap(path: Path, publisher: Publisher, pseudonyms: Pseudonymiser,
                 event_time: int | None = None) -> ImportSummary:
    """Publish every household of a TPMAP export; bad rows go to the dead-letter topic."""
    path = Path(path)
    event_time = event_time if event_time is not None else int(os.stat(path).st_mtime * 1000)
    summary = ImportSummary(path.name)
    for item in read_households(path):
        if isinstance(item, Rejected):
            summary.rows_read += 1
            summary.rejected[item.reason] += 1
            publisher.dead_letter(dead_letter(
                source=SOURCE, stage=STAGE, reason=item.reason, detail=item.detail,
                source_record_id=f"{path.name}:{item.line}", household_key=item.house_code,
                original=masked(item.raw), origin_file=path.name, origin_line=item.line))
            continue
        event = household_event(item, pseudonyms, event_time)
        publisher.publish(TPMAP_HOUSEHOLD, event["household_key"], event)
        summary.rows_read += len(item.rows)
        summary.households_published += 1
        summary.persons_published += len(item.rows)
        summary.households_by_province[event["province"]] += 1
    publisher.flush()
    return summary
