-- The household figures of the level summaries kept current at every insert (issue 18), instead
-- of at area_figures' 10 s refresh (0007): an event is in its sub-district's figures as soon as
-- the loader has stored its household's new version.
--
-- Why materialized views on household_state, and not the loader. Each new version of a
-- household must add its contribution to its area and take the previous version's contribution
-- out of the previous version's area. Views on insert see every path that stores state rows
-- (the loader, a backfill, the tests), in the same insert, with no second insert to keep in step.
-- The reconcile stage could publish the delta instead, but that needs a schema change and the
-- same care for re-inserts. Two views:
-- 1. household_contributions_mv: each counted (household, version) with its contribution and the
--    previous one, into household_contributions. The previous one is read there, not in
--    household_state: ClickHouse writes the block to household_state before the views run, and a
--    background merge could then drop the previous version before the view reads it (seen in the
--    chaos test as an over-count); household_contributions is written by this view only, after
--    it reads it, so its highest version per household is always the previous one.
-- 2. area_household_figures_mv: +1 x the contribution, -1 x the previous one, at every level.
--
-- Counting each household once, whatever is re-inserted. A (household, version v) counts only if
-- household_contributions holds no version of it at v or above: a batch re-inserted after a crash
-- (with other batch boundaries, so its deduplication token does not drop it), a redelivered
-- record, or a stale version changes nothing, as FINAL would ignore them too. Two versions in one
-- block chain: +v1 -v0, +v2 -v1. A batch dropped by its deduplication token still runs the views
-- (the loader's deduplicate_blocks_in_dependent_materialized_views), so a crash between
-- household_state's insert and the views' is made good at the retry. Left open (README failure
-- table): a crash between the two views' inserts, and two loaders inserting one household at
-- the same moment.
--
-- area_household_figures: per level (code_length 2, 4, 6, 8 as in area_figures) and area, and
-- per data_year (0: none; assessed_households counts the households of the newest data year,
-- which only a query knows), the sums of +1 x new and -1 x previous contributions. A
-- SummingMergeTree collapses them by key at merges; a level query sums the rows of its level
-- (at most a few per area: one per data year and not yet merged part), never a household.
CREATE TABLE IF NOT EXISTS area_household_figures{on_cluster}
(
    code_length UInt8,
    area_code UInt32,
    data_year UInt16,
    households Int64,
    persons Int64,
    target_poor_households Int64,
    target_poor_persons Int64,
    failed_health Int64,
    failed_living Int64,
    failed_education Int64,
    failed_income Int64,
    failed_access Int64,
    stage_survive Int64,
    stage_sufficient Int64,
    stage_sustainable Int64,
    open_problems Int64,
    open_problem_households Int64,
    assisted_households Int64,
    assistance_given Int64,
    assistance_baht Float64,
    compared_households Int64,
    disagree_households Int64,
    disagree_tpmap_only Int64,
    disagree_thaiqm_only Int64,
    -- for the provincial analysts' row policy (sinks/roles.py), as in area_figures
    province String MATERIALIZED toString(intDiv(area_code, toUInt32(intExp10(code_length - 2))))
)
ENGINE = {engine:SummingMergeTree}
ORDER BY (code_length, area_code, data_year)
-- The loader inserts with deduplicate_blocks_in_dependent_materialized_views (sinks/batch_insert.py):
-- a batch whose household_state insert was stored but whose view insert was not (a crash in
-- between; with chdb, a kill -9 of the worker) runs the view again on the retry, and a view
-- insert that was stored is dropped here by its token, derived from the batch's
SETTINGS non_replicated_deduplication_window = 1000;

-- household_state's rows with the figures' inputs, for the backfill (sinks/figures.py). The
-- derived columns of 0004 and 0005 are computed here again from the stored columns: chdb cannot evaluate them on parts
-- stored before 0005 (a Map column's default inside their expressions), and every part of an
-- older database is such a part.
CREATE VIEW IF NOT EXISTS household_state_stored{on_cluster} SQL SECURITY INVOKER AS
SELECT household_key, version, area_code, data_year, members, on_target_list, target_poor_persons,
    failed_dimension_mask, stage, open_problems, thaiqm_case_id,
    toUInt8((open_problems_by_dimension['health'] > 0) + 2 * (open_problems_by_dimension['living'] > 0)
        + 4 * (open_problems_by_dimension['education'] > 0) + 8 * (open_problems_by_dimension['income'] > 0)
        + 16 * (open_problems_by_dimension['access'] > 0)) AS open_problem_dimension_mask,
    toUInt32(arraySum(mapValues(assistance_counts))) AS assistance_given,
    arraySum(mapValues(assistance_baht)) AS assistance_baht_total
FROM household_state;

-- The figures a version contributes, as one tuple (the same formulas as area_figures_mv, 0007):
-- 1 area_code, 2 data_year (0: none), 3 members, 4 on_target_list, 5 target_poor_persons,
-- 6 failed_dimension_mask, 7 stage, 8 open_problems, 9 open_problem_dimension_mask,
-- 10 assistance_given, 11 assistance_baht_total, 12 compared (a TPMAP data year and a Thai QM case).
-- household_contributions: the versions counted, each with its contribution and the one it
-- replaces. Written only by the view below, which reads it before writing: a merge keeps each
-- household's highest version, which is then exactly the previous one (household_state's own
-- merges could remove a previous version between a block's write and a view's read).
CREATE TABLE IF NOT EXISTS household_contributions{on_cluster}
(
    household_key String,
    version UInt64,
    contribution Tuple(UInt32, UInt16, UInt16, Bool, UInt16, UInt8,
        Enum8('SURVIVE' = 1, 'SUFFICIENT' = 2, 'SUSTAINABLE' = 3), UInt32, UInt8, UInt32, Float64, Bool),
    has_previous Bool,
    previous Tuple(UInt32, UInt16, UInt16, Bool, UInt16, UInt8,
        Enum8('SURVIVE' = 1, 'SUFFICIENT' = 2, 'SUSTAINABLE' = 3), UInt32, UInt8, UInt32, Float64, Bool)
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY household_key
SETTINGS non_replicated_deduplication_window = 1000;

-- A (household, version) of the block counts if household_contributions holds no version of that
-- household at or above it; its previous contribution is the block's next lower version above
-- the stored one, else the stored one.
CREATE MATERIALIZED VIEW IF NOT EXISTS household_contributions_mv{on_cluster} TO household_contributions AS
SELECT
    n.household_key AS household_key,
    n.version AS version,
    n.new AS contribution,
    length(arrayFilter(r -> r.1 < n.version AND (NOT s.found OR r.1 > s.stored_version), b.block)) > 0 OR s.found
        AS has_previous,
    if(arrayExists(r -> r.1 < n.version AND (NOT s.found OR r.1 > s.stored_version), b.block),
       arraySort(r -> r.1, arrayFilter(r -> r.1 < n.version AND (NOT s.found OR r.1 > s.stored_version), b.block))[-1].2,
       s.stored) AS previous
FROM
(
    -- the block, each (household, version) once
    SELECT household_key, version,
        any((area_code, coalesce(data_year, 0), members, on_target_list, target_poor_persons,
             failed_dimension_mask, stage, open_problems, open_problem_dimension_mask, assistance_given,
             assistance_baht_total, data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL)) AS new
    FROM household_state
    GROUP BY household_key, version
) AS n
INNER JOIN
(
    SELECT household_key,
        groupArray((version, (area_code, coalesce(data_year, 0), members, on_target_list, target_poor_persons,
             failed_dimension_mask, stage, open_problems, open_problem_dimension_mask, assistance_given,
             assistance_baht_total, data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL))) AS block
    FROM household_state
    GROUP BY household_key
) AS b USING (household_key)
LEFT JOIN
(
    SELECT household_key, true AS found, max(version) AS stored_version, argMax(contribution, version) AS stored
    FROM household_contributions
    WHERE household_key IN (SELECT household_key FROM household_state)
    GROUP BY household_key
) AS s USING (household_key)
WHERE NOT s.found OR n.version > s.stored_version
SETTINGS join_use_nulls = 0;

-- Each counted version: +1 x its contribution, -1 x the previous one, at every level
CREATE MATERIALIZED VIEW IF NOT EXISTS area_household_figures_mv{on_cluster} TO area_household_figures AS
SELECT
    code_length,
    intDiv(c.2.1, toUInt32(intExp10(8 - code_length))) AS area_code,
    c.2.2 AS data_year,
    sum(c.1) AS households,
    sum(c.1 * c.2.3) AS persons,
    sum(c.1 * c.2.4) AS target_poor_households,
    sum(c.1 * c.2.5) AS target_poor_persons,
    sum(c.1 * bitTest(c.2.6, 0)) AS failed_health,
    sum(c.1 * bitTest(c.2.6, 1)) AS failed_living,
    sum(c.1 * bitTest(c.2.6, 2)) AS failed_education,
    sum(c.1 * bitTest(c.2.6, 3)) AS failed_income,
    sum(c.1 * bitTest(c.2.6, 4)) AS failed_access,
    sum(c.1 * (c.2.7 = 'SURVIVE')) AS stage_survive,
    sum(c.1 * (c.2.7 = 'SUFFICIENT')) AS stage_sufficient,
    sum(c.1 * (c.2.7 = 'SUSTAINABLE')) AS stage_sustainable,
    sum(c.1 * c.2.8) AS open_problems,
    sum(c.1 * (c.2.8 > 0)) AS open_problem_households,
    sum(c.1 * (c.2.10 > 0)) AS assisted_households,
    sum(c.1 * c.2.10) AS assistance_given,
    sum(c.1 * c.2.11) AS assistance_baht,
    sum(c.1 * c.2.12) AS compared_households,
    sum(c.1 * (c.2.12 AND c.2.6 != c.2.9)) AS disagree_households,
    sum(c.1 * (c.2.12 AND bitAnd(c.2.6, bitNot(c.2.9)) != 0)) AS disagree_tpmap_only,
    sum(c.1 * (c.2.12 AND bitAnd(c.2.9, bitNot(c.2.6)) != 0)) AS disagree_thaiqm_only
FROM
(
    SELECT arrayJoin(if(has_previous, [(toInt8(1), contribution), (toInt8(-1), previous)],
                        [(toInt8(1), contribution)])) AS c
    FROM household_contributions
)
ARRAY JOIN [toUInt8(2), toUInt8(4), toUInt8(6), toUInt8(8)] AS code_length
GROUP BY code_length, area_code, data_year;

-- area_summary as in 0007, its household figures now from area_household_figures (current at
-- every insert); the figures that depend on the time of day (Knock Knock coverage, open and
-- overdue alerts, sources' ages) still from area_figures' newest snapshot, and figures_age_s is
-- that snapshot's age. Areas show as in 0004: every
-- current area of the level (zeros when empty), and any other code that has households, open
-- alerts or events. The national row sums the province rows.
CREATE OR REPLACE VIEW area_summary{on_cluster} SQL SECURITY INVOKER AS
WITH
    (SELECT max(refreshed_at) FROM area_figures) AS snapshot,
    greatest({code_length:UInt8}, 2) AS stored,
    (SELECT max(data_year) FROM household_state) AS newest_year
SELECT
    multiIf({code_length:UInt8} = 0, 'TH', {code_length:UInt8} = 8 AND k % 100 = 0, toString(intDiv(k, 100)), toString(k)) AS code,
    a.name_th AS name_th,
    a.name_en AS name_en,
    h.households AS households,
    h.persons AS persons,
    h.target_poor_households AS target_poor_households,
    h.target_poor_persons AS target_poor_persons,
    h.failed_health AS failed_health,
    h.failed_living AS failed_living,
    h.failed_education AS failed_education,
    h.failed_income AS failed_income,
    h.failed_access AS failed_access,
    h.assessed_households AS assessed_households,
    h.stage_survive AS stage_survive,
    h.stage_sufficient AS stage_sufficient,
    h.stage_sustainable AS stage_sustainable,
    h.open_problems AS open_problems,
    h.open_problem_households AS open_problem_households,
    f.visited_30d AS visited_30d,
    f.visited_90d AS visited_90d,
    h.assisted_households AS assisted_households,
    h.assistance_given AS assistance_given,
    h.assistance_baht AS assistance_baht,
    h.compared_households AS compared_households,
    h.disagree_households AS disagree_households,
    h.disagree_tpmap_only AS disagree_tpmap_only,
    h.disagree_thaiqm_only AS disagree_thaiqm_only,
    f.open_alerts_low AS open_alerts_low,
    f.open_alerts_medium AS open_alerts_medium,
    f.open_alerts_high AS open_alerts_high,
    f.open_alerts_critical AS open_alerts_critical,
    f.open_alerts_overdue AS open_alerts_overdue,
    dateDiff('second', f.tpmap_newest, now64(3)) AS tpmap_age_s,
    dateDiff('second', f.thaiqm_newest, now64(3)) AS thaiqm_age_s,
    dateDiff('second', f.localgov_newest, now64(3)) AS localgov_age_s,
    dateDiff('second', snapshot, now64(3)) AS figures_age_s
FROM
(
    -- Nullable names: a code that `areas` lacks gets NULL, not ''
    SELECT toUInt32(0) AS k, toNullable('ประเทศไทย') AS name_th, toNullable('Thailand') AS name_en, false AS abolished
    WHERE {code_length:UInt8} = 0
    UNION ALL
    SELECT toUInt32(code) AS k, toNullable(name_th), name_en, abolished FROM areas FINAL
    WHERE length(code) = {code_length:UInt8} AND startsWith(code, {within:String})
) AS a
FULL OUTER JOIN
(
    SELECT
        intDiv(area_code, toUInt32(intExp10(stored - {code_length:UInt8}))) AS k,
        true AS found,
        sum(visited_30d) AS visited_30d,
        sum(visited_90d) AS visited_90d,
        sum(open_alerts_low) AS open_alerts_low,
        sum(open_alerts_medium) AS open_alerts_medium,
        sum(open_alerts_high) AS open_alerts_high,
        sum(open_alerts_critical) AS open_alerts_critical,
        sum(open_alerts_overdue) AS open_alerts_overdue,
        max(tpmap_newest) AS tpmap_newest,
        max(thaiqm_newest) AS thaiqm_newest,
        max(localgov_newest) AS localgov_newest
    FROM area_figures
    WHERE code_length = stored AND refreshed_at = snapshot
        AND intDiv(area_code, toUInt32(intExp10(stored - length({within:String})))) = toUInt32OrZero({within:String})
    GROUP BY k
) AS f USING (k)
FULL OUTER JOIN
(
    SELECT
        intDiv(area_code, toUInt32(intExp10(stored - {code_length:UInt8}))) AS k,
        true AS found,
        sum(households) AS households,
        sum(persons) AS persons,
        sum(target_poor_households) AS target_poor_households,
        sum(target_poor_persons) AS target_poor_persons,
        sum(failed_health) AS failed_health,
        sum(failed_living) AS failed_living,
        sum(failed_education) AS failed_education,
        sum(failed_income) AS failed_income,
        sum(failed_access) AS failed_access,
        sum(stage_survive) AS stage_survive,
        sum(stage_sufficient) AS stage_sufficient,
        sum(stage_sustainable) AS stage_sustainable,
        sum(open_problems) AS open_problems,
        sum(open_problem_households) AS open_problem_households,
        sum(assisted_households) AS assisted_households,
        sum(assistance_given) AS assistance_given,
        sum(assistance_baht) AS assistance_baht,
        sum(compared_households) AS compared_households,
        sum(disagree_households) AS disagree_households,
        sum(disagree_tpmap_only) AS disagree_tpmap_only,
        sum(disagree_thaiqm_only) AS disagree_thaiqm_only,
        -- g.: the column, where the aggregate of the same name would be meant otherwise
        sumIf(g.households, g.data_year = newest_year) AS assessed_households
    FROM area_household_figures AS g
    WHERE code_length = stored
        AND intDiv(area_code, toUInt32(intExp10(stored - length({within:String})))) = toUInt32OrZero({within:String})
    GROUP BY k
    -- an area whose households all moved away (its rows sum to 0 until a merge removes them)
    HAVING households != 0
) AS h USING (k)
WHERE NOT a.abolished OR f.found OR h.found
ORDER BY code
-- A side without the code gets default values: 0 counts, NULL times and names, false `found`.
-- (Cheaper to plan than join_use_nulls = 1 with a coalesce per figure: measured ~10 ms a query.)
SETTINGS join_use_nulls = 0;


-- A view's columns are fixed when it is created: the level views are re-created (same columns)
CREATE OR REPLACE VIEW level_national{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 0, within = '');
CREATE OR REPLACE VIEW level_province{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 2, within = '');
CREATE OR REPLACE VIEW level_district{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 4, within = '');
CREATE OR REPLACE VIEW level_subdistrict{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 6, within = '');
CREATE OR REPLACE VIEW level_village{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 8, within = '');
