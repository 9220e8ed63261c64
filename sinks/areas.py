"""Fill the `areas` table from geothai (data CC-BY-4.0): current and abolished DOPA areas."""

from __future__ import annotations

import geothai
from clickhouse_connect.driver.client import Client
from geothai.abolished import abolished_areas

AREA_COLUMNS = ("level", "code", "parent_code", "name_th", "name_en", "abolished")

AreaRow = tuple[str, str, str, str, str | None, bool]


def area_rows() -> list[AreaRow]:
    """Every province, district and sub-district geothai knows, abolished ones flagged."""
    rows: list[AreaRow] = []
    for province in geothai.provinces():
        rows.append(("province", province.code, "", province.name_th, province.name_en, False))
        for district in geothai.districts(province.code):
            rows.append(("district", district.code, province.code, district.name_th, district.name_en, False))
            rows.extend(
                ("subdistrict", sub.code, district.code, sub.name_th, sub.name_en, False)
                for sub in geothai.subdistricts(district.code)
            )
    rows.extend((a.level, a.code, a.parent_code or "", a.name_th, a.name_en, True) for a in abolished_areas())
    return rows


def load_areas(client: Client) -> int:
    """Insert all areas; a repeated load of the same geothai data is a no-op. Returns the row count."""
    rows = area_rows()
    # The token ties the insert to the geothai data version, so ClickHouse drops a repeat;
    # a newer geothai replaces rows by (level, code) through ReplacingMergeTree.
    client.insert(
        "areas",
        rows,
        column_names=AREA_COLUMNS,
        settings={"insert_deduplication_token": f"geothai-{geothai.DATA_VERSION}"},
    )
    return len(rows)
