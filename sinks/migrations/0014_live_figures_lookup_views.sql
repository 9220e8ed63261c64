-- The third step of 0013 (read it first): household_contributions, now 0013's table holding every
-- row of the old one (moved and renamed by sinks/figures.py move_contributions, which a retried
-- migration resumes from where it stopped), gets the two views again, unchanged.

-- 0012's view, unchanged
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

-- 0011's view, unchanged
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
