"""Area-code checks against the geothai list of DOPA codes: codes must exist and nest."""

from __future__ import annotations

import re

import geothai

_VILLAGE = re.compile(r"^[0-9]{8}$")  # not \d: it matches Thai digits too


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


def check_subdistrict(subdistrict: str, district: str) -> None:
    s = geothai.subdistrict(subdistrict)
    if s is None:
        raise AreaError(f"sub-district {subdistrict!r} is not a DOPA sub-district code")
    if s.district_code != district:
        raise AreaError(f"sub-district {subdistrict} belongs to district {s.district_code}, not {district}")


def check_village(village: str, subdistrict: str) -> None:
    if not _VILLAGE.match(village) or not village.startswith(subdistrict):
        raise AreaError(f"village {village!r} must be 8 digits starting with its sub-district {subdistrict}")


def check_area(province: str, district: str, subdistrict: str, village: str | None = None) -> None:
    check_province(province)
    check_district(district, province)
    check_subdistrict(subdistrict, district)
    if village is not None:
        check_village(village, subdistrict)


def known_area_code(code: str) -> bool:
    """Whether `code` is a DOPA province (2 digits), district (4) or sub-district (6) code."""
    lookup = {2: geothai.province, 4: geothai.district, 6: geothai.subdistrict}.get(len(code))
    return lookup is not None and code.isascii() and code.isdigit() and lookup(code) is not None
