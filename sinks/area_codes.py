"""The area codes of a record must nest, because the level views group by code prefix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.vocabulary import AREA_CODE_LENGTH, AREA_FIELDS, VILLAGE_CODE_LENGTHS

# a village is the 8-digit DOPA code or TPMAP's 10-digit id (connectors/areas.py)
_LEVELS = tuple((field, VILLAGE_CODE_LENGTHS if field == "village" else (AREA_CODE_LENGTH[field],))
                for field in AREA_FIELDS)


def check_nested(record: Mapping[str, Any]) -> None:
    """Raise ValueError unless each code is all digits, of its level's length, inside its parent.

    The connectors check codes against geothai; this cheaper check keeps a record from any
    other producer from counting in one province at one level and another at the next.
    """
    parent = ""
    for field, lengths in _LEVELS:
        code = record[field]
        if code is None and field == "village":
            return
        if not (isinstance(code, str) and len(code) in lengths and code.isdigit() and code.startswith(parent)):
            length = " or ".join(map(str, lengths))
            raise ValueError(f"{field} {code!r} is not {length} digits starting with {parent or 'a province'}")
        parent = code
