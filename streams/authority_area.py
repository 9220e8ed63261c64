"""A local authority may change only the households in its own areas (pure logic).

The ingest API refuses an update whose area fields lie outside the sender's key, but those fields
are the sender's word: an authority could name a household elsewhere by its house code (or by a
member's citizen ID, re-keyed here to that household) and set its own area on the update. So the
reconcile stage checks the household's real area, the one it already knows (``known_area``),
against the authority's areas that the API copied from the key into the event.

A household no event has reached yet has no known area: its first update is accepted when the
update's own area lies inside the authority's areas (the API guarantees that much), and that area
becomes the household's until TPMAP or a newer event says otherwise.
"""

from __future__ import annotations

from typing import Any

from schemas.topics import LOCALGOV_UPDATE
from streams.household import State, known_area

OUTSIDE_AREA = "outside-area"


def _code(area: dict[str, Any]) -> str:
    """The most precise code of an area (a sub-district, as every source names one)."""
    return area["subdistrict"] or area["district"] or area["province"] or ""


def outside_authority(state: State, family: str, event: dict[str, Any]) -> str | None:
    """Why the event may not change this household, or None when it may.

    Only อปท. updates are restricted, and only those that carry their authority's areas: TPMAP and
    Thai QM act nationally, and an update without areas comes from an authority that may act
    anywhere (or was written before updates carried them)."""
    areas = event.get("authority_areas") if family == LOCALGOV_UPDATE.name else None
    if areas is None:
        return None
    known = known_area(state)
    area, whose = (known, "the household is") if known is not None else (event, "the update (first for this household) is")
    code = _code(area)
    if any(code.startswith(a) for a in areas):
        return None
    return f"{whose} in {code or 'no known area'}, outside the areas of {event['source']} ({', '.join(areas) or 'none'})"
