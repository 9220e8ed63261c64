"""Configuration from environment variables (and a ``.env`` file), validated at start-up.

One model per component (Kafka, ClickHouse, the worker, reconcile, alerts, the loaders, the ingest
API, the web page, the Thai QM poller), each field read from the variable its alias names: the
variable names are those of the README's Configuration table. A knob whose default lives in the
code it tunes (partitions, the liveness bounds, the session timeout) takes it from there. Every
bad value stops start-up with one line naming the variable (see ``load_settings``). Test hooks are
not settings: the tests inject them (tests/support/hooked_worker.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.clients import SESSION_TIMEOUT_S
from pipeline.liveness import Bounds
from pipeline.stores.choose import StateSettingError, state_settings
from schemas.topics import DEFAULT_PARTITIONS, DEFAULT_PREFIX, Topics
from sinks.clickhouse import ServerDsn, parse_dsn
from sinks.ddl import check_cluster_name

_HOSTPORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")
ENV_FILE = ".env"


class SettingsError(ValueError):
    """A configuration value is invalid; the message is one line naming the variable."""


def env(variable: str, default: Any, **constraints: Any) -> Any:
    """A field read from environment variable ``variable`` (pydantic's Field otherwise)."""
    return Field(default, validation_alias=AliasChoices(variable), **constraints)


def _blank_is_none(v: str | None) -> str | None:
    return None if v is None or not v.strip() else v


def _http_url(v: str | None) -> str | None:
    if _blank_is_none(v) is None:
        return None
    if not re.match(r"^https?://[^/\s]+", v):
        raise ValueError(f"expected an http(s):// URL, got {v!r}")
    return v


class _FromEnv(BaseSettings):
    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore")


APP_ID_PATTERN = r"^[A-Za-z0-9._-]+$"


def app_id_for(prefix: str) -> str:
    """The app id of a deployment that does not set POVHUB_APP_ID: its topic prefix without the
    trailing separators, so one deployment's processors follow its topics (Kafka Streams has no
    default application.id; two deployments sharing one would restore each other's state and fence
    each other's transactional producers). The default prefix ``povhub.`` gives ``povhub``, the
    id used before it was derived: existing groups, changelogs and transactional ids keep their names."""
    derived = prefix.rstrip("._-")
    if not re.match(APP_ID_PATTERN, derived):
        raise SettingsError(f"bad setting POVHUB_APP_ID: unset, and POVHUB_TOPIC_PREFIX {prefix!r} gives no app id "
                            "(letters, digits, '.', '_', '-'); set POVHUB_APP_ID")
    return derived


class HubSettings(_FromEnv):
    """This installation and this worker."""

    data_dir: Path = env("POVHUB_DATA_DIR", Path(".povhub"),
                         description="local state: embedded ClickHouse, broker logs, checkpoints")
    app_id: str | None = env("POVHUB_APP_ID", None, pattern=APP_ID_PATTERN,
                             description="names the stages' consumer groups, changelogs and transactional "
                                         "ids; unset = from POVHUB_TOPIC_PREFIX (Settings.app_id)")
    worker_id: str | None = env("POVHUB_WORKER_ID", None, pattern=r"^[A-Za-z0-9._-]+$",
                                description="stable per worker across restarts (transactional ids); "
                                            "unset = host name and web port")
    pseudonym_secret: str | None = env("POVHUB_PSEUDONYM_SECRET", None, min_length=16,
                                       description="HMAC key for citizen-ID pseudonyms; keep it in a secret store")

    _app_id = field_validator("app_id", mode="before")(_blank_is_none)


class KafkaSettings(_FromEnv):
    bootstrap_servers: str | None = env("KAFKA_BOOTSTRAP_SERVERS", None,
                                        description="host:port[,host:port]; unset = embedded broker (demo only)")
    schema_registry_url: str | None = env("SCHEMA_REGISTRY_URL", None)
    topic_prefix: str = env("POVHUB_TOPIC_PREFIX", DEFAULT_PREFIX)
    partitions: int = env("POVHUB_PARTITIONS", DEFAULT_PARTITIONS, ge=1, le=10_000)
    replication_factor: int = env("POVHUB_REPLICATION_FACTOR", 1, ge=1, le=10)
    session_timeout_s: float = env("POVHUB_SESSION_TIMEOUT_S", SESSION_TIMEOUT_S, gt=1, le=300)

    @field_validator("bootstrap_servers")
    @classmethod
    def _bootstrap(cls, v: str | None) -> str | None:
        if _blank_is_none(v) is None:
            return None
        hosts = [h.strip() for h in v.split(",")]
        bad = [h for h in hosts if not _HOSTPORT.match(h)]
        if bad:
            raise ValueError(f"expected host:port[,host:port], got {bad[0]!r}")
        return ",".join(hosts)

    _registry = field_validator("schema_registry_url")(_http_url)

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)


class ClickHouseSettings(_FromEnv):
    url: str | None = env("CLICKHOUSE_URL", None, description="chdb://PATH or http(s)://user:pass@host:8123/db")
    cluster: str | None = env("CLICKHOUSE_CLUSTER", None,
                              description="run migrations ON CLUSTER with Replicated engines")

    @field_validator("url")
    @classmethod
    def _dsn(cls, v: str | None) -> str | None:
        if _blank_is_none(v) is None:
            return None
        parse_dsn(v)
        return v

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, v: str | None, info: ValidationInfo) -> str | None:
        if _blank_is_none(v) is None:
            return None
        if not isinstance(parse_dsn(info.data.get("url") or "chdb://."), ServerDsn):
            # pydantic turns a ValueError (not a TypeError) into the one-line message
            raise ValueError("needs a ClickHouse server in CLICKHOUSE_URL: embedded chdb has no cluster")  # noqa: TRY004
        return check_cluster_name(v.strip())


class WorkerSettings(_FromEnv):
    """The worker's HTTP endpoint and how its processors wait for Kafka (pipeline/liveness.py)."""

    role: Literal["all", "streams", "loaders"] = env(
        "POVHUB_WORKER_ROLE", "all",
        description="all: every stage; streams: reconcile, alerts, webhooks (no ClickHouse); loaders: the "
                    "ClickHouse loaders and the reports (povhub/worker.py ROLES)")
    web_host: str = env("POVHUB_WEB_HOST", "127.0.0.1")
    web_port: int = env("POVHUB_WEB_PORT", 6066, ge=1, le=65535)
    # pipeline/liveness.Bounds says what each bound does, and has the defaults
    block_s: float = env("POVHUB_KAFKA_BLOCK_S", Bounds.block_s, ge=1, le=600)
    stall_s: float = env("POVHUB_STALL_S", Bounds.stall_s, ge=1, le=3600)
    watchdog_s: float = env("POVHUB_WATCHDOG_S", Bounds.watchdog_s, ge=1, le=3600)
    recovery_limit_s: float = env("POVHUB_RECOVERY_LIMIT_S", Bounds.recovery_limit_s, ge=10, le=86_400)

    @property
    def bounds(self) -> Bounds:
        return Bounds(self.block_s, self.stall_s, self.watchdog_s, self.recovery_limit_s)


class ReconcileSettings(_FromEnv):
    state_rules_file: Path | None = env("POVHUB_STATE_RULES_FILE", None,
                                        description="stage and flag rules; unset = streams/data/state_rules.json")
    pending_ttl_s: float = env("POVHUB_PENDING_TTL_S", 7 * 24 * 3600.0, gt=0,
                               description="how long a person-only event waits for its person's household")
    pending_check_s: float = env("POVHUB_PENDING_CHECK_S", 60.0, gt=0, le=3600)
    pending_max_per_person: int = env("POVHUB_PENDING_MAX_PER_PERSON", 100, ge=1)
    pending_max_total: int = env("POVHUB_PENDING_MAX_TOTAL", 200_000, ge=1)


class AlertSettings(_FromEnv):
    rules_file: Path | None = env("POVHUB_ALERT_RULES_FILE", None,
                                  description="crisis-alert rules; unset = streams/data/alert_rules.json")
    check_s: float = env("POVHUB_ALERT_CHECK_S", 60.0, gt=0, le=3600,
                         description="how often the worker re-checks time-based alert rules and SLAs")
    webhooks_file: Path | None = env("POVHUB_WEBHOOKS_FILE", None,
                                     description="alert webhook targets per level and area; unset = no webhooks")


class LoaderSettings(_FromEnv):
    """The ClickHouse loaders' insert batches (sinks/loader.py)."""

    batch_size: int = env("POVHUB_LOADER_BATCH_SIZE", 20_000, ge=1)
    batch_seconds: float = env("POVHUB_LOADER_BATCH_SECONDS", 1.0, gt=0)


class IngestSettings(_FromEnv):
    """The local-authority (อปท.) ingest API."""

    host: str = env("POVHUB_INGEST_HOST", "127.0.0.1", min_length=1)
    port: int = env("POVHUB_INGEST_PORT", 8088, ge=1, le=65535)
    keys_file: Path | None = env("POVHUB_INGEST_KEYS_FILE", None, description="hashed API keys of the local authorities")
    rate_per_s: float = env("POVHUB_INGEST_RATE_PER_S", 10.0, gt=0, le=10_000)
    burst: int = env("POVHUB_INGEST_BURST", 20, ge=1, le=100_000)
    ack_timeout_s: float = env("POVHUB_INGEST_ACK_TIMEOUT_S", 10.0, gt=0, le=120,
                               description="how long a request waits for Kafka's ack before answering 503")
    max_body_bytes: int = env("POVHUB_INGEST_MAX_BODY_BYTES", 2 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024,
                              description="larger request bodies get 413 before they are read; a full batch of "
                                          "500 typical updates is ~300 KB")


class DashboardSettings(_FromEnv):
    """The ศจพ. centres' web page (`povhub web`)."""

    host: str = env("POVHUB_DASHBOARD_HOST", "127.0.0.1", min_length=1)
    port: int = env("POVHUB_DASHBOARD_PORT", 8070, ge=1, le=65535)
    secret: str | None = env("POVHUB_DASHBOARD_SECRET", None, min_length=16,
                             description="signs the session cookies; unset = made once in DATA_DIR")
    cookie_secure: bool = env("POVHUB_DASHBOARD_COOKIE_SECURE", True,
                              description="session cookie only over HTTPS; false only on a loopback demo")
    users_file: Path | None = env("POVHUB_DASHBOARD_USERS_FILE", None,
                                  description="officers' logins (argon2 hashes); unset = DATA_DIR/web_users.json")
    trusted_proxies: str = env("POVHUB_DASHBOARD_TRUSTED_PROXIES", "127.0.0.1",
                               description="addresses whose X-Forwarded-For/-Proto the page believes")


class ThaiQMSettings(_FromEnv):
    """The Thai QM change-feed poller."""

    api_url: str | None = env("THAIQM_API_URL", None,
                              description="base URL of the Thai QM change feed (connectors/thaiqm/openapi.yaml)")
    api_token: str | None = env("THAIQM_API_TOKEN", None, pattern=r"^\S+$", description="bearer token for the Thai QM API")
    rate_limit: float = env("POVHUB_THAIQM_RATE_LIMIT", 5.0, gt=0, le=1000,
                            description="requests per second the poller allows itself")
    timeout_s: float = env("POVHUB_THAIQM_TIMEOUT_S", 30.0, gt=0, le=600)
    page_size: int = env("POVHUB_THAIQM_PAGE_SIZE", 200, ge=1, le=1000)
    poll_seconds: float = env("POVHUB_THAIQM_POLL_SECONDS", 60.0, gt=0)

    _url = field_validator("api_url")(_http_url)


class Settings(BaseModel):
    """Every component's settings; ``load_settings`` builds it from the environment."""

    hub: HubSettings = Field(default_factory=HubSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    loader: LoaderSettings = Field(default_factory=LoaderSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    thaiqm: ThaiQMSettings = Field(default_factory=ThaiQMSettings)

    @property
    def app_id(self) -> str:
        """POVHUB_APP_ID, else derived from POVHUB_TOPIC_PREFIX (``app_id_for``)."""
        return self.hub.app_id or app_id_for(self.kafka.topic_prefix)

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse.url or f"chdb://{(self.hub.data_dir / 'clickhouse').resolve()}"

    @property
    def ingest_keys_path(self) -> Path:
        return self.ingest.keys_file or self.hub.data_dir / "ingest_keys.json"


COMPONENTS: dict[str, type[_FromEnv]] = {name: field.default_factory for name, field in Settings.model_fields.items()}


def variables() -> dict[str, tuple[str, str]]:
    """Environment variable -> (component, field): every variable Settings reads."""
    return {str(field.validation_alias.choices[0]): (component, name)
            for component, model in COMPONENTS.items() for name, field in model.model_fields.items()}


def load_settings(env_file: str | None = ENV_FILE) -> Settings:
    """Build settings from the environment (and ``env_file``, None: none); raise SettingsError with
    one line naming the variable."""
    try:
        state_settings()
    except StateSettingError as e:
        raise SettingsError(f"bad setting {e}") from None
    parts = {}
    for component, model in COMPONENTS.items():
        try:
            parts[component] = model(_env_file=env_file)
        except ValidationError as e:
            err = e.errors()[0]
            # pydantic names the variable (the field's alias); a model validator would name the field
            name = str(err["loc"][0]) if err["loc"] else "?"
            field = model.model_fields.get(name)
            variable = str(field.validation_alias.choices[0]) if field is not None else name
            msg = err["msg"].removeprefix("Value error, ")
            shown = "" if "SECRET" in variable or "TOKEN" in variable else f" (got {err.get('input')!r})"
            raise SettingsError(f"bad setting {variable}: {msg}{shown}") from None
    settings = Settings(**parts)
    _ = settings.app_id  # a prefix that gives no app id stops start-up like a bad value
    return settings
