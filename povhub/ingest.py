"""``povhub ingest-api``: serve the อปท. ingest API, and manage its API keys."""

from __future__ import annotations

import sys

import uvicorn

from connectors.localgov.api import IngestContext, create_app
from connectors.localgov.api_keys import ApiKey, KeyStore, KeyStoreError
from connectors.localgov.idempotency import IdempotencyStore
from connectors.localgov.kafka_link import KafkaLink
from connectors.localgov.rate_limit import RateLimiter
from connectors.localgov.request_log import RequestLog
from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from povhub.ingest_outcomes import KafkaOutcomes
from povhub.settings import Settings
from povhub.wiring import codec_from, require_bootstrap, require_secret


def ingest_context(s: Settings) -> IngestContext:
    bootstrap, secret = require_bootstrap(s), require_secret(s)
    timeout_ms = int(s.ingest.ack_timeout_s * 1000)

    def connect() -> Publisher:
        # Bounded like the request's wait: a send must not hang a worker thread for the default minute.
        return Publisher(bootstrap, source="localgov", codec=codec_from(s), topics=s.kafka.topics,
                         client_id="povhub-ingest-api", linger_ms=5, max_block_ms=timeout_ms,
                         bootstrap_timeout_ms=timeout_ms)

    return IngestContext(
        keys=KeyStore(s.ingest_keys_path), link=KafkaLink(connect), pseudonyms=Pseudonymiser(secret),
        limiter=RateLimiter(s.ingest.rate_per_s, s.ingest.burst),
        idempotency=IdempotencyStore(s.hub.data_dir / "ingest_idempotency.sqlite3"),
        ack_timeout_s=s.ingest.ack_timeout_s, max_body_bytes=s.ingest.max_body_bytes,
        requests=RequestLog(s.hub.data_dir / "ingest_requests.sqlite3"),
        outcomes=KafkaOutcomes(bootstrap, s.kafka.topics, codec_from(s), s.app_id))


def run_ingest_api(s: Settings) -> int:
    app = create_app(ingest_context(s))
    uvicorn.run(app, host=s.ingest.host, port=s.ingest.port, log_level="info")
    return 0


def _describe(k: ApiKey) -> str:
    state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
    label = f"  {k.label}" if k.label else ""
    return f"{k.key_id}  {k.org_code} {k.org_type:<12}  areas {','.join(k.areas)}  created {k.created_at}  {state}{label}"


def run_keys_add(s: Settings, org: str, org_type: str, areas: str, label: str) -> int:
    try:
        record, clear = KeyStore(s.ingest_keys_path).add(org, org_type, [a.strip() for a in areas.split(",") if a.strip()],
                                                         label)
    except KeyStoreError as e:
        print(f"povhub ingest-api keys add: {e}", file=sys.stderr)
        return 2
    print(_describe(record))
    print(f"API key (shown only now; store it safely): {clear}")
    return 0


def run_keys_list(s: Settings) -> int:
    for k in KeyStore(s.ingest_keys_path).list():
        print(_describe(k))
    return 0


def run_keys_revoke(s: Settings, key_id: str) -> int:
    try:
        print(_describe(KeyStore(s.ingest_keys_path).revoke(key_id)))
    except KeyStoreError as e:
        print(f"povhub ingest-api keys revoke: {e}", file=sys.stderr)
        return 2
    return 0
