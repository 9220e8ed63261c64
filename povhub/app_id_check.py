"""At a worker's start: is the state its stages are about to restore this deployment's own?

A stage's consumer group, changelog topics and transactional ids are named by the app id (as Kafka
Streams names them by application.id), its input topics by the topic prefix. Two deployments on one
broker with the same app id and different prefixes share the state: the second restores the first's
households and counts its own as duplicates. Unset, POVHUB_APP_ID follows the prefix
(``settings.app_id_for``), so that takes an explicit id used twice; this module looks for its trace
in Kafka and says so, and for a deployment that ran under the fixed id ``povhub`` before the id
followed the prefix.

- A changelog holding records while the group has no committed offset on any of this deployment's
  input topics: one warning line, and the worker goes on. Not a refusal: a group idle longer than the
  broker's ``offsets.retention.minutes`` loses its committed offsets while its changelogs stay
  (compacted), and re-reading its inputs over the restored state is then right (every event a
  duplicate, nothing re-emitted); the operator who shared an id reads the line and sets one.
- POVHUB_APP_ID unset, a derived id other than ``povhub``, this group without committed offsets on
  the inputs but the ``povhub`` group of the same stage with some: the deployment ran under the old
  fixed id. Starting afresh would process every event again (alerts and webhooks too), so the worker
  refuses with one line naming both choices.

Advisory: a Kafka error here is logged (debug) and the stages start as before, where the same
error is handled as any other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from pipeline.clients import admin, close_quietly, reader
from pipeline.commit_after import GroupConfig
from pipeline.liveness import Bounds
from pipeline.transaction import ProcessorConfig
from povhub.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# the app id of every deployment before it followed the topic prefix (and still of the default prefix)
LEGACY_APP_ID = "povhub"


@dataclass(frozen=True)
class Group:
    """A stage's consumer group as this deployment names it."""

    name: str
    inputs: tuple[str, ...]
    changelogs: tuple[str, ...]
    partitions: int  # of each changelog

    @staticmethod
    def of(cfg: ProcessorConfig | GroupConfig) -> Group:
        if isinstance(cfg, ProcessorConfig):
            return Group(cfg.group, cfg.inputs, tuple(cfg.changelog(s) for s in cfg.stores), cfg.partitions)
        return Group(cfg.group, cfg.topics, (), 0)


@dataclass(frozen=True)
class Found:
    """What Kafka holds for one group."""

    changelog_records: int  # committed records (and markers) in its changelogs
    own_offsets: bool  # the group has a committed offset on one of its inputs
    legacy_offsets: bool  # the LEGACY_APP_ID group of the same stage has one


def judge(app_id: str, explicit: bool, prefix: str, found: dict[Group, Found]) -> tuple[bool, str] | None:
    """(refuse, one line) for the groups whose state is not this deployment's own, else None."""
    strays = {g: f for g, f in found.items() if not f.own_offsets}
    legacy = [LEGACY_APP_ID + g.name.removeprefix(app_id) for g, f in strays.items() if f.legacy_offsets]
    if legacy and not explicit and app_id != LEGACY_APP_ID:
        return True, (f"bad setting POVHUB_APP_ID: this deployment's topics ({prefix}*) were processed by "
                      f"{', '.join(legacy)} (app id '{LEGACY_APP_ID}'); unset, POVHUB_APP_ID now follows "
                      f"POVHUB_TOPIC_PREFIX ('{app_id}') and the stages would process every event again: set "
                      f"POVHUB_APP_ID={LEGACY_APP_ID} to keep their state, or POVHUB_APP_ID={app_id} to start afresh")
    restored = {g.name: f.changelog_records for g, f in strays.items() if f.changelog_records}
    if restored:
        return False, (f"{', '.join(restored)}: the changelogs hold state ({sum(restored.values())} offsets) but "
                       f"no committed offset on this deployment's topics ({prefix}*): another deployment with "
                       f"POVHUB_APP_ID={app_id} and another POVHUB_TOPIC_PREFIX may have written it, and here its "
                       f"households would count as duplicates; give each deployment its own POVHUB_APP_ID (unset, "
                       f"it follows POVHUB_TOPIC_PREFIX). If this deployment was stopped longer than the broker's "
                       f"offsets.retention.minutes, its offsets expired and this is expected")
    return None


def check_app_id(s: Settings, bootstrap: str, configs: list[ProcessorConfig | GroupConfig],
                 bounds: Bounds) -> None:
    """Judge the stages' groups: log the warning line, or raise SettingsError for a refusal."""
    explicit = s.hub.app_id is not None
    client = consumer = None
    try:
        # one admin client and one consumer for every group (a worker has a dozen)
        client = admin(bootstrap, "povhub-app-id-check")
        consumer = reader(bootstrap, "povhub-app-id-check")
        existing = set(client.list_topics())  # asking a consumer about a missing topic could create it
        found = {g: _found(client, consumer, existing, g, s.app_id, explicit, bounds) for g in map(Group.of, configs)}
    except KafkaError as e:
        log.debug("app id check skipped: %r", e)
        return
    finally:
        if consumer is not None:
            close_quietly(consumer, bounds)
        if client is not None:
            client.close()
    verdict = judge(s.app_id, explicit, s.kafka.topic_prefix, found)
    if verdict is not None:
        refuse, line = verdict
        if refuse:
            raise SettingsError(line)
        log.warning("%s", line)


def _found(client: KafkaAdminClient, consumer: KafkaConsumer, existing: set[str], group: Group, app_id: str,
           explicit: bool, bounds: Bounds) -> Found:
    # the changelogs first: one transaction commits a batch's changelog records and its offsets, so
    # offsets read after the records see that commit (unless its markers are still being written:
    # then, on a deployment's very first batches only, a needless warning)
    records = _records(consumer, existing, group, bounds)
    legacy = None if explicit or app_id == LEGACY_APP_ID else LEGACY_APP_ID + group.name.removeprefix(app_id)
    own = _has_offsets(client, group.name, group.inputs)
    old = legacy is not None and not own and _has_offsets(client, legacy, group.inputs)
    return Found(records, own, old)


def _has_offsets(client: KafkaAdminClient, group: str, inputs: tuple[str, ...]) -> bool:
    offsets = client.list_group_offsets(group).get(group, {})
    return any(tp.topic in inputs and meta.offset >= 0 for tp, meta in offsets.items())


def _records(consumer: KafkaConsumer, existing: set[str], group: Group, bounds: Bounds) -> int:
    tps = [TopicPartition(t, p) for t in group.changelogs if t in existing for p in range(group.partitions)]
    if not tps:
        return 0
    starts = consumer.beginning_offsets(tps, timeout_ms=bounds.block_ms)
    ends = consumer.end_offsets(tps, timeout_ms=bounds.block_ms)
    return sum(ends[tp] - starts[tp] for tp in tps)
