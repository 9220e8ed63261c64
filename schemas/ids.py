"""Deterministic ids: the same input always gets the same id, so re-imports and redeliveries are idempotent."""

from __future__ import annotations

import time
import uuid

POVHUB_NAMESPACE = uuid.UUID("6f0c5a0e-2b1d-5c7e-9f3a-8d4b2e1c0a97")


def stable_id(*parts: object) -> str:
    return str(uuid.uuid5(POVHUB_NAMESPACE, "\x1f".join(str(p) for p in parts)))


def now_ms() -> int:
    return time.time_ns() // 1_000_000
