-- The tambon teams' work lists kept at every insert instead of recomputed every 10 s. 0010's
-- work_items_mv appended a snapshot of every household that needed action (a target-poor household
-- not visited since it joined the list: half of the 1M pipeline's households, 528k rows) every
-- 10 s, and the merges rewrote them: on the 1M pipeline's data 0.63 CPU s a refresh and ~0.6 s to
-- merge the snapshots away, in the worker's chdb, growing with the country's households (~14 CPU
-- s every 10 s at 12.9M).
--
-- Now each household_state insert writes each version's work-list fields to household_work, sorted
-- by area (a tambon's rows are read together, as before) and replaced by the household's newer
-- version in the same area. What changes with the clock alone stays out of the table: a Thai QM
-- problem's overdue count is taken when the list is read, from the problems' times kept here
-- (sinks/web_queries.py, PROBLEM_SLA_DAYS). A household that moved keeps its row in its old area:
-- the reader keeps only rows of the household's latest version (household_contributions, 0013:
-- 128-row granules by household_key, each counted version). Every version is written, due or not:
-- a household visited since it was due must replace its row.
CREATE TABLE IF NOT EXISTS household_work{on_cluster}
(
    area String,
    household_key String,
    version UInt64,
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
    -- each open Thai QM problem's report time, else the time its current status began
    problem_times Array(DateTime64(3, 'UTC')),
    -- for the provincial analysts' row policy (sinks/roles.py)
    province String MATERIALIZED substring(subdistrict, 1, 2)
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY (area, household_key)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS household_work_mv{on_cluster} TO household_work AS
SELECT
    coalesce(village, subdistrict) AS area, household_key, version, village, subdistrict, members, on_target_list,
    target_list_time, last_visit_time, visits, open_problems, toString(stage) AS stage,
    on_target_list AND (last_visit_time IS NULL
                        OR (target_list_time IS NOT NULL AND last_visit_time < target_list_time)) AS visit_due,
    arrayMap(p -> coalesce(tupleElement(p, 'reported_at'), tupleElement(p, 'status_since')), open_problem_list)
        AS problem_times
FROM household_state;

-- The households stored before this migration get their rows from the view's own query in the
-- migration's data step (sinks/work_lists.py: an INSERT cannot run ON CLUSTER).
DROP VIEW IF EXISTS work_items_mv{on_cluster};
DROP TABLE IF EXISTS work_items{on_cluster};
