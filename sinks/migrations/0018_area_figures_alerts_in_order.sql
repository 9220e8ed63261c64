-- area_figures' refresh (0015) with each alert's latest step found by sorting its steps, where 0015
-- grouped every step of every alert ever raised by alert_id and kept an argMax of a tuple per
-- group: on the 1M-household pipeline's data (268k alert steps) that part took 0.41-0.57 CPU s of
-- the refresh's ~0.75, every 10 s, and it grows with the alerts of every year. LIMIT 1 BY over the
-- steps in the table's sorting order (alerts, 0006: alert_id, event_time, event_id) gives the
-- same steps (the same order decides, ties included) in ~0.10 CPU s there. Same columns and values:
-- tests/sinks/test_levels.py holds the snapshot against a Python reference (steps shuffled, a
-- fifth delivered twice). Dropped and created again, as a view's query is fixed when it is made:
-- area_figures keeps its rows.
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
                -- Each alert's latest step, the one argMax over (event_time, action, event_id) gave
                -- (a redelivered step is the same row again), read in the table's order: alert_id
                -- first, so each alert's steps are sorted where they lie
                SELECT action, severity, area_code, due_time
                FROM alerts
                ORDER BY alert_id, event_time DESC, action DESC, event_id DESC
                LIMIT 1 BY alert_id
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
