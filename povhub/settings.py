"""Configuration from environment variables (and a ``.env`` file), validated at start-up.

Every bad value stops start-up with one line naming the variable (see ``load_settings``).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import DEFAULT_PARTITIONS, DEFAULT_PREFIX, Topics
from sinks.clickhouse import parse_dsn

_HOSTPORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


class SettingsError(ValueError):
    """A configuration value is invalid; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(Path(".povhub"), validation_alias=AliasChoices("POVHUB_DATA_DIR"),
                           description="local state: embedded ClickHouse, broker logs, checkpoints")
    kafka_bootstrap_servers: str | None = Field(None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"),
                                                description="host:port[,host:port]; unset = embedded broker (demo only)")
    clickhouse_url: str | None = Field(None, validation_alias=AliasChoices("CLICKHOUSE_URL"),
                                       description="chdb://PATH or http(s)://user:pass@host:8123/db")
    schema_registry_url: str | None = Field(None, validation_alias=AliasChoices("SCHEMA_REGISTRY_URL"))
    topic_prefix: str = Field(DEFAULT_PREFIX, validation_alias=AliasChoices("POVHUB_TOPIC_PREFIX"))
    partitions: int = Field(DEFAULT_PARTITIONS, ge=1, le=10_000, validation_alias=AliasChoices("POVHUB_PARTITIONS"))
    replication_factor: int = Field(1, ge=1, le=10, validation_alias=AliasChoices("POVHUB_REPLICATION_FACTOR"))
    pseudonym_secret: str | None = Field(None, min_length=16, validation_alias=AliasChoices("POVHUB_PSEUDONYM_SECRET"),
                                         description="HMAC key for citizen-ID pseudonyms; keep it in a secret store")
    app_id: str = Field("povhub", pattern=r"^[A-Za-z0-9._-]+$", validation_alias=AliasChoices("POVHUB_APP_ID"))
    web_port: int = Field(6066, ge=1, le=65535, validation_alias=AliasChoices("POVHUB_WEB_PORT"))
    web_host: str = Field("127.0.0.1", validation_alias=AliasChoices("POVHUB_WEB_HOST"))
    session_timeout_s: float = Field(10.0, gt=1, le=300, validation_alias=AliasChoices("POVHUB_SESSION_TIMEOUT_S"))
    single_record_batches: bool = Field(False, validation_alias=AliasChoices("POVHUB_SINGLE_RECORD_BATCHES"),
                                        description="set by the demo for the embedded broker (see streams/app.py)")
    loader_batch_size: int = Field(20_000, ge=1, validation_alias=AliasChoices("POVHUB_LOADER_BATCH_SIZE"))
    loader_batch_seconds: float = Field(1.0, gt=0, validation_alias=AliasChoices("POVHUB_LOADER_BATCH_SECONDS"))

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        hosts = [h.strip() for h in v.split(",")]
        bad = [h for h in hosts if not _HOSTPORT.match(h)]
        if bad:
            raise ValueError(f"expected host:port[,host:port], got {bad[0]!r}")
        return ",".join(hosts)

    @field_validator("clickhouse_url")
    @classmethod
    def _dsn(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        parse_dsn(v)
        return v

    @field_validator("schema_registry_url")
    @classmethod
    def _registry(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"expected an http(s):// URL, got {v!r}")
        return v

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"


def _variable(loc: tuple) -> str:
    name = str(loc[0]) if loc else "?"
    field = Settings.model_fields.get(name)
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return name


def load_settings() -> Settings:
    """Build settings from the environment; raise SettingsError with one line naming the variable."""
    try:
        return Settings()
    except ValidationError as e:
        err = e.errors()[0]
        variable = _variable(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        shown = "" if "SECRET" in variable else f" (got {err.get('input')!r})"
        raise SettingsError(f"bad setting {variable}: {msg}{shown}") from None
