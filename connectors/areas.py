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
    """Whether `code` is a DOPA province (2 digits), district (4) or sub-district (6) code.

    TPMAP's municipal tambon codes are not: no list says which exist, so an authority's key names
    its district (which covers them) rather than a guessed code."""
    lookup = {2: geothai.province, 4: geothai.district, 6: geothai.subdistrict}.get(len(code))
    return lookup is not None and code.isascii() and code.isdigit() and lookup(code) is not None
