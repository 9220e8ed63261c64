"""Small factories that turn settings into the objects the layers below take as parameters."""

from __future__ import annotations

from povhub.settings import Settings, SettingsError
from schemas.codec import Codec
from schemas.registry import SchemaRegistry


def codec_from(s: Settings) -> Codec:
    registry = SchemaRegistry(s.kafka.schema_registry_url) if s.kafka.schema_registry_url else None
    return Codec(registry=registry, topics=s.kafka.topics)


def require_bootstrap(s: Settings) -> str:
    if not s.kafka.bootstrap_servers:
        raise SettingsError("bad setting KAFKA_BOOTSTRAP_SERVERS: required for this command (not set)")
    return s.kafka.bootstrap_servers


def reachable_kafka(s: Settings) -> str:
    """The bootstrap address, once a broker answers there; Unreachable within seconds otherwise."""
    from povhub.kafka_probe import check_kafka

    bootstrap = require_bootstrap(s)
    check_kafka(bootstrap)
    return bootstrap


def require_secret(s: Settings) -> str:
    if not s.hub.pseudonym_secret:
        raise SettingsError("bad setting POVHUB_PSEUDONYM_SECRET: required to pseudonymise citizen IDs (not set)")
    return s.hub.pseudonym_secret


def with_running_worker_kafka(s: Settings) -> Settings:
    """Without KAFKA_BOOTSTRAP_SERVERS, the Kafka of the worker running on this data folder (the
    demo's embedded broker listens on a random port; povhub/worker_address.py)."""
    from povhub import worker_address

    if s.kafka.bootstrap_servers:
        return s
    running = worker_address.running(s.hub.data_dir)
    return s.model_copy(update={"kafka": s.kafka.model_copy(update={"bootstrap_servers": running.kafka_bootstrap})}) if running else s
