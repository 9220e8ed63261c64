"""Topic contract: event families, their default topic names, keys and cleanup policies.

Names are the README's (Topics and events). Every name is ``prefix + suffix`` so a deployment can run several
environments on one cluster (``POVHUB_TOPIC_PREFIX``); the default prefix gives the documented names.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "povhub."
# Source and state topics are co-partitioned by household key: the stages' state stores rely on
# the same household landing in the same partition number on every topic.
DEFAULT_PARTITIONS = 12
# Source topics are the system of record for replay; five years covers two จปฐ. rounds and audits.
LONG_RETENTION_MS = 5 * 366 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Family:
    name: str
    suffix: str
    schema_stem: str
    compacted: bool = False


TPMAP_HOUSEHOLD = Family("tpmap.household", "tpmap.household.v1", "tpmap_household")
THAIQM_CASE = Family("thaiqm.case", "thaiqm.case.v1", "thaiqm_case")
LOCALGOV_UPDATE = Family("localgov.update", "localgov.update.v1", "localgov_update")
HOUSEHOLD_STATE = Family("household.state", "household.state.v1", "household_state", compacted=True)
ALERT = Family("alert", "alert.v1", "alert")
DEAD_LETTER = Family("dlq", "dlq.v1", "dead_letter")
# Internal to the reconcile stage: person->household facts to the persons' partitions and person-only
# events to their households' partitions (streams/routing.py). Co-partitioned like every other topic.
RECONCILE_ROUTING = Family("reconcile.routing", "reconcile.routing.v1", "reconcile_routing")

FAMILIES: tuple[Family, ...] = (TPMAP_HOUSEHOLD, THAIQM_CASE, LOCALGOV_UPDATE, HOUSEHOLD_STATE, ALERT, DEAD_LETTER,
                                RECONCILE_ROUTING)
SOURCE_FAMILIES: tuple[Family, ...] = (TPMAP_HOUSEHOLD, THAIQM_CASE, LOCALGOV_UPDATE)


def family(name: str) -> Family:
    for f in FAMILIES:
        if f.name == name:
            return f
    raise KeyError(f"unknown event family {name!r}; known: {', '.join(f.name for f in FAMILIES)}")


@dataclass(frozen=True)
class Topics:
    """Topic names for one deployment (one prefix)."""

    prefix: str = DEFAULT_PREFIX

    def name(self, fam: Family) -> str:
        return self.prefix + fam.suffix

    def config(self, fam: Family) -> dict[str, str]:
        if fam.compacted:
            return {"cleanup.policy": "compact"}
        return {"cleanup.policy": "delete", "retention.ms": str(LONG_RETENTION_MS)}

    def all(self) -> dict[str, Family]:
        return {self.name(f): f for f in FAMILIES}
