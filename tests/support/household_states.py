"""The household states a worker published, read back for assertions."""

from __future__ import annotations

import time
from typing import Any

from bench.household_events import stable
from schemas.codec import Codec
from schemas.topics import HOUSEHOLD_STATE, Topics
from tests.support.kafka_read import read_topic


def latest_states(bootstrap: str, topics: Topics, settle_s: float = 2.0) -> dict[str, dict[str, Any]]:
    """Household -> its state with the greatest version on the state topic (stable fields)."""
    codec = Codec(topics=topics)
    latest: dict[str, dict[str, Any]] = {}
    for m in read_topic(bootstrap, topics.name(HOUSEHOLD_STATE), settle_s=settle_s):
        r = codec.decode(m.value, HOUSEHOLD_STATE.name)
        if r["household_key"] not in latest or r["version"] >= latest[r["household_key"]]["version"]:
            latest[r["household_key"]] = r
    return {house: stable(r) for house, r in latest.items()}


def wait_for_states(bootstrap: str, topics: Topics, want: dict[str, dict[str, Any]], timeout_s: float,
                    alive=lambda: True) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    got: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and alive():
        got = latest_states(bootstrap, topics)
        if got == want:
            return got
        time.sleep(1)
    return got
