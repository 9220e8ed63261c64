-- The live household figures (0011) counted once when a kill lands between the two views' inserts.
--
-- Found (tests/sinks/test_live_figures.py, "stored in household_contributions but not in the
-- figures"; the chaos tests' figures_off=1): ClickHouse writes household_state, then
-- household_contributions, then area_household_figures, one after another. A kill -9 after
-- household_contributions' part and before area_household_figures' left the figures without the
-- batch; at the retry (same deduplication token) household_contributions_mv ran again but found
-- the batch's own versions already stored, so it counted nothing, and the figures stayed short.
--
-- Fix: each row of household_contributions names the batch that wrote it (a hash of the block's
-- Kafka coordinates, households and versions) and the household's state before that batch (the
-- `base`: found, version, contribution). At the retry of a batch, the view takes the state before
-- it from the batch's own rows instead of the stored maximum, so it writes exactly the rows of
-- the first attempt: household_contributions drops them by their token, and the view chain still
-- runs (deduplicate_blocks_in_dependent_materialized_views), so area_household_figures stores them
-- if it lacked them and drops them by their token if it had them. A batch re-inserted with other
-- boundaries has another hash and is still not counted twice. The base is kept on every row of
-- the batch, so a merge that keeps only the batch's highest version per household loses nothing.
-- A row written before this migration (or by the backfill, sinks/figures.py) has batch 0.
ALTER TABLE household_contributions{on_cluster}
    ADD COLUMN IF NOT EXISTS batch UInt64,
    ADD COLUMN IF NOT EXISTS base_found Bool,
    ADD COLUMN IF NOT EXISTS base_version UInt64,
    ADD COLUMN IF NOT EXISTS base Tuple(UInt32, UInt16, UInt16, Bool, UInt16, UInt8,
        Enum8('SURVIVE' = 1, 'SUFFICIENT' = 2, 'SUSTAINABLE' = 3), UInt32, UInt8, UInt32, Float64, Bool);

DROP VIEW IF EXISTS household_contributions_mv{on_cluster};

-- As in 0011, but the stored state `s` is, for a household the same batch already wrote (a retry),
-- the base its rows carry; otherwise the highest stored version as before.
CREATE MATERIALIZED VIEW IF NOT EXISTS household_contributions_mv{on_cluster} TO household_contributions AS
WITH (SELECT groupBitXor(sipHash64(_topic, _partition, _offset, household_key, version)) FROM household_state)
    AS this_batch
SELECT
    n.household_key AS household_key,
    n.version AS version,
    n.new AS contribution,
    length(arrayFilter(r -> r.1 < n.version AND (NOT s.found OR r.1 > s.stored_version), b.block)) > 0 OR s.found
        AS has_previous,
    if(arrayExists(r -> r.1 < n.version AND (NOT s.found OR r.1 > s.stored_version), b.block),
       arraySort(r -> r.1, arrayFilter(r -> r.1 < n.version AND (NOT s.found OR r.1 > s.stored_version), b.block))[-1].2,
       s.stored) AS previous,
    this_batch AS batch,
    s.found AS base_found,
    s.stored_version AS base_version,
    s.stored AS base
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
    SELECT household_key,
        countIf(batch = this_batch) > 0 AS retried,
        if(retried, anyIf(base_found, batch = this_batch), countIf(batch != this_batch) > 0) AS found,
        if(retried, anyIf(base_version, batch = this_batch), maxIf(version, batch != this_batch)) AS stored_version,
        if(retried, anyIf(base, batch = this_batch), argMaxIf(contribution, version, batch != this_batch)) AS stored
    FROM household_contributions
    WHERE household_key IN (SELECT household_key FROM household_state)
    GROUP BY household_key
) AS s USING (household_key)
WHERE NOT s.found OR n.version > s.stored_version
SETTINGS join_use_nulls = 0;
