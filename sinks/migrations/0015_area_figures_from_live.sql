-- area_figures' refresh (0007) with less to read: every 10 s it read every household's latest
-- version (household_state FINAL, the twenty-odd state columns the figures use) and rolled the
-- figures up to four levels, though since 0011 the household figures are kept current at every
-- insert in area_household_figures, already per level, which area_summary reads. The refreshes run
-- in the worker's chdb beside the loaders, during an import and a steady stream alike.
--
-- Now, with the same columns and values:
-- - households ... disagree_thaiqm_only, stage_* and assessed_households: summed from
--   area_household_figures (0011: +1 x each counted version, -1 x the one it replaced, per level,
--   area and data year), i.e. each household once, at its latest version, as FINAL counted it.
--   An area whose households all moved away sums to 0 there and is left out, as before.
-- - visited_30d / visited_90d: still from household_state FINAL, but only the visit column and
--   the households visited within 90 days go on to the roll-up.
-- - open alerts and the sources' newest events: as in 0007.
-- Measured on bench/level_queries.py's 1M households (merged): the refresh's query 0.92 -> 0.78 CPU
-- s; most of what is left is the roll-up and joins of the ~155k finest areas, which do not grow
-- with the households. tests/sinks/test_levels.py holds the snapshot against a Python reference.
-- Dropped and created again (a view's query is fixed when it is made); area_figures keeps its
-- rows, and the next refresh appends a snapshot computed the new way.
DROP VIEW IF EXISTS area_figures_mv{on_cluster};

CREATE MATERIALIZED VIEW IF NOT EXISTS area_figures_mv{on_cluster}
REFRESH EVERY 10 SECOND APPEND TO area_figures AS
WITH (SELECT max(data_year) FROM household_state) AS newest_year
SELECT
    code_length,
    area_code,
    now64(3) AS refreshed_at,
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
    o.visited_30d AS visited_30d,
    o.visited_90d AS visited_90d,
    h.assisted_households AS assisted_households,
    h.assistance_given AS assistance_given,
    h.assistance_baht AS assistance_baht,
    h.compared_households AS compared_households,
    h.disagree_households AS disagree_households,
    h.disagree_tpmap_only AS disagree_tpmap_only,
    h.disagree_thaiqm_only AS disagree_thaiqm_only,
    o.open_alerts_low AS open_alerts_low,
    o.open_alerts_medium AS open_alerts_medium,
    o.open_alerts_high AS open_alerts_high,
    o.open_alerts_critical AS open_alerts_critical,
    o.open_alerts_overdue AS open_alerts_overdue,
    o.tpmap_newest AS tpmap_newest,
    o.thaiqm_newest AS thaiqm_newest,
    o.localgov_newest AS localgov_newest
FROM
(
    -- the household figures of every area at every level, kept current by 0011's views
    SELECT
        code_length,
        area_code,
        sum(households) AS households,
        sum(persons) AS persons,
        sum(target_poor_households) AS target_poor_households,
        sum(target_poor_persons) AS target_poor_persons,
        sum(failed_health) AS failed_health,
        sum(failed_living) AS failed_living,
        sum(failed_education) AS failed_education,
        sum(failed_income) AS failed_income,
        sum(failed_access) AS failed_access,
        -- g.: the column, where the aggregate of the same name would be meant otherwise
        sumIf(g.households, g.data_year = newest_year) AS assessed_households,
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
        sum(disagree_thaiqm_only) AS disagree_thaiqm_only
    FROM area_household_figures AS g
    GROUP BY code_length, area_code
    HAVING households != 0
) AS h
FULL OUTER JOIN
(
    -- the figures of the other sources, per finest area, then each finest area once per level
    SELECT
        code_length,
        intDiv(finest, toUInt32(intExp10(8 - code_length))) AS area_code,
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
    FROM
    (
        SELECT *
        FROM
        (
            SELECT
                area_code AS finest,
                countIf(last_visit_time >= now64(3) - INTERVAL 30 DAY) AS visited_30d,
                countIf(last_visit_time >= now64(3) - INTERVAL 90 DAY) AS visited_90d
            -- the filter applies to each household's latest version (after FINAL's merge)
            FROM household_state FINAL
            WHERE last_visit_time >= now64(3) - INTERVAL 90 DAY
            GROUP BY finest
        ) AS v
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
    ARRAY JOIN [2, 4, 6, 8] AS code_length
    GROUP BY code_length, area_code
) AS o USING (code_length, area_code)
-- an area missing from one side of a join gets 0 (NULL for the Nullable times), not NULL
SETTINGS join_use_nulls = 0;
