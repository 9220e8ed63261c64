-- TPMAP's own figures (issue 15): municipal tambons, 10-digit villages, MOFreg/MOFval, and the
-- figures per dimension selection, pre-aggregated so that a selection is a sum, not a scan.

-- The kind of each area: 'dopa' (geothai's list), 'municipal' (TPMAP's เทศบาล tambon codes
-- ending 51..99, named from the exports: tpmap_areas_mv below).
ALTER TABLE areas{on_cluster}
    ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT 'dopa';

-- TPMAP's 10-digit village ids do not fit the UInt32 area_code of 0003, 0004 and 0006: the
-- numeric finest area takes the 8-digit DOPA village they start with (Povhub's own figures
-- count such villages together at village level; TPMAP's figures below keep them apart, and
-- every level above the village is the same either way). Rows stored before keep their values:
-- no 10-digit village could be stored before this migration.
ALTER TABLE household_state{on_cluster}
    MODIFY COLUMN area_code UInt32
        MATERIALIZED toUInt32OrZero(substring(coalesce(village, concat(subdistrict, '00')), 1, 8));
ALTER TABLE events{on_cluster}
    MODIFY COLUMN area_code UInt32
        MATERIALIZED toUInt32OrZero(substring(coalesce(village, concat(subdistrict, '00')), 1, 8));
ALTER TABLE alerts{on_cluster}
    MODIFY COLUMN area_code UInt32
        MATERIALIZED toUInt32OrZero(substring(coalesce(village, concat(subdistrict, '00')), 1, 8));

-- household.state v2: MOFreg persons and chronic patients (MOFval persons are welfare_card_holders)
ALTER TABLE household_state{on_cluster}
    ADD COLUMN IF NOT EXISTS welfare_registered_members UInt16,
    ADD COLUMN IF NOT EXISTS chronic_illness_members UInt16;

CREATE OR REPLACE VIEW household_latest{on_cluster} SQL SECURITY INVOKER AS
SELECT *, area_code, failed_dimension_mask, open_problem_dimension_mask, assistance_given, assistance_baht_total
FROM household_state FINAL;

-- tpmap_figures: per refresh, one row per area of each level (code_length 2 province, 4
-- district, 6 tambon, 10 village: the village as given, 8 or 10 digits, or the tambon's code for
-- households without one) and per failed-dimension mask (bit 0 health, 1 living, 2 education,
-- 3 income, 4 access; 0: fails none): the households of the area in their latest state whose
-- latest TPMAP record is on file, with exactly that mask. A selection S (a mask) then sums the
-- rows whose mask meets S (sinks/tpmap_figures.py): at most 32 rows an area, never a
-- household. Columns:
-- - households, persons: counted (household.CNT, HOUSEMEMBER_CNT summed over all masks);
-- - mof_reg, mof_val: persons registered for / validated for the state welfare card;
-- - elderly, disabled, chronic: persons aged 60+, disabled, chronically ill;
-- - mof_val_ind[k]: MOFval persons of households failing จปฐ. indicator k (1..31).
-- Refreshed like area_figures (0007): APPEND snapshots stamped refreshed_at, readers take
-- the newest (written as one part: see the SETTINGS below); ReplacingMergeTree merges drop
-- the older ones.
CREATE TABLE IF NOT EXISTS tpmap_figures{on_cluster}
(
    code_length UInt8,
    code String,
    mask UInt8,
    refreshed_at DateTime64(3, 'UTC'),
    households UInt32,
    persons UInt32,
    mof_reg UInt32,
    mof_val UInt32,
    elderly UInt32,
    disabled UInt32,
    chronic UInt32,
    mof_val_ind Array(UInt32),
    province String MATERIALIZED substring(code, 1, 2)
)
ENGINE = ReplacingMergeTree(refreshed_at)
ORDER BY (code_length, code, mask);

-- Every 30 seconds, not 10 like area_figures: a refresh costs ~2-3 times area_figures' (31
-- indicator sums per household and level; bench/level_queries.py), and TPMAP's data only changes
-- when a TPMAP export is imported (yearly).
CREATE MATERIALIZED VIEW IF NOT EXISTS tpmap_figures_mv{on_cluster}
REFRESH EVERY 30 SECOND APPEND TO tpmap_figures AS
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
    sumForEach(mof_val_ind) AS mof_val_ind
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
        sumForEach(arrayMap(k -> if(has(failed_indicators, k), toUInt32(welfare_card_holders), toUInt32(0)),
                            range(toUInt8(1), toUInt8(32)))) AS mof_val_ind
    FROM household_state FINAL
    -- on file in its latest TPMAP data year (a household that left the file has no members)
    WHERE data_year IS NOT NULL AND members > 0
    GROUP BY province, district, subdistrict, finest, mask
)
ARRAY JOIN [(toUInt8(2), province), (toUInt8(4), district), (toUInt8(6), subdistrict), (toUInt8(10), finest)] AS level
GROUP BY code_length, code, mask
-- A snapshot must appear at once. An insert squashes its blocks only up to ~1M rows, and a
-- snapshot is larger at national scale (1.1M rows at 1M households in bench/level_queries.py):
-- it would be written as two parts, and a reader between them would see part of it. So the
-- whole snapshot is squashed into one block, one part (~200 MB of memory at that size).
SETTINGS min_insert_block_size_rows = 1000000000, min_insert_block_size_bytes = 0, max_insert_threads = 1;

-- Names of TPMAP's municipal tambons, from the exports that carry them (tpmap_household v2
-- subdistrict_name): geothai lists none of them. The newest named event wins (areas is a
-- ReplacingMergeTree on (level, code), read with FINAL).
CREATE MATERIALIZED VIEW IF NOT EXISTS tpmap_areas_mv{on_cluster} TO areas AS
SELECT
    'subdistrict' AS level,
    subdistrict AS code,
    district AS parent_code,
    JSONExtractString(payload, 'subdistrict_name') AS name_th,
    CAST(NULL, 'Nullable(String)') AS name_en,
    false AS abolished,
    'municipal' AS kind
FROM events
WHERE family = 'tpmap.household' AND toUInt8OrZero(substring(subdistrict, 5, 2)) >= 51
    AND JSONExtractString(payload, 'subdistrict_name') != '';
