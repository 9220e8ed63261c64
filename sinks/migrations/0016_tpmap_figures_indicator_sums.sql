-- tpmap_figures' refresh (0009) with a fifth less CPU: the MOFval persons per failed indicator are
-- summed as a map over the indicators each household fails (a few), not as a 31-element array
-- built for every household and added element by element at each level; the array is made once
-- per output row. Same figures (bench/level_queries.py at 1M households: the same snapshot, 4.9
-- -> 3.9 CPU s; tests/sinks/test_tpmap_reference.py computes them apart). An indicator listed twice
-- counts once, as has() did. Dropped and created again (a view's query is fixed when it is made);
-- tpmap_figures keeps its rows, and the next refresh appends a snapshot computed the new way.
DROP VIEW IF EXISTS tpmap_figures_mv{on_cluster};

CREATE MATERIALIZED VIEW IF NOT EXISTS tpmap_figures_mv{on_cluster}
REFRESH EVERY 30 SECOND APPEND TO tpmap_figures AS
SELECT code_length, code, mask, refreshed_at, households, persons, mof_reg, mof_val, elderly, disabled, chronic,
    arrayMap(k -> by_indicator[k], range(toUInt8(1), toUInt8(32))) AS mof_val_ind
FROM
(
    SELECT
        level.1 AS code_length,
        level.2 AS code,
        mask,
        now64(3) AS refreshed_at,
        sum(households) AS households,
        sum(persons) AS persons,
        sum(mof_reg) AS mof_reg,
        sum(mof_val) AS mof_val,
        sum(elderly) AS elderly,
        sum(disabled) AS disabled,
        sum(chronic) AS chronic,
        CAST(sumMap(mof_val_by_indicator), 'Map(UInt8, UInt64)') AS by_indicator
    FROM
    (
        SELECT
            province, district, subdistrict, coalesce(village, subdistrict) AS finest,
            failed_dimension_mask AS mask,
            count() AS households,
            sum(members) AS persons,
            sum(welfare_registered_members) AS mof_reg,
            sum(welfare_card_holders) AS mof_val,
            sum(elderly_members) AS elderly,
            sum(disabled_members) AS disabled,
            sum(chronic_illness_members) AS chronic,
            -- indicator -> MOFval persons of the households failing it
            sumMap(arrayDistinct(failed_indicators),
                   arrayResize(CAST([], 'Array(UInt64)'), length(arrayDistinct(failed_indicators)),
                               toUInt64(welfare_card_holders))) AS mof_val_by_indicator
        FROM household_state FINAL
        -- on file in its latest TPMAP data year (a household that left the file has no members)
        WHERE data_year IS NOT NULL AND members > 0
        GROUP BY province, district, subdistrict, finest, mask
    )
    ARRAY JOIN [(toUInt8(2), province), (toUInt8(4), district), (toUInt8(6), subdistrict), (toUInt8(10), finest)] AS level
    GROUP BY code_length, code, mask
)
-- A snapshot must appear at once (0009): squashed into one block, one part.
SETTINGS min_insert_block_size_rows = 1000000000, min_insert_block_size_bytes = 0, max_insert_threads = 1;
