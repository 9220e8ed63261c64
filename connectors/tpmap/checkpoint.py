"""Checkpoints of resumable publishing runs, one JSON file each, replaced atomically.

A checkpoint says: the first ``position`` events of the run's (deterministic) sequence are
acknowledged by Kafka, and anything the run published after them sits at or after ``offsets``
(topic -> partition -> offset) on its topics.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

IN_PROGRESS, DONE = "in-progress", "done"
Offsets = dict[str, dict[int, int]]


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` so that a crash leaves either the old or the new content, never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class Checkpoint:
    path: Path
    status: str = IN_PROGRESS
    position: int = 0
    offsets: Offsets = field(default_factory=dict)
    # what the run needs to report or resume (file name, data year, event time, summary)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status == DONE

    def save(self) -> None:
        doc = asdict(self)
        del doc["path"]
        write_atomically(self.path, json.dumps(doc, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        if not path.exists():
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
        offsets = {t: {int(p): o for p, o in parts.items()} for t, parts in doc["offsets"].items()}
        return cls(path, doc["status"], doc["position"], offsets, doc["info"])
