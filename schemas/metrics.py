"""The metric catalogue: every Prometheus metric Povhub exports, in one place.

Operations teams alert on these names, so they are a contract like the event schemas (hence this
module lives in the contracts layer). Names are ``povhub_*``; the README's metric table is checked
against this module by a test.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Histogram bounds (seconds): a broker's ack takes milliseconds, a ClickHouse insert up to
# seconds, a web page's aim is 300 ms
ACK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5)

CONNECTOR_RECORDS = Counter(
    "povhub_connector_records_total",
    "Source records read by a connector, by outcome (published, rejected, duplicate)",
    ["source", "outcome"],
)
SOURCE_REQUESTS = Counter(
    "povhub_source_requests_total",
    "HTTP requests a connector made to a source API, by outcome (ok, server_error, timeout, "
    "connection_error, bad_response, rate_limited, client_error); all but ok and client_error are retried",
    ["source", "outcome"],
)
CONNECTOR_CURSOR = Gauge(
    "povhub_connector_cursor_timestamp_seconds",
    "Source update time up to which a polling connector has published everything, per feed; "
    "alert when it falls behind",
    ["source", "feed"],
)
DEAD_LETTERS = Counter(
    "povhub_dead_letters_total",
    "Records sent to the dead-letter topic, by stage and reason",
    ["stage", "reason"],
)
INGEST_REQUESTS = Counter(
    "povhub_ingest_requests_total",
    "Requests to the local-authority ingest API, by endpoint and HTTP status (202 accepted, 401, 403, 409, "
    "413, 422 refused, 429 rate-limited, 503 Kafka unavailable)",
    ["endpoint", "status"],
)
STAGE_TRANSACTIONS = Counter(
    "povhub_stage_transactions_total",
    "Kafka transactions of a stage (a batch's outputs, state changes and consumed offsets), by outcome "
    "(committed; aborted: the stage started over from the committed state)",
    ["stage", "outcome"],
)
STAGE_PARTITIONS = Gauge(
    "povhub_stage_assigned_partitions",
    "Input topic-partitions a stage (reconcile, each ClickHouse loader) owns on this worker",
    ["stage"],
)
STAGE_RESTORED = Counter(
    "povhub_stage_restored_records_total",
    "Changelog records a stage read to rebuild its state after partitions were assigned or a transaction failed",
    ["stage"],
)
RECONCILE_EVENTS = Counter(
    "povhub_reconcile_events_total",
    "Source events seen by the reconcile stage, by source family and outcome (applied, duplicate, stale, "
    "outside_area: an authority's update to a household outside its areas, dead-lettered; person-only events: "
    "rekeyed, pending, dead_letter)",
    ["family", "outcome"],
)
PENDING_EVENTS = Gauge(
    "povhub_reconcile_pending_events",
    "Person-only events waiting on this worker for their person's household (bounded; dead-lettered as "
    "unmatched-person after the TTL)",
)
STATE_CHANGES = Counter(
    "povhub_household_state_changes_total",
    "Household state versions emitted (one per real change)",
)
SINK_ROWS = Counter(
    "povhub_sink_rows_total",
    "Rows inserted into ClickHouse, by table",
    ["table"],
)
SINK_INSERT_FAILURES = Counter(
    "povhub_sink_insert_failures_total",
    "Failed ClickHouse insert attempts (retried until they succeed; nothing is dropped)",
    ["table"],
)
SINK_LAST_SUCCESS = Gauge(
    "povhub_sink_last_success_timestamp_seconds",
    "Unix time of the last successful insert per table; alert when it stops moving",
    ["table"],
)
ALERTS = Counter(
    "povhub_alerts_total",
    "Crisis-alert lifecycle steps sent to povhub.alert.v1, by rule, severity, the level that owns the alert "
    "after the step, and action (raised, escalated, acknowledged, resolved)",
    ["rule", "severity", "level", "action"],
)
OPEN_ALERTS = Gauge(
    "povhub_alerts_open",
    "Open (raised or acknowledged, not resolved) crisis alerts of this worker's households, by owning level "
    "and severity; sum over workers",
    ["level", "severity"],
)
WEBHOOK_REQUESTS = Counter(
    "povhub_webhook_requests_total",
    "HTTP requests to alert webhooks, by target and outcome (ok, server_error, timeout, connection_error retried; "
    "client_error not retried)",
    ["target", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "povhub_webhook_deliveries_total",
    "Alert events handed to a webhook target, by outcome (delivered; dead_letter after the last retry; "
    "repeat_skipped: met again after a rebalance, already handled)",
    ["target", "outcome"],
)
STAGE_READY = Gauge(
    "povhub_stage_ready",
    "1 while a processor (stage, loader, notifier) is progressing or idle with nothing to read; 0 while it is "
    "starting, recovering or stalled (the worker's /health answers 503 then)",
    ["stage"],
)
STAGE_STALLS = Counter(
    "povhub_stage_stalls_total",
    "Times a processor's loop did not come back from a Kafka call for POVHUB_WATCHDOG_S and the watchdog "
    "made it give up the call",
    ["stage"],
)
STAGE_RECOVERIES = Counter(
    "povhub_stage_recoveries_total",
    "Times a processor dropped its Kafka clients after a failure and started over from the committed state",
    ["stage"],
)
WEB_REQUESTS = Counter(
    "povhub_web_requests_total",
    "Requests to the centres' web page (povhub web), by first path segment (area, worklist, household, alerts, "
    "login, ...) and HTTP status",
    ["route", "status"],
)
WEB_LOGINS = Counter(
    "povhub_web_logins_total",
    "Login attempts on the web page, by outcome (ok, failed: wrong password or unknown user, throttled)",
    ["outcome"],
)

# Durations, each with buckets around what it measures
CONNECTOR_PUBLISH_SECONDS, SINK_INSERT_SECONDS, WEB_REQUEST_SECONDS = (
    Histogram(name, documentation, [label], buckets=buckets) for name, documentation, label, buckets in (
        ("povhub_connector_publish_seconds",
         "Time from handing an event to the Kafka producer until the broker acknowledged it (acks=all)", "source", ACK_BUCKETS),
        ("povhub_sink_insert_seconds",
         "Duration of one successful ClickHouse insert (one batch, all its partitions)", "table", INSERT_BUCKETS),
        ("povhub_web_request_seconds",
         "Time the web page took to answer a request, by first path segment", "route", PAGE_BUCKETS),
    )
)
