"""Small factories that turn settings into the objects the layers below take as parameters."""

from __future__ import annotations

from povhub.settings import Settings, SettingsError
from schemas.codec import Codec
from schemas.registry import SchemaRegistry


def codec_from(s: Settings) -> Codec:
    registry = SchemaRegistry(s.schema_registry_url) if s.schema_registry_url else None
    return Codec(registry=registry, topics=s.topics)


def require_bootstrap(s: Settings) -> str:
    if not s.kafka_bootstrap_servers:
        raise SettingsError("bad setting KAFKA_BOOTSTRAP_SERVERS: required for this command (not set)")
    return s.kafka_bootstrap_servers


def require_secret(s: Settings) -> str:
    if not s.pseudonym_secret:
        raise SettingsError("bad setting POVHUB_PSEUDONYM_SECRET: required to pseudonymise citizen IDs (not set)")
    return s.pseudonym_secret
