"""Area-code checks against the geothai list of DOPA codes: codes must exist and nest.

Two kinds of code beyond geothai's are areas like any other (DESIGN.md, Levels):
- TPMAP files the households of municipal areas (เทศบาล) under tambon codes whose last two
  digits are 51 or more, nested under the district of their first four digits (830151 is a
  municipal area of district 8301). geothai lists none of them (no DOPA tambon code reaches 51),
  so such a code is accepted when its district is known.
- TPMAP's village ids are 10 digits (the 8-digit DOPA village + 2), and several TPMAP villages
  can share one DOPA code: they are kept as given, so two of them are never merged.
"""

from __future__ import annotations

import difflib
import re

import geothai

_VILLAGE = re.compile(r"^[0-9]{8}(?:[0-9]{2})?$")  # not \d: it matches Thai digits too
MUNICIPAL_FROM = 51  # tambon codes ending 51..99 are TPMAP's municipal areas


class AreaError(ValueError):
    pass


def check_province(province: str) -> None:
    if geothai.province(province) is None:
        raise AreaError(f"province {province!r} is not a DOPA province code")


def check_district(district: str, province: str) -> None:
    d = geothai.district(district)
    if d is None:
        raise AreaError(f"district {district!r} is not a DOPA district code")
    if d.province_code != province:
        raise AreaError(f"district {district} belongs to province {d.province_code}, not {province}")


def is_municipal(subdistrict: str) -> bool:
    """Whether a 6-digit tambon code is of TPMAP's municipal kind (last two digits 51 or more)."""
    return len(subdistrict) == 6 and subdistrict.isascii() and subdistrict.isdigit() and int(subdistrict[4:]) >= MUNICIPAL_FROM


def check_subdistrict(subdistrict: str, district: str) -> None:
    s = geothai.subdistrict(subdistrict)
    if s is None and is_municipal(subdistrict):
        parent = subdistrict[:4]
        if geothai.district(parent) is None:
            raise AreaError(f"municipal tambon {subdistrict}: its district {parent} is not a DOPA district code")
        if parent != district:
            raise AreaError(f"municipal tambon {subdistrict} belongs to district {parent}, not {district}")
        return
    if s is None:
        raise AreaError(f"sub-district {subdistrict!r} is not a DOPA sub-district code")
    if s.district_code != district:
        raise AreaError(f"sub-district {subdistrict} belongs to district {s.district_code}, not {district}")


def check_village(village: str, subdistrict: str) -> None:
    if not _VILLAGE.match(village) or not village.startswith(subdistrict):
        raise AreaError(f"village {village!r} must be 8 digits (DOPA) or 10 (TPMAP) starting with its sub-district {subdistrict}")


def check_area(province: str, district: str, subdistrict: str, village: str | None = None) -> None:
    check_province(province)
    check_district(district, province)
    check_subdistrict(subdistrict, district)
    if village is not None:
        check_village(village, subdistrict)


def known_area_code(code: str) -> bool:
    """Whether `code` is a DOPA province (2 digits), district (4) or sub-district (6) code."""
    lookup = {2: geothai.province, 4: geothai.district, 6: geothai.subdistrict}.get(len(code))
    if lookup is None or not (code.isascii() and code.isdigit()):
        return False
    if lookup(code) is not None:
        return True
    return is_municipal(code) and geothai.district(code[:4]) is not None


def _areas_of_length(length: int) -> list[tuple[str, str, str]]:
    provinces = list(geothai.provinces())
    if length == 2:
        return [(p.code, p.name_th, p.name_en) for p in provinces]
    districts = [d for p in provinces for d in geothai.districts(p.code)]
    if length == 4:
        return [(d.code, d.name_th, d.name_en) for d in districts]
    return [(s.code, s.name_th, s.name_en) for d in districts for s in geothai.subdistricts(d.code)]


def nearest_areas(code: str, limit: int = 5) -> list[str]:
    """For an unknown area code: known codes of its length that look like it, as `code name (name_en)`.

    Its siblings if it has a known parent (Chiang Mai's districts for 5099), else any area of its
    level, ranked by difflib's likeness to the code.
    """
    length = len(code) if len(code) in (2, 4, 6) else 2
    areas = _areas_of_length(length)
    by_code = {a[0]: a for a in areas}
    siblings = [c for c in by_code if len(code) > 2 and c.startswith(code[:-2])]
    chosen = difflib.get_close_matches(code, siblings or list(by_code), n=limit, cutoff=0.0)
    return [f"{c} {by_code[c][1]} ({by_code[c][2]})" for c in chosen]


def area_names(code: str) -> tuple[str, str] | None:
    """Thai and English name of a province, district, sub-district or village code; None if unknown.

    Villages have no names in geothai: หมู่ n of their sub-district (`Moo n, …` in English). A
    6-digit code at the village level (households whose village is unknown) is its sub-district.
    """
    if len(code) in (8, 10):  # a DOPA village, or TPMAP's 10-digit id (the DOPA village + 2 digits)
        sub = area_names(code[:6])
        moo = int(code[6:8])
        return None if sub is None else (f"หมู่ {moo} {sub[0]}", f"Moo {moo}, {sub[1]}")
    if not known_area_code(code):
        return None
    lookup = {2: geothai.province, 4: geothai.district, 6: geothai.subdistrict}[len(code)]
    area = lookup(code)
    # a municipal tambon (code >= 51) has no geothai name: its name comes from the export (areas table)
    return None if area is None else (area.name_th, area.name_en)
