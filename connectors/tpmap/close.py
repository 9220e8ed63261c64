"""Closing a TPMAP data year: households of year Y-1 that are not in year Y left the target list.

A year may arrive as many files (one per province, say) over several commands, and a household
missing from the files imported so far may be in one still to come. So leaving is decided only
by an explicit close, over the year's completed imports, and only in provinces that year Y has
data for: a province with no Y data is reported as not compared, never emptied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from connectors.publisher import Publisher
from connectors.tpmap.resumable import DEFAULT_CHUNK, ResumablePublisher
from connectors.tpmap.households import left_target_list_event
from connectors.tpmap.state import Area, TpmapState
from schemas.topics import TPMAP_HOUSEHOLD


class CloseError(RuntimeError):
    pass


@dataclass
class CloseSummary:
    data_year: int
    previous_households: int = 0
    households: int = 0
    left_target_list: int = 0
    provinces_not_compared: list[str] = field(default_factory=list)
    already_closed: bool = False

    def lines(self) -> list[str]:
        y = self.data_year
        head = f"data year {y} closed against {y - 1}" + (" earlier; nothing published" if self.already_closed else "")
        out = [(f"{head}: {self.households} households in {y}, {self.previous_households} in {y - 1}, "
                f"{self.left_target_list} left-target-list events")]
        if self.provinces_not_compared:
            out.append(f"  provinces with {y - 1} data but none in {y}, not compared: "
                       + ", ".join(self.provinces_not_compared))
        return out


def _event_time(state: TpmapState, year: int) -> int:
    # when year Y's export was made (its files' times), not when the close ran: a re-run builds the same events
    return max(c.info["event_time"] for c in state.imports() if c.done and c.info.get("data_year") == year)


def leavers(state: TpmapState, year: int, summary: CloseSummary) -> list[tuple[str, Area]]:
    """Households of year-1 missing from year, in house-code order, within provinces year covers."""
    current: set[str] = set()
    provinces: set[str] = set()
    for house, area in state.households(year):
        current.add(house)
        provinces.add(area[0])
    previous: dict[str, Area] = {}
    for house, area in state.households(year - 1):
        previous.setdefault(house, area)
    summary.households, summary.previous_households = len(current), len(previous)
    summary.provinces_not_compared = sorted({a[0] for a in previous.values()} - provinces)
    return sorted((h, a) for h, a in previous.items() if h not in current and a[0] in provinces)


def close_year(year: int, publisher: Publisher, state: TpmapState, bootstrap: str,
               chunk: int = DEFAULT_CHUNK) -> CloseSummary:
    """Publish LEFT_TARGET_LIST events for `year`; resumable and idempotent like an import."""
    unfinished = [c.info.get("file", c.path.name) for c in state.imports()
                  if not c.done and c.info.get("data_year") in (year, year - 1, None)]
    if unfinished:
        raise CloseError(f"cannot close data year {year}: import of {', '.join(unfinished)} did not finish "
                         f"(run it again; it resumes)")
    if not state.year_lists(year):
        raise CloseError(f"cannot close data year {year}: no completed import of that year")
    checkpoint = state.close_checkpoint(year)
    if checkpoint.done:
        return CloseSummary(**{**checkpoint.info["summary"], "already_closed": True})
    summary = CloseSummary(year)
    left = leavers(state, year, summary)
    event_time = _event_time(state, year)
    sink = ResumablePublisher(publisher, checkpoint, bootstrap, (TPMAP_HOUSEHOLD,), chunk)
    for house, area in left:
        sink.send(TPMAP_HOUSEHOLD, house, lambda house=house, area=area: left_target_list_event(
            house, area, year, event_time))
    summary.left_target_list = len(left)
    sink.finish(summary=asdict(summary))
    return summary
