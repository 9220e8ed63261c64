"""One raw Thai QM record (API item or export row) onto Kafka: its event, or a dead letter saying where it came from."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from connectors.thaiqm.events import SOURCE, kafka_key, to_event
from connectors.thaiqm.records import Feed, RecordError, masked, parse_record
from schemas.dead_letter import dead_letter
from schemas.topics import THAIQM_CASE

STAGE = "connector:thaiqm"
_HOUSE_CODE = re.compile(r"^\d{11}$")


@dataclass(frozen=True)
class Location:
    """Where a record came from: a request (method, path and query, item index) or a file and line."""

    request: str | None = None
    file: str | None = None
    line: int | None = None


@dataclass
class FeedCounts:
    read: int = 0
    published: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


class Intake:
    def __init__(self, publisher: Publisher, pseudonyms: Pseudonymiser) -> None:
        self.publisher = publisher
        self.pseudonyms = pseudonyms
        self.counts: dict[str, FeedCounts] = {}

    def accept(self, feed: Feed, raw: dict[str, Any], where: Location) -> None:
        counts = self.counts.setdefault(feed, FeedCounts())
        counts.read += 1
        try:
            event = to_event(parse_record(feed, raw), self.pseudonyms)
        except RecordError as e:
            counts.rejected[e.reason] += 1
            self.publisher.dead_letter(self._dead_letter(feed, raw, where, e))
            return
        self.publisher.publish(THAIQM_CASE, kafka_key(event), event)
        counts.published += 1

    def _dead_letter(self, feed: Feed, raw: dict[str, Any], where: Location, e: RecordError) -> dict[str, Any]:
        house = raw.get("house_code")
        record_id = f"{raw.get('case_id')}/{raw.get('problem_id') if feed == 'problems' else 'survey'}"
        return dead_letter(
            source=SOURCE, stage=STAGE, reason=e.reason, detail=e.detail, source_record_id=record_id,
            household_key=house if isinstance(house, str) and _HOUSE_CODE.match(house) else None,
            original=masked(raw), origin_file=where.file, origin_line=where.line, request_id=where.request)

    def flush(self) -> None:
        """Block until Kafka acknowledged everything accepted so far; raise PublishError otherwise."""
        self.publisher.flush()

    def lines(self) -> list[str]:
        out = []
        for feed, c in self.counts.items():
            out.append(f"{feed}: {c.read} read, {c.published} published, {sum(c.rejected.values())} rejected")
            out += [f"  rejected {reason}: {n}" for reason, n in sorted(c.rejected.items())]
        return out
