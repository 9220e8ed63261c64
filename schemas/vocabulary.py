"""The domain's words, defined once: area levels and fields, the ศจพ. levels an alert climbs,
severities, a household's stage and the five dimensions.

Names follow the contracts (the Avro schemas; tests/schemas/test_vocabulary.py checks them against every
schema that spells them). Two words are kept apart on purpose: a *stage* is a household's
อยู่รอด/พอเพียง/ยั่งยืน, never a pipeline step (those are *processors*); an *area level* is where a
figure is counted (national to village), a *ศจพ. level* is which centre an alert is with.
"""

from __future__ import annotations

# Where figures are counted, from the top; a level's area code is this many digits of the DOPA code
# (a village's 8 digits of TPMAP, 10 with the municipal prefix the village lists also carry).
AREA_CODE_LENGTH = {"national": 0, "province": 2, "district": 4, "subdistrict": 6, "village": 8}
AREA_LEVELS = tuple(AREA_CODE_LENGTH)
VILLAGE_CODE_LENGTHS = (8, 10)
# The area fields of every event and state record, from the top.
AREA_FIELDS = AREA_LEVELS[1:]

# The ศจพ. (poverty-eradication operations centre) levels an alert is raised at and escalates
# through, from the lowest up (alert.v1 ``level``).
SJP_LEVELS = ("subdistrict", "district", "province", "national")
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")  # lowest first (alert.v1 ``severity``)

# A household's stage: อยู่รอด, พอเพียง, ยั่งยืน (household_state ``stage``).
STAGES = ("SURVIVE", "SUFFICIENT", "SUSTAINABLE")

# The five dimensions of the basic-needs indicators (``failed_dimensions``, Thai QM ``dimension``);
# ClickHouse stores them as these codes, TPMAP's own exports spell the last "accessibility".
DIMENSIONS = ("health", "living", "education", "income", "access")
DIMENSION_CODES = {name: code for code, name in enumerate(DIMENSIONS, start=1)}
TPMAP_DIMENSIONS = ("health", "living", "education", "income", "accessibility")
