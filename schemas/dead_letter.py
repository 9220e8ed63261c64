"""Builds ``povhub.dlq.v1`` records, the one shape every stage uses to reject input."""

from __future__ import annotations

import json
from typing import Any

from schemas.ids import now_ms, stable_id


def dead_letter(*, source: str, stage: str, reason: str, detail: str, source_record_id: str,
                household_key: str | None = None, area: dict[str, str | None] | None = None,
                original_key: bytes | None = None, original_value: bytes | None = None,
                original: Any = None, origin_topic: str | None = None, origin_partition: int | None = None,
                origin_offset: int | None = None, origin_file: str | None = None, origin_line: int | None = None,
                request_id: str | None = None, event_time: int | None = None) -> dict[str, Any]:
    """A dead-letter record; its id derives from where the input came from, so a re-run rejects it once."""
    area = area or {}
    now = now_ms()
    origin = (origin_topic, origin_partition, origin_offset, origin_file, origin_line, request_id)
    return {
        "event_id": stable_id("dlq", stage, reason, source_record_id, *origin),
        "source": source,
        "source_record_id": source_record_id,
        "event_time": event_time if event_time is not None else now,
        "ingest_time": now,
        "schema_version": 1,
        "household_key": household_key,
        "province": area.get("province"),
        "district": area.get("district"),
        "subdistrict": area.get("subdistrict"),
        "village": area.get("village"),
        "stage": stage,
        "reason": reason,
        "detail": detail,
        "original_key": original_key,
        "original_value": original_value,
        "original_json": None if original is None else json.dumps(original, ensure_ascii=False, default=str),
        "origin_topic": origin_topic,
        "origin_partition": origin_partition,
        "origin_offset": origin_offset,
        "origin_file": origin_file,
        "origin_line": origin_line,
        "request_id": request_id,
    }
