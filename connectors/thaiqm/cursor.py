"""The poller's persisted cursor: per feed, the keyset position up to which Kafka has every event.

One JSON file per (API, topic prefix): another source or another deployment's topics start from
the beginning. Written atomically (temp file, fsync, rename), so a crash leaves the old cursor or
the new one, never a torn file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from connectors.thaiqm.client import Position
from connectors.thaiqm.records import Feed


class CursorStore:
    def __init__(self, folder: Path, api_url: str, topic_prefix: str) -> None:
        digest = hashlib.sha256(f"{api_url.rstrip('/')}\n{topic_prefix}".encode()).hexdigest()[:16]
        self.path = Path(folder) / f"thaiqm-cursor-{digest}.json"
        self._doc: dict = {"api": api_url, "topic_prefix": topic_prefix, "feeds": {}}
        if self.path.exists():
            self._doc = json.loads(self.path.read_text(encoding="utf-8"))

    def get(self, feed: Feed) -> Position | None:
        saved = self._doc["feeds"].get(feed)
        return Position(**saved) if saved else None

    def save(self, feed: Feed, position: Position) -> None:
        self._doc["feeds"][feed] = asdict(position)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(self._doc, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
