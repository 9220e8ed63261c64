-- Who opened which work list or household page of the centres' web page (issue 16): the
-- programme must be able to say who looked at a household's data. One row per page open;
-- never updated, never deduplicated (two opens are two rows).
CREATE TABLE IF NOT EXISTS web_audit{on_cluster}
(
    at DateTime64(3, 'UTC') DEFAULT now64(3),
    username String,
    user_level LowCardinality(String),
    user_area String,
    action LowCardinality(String),
    area_code String,
    household_key String,
    client String
)
ENGINE = {engine:MergeTree}
ORDER BY at;
