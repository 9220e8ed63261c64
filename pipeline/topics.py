"""Topic admin: create what is missing, refuse a partition count co-partitioning cannot live with."""

from __future__ import annotations

from typing import Any

from kafka.errors import TopicAlreadyExistsError

from pipeline.clients import admin


class TopicMismatch(RuntimeError):
    pass


def ensure(bootstrap_servers: str, client_id: str, wanted: dict[str, dict[str, Any]], partitions: int,
           replication_factor: int = 1) -> list[str]:
    """Create the topics of ``wanted`` (name -> topic configs) that are missing; return their names.

    Households are routed by ``hash(key) % partitions`` on every topic, so an existing topic with
    another count would split a household across workers: ``TopicMismatch``.
    """
    client = admin(bootstrap_servers, client_id)
    try:
        existing = set(client.list_topics())
        missing = {name: {"num_partitions": partitions, "replication_factor": replication_factor,
                          "configs": configs}
                   for name, configs in wanted.items() if name not in existing}
        if missing:
            try:
                client.create_topics(missing, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass  # another process created them between list and create
        present = [n for n in wanted if n in existing]
        if present:
            for meta in client.describe_topics(present):
                count = len(meta["partitions"])
                if count != partitions:
                    raise TopicMismatch(f"topic {meta['name']} has {count} partitions, POVHUB_PARTITIONS is "
                                        f"{partitions}; all co-partitioned topics must have the same count")
        return list(missing)
    finally:
        client.close()
