-- Views per ศจพ. level, computed at query time from the latest state of each household, so a
-- household whose state changed many times counts once, in the area of its latest version.
--
-- area_code is the household's finest area as a number: the village (8 digits) or, when the
-- village is unknown, the sub-district followed by 00 (as DOPA writes หมู่ 0). Codes nest by
-- prefix (the loader refuses codes that do not), so intDiv(area_code, 10^(8 - n)) is the
-- province (n = 2), district (4), sub-district (6) or village (8) and every level partitions
-- the same households: children add up to their parent. Integer keys group several times
-- faster than string prefixes (measured: bench/level_queries.py); the divisors are cast to
-- UInt32 because intDiv by a UInt64 constant is several times slower on a UInt32 column.
-- failed_dimension_mask has bit d-1 set for dimension code d.
ALTER TABLE household_state{on_cluster}
    ADD COLUMN IF NOT EXISTS area_code UInt32
        MATERIALIZED toUInt32OrZero(coalesce(village, concat(subdistrict, '00'))),
    ADD COLUMN IF NOT EXISTS failed_dimension_mask UInt8
        MATERIALIZED toUInt8(arraySum(arrayMap(d -> bitShiftLeft(1, CAST(d, 'UInt8') - 1), arrayDistinct(failed_dimensions))));

-- Each household once, at its highest version. A view's columns are fixed when it is created:
-- the migrations that add state fields (issue 4) or alerts (issue 5) re-create the views below
-- with CREATE OR REPLACE VIEW. SQL SECURITY INVOKER: a view reads with the rights and row
-- policies of whoever queries it, so a provincial analyst sees only that province.
CREATE VIEW IF NOT EXISTS household_latest{on_cluster} SQL SECURITY INVOKER AS
SELECT *, area_code, failed_dimension_mask
FROM household_state FINAL;

-- area_summary(code_length = 0|2|4|6|8, within = 'code prefix'): one row per area of that level
-- inside `within` ('' = everywhere); code_length 0 is the national row, code 'TH'.
-- - Areas from `areas` with no households show zeros; codes that households or events carry
--   and `areas` lacks (villages, unknown codes) still get a row; abolished areas only if used.
--   At the village level, households without a village show under their sub-district's code.
-- - failed_<dimension>: households failing that dimension in their latest TPMAP record.
-- - assessed_households (data completeness): households whose TPMAP record is of the latest
--   data year anywhere; TPMAP assesses all five dimensions for every household it surveys.
-- - <source>_age_s (timeliness): seconds since the newest event_time from that source;
--   NULL when the area has none. A parent's age is the smallest of its children's.
-- Stage, open problems and visits (issue 4) become more aggregates in `h`; open alerts by
-- severity (issue 5) a fourth subquery keyed the same way, FULL JOIN ... USING (k).
CREATE VIEW IF NOT EXISTS area_summary{on_cluster} SQL SECURITY INVOKER AS
SELECT
    multiIf({code_length:UInt8} = 0, 'TH', {code_length:UInt8} = 8 AND k % 100 = 0, toString(intDiv(k, 100)), toString(k)) AS code,
    a.name_th AS name_th,
    a.name_en AS name_en,
    coalesce(h.households, 0) AS households,
    coalesce(h.persons, 0) AS persons,
    coalesce(h.target_poor_households, 0) AS target_poor_households,
    coalesce(h.target_poor_persons, 0) AS target_poor_persons,
    coalesce(h.failed_health, 0) AS failed_health,
    coalesce(h.failed_living, 0) AS failed_living,
    coalesce(h.failed_education, 0) AS failed_education,
    coalesce(h.failed_income, 0) AS failed_income,
    coalesce(h.failed_access, 0) AS failed_access,
    coalesce(h.assessed_households, 0) AS assessed_households,
    dateDiff('second', t.tpmap_newest, now64(3)) AS tpmap_age_s,
    dateDiff('second', t.thaiqm_newest, now64(3)) AS thaiqm_age_s,
    dateDiff('second', t.localgov_newest, now64(3)) AS localgov_age_s
FROM
(
    SELECT toUInt32(0) AS k, 'ประเทศไทย' AS name_th, 'Thailand' AS name_en, false AS abolished
    WHERE {code_length:UInt8} = 0
    UNION ALL
    SELECT toUInt32(code) AS k, name_th, name_en, abolished FROM areas FINAL
    WHERE length(code) = {code_length:UInt8} AND startsWith(code, {within:String})
) AS a
FULL OUTER JOIN
(
    SELECT
        intDiv(area_code, toUInt32(intExp10(8 - {code_length:UInt8}))) AS k,
        count() AS households,
        sum(members) AS persons,
        countIf(on_target_list) AS target_poor_households,
        sum(target_poor_persons) AS target_poor_persons,
        countIf(bitTest(failed_dimension_mask, 0)) AS failed_health,
        countIf(bitTest(failed_dimension_mask, 1)) AS failed_living,
        countIf(bitTest(failed_dimension_mask, 2)) AS failed_education,
        countIf(bitTest(failed_dimension_mask, 3)) AS failed_income,
        countIf(bitTest(failed_dimension_mask, 4)) AS failed_access,
        countIf(data_year = (SELECT max(data_year) FROM household_state)) AS assessed_households
    FROM household_latest
    WHERE intDiv(area_code, toUInt32(intExp10(8 - length({within:String})))) = toUInt32OrZero({within:String})
    GROUP BY k
) AS h USING (k)
FULL OUTER JOIN
(
    SELECT
        intDiv(area_code, toUInt32(intExp10(8 - {code_length:UInt8}))) AS k,
        maxIfOrNull(newest, family = 'tpmap.household') AS tpmap_newest,
        maxIfOrNull(newest, family = 'thaiqm.case') AS thaiqm_newest,
        maxIfOrNull(newest, family = 'localgov.update') AS localgov_newest
    FROM events_newest
    WHERE intDiv(area_code, toUInt32(intExp10(8 - length({within:String})))) = toUInt32OrZero({within:String})
    GROUP BY k
) AS t USING (k)
WHERE NOT a.abolished OR h.households > 0 OR t.k IS NOT NULL
ORDER BY code
SETTINGS join_use_nulls = 1;

-- The whole country at each level, for dashboards and analysts (SELECT * FROM level_province)
CREATE VIEW IF NOT EXISTS level_national{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 0, within = '');
CREATE VIEW IF NOT EXISTS level_province{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 2, within = '');
CREATE VIEW IF NOT EXISTS level_district{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 4, within = '');
CREATE VIEW IF NOT EXISTS level_subdistrict{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 6, within = '');
CREATE VIEW IF NOT EXISTS level_village{on_cluster} SQL SECURITY INVOKER AS
SELECT * FROM area_summary(code_length = 8, within = '');
