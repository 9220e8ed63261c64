-- TPMAP's figures (0009) kept current at every insert, like the household figures (0011), instead
-- of tpmap_figures_mv's refresh every 30 s: that refresh read every household's latest version
-- (household_state FINAL) and rolled it up to four levels, 3.4 CPU s at 1M households and about a
-- minute at a national year's 12.9M, longer than its own interval (README "Sizing").
--
-- Each counted version now carries its TPMAP contribution beside its live one, in
-- household_contributions (0011-0014): `tpmap`, the one it replaces (`previous_tpmap`) and, for a
-- retried batch, the one stored before it (`base_tpmap`), found by the same lookup, so a household
-- counts once in TPMAP's figures exactly when it counts once in the live ones. The tuple:
-- 1 on file (a TPMAP data year and members: a household that left the file has none),
-- 2 finest area as a number (the village as given, 8 or 10 digits, or the tambon's code without
-- one; no code starts with 0, so its digits are its code; its first 2, 4 and 6 digits are the
-- province, district and tambon: sinks/area_codes.py checks they nest),
-- 3 failed-dimension mask, 4 members (persons surveyed), 5 MOFreg persons, 6 MOFval persons,
-- 7 elderly, 8 disabled, 9 chronically ill, 10 the จปฐ. indicators 1-31 failed, bit k-1 for k.
-- Numbers only: every insert's lookup reads the stored tuples of its households, and a String
-- and an Array in them made it twice as dear as the live contribution's alone
-- (bench/live_figures_insert.py at 1M households).
--
-- tpmap_household_figures: per level (code_length 2, 4, 6, 10 as in tpmap_figures) and area and
-- per failed-dimension mask, the sums of +1 x new and -1 x replaced TPMAP contributions; a
-- selection of dimensions still sums at most 32 rows an area (sinks/tpmap_figures.py). The MOFval
-- persons per failed indicator are a nested `...Map` column, which SummingMergeTree sums by key
-- (a Map column it would not sum). The old snapshot table and its refresh are dropped.
--
-- Existing databases: every household is counted again from household_state (sinks/figures.py
-- count_stored_households, this migration's data step), so the rows stored before have a TPMAP
-- contribution to replace; it runs before any loader starts.
DROP VIEW IF EXISTS tpmap_figures_mv{on_cluster};
DROP TABLE IF EXISTS tpmap_figures{on_cluster};
DROP VIEW IF EXISTS household_contributions_mv{on_cluster};

ALTER TABLE household_contributions{on_cluster}
    ADD COLUMN IF NOT EXISTS tpmap Tuple(Bool, UInt64, UInt8, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt32),
    ADD COLUMN IF NOT EXISTS previous_tpmap Tuple(Bool, UInt64, UInt8, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt32),
    ADD COLUMN IF NOT EXISTS base_tpmap Tuple(Bool, UInt64, UInt8, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt32);

CREATE TABLE IF NOT EXISTS tpmap_household_figures{on_cluster}
(
    code_length UInt8,
    code String,
    mask UInt8,
    households Int64,
    persons Int64,
    mof_reg Int64,
    mof_val Int64,
    elderly Int64,
    disabled Int64,
    chronic Int64,
    mof_val_indMap Nested(indicator UInt8, persons Int64),
    -- for the provincial analysts' row policy (sinks/roles.py)
    province String MATERIALIZED substring(code, 1, 2)
)
ENGINE = {engine:SummingMergeTree}
ORDER BY (code_length, code, mask)
-- a view insert a crash cut is retried with its batch's token (0011)
SETTINGS non_replicated_deduplication_window = 1000;

-- household_state_stored (0011) with both contributions of a version as the view below makes them,
-- for the recount (sinks/figures.py); computed from stored columns (see 0011)
CREATE OR REPLACE VIEW household_state_stored{on_cluster} SQL SECURITY INVOKER AS
SELECT household_key, version, area_code, data_year, members, on_target_list, target_poor_persons,
    failed_dimension_mask, stage, open_problems, thaiqm_case_id,
    toUInt8((open_problems_by_dimension['health'] > 0) + 2 * (open_problems_by_dimension['living'] > 0)
        + 4 * (open_problems_by_dimension['education'] > 0) + 8 * (open_problems_by_dimension['income'] > 0)
        + 16 * (open_problems_by_dimension['access'] > 0)) AS open_problem_dimension_mask,
    toUInt32(arraySum(mapValues(assistance_counts))) AS assistance_given,
    arraySum(mapValues(assistance_baht)) AS assistance_baht_total,
    (area_code, coalesce(data_year, 0), members, on_target_list, target_poor_persons, failed_dimension_mask,
     stage, open_problems, open_problem_dimension_mask, assistance_given, assistance_baht_total,
     data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL) AS contribution,
    (data_year IS NOT NULL AND members > 0, toUInt64(coalesce(village, subdistrict)), failed_dimension_mask,
     members, welfare_registered_members, welfare_card_holders, elderly_members, disabled_members,
     chronic_illness_members,
     arrayReduce('groupBitOr', arrayMap(k -> bitShiftLeft(toUInt32(1), k - 1),
                                        arrayFilter(k -> k BETWEEN 1 AND 31, failed_indicators)))) AS tpmap
FROM household_state;

-- 0014's view (read 0011-0014 first) with each version's (live, TPMAP) contributions as a pair
CREATE MATERIALIZED VIEW IF NOT EXISTS household_contributions_mv{on_cluster} TO household_contributions AS
WITH (SELECT groupBitXor(sipHash64(_topic, _partition, _offset, household_key, version)) FROM household_state)
    AS this_batch,
    -- the block's rows, each with its pair of contributions
    versions AS (
        SELECT household_key, version,
            ((area_code, coalesce(data_year, 0), members, on_target_list, target_poor_persons,
              failed_dimension_mask, stage, open_problems, open_problem_dimension_mask, assistance_given,
              assistance_baht_total, data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL),
             (data_year IS NOT NULL AND members > 0, toUInt64(coalesce(village, subdistrict)), failed_dimension_mask,
              members, welfare_registered_members, welfare_card_holders, elderly_members, disabled_members,
              chronic_illness_members,
              arrayReduce('groupBitOr', arrayMap(k -> bitShiftLeft(toUInt32(1), k - 1),
                                                 arrayFilter(k -> k BETWEEN 1 AND 31, failed_indicators))))) AS pair
        FROM household_state
    ),
    -- the pair replaced: the block's next lower version above the stored one, else the stored one
    if(arrayExists(r -> r.1 < n.version AND (NOT s.found OR r.1 > s.stored_version), b.block),
       arraySort(r -> r.1, arrayFilter(r -> r.1 < n.version AND (NOT s.found OR r.1 > s.stored_version), b.block))[-1].2,
       s.stored) AS replaced
SELECT
    n.household_key AS household_key,
    n.version AS version,
    n.new.1 AS contribution,
    n.new.2 AS tpmap,
    length(arrayFilter(r -> r.1 < n.version AND (NOT s.found OR r.1 > s.stored_version), b.block)) > 0 OR s.found
        AS has_previous,
    replaced.1 AS previous,
    replaced.2 AS previous_tpmap,
    this_batch AS batch,
    s.found AS base_found,
    s.stored_version AS base_version,
    s.stored.1 AS base,
    s.stored.2 AS base_tpmap
FROM
(
    -- the block, each (household, version) once
    SELECT household_key, version, any(pair) AS new FROM versions GROUP BY household_key, version
) AS n
INNER JOIN
(
    SELECT household_key, groupArray((version, pair)) AS block FROM versions GROUP BY household_key
) AS b USING (household_key)
LEFT JOIN
(
    SELECT household_key,
        countIf(batch = this_batch) > 0 AS retried,
        if(retried, anyIf(base_found, batch = this_batch), countIf(batch != this_batch) > 0) AS found,
        if(retried, anyIf(base_version, batch = this_batch), maxIf(version, batch != this_batch)) AS stored_version,
        if(retried, anyIf((base, base_tpmap), batch = this_batch),
           argMaxIf((contribution, tpmap), version, batch != this_batch)) AS stored
    FROM household_contributions
    WHERE household_key IN (SELECT household_key FROM household_state)
    GROUP BY household_key
) AS s USING (household_key)
WHERE NOT s.found OR n.version > s.stored_version
SETTINGS join_use_nulls = 0;

-- Each counted version: +1 x its TPMAP contribution, -1 x the one it replaced, at every level, when on file
CREATE MATERIALIZED VIEW IF NOT EXISTS tpmap_household_figures_mv{on_cluster} TO tpmap_household_figures AS
WITH
    toString(c.2.2) AS finest,
    -- indicator -> MOFval persons of the households failing it
    arrayFilter(k -> bitTest(c.2.10, k - 1), range(toUInt8(1), toUInt8(32))) AS indicators,
    sumMap(indicators, arrayResize(CAST([], 'Array(Int64)'), length(indicators), toInt64(c.1) * c.2.6)) AS by_indicator
SELECT
    level.1 AS code_length,
    level.2 AS code,
    c.2.3 AS mask,
    sum(c.1) AS households,
    sum(c.1 * c.2.4) AS persons,
    sum(c.1 * c.2.5) AS mof_reg,
    sum(c.1 * c.2.6) AS mof_val,
    sum(c.1 * c.2.7) AS elderly,
    sum(c.1 * c.2.8) AS disabled,
    sum(c.1 * c.2.9) AS chronic,
    by_indicator.1 AS `mof_val_indMap.indicator`,
    by_indicator.2 AS `mof_val_indMap.persons`
FROM
(
    SELECT arrayJoin(if(has_previous, [(toInt8(1), tpmap), (toInt8(-1), previous_tpmap)],
                        [(toInt8(1), tpmap)])) AS c
    FROM household_contributions
    WHERE c.2.1
)
ARRAY JOIN [(toUInt8(2), substring(finest, 1, 2)), (toUInt8(4), substring(finest, 1, 4)),
            (toUInt8(6), substring(finest, 1, 6)), (toUInt8(10), finest)] AS level
GROUP BY code_length, code, mask;
