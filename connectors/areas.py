"""Area-code checks against the geothai list of DOPA codes: codes must exist and nest."""

from __future__ import annotations

import re

import geothai

_VILLAGE = re.compile(r"^\d{8}$")


class AreaError(ValueError):
    pass


def check_area(province: str, district: str, subdistrict: str, village: str | None = None) -> None:
    if geothai.province(province) is None:
        raise AreaError(f"province {province!r} is not a DOPA province code")
    d = geothai.district(district)
    if d is None:
        raise AreaError(f"district {district!r} is not a DOPA district code")
    if d.province_code != province:
        raise AreaError(f"district {district} belongs to province {d.province_code}, not {province}")
    s = geothai.subdistrict(subdistrict)
    if s is None:
        raise AreaError(f"sub-district {subdistrict!r} is not a DOPA sub-district code")
    if s.district_code != district:
        raise AreaError(f"sub-district {subdistrict} belongs to district {s.district_code}, not {district}")
    if village is not None and (not _VILLAGE.match(village) or not village.startswith(subdistrict)):
        raise AreaError(f"village {village!r} must be 8 digits starting with its sub-district {subdistrict}")
