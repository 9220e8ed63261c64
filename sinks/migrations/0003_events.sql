-- Raw source events from povhub.tpmap.household.v1, povhub.thaiqm.case.v1 and
-- povhub.localgov.update.v1: the envelope as columns, the whole decoded record as JSON in
-- `payload` (family-specific fields still evolve; JSONExtract* reads them). Sorted by
-- event_id alone so ReplacingMergeTree folds a re-delivered event into one row; count events
-- with FINAL. household_key is NULL for Thai QM and อปท. events that name only a person.
-- area_code: the village, or the sub-district followed by 00, as a number (see 0004).
CREATE TABLE IF NOT EXISTS events{on_cluster}
(
    event_id UUID,
    family LowCardinality(String),
    source String,
    source_record_id String,
    event_time DateTime64(3, 'UTC'),
    ingest_time DateTime64(3, 'UTC'),
    schema_version UInt16,
    household_key Nullable(String),
    province String,
    district String,
    subdistrict String,
    village Nullable(String),
    payload String,
    _topic String,
    _partition UInt32,
    _offset UInt64,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3),
    area_code UInt32 MATERIALIZED toUInt32OrZero(coalesce(village, concat(subdistrict, '00')))
)
ENGINE = {engine:ReplacingMergeTree(ingest_time)}
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Timeliness: the newest event_time per source family and finest area, kept up to date by the
-- materialized view at every insert into events. max() gives the same answer however often an
-- event is delivered, so this roll-up cannot double count; levels group it by code prefix.
-- Created with events, so the view has seen every row.
CREATE TABLE IF NOT EXISTS events_newest{on_cluster}
(
    province String,
    area_code UInt32,
    family LowCardinality(String),
    newest SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = {engine:AggregatingMergeTree}
ORDER BY (province, area_code, family);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_newest_mv{on_cluster} TO events_newest AS
SELECT province, area_code, family, max(event_time) AS newest
FROM events
GROUP BY province, area_code, family;
