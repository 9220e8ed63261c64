-- The level figures of issue 6 (stage, problems, Knock Knock, assistance, open alerts, the
-- TPMAP-Thai QM comparison) and a faster area_summary.
--
-- Why a pre-aggregated table. Counting each household once needs its latest version, i.e. a
-- FINAL (or argMax) pass over every household at every query: with all the figures below that
-- is 100-200 ms at 1M households on 2 cores (bench/level_queries.py). An incremental
-- materialized view cannot keep per-area sums right, because a new version has to take the
-- old version's contribution out of its old area, and an insert does not see it. So ClickHouse
-- recomputes the figures of every area at every level on a schedule (a refreshable
-- materialized view), and a level query reads the rows of its level only.
--
-- area_figures: per refresh, one row per area at each level: province (code_length 2),
-- district (4), sub-district (6) and finest area (8: the village, or sub-district * 100 as in
-- 0004). Each level is summed from the same finest rows, so children add up to their parent;
-- the national figures are the sum of the provinces (so a provincial analyst, who sees only
-- the province's rows, gets that province there, as with the views of 0004).
-- chdb's database engine (Overlay) only allows refreshes in APPEND mode, so each refresh
-- appends a complete snapshot stamped refreshed_at, and readers take the rows of the newest
-- snapshot (refreshed_at = max(refreshed_at)): no FINAL, and an area whose households all
-- moved away is simply not in it. ReplacingMergeTree only keeps the table small: merges drop
-- every row but the newest of each area. A snapshot (~170k rows at 1M households) is written
-- as one part, as an insert squashes up to min_insert_block_size_rows (~1M) rows into one
-- block, so readers do not see part of one.
-- Row policies (sinks/roles.py) apply to the snapshot time too: a provincial analyst sees the
-- newest snapshot that has rows of the province, which is the newest one unless every
-- household of the province moved away.
-- Not a Replicated engine on purpose: on a cluster every host refreshes its own copy from its
-- own replica of household_state, alerts and events_newest.
CREATE TABLE IF NOT EXISTS area_figures{on_cluster}
(
    code_length UInt8,
    area_code UInt32,
    refreshed_at DateTime64(3, 'UTC'),
    households UInt32,
    persons UInt32,
    target_poor_households UInt32,
    target_poor_persons UInt32,
    failed_health UInt32,
    failed_living UInt32,
    failed_education UInt32,
    failed_income UInt32,
    failed_access UInt32,
    assessed_households UInt32,
    stage_survive UInt32,
    stage_sufficient UInt32,
    stage_sustainable UInt32,
    open_problems UInt32,
    open_problem_households UInt32,
    visited_30d UInt32,
    visited_90d UInt32,
    assisted_households UInt32,
    assistance_given UInt32,
    assistance_baht Float64,
    compared_households UInt32,
    disagree_households UInt32,
    disagree_tpmap_only UInt32,
    disagree_thaiqm_only UInt32,
    open_alerts_low UInt32,
    open_alerts_medium UInt32,
    open_alerts_high UInt32,
    open_alerts_critical UInt32,
    open_alerts_overdue UInt32,
    tpmap_newest Nullable(DateTime64(3, 'UTC')),
    thaiqm_newest Nullable(DateTime64(3, 'UTC')),
    localgov_newest Nullable(DateTime64(3, 'UTC')),
    -- for the provincial analysts' row policy (sinks/roles.py)
    province String MATERIALIZED toString(intDiv(area_code, toUInt32(intExp10(code_length - 2))))
)
ENGINE = ReplacingMergeTree(refreshed_at)
ORDER BY (code_length, area_code);

-- Every 10 seconds: the figures are at most that much older than the data, plus the refresh
-- itself (figures_age_s in area_summary says how old they are); bench/level_queries.py measures
-- what a refresh costs. Time-relative figures (visited within 30 / 90 days, overdue alerts) are
-- taken at refresh time.
-- - households ... assessed_households: as in 0004, from each household's latest version.
-- - stage_*: households at each stage (state field `stage`, rules in streams/data/state_rules.json).
-- - open_problems: Thai QM problems not closed; open_problem_households: households with any.
-- - visited_30d / visited_90d (Knock Knock coverage): households whose latest home visit is
--   at most 30 / 90 days old.
-- - assisted_households, assistance_given, assistance_baht: households that got assistance from
--   an อปท., how many times, and its value in baht (all time, as the state record counts it).
-- - TPMAP-Thai QM disagreement, per dimension, for households both sources know (a TPMAP data
--   year and a Thai QM case: compared_households): TPMAP fails a dimension in which Thai QM has
--   no open problem (disagree_tpmap_only), or Thai QM has an open problem in a dimension TPMAP
--   passes (disagree_thaiqm_only); disagree_households has either. Problems without a dimension
--   are not compared.
-- - open_alerts_<severity>: alerts whose latest step (by event_time, then action order) is not
--   RESOLVED, by the severity and area of that step; open_alerts_overdue: those past due_time.
-- - <source>_newest: the newest event_time from that source family (events_newest, 0003), for
--   timeliness.
CREATE MATERIALIZED VIEW IF NOT EXISTS area_figures_mv{on_cluster}
REFRESH EVERY 10 SECOND APPEND TO area_figures AS
SELECT
    code_length,
    intDiv(finest, toUInt32(intExp10(8 - code_length))) AS area_code,
    now64(3) AS refreshed_at,
    sum(households) AS households,
    sum(persons) AS persons,
    sum(target_poor_households) AS target_poor_households,
    sum(target_poor_persons) AS target_poor_persons,
    sum(failed_health) AS failed_health,
    sum(failed_living) AS failed_living,
    sum(failed_education) AS failed_education,
    sum(failed_income) AS failed_income,
    sum(failed_access) AS failed_access,
    sum(assessed_households) AS assessed_households,
    sum(stage_survive) AS stage_survive,
    sum(stage_sufficient) AS stage_sufficient,
    sum(stage_sustainable) AS stage_sustainable,
    sum(open_problems) AS open_problems,
    sum(open_problem_households) AS open_problem_households,
    sum(visited_30d) AS visited_30d,
    sum(visited_90d) AS visited_90d,
    sum(assisted_households) AS assisted_households,
    sum(assistance_given) AS assistance_given,
    sum(assistance_baht) AS assistance_baht,
    sum(compared_households) AS compared_households,
    sum(disagree_households) AS disagree_households,
    sum(disagree_tpmap_only) AS disagree_tpmap_only,
    sum(disagree_thaiqm_only) AS disagree_thaiqm_only,
    sum(open_alerts_low) AS open_alerts_low,
    sum(open_alerts_medium) AS open_alerts_medium,
    sum(open_alerts_high) AS open_alerts_high,
    sum(open_alerts_critical) AS open_alerts_critical,
    sum(open_alerts_overdue) AS open_alerts_overdue,
    max(tpmap_newest) AS tpmap_newest,
    max(thaiqm_newest) AS thaiqm_newest,
    max(localgov_newest) AS localgov_newest
FROM
(
    -- the figures of each finest area
    SELECT *
    FROM
    (
        SELECT
            area_code AS finest,
            count() AS households,
            sum(members) AS persons,
            countIf(on_target_list) AS target_poor_households,
            sum(target_poor_persons) AS target_poor_persons,
            countIf(bitTest(failed_dimension_mask, 0)) AS failed_health,
            countIf(bitTest(failed_dimension_mask, 1)) AS failed_living,
            countIf(bitTest(failed_dimension_mask, 2)) AS failed_education,
            countIf(bitTest(failed_dimension_mask, 3)) AS failed_income,
            countIf(bitTest(failed_dimension_mask, 4)) AS failed_access,
            countIf(data_year = (SELECT max(data_year) FROM household_state)) AS assessed_households,
            countIf(stage = 'SURVIVE') AS stage_survive,
            countIf(stage = 'SUFFICIENT') AS stage_sufficient,
            countIf(stage = 'SUSTAINABLE') AS stage_sustainable,
            sum(open_problems) AS open_problems,
            countIf(s.open_problems > 0) AS open_problem_households,
            countIf(last_visit_time >= now64(3) - INTERVAL 30 DAY) AS visited_30d,
            countIf(last_visit_time >= now64(3) - INTERVAL 90 DAY) AS visited_90d,
            countIf(s.assistance_given > 0) AS assisted_households,
            sum(assistance_given) AS assistance_given,
            sum(assistance_baht_total) AS assistance_baht,
            countIf(data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL) AS compared_households,
            countIf(data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL
                    AND failed_dimension_mask != open_problem_dimension_mask) AS disagree_households,
            countIf(data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL
                    AND bitAnd(failed_dimension_mask, bitNot(open_problem_dimension_mask)) != 0) AS disagree_tpmap_only,
            countIf(data_year IS NOT NULL AND thaiqm_case_id IS NOT NULL
                    AND bitAnd(open_problem_dimension_mask, bitNot(failed_dimension_mask)) != 0) AS disagree_thaiqm_only
        -- s.: the column, where the aggregate of the same name would be meant otherwise
        FROM household_state AS s FINAL
        GROUP BY finest
    ) AS h
    FULL OUTER JOIN
    (
        SELECT
            area_code AS finest,
            countIf(severity = 'LOW') AS open_alerts_low,
            countIf(severity = 'MEDIUM') AS open_alerts_medium,
            countIf(severity = 'HIGH') AS open_alerts_high,
            countIf(severity = 'CRITICAL') AS open_alerts_critical,
            countIf(due_time < now64(3)) AS open_alerts_overdue
        FROM
        (
            -- Each alert's latest step; a redelivered step is the same row again, so it cannot
            -- change an argMax
            SELECT latest.1 AS action, latest.2 AS severity, latest.3 AS area_code, latest.4 AS due_time
            FROM
            (
                SELECT argMax((action, severity, area_code, due_time), (event_time, action, event_id)) AS latest
                FROM alerts
                GROUP BY alert_id
            )
        )
        WHERE action != 'RESOLVED'
        GROUP BY finest
    ) AS al USING (finest)
    FULL OUTER JOIN
    (
        SELECT
            area_code AS finest,
            maxIfOrNull(newest, family = 'tpmap.household') AS tpmap_newest,
            maxIfOrNull(newest, family = 'thaiqm.case') AS thaiqm_newest,
            maxIfOrNull(newest, family = 'localgov.update') AS localgov_newest
        FROM events_newest
        GROUP BY finest
    ) AS t USING (finest)
)
-- each finest area once per level
ARRAY JOIN [2, 4, 6, 8] AS code_length
GROUP BY code_length, area_code
-- an area missing from one side of a join gets 0 (NULL for the Nullable times), not NULL
SETTINGS join_use_nulls = 0;

-- area_summary(code_length = 0|2|4|6|8, within = 'code prefix'), as in 0004, from the newest
-- snapshot in area_figures: the figures above, sources' ages (seconds since the newest event,
-- NULL when none) and figures_age_s, the age of the snapshot. Areas show as in 0004: every
-- current area of the level (zeros when empty), and any other code that has households, open
-- alerts or events. The national row sums the province rows.
CREATE OR REPLACE VIEW area_summary{on_cluster} SQL SECURITY INVOKER AS
WITH
    (SELECT max(refreshed_at) FROM area_figures) AS snapshot,
    greatest({code_length:UInt8}, 2) AS stored
SELECT
    multiIf({code_length:UInt8} = 0, 'TH', {code_length:UInt8} = 8 AND k % 100 = 0, toString(intDiv(k, 100)), toString(k)) AS code,
    a.name_th AS name_th,
    a.name_en AS name_en,
    f.households AS households,
    f.persons AS persons,
    f.target_poor_households AS target_poor_households,
    f.target_poor_persons AS target_poor_persons,
    f.failed_health AS failed_health,
    f.failed_living AS failed_living,
    f.failed_education AS failed_education,
    f.failed_income AS failed_income,
    f.failed_access AS failed_access,
    f.assessed_households AS assessed_households,
    f.stage_survive AS stage_survive,
    f.stage_sufficient AS stage_sufficient,
    f.stage_sustainable AS stage_sustainable,
    f.open_problems AS open_problems,
    f.open_problem_households AS open_problem_households,
    f.visited_30d AS visited_30d,
    f.visited_90d AS visited_90d,
    f.assisted_households AS assisted_households,
    f.assistance_given AS assistance_given,
    f.assistance_baht AS assistance_baht,
    f.compared_households AS compared_households,
    f.disagree_households AS disagree_households,
    f.disagree_tpmap_only AS disagree_tpmap_only,
    f.disagree_thaiqm_only AS disagree_thaiqm_only,
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
        sum(households) AS households,
        sum(persons) AS persons,
        sum(target_poor_households) AS target_poor_households,
        sum(target_poor_persons) AS target_poor_persons,
        sum(failed_health) AS failed_health,
        sum(failed_living) AS failed_living,
        sum(failed_education) AS failed_education,
        sum(failed_income) AS failed_income,
        sum(failed_access) AS failed_access,
        sum(assessed_households) AS assessed_households,
        sum(stage_survive) AS stage_survive,
        sum(stage_sufficient) AS stage_sufficient,
        sum(stage_sustainable) AS stage_sustainable,
        sum(open_problems) AS open_problems,
        sum(open_problem_households) AS open_problem_households,
        sum(visited_30d) AS visited_30d,
        sum(visited_90d) AS visited_90d,
        sum(assisted_households) AS assisted_households,
        sum(assistance_given) AS assistance_given,
        sum(assistance_baht) AS assistance_baht,
        sum(compared_households) AS compared_households,
        sum(disagree_households) AS disagree_households,
        sum(disagree_tpmap_only) AS disagree_tpmap_only,
        sum(disagree_thaiqm_only) AS disagree_thaiqm_only,
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
WHERE NOT a.abolished OR f.found
ORDER BY code
-- A side without the code gets default values: 0 counts, NULL times and names, false `found`.
-- (Cheaper to plan than join_use_nulls = 1 with a coalesce per figure: measured ~10 ms a query.)
SETTINGS join_use_nulls = 0;

-- A view's columns are fixed when it is created: the level views are re-created for the new ones
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
