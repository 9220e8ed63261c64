"""Deterministic ids: the same input always gets the same id, so re-imports and redeliveries are idempotent."""

from __future__ import annotations

import hashlib
import time
import uuid

POVHUB_NAMESPACE = uuid.UUID("6f0c5a0e-2b1d-5c7e-9f3a-8d4b2e1c0a97")
_NAMESPACE_BYTES = POVHUB_NAMESPACE.bytes


def stable_id(*parts: object) -> str:
    """str(uuid.uuid5(POVHUB_NAMESPACE, the parts joined by \\x1f)) without building a UUID object
    (half the time: a TPMAP import makes one per household; tests/schemas compare the two)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "\x1f".join(map(str, parts)).encode()).digest()[:16])
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000
