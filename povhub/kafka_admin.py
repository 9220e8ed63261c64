"""Creates Povhub's topics (idempotently) with the partition counts co-partitioning needs."""

from __future__ import annotations

from pipeline.topics import TopicMismatch, ensure
from schemas.topics import Topics

__all__ = ["TopicMismatch", "ensure_topics"]


def ensure_topics(bootstrap_servers: str, topics: Topics, partitions: int, replication_factor: int = 1) -> list[str]:
    """Create missing topics; refuse to run on existing ones with another partition count."""
    return ensure(bootstrap_servers, "povhub-admin", {name: topics.config(fam) for name, fam in topics.all().items()},
                  partitions, replication_factor)
