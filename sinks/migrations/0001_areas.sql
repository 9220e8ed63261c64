-- Provinces, districts and sub-districts from the geothai package (DOPA codes), including
-- abolished codes that old records may still carry. Loaded by sinks.areas.load_areas.
-- ReplacingMergeTree keeps the newest load of each area (read with FINAL); the
-- deduplication window lets a repeated load with the same token be a no-op.
CREATE TABLE IF NOT EXISTS areas{on_cluster}
(
    level LowCardinality(String),
    code String,
    parent_code String,
    name_th String,
    name_en Nullable(String),
    abolished Bool
)
ENGINE = {engine:ReplacingMergeTree}
ORDER BY (level, code)
SETTINGS non_replicated_deduplication_window = 100;
