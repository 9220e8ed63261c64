"""Configuration from environment variables (and a ``.env`` file), validated at start-up.

Every bad value stops start-up with one line naming the variable (see ``load_settings``).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import (
    AliasChoices,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.stores.choose import StateSettingError, state_settings
from schemas.topics import DEFAULT_PARTITIONS, DEFAULT_PREFIX, Topics
from sinks.clickhouse import ServerDsn, parse_dsn
from sinks.ddl import check_cluster_name

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
    clickhouse_cluster: str | None = Field(None, validation_alias=AliasChoices("CLICKHOUSE_CLUSTER"),
                                           description="run migrations ON CLUSTER with Replicated engines")
    schema_registry_url: str | None = Field(None, validation_alias=AliasChoices("SCHEMA_REGISTRY_URL"))
    topic_prefix: str = Field(DEFAULT_PREFIX, validation_alias=AliasChoices("POVHUB_TOPIC_PREFIX"))
    partitions: int = Field(DEFAULT_PARTITIONS, ge=1, le=10_000, validation_alias=AliasChoices("POVHUB_PARTITIONS"))
    replication_factor: int = Field(1, ge=1, le=10, validation_alias=AliasChoices("POVHUB_REPLICATION_FACTOR"))
    pseudonym_secret: str | None = Field(None, min_length=16, validation_alias=AliasChoices("POVHUB_PSEUDONYM_SECRET"),
                                         description="HMAC key for citizen-ID pseudonyms; keep it in a secret store")
    app_id: str = Field("povhub", pattern=r"^[A-Za-z0-9._-]+$", validation_alias=AliasChoices("POVHUB_APP_ID"))
    worker_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$", validation_alias=AliasChoices("POVHUB_WORKER_ID"),
                                  description="stable per worker across restarts (transactional ids); "
                                              "unset = host name and web port")
    web_port: int = Field(6066, ge=1, le=65535, validation_alias=AliasChoices("POVHUB_WEB_PORT"))
    web_host: str = Field("127.0.0.1", validation_alias=AliasChoices("POVHUB_WEB_HOST"))
    ingest_host: str = Field("127.0.0.1", min_length=1, validation_alias=AliasChoices("POVHUB_INGEST_HOST"))
    ingest_port: int = Field(8088, ge=1, le=65535, validation_alias=AliasChoices("POVHUB_INGEST_PORT"))
    ingest_keys_file: Path | None = Field(None, validation_alias=AliasChoices("POVHUB_INGEST_KEYS_FILE"),
                                          description="hashed API keys of the local authorities")
    ingest_rate_per_s: float = Field(10.0, gt=0, le=10_000, validation_alias=AliasChoices("POVHUB_INGEST_RATE_PER_S"))
    ingest_burst: int = Field(20, ge=1, le=100_000, validation_alias=AliasChoices("POVHUB_INGEST_BURST"))
    ingest_ack_timeout_s: float = Field(10.0, gt=0, le=120, validation_alias=AliasChoices("POVHUB_INGEST_ACK_TIMEOUT_S"),
                                        description="how long a request waits for Kafka's ack before answering 503")
    ingest_max_body_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024, validation_alias=AliasChoices("POVHUB_INGEST_MAX_BODY_BYTES"),
        description="larger request bodies get 413 before they are read; a full batch of 500 typical updates is ~300 KB")
    session_timeout_s: float = Field(10.0, gt=1, le=300, validation_alias=AliasChoices("POVHUB_SESSION_TIMEOUT_S"))
    kafka_block_s: float = Field(30.0, ge=1, le=600, validation_alias=AliasChoices("POVHUB_KAFKA_BLOCK_S"),
                                 description="bound of every blocking Kafka call of a processor (transaction "
                                             "commit, offsets, flush, restore); on expiry it starts over")
    stall_s: float = Field(10.0, ge=1, le=3600, validation_alias=AliasChoices("POVHUB_STALL_S"),
                           description="a processor whose loop has not come back for this long is stalled: "
                                       "/health answers 503")
    watchdog_s: float = Field(60.0, ge=1, le=3600, validation_alias=AliasChoices("POVHUB_WATCHDOG_S"),
                              description="a Kafka call not back after this long is abandoned and the processor "
                                          "starts over")
    recovery_limit_s: float = Field(300.0, ge=10, le=86_400, validation_alias=AliasChoices("POVHUB_RECOVERY_LIMIT_S"),
                                    description="a processor without progress for this long while it recovers "
                                                "makes the worker exit with status 75")
    pending_ttl_s: float = Field(7 * 24 * 3600.0, gt=0, validation_alias=AliasChoices("POVHUB_PENDING_TTL_S"),
                                 description="how long a person-only event waits for its person's household")
    pending_check_s: float = Field(60.0, gt=0, le=3600, validation_alias=AliasChoices("POVHUB_PENDING_CHECK_S"))
    pending_max_per_person: int = Field(100, ge=1, validation_alias=AliasChoices("POVHUB_PENDING_MAX_PER_PERSON"))
    pending_max_total: int = Field(200_000, ge=1, validation_alias=AliasChoices("POVHUB_PENDING_MAX_TOTAL"))
    state_rules_file: Path | None = Field(None, validation_alias=AliasChoices("POVHUB_STATE_RULES_FILE"),
                                          description="stage and flag rules; unset = streams/data/state_rules.json")
    alert_rules_file: Path | None = Field(None, validation_alias=AliasChoices("POVHUB_ALERT_RULES_FILE"),
                                          description="crisis-alert rules; unset = streams/data/alert_rules.json")
    alert_check_s: float = Field(60.0, gt=0, le=3600, validation_alias=AliasChoices("POVHUB_ALERT_CHECK_S"),
                                 description="how often the worker re-checks time-based alert rules and SLAs")
    webhooks_file: Path | None = Field(None, validation_alias=AliasChoices("POVHUB_WEBHOOKS_FILE"),
                                       description="alert webhook targets per level and area; unset = no webhooks")
    clickhouse_off_file: Path | None = Field(None, validation_alias=AliasChoices("POVHUB_CLICKHOUSE_OFF_FILE"),
                                             description="TEST ONLY: inserts fail as in an outage while this file exists")
    clock_offset_file: Path | None = Field(None, validation_alias=AliasChoices("POVHUB_CLOCK_OFFSET_FILE"),
                                           description="TEST ONLY: seconds added to the alert clock, read from this file")
    loader_batch_size: int = Field(20_000, ge=1, validation_alias=AliasChoices("POVHUB_LOADER_BATCH_SIZE"))
    loader_batch_seconds: float = Field(1.0, gt=0, validation_alias=AliasChoices("POVHUB_LOADER_BATCH_SECONDS"))
    dashboard_host: str = Field("127.0.0.1", min_length=1, validation_alias=AliasChoices("POVHUB_DASHBOARD_HOST"),
                                description="where `povhub web` (the centres' web page) listens")
    dashboard_port: int = Field(8070, ge=1, le=65535, validation_alias=AliasChoices("POVHUB_DASHBOARD_PORT"))
    dashboard_secret: str | None = Field(None, min_length=16, validation_alias=AliasChoices("POVHUB_DASHBOARD_SECRET"),
                                         description="signs the session cookies; unset = made once in DATA_DIR")
    dashboard_cookie_secure: bool = Field(True, validation_alias=AliasChoices("POVHUB_DASHBOARD_COOKIE_SECURE"),
                                          description="session cookie only over HTTPS; false only on a loopback demo")
    dashboard_users_file: Path | None = Field(None, validation_alias=AliasChoices("POVHUB_DASHBOARD_USERS_FILE"),
                                              description="officers' logins (argon2 hashes); unset = DATA_DIR/web_users.json")
    dashboard_trusted_proxies: str = Field("127.0.0.1", validation_alias=AliasChoices("POVHUB_DASHBOARD_TRUSTED_PROXIES"),
                                           description="addresses whose X-Forwarded-For/-Proto the page believes")
    thaiqm_api_url: str | None = Field(None, validation_alias=AliasChoices("THAIQM_API_URL"),
                                       description="base URL of the Thai QM change feed (connectors/thaiqm/openapi.yaml)")
    thaiqm_api_token: str | None = Field(None, pattern=r"^\S+$", validation_alias=AliasChoices("THAIQM_API_TOKEN"),
                                         description="bearer token for the Thai QM API")
    thaiqm_rate_limit: float = Field(5.0, gt=0, le=1000, validation_alias=AliasChoices("POVHUB_THAIQM_RATE_LIMIT"),
                                     description="requests per second the poller allows itself")
    thaiqm_timeout_s: float = Field(30.0, gt=0, le=600, validation_alias=AliasChoices("POVHUB_THAIQM_TIMEOUT_S"))
    thaiqm_page_size: int = Field(200, ge=1, le=1000, validation_alias=AliasChoices("POVHUB_THAIQM_PAGE_SIZE"))
    thaiqm_poll_seconds: float = Field(60.0, gt=0, validation_alias=AliasChoices("POVHUB_THAIQM_POLL_SECONDS"))

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

    @field_validator("clickhouse_cluster")
    @classmethod
    def _cluster(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None or not v.strip():
            return None
        if not isinstance(parse_dsn(info.data.get("clickhouse_url") or "chdb://."), ServerDsn):
            # pydantic turns a ValueError (not a TypeError) into the one-line message
            raise ValueError("needs a ClickHouse server in CLICKHOUSE_URL: embedded chdb has no cluster")  # noqa: TRY004
        return check_cluster_name(v.strip())

    @field_validator("schema_registry_url", "thaiqm_api_url")
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

    @property
    def ingest_keys_path(self) -> Path:
        return self.ingest_keys_file or self.data_dir / "ingest_keys.json"


def _variable(loc: tuple) -> str:
    name = str(loc[0]) if loc else "?"
    field = Settings.model_fields.get(name)
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return name


def load_settings() -> Settings:
    """Build settings from the environment; raise SettingsError with one line naming the variable."""
    try:
        state_settings()
    except StateSettingError as e:
        raise SettingsError(f"bad setting {e}") from None
    try:
        return Settings()
    except ValidationError as e:
        err = e.errors()[0]
        variable = _variable(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        shown = "" if "SECRET" in variable or "TOKEN" in variable else f" (got {err.get('input')!r})"
        raise SettingsError(f"bad setting {variable}: {msg}{shown}") from None
