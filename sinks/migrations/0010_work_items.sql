-- The tambon teams' work lists (issue 16), pre-computed like the level figures (0007): a work
-- list needs each household's latest version, i.e. a FINAL pass over every household (~300 ms
-- at 1M households on 2 cores, bench/web.py), while the rows of one area sorted together are
-- read in milliseconds. So ClickHouse recomputes, on the figures' schedule, the households
-- that need action, one snapshot per refresh stamped refreshed_at, sorted by area; a reader
-- takes the newest snapshot. Each snapshot also holds one marker row (empty household_key), so
-- a snapshot in which nothing is due still exists and hides the previous one.
-- Due: a target-poor household not visited since it joined the target list (no visit, or the
-- last visit before target_list_time); Thai QM problems open past 30 days since reported (or,
-- when the report time is unknown, since their current status): the rule thaiqm-problem-overdue
-- (streams/data/alert_rules.json) and sinks/web_queries.PROBLEM_SLA_DAYS. Open alerts are read
-- live from `alerts` (small) by the web page.
-- area: the household's village (TPMAP's 10-digit id as given), or its sub-district.
CREATE TABLE IF NOT EXISTS work_items{on_cluster}
(
    refreshed_at DateTime64(3, 'UTC'),
    area String,
    household_key String,
    village Nullable(String),
    subdistrict String,
    members UInt16,
    on_target_list Bool,
    target_list_time Nullable(DateTime64(3, 'UTC')),
    last_visit_time Nullable(DateTime64(3, 'UTC')),
    visits UInt32,
    open_problems UInt32,
    stage String,
    visit_due Bool,
    overdue_problems UInt32,
    -- for the provincial analysts' row policy (sinks/roles.py)
    province String MATERIALIZED substring(subdistrict, 1, 2)
)
ENGINE = ReplacingMergeTree(refreshed_at)
ORDER BY (area, household_key);

CREATE MATERIALIZED VIEW IF NOT EXISTS work_items_mv{on_cluster}
REFRESH EVERY 10 SECOND APPEND TO work_items AS
SELECT now64(3) AS refreshed_at, area, household_key, village, subdistrict, members, on_target_list,
       target_list_time, last_visit_time, visits, open_problems, stage, visit_due, overdue_problems
FROM
(
    SELECT
        coalesce(village, subdistrict) AS area, household_key, village, subdistrict, members, on_target_list,
        target_list_time, last_visit_time, visits, open_problems, toString(stage) AS stage,
        on_target_list AND (last_visit_time IS NULL
                            OR (target_list_time IS NOT NULL AND last_visit_time < target_list_time)) AS visit_due,
        toUInt32(arrayCount(p -> coalesce(tupleElement(p, 'reported_at'), tupleElement(p, 'status_since'))
                                 < now64(3) - INTERVAL 30 DAY, open_problem_list)) AS overdue_problems
    FROM household_state FINAL
    WHERE visit_due OR overdue_problems > 0
    UNION ALL
    -- the snapshot's marker
    SELECT '', '', NULL, '', 0, false, NULL, NULL, 0, 0, '', false, 0
);

-- Open Thai QM problems per area, dimension and age (the area pages' "open problems by dimension
-- and age"), recomputed on the same schedule for the same reason: per refresh, one row per
-- finest area (village or sub-district, as `area` above), dimension ('' when the problem has
-- none) and age bucket (days since reported, or since its current status when the report time
-- is unknown: 0-7, 8-30, 31-90, 91+), plus one marker row per snapshot.
CREATE TABLE IF NOT EXISTS problem_figures{on_cluster}
(
    refreshed_at DateTime64(3, 'UTC'),
    area String,
    dimension String,
    age_bucket UInt8,
    problems UInt32,
    province String MATERIALIZED substring(area, 1, 2)
)
ENGINE = ReplacingMergeTree(refreshed_at)
ORDER BY (area, dimension, age_bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS problem_figures_mv{on_cluster}
REFRESH EVERY 10 SECOND APPEND TO problem_figures AS
SELECT now64(3) AS refreshed_at, area, dimension, age_bucket, problems
FROM
(
    SELECT
        coalesce(village, subdistrict) AS area,
        ifNull(toString(tupleElement(p, 'dimension')), '') AS dimension,
        -- by whole days elapsed
        toUInt8(multiIf(age_days <= 7, 1, age_days <= 30, 2, age_days <= 90, 3, 4)) AS age_bucket,
        toUInt32(count()) AS problems
    FROM
    (
        SELECT village, subdistrict, p,
               intDiv(dateDiff('second', coalesce(tupleElement(p, 'reported_at'), tupleElement(p, 'status_since')),
                               now64(3)), 86400) AS age_days
        FROM household_state FINAL
        ARRAY JOIN open_problem_list AS p
    )
    GROUP BY area, dimension, age_bucket
    UNION ALL
    SELECT '', '', 0, 0
);
