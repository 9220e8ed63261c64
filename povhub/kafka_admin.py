"""Creates Povhub's topics (idempotently) with the partition counts co-partitioning needs."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from schemas.topics import Topics

log = logging.getLogger(__name__)


class TopicMismatch(RuntimeError):
    pass


def ensure_topics(bootstrap_servers: str, topics: Topics, partitions: int, replication_factor: int = 1) -> list[str]:
    """Create missing topics; refuse to run on existing ones with another partition count.

    Households are routed by ``hash(key) % partitions`` on every topic, so a source topic with a
    different count than the state topic would split a household across workers.
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","), client_id="povhub-admin")
    try:
        wanted = topics.all()
        existing = set(admin.list_topics())
        missing = {name: {"num_partitions": partitions, "replication_factor": replication_factor,
                          "configs": topics.config(fam)}
                   for name, fam in wanted.items() if name not in existing}
        if missing:
            try:
                admin.create_topics(missing, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass  # another process created them between list and create
        present = [n for n in wanted if n in existing]
        if present:
            for meta in admin.describe_topics(present):
                count = len(meta["partitions"])
                if count != partitions:
                    raise TopicMismatch(f"topic {meta['name']} has {count} partitions, POVHUB_PARTITIONS is "
                                        f"{partitions}; all co-partitioned topics must have the same count")
        return list(missing)
    finally:
        admin.close()
