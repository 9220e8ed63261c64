-- Crisis-alert lifecycle steps from povhub.alert.v1 (issue 5): one row per step (RAISED,
-- ESCALATED, ACKNOWLEDGED, RESOLVED) of an alert_id. A step redelivered by Kafka has the same
-- event_id, event_time and alert_id, so the sorting key folds it into one row at merges
-- (ReplacingMergeTree); the insert token drops a re-sent batch at once. Readers that only need
-- each alert's latest step use argMax over (event_time, action), which a duplicate cannot change.
-- Sorted by alert_id first: an alert's steps sit together, and alert_id is what readers group by.
-- Enum8 codes must match sinks/alerts.py. area_code as in household_state (0004).
CREATE TABLE IF NOT EXISTS alerts{on_cluster}
(
    event_id UUID,
    source String,
    source_record_id String,
    event_time DateTime64(3, 'UTC'),
    ingest_time DateTime64(3, 'UTC'),
    schema_version UInt16,
    household_key String,
    province String,
    district String,
    subdistrict String,
    village Nullable(String),
    alert_id String,
    rule_id String,
    rule_version UInt32,
    action Enum8('RAISED' = 1, 'ESCALATED' = 2, 'ACKNOWLEDGED' = 3, 'RESOLVED' = 4),
    level Enum8('subdistrict' = 1, 'district' = 2, 'province' = 3, 'national' = 4),
    severity Enum8('LOW' = 1, 'MEDIUM' = 2, 'HIGH' = 3, 'CRITICAL' = 4),
    reason String,
    title_th String,
    title_en String,
    due_time Nullable(DateTime64(3, 'UTC')),
    _topic String,
    _partition UInt32,
    _offset UInt64,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3),
    area_code UInt32 MATERIALIZED toUInt32OrZero(coalesce(village, concat(subdistrict, '00')))
)
ENGINE = {engine:ReplacingMergeTree}
ORDER BY (alert_id, event_time, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
