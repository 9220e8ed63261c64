-- One row per version of a household's reconciled state (topic povhub.household.state.v1).
-- The key is the household alone: its area codes can be re-coded between versions.
-- Several versions coexist until merges; read the latest with FINAL (or argMax by version).
-- non_replicated_deduplication_window makes insert_deduplication_token work on this
-- non-replicated engine, so a batch re-inserted after a retry is dropped by ClickHouse.
-- Column types favour cheap client-side encoding (plain String codes, Enum8 dimensions):
-- LowCardinality and Array(LowCardinality) cost several times more in clickhouse-connect.
CREATE TABLE IF NOT EXISTS household_state{on_cluster}
(
    household_key String,
    version UInt64,
    event_id UUID,
    source String,
    source_record_id String,
    event_time DateTime64(3, 'UTC'),
    ingest_time DateTime64(3, 'UTC'),
    schema_version UInt16,
    province String,
    district String,
    subdistrict String,
    village Nullable(String),
    data_year Nullable(UInt16),
    on_target_list Bool,
    members UInt16,
    target_poor_persons UInt16,
    failed_indicators Array(UInt8),
    failed_dimensions Array(Enum8('health' = 1, 'living' = 2, 'education' = 3, 'income' = 4, 'access' = 5)),
    _topic String,
    _partition UInt32,
    _offset UInt64,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY household_key
SETTINGS non_replicated_deduplication_window = 1000;
