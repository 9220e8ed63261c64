-- household_state's loader hands ClickHouse the state topic's Avro as it is (an object container
-- file of the messages' bodies) instead of decoding each record in Python: fastavro's decode, the
-- row and clickhouse-connect's Native encoding cost ~90 µs a state, ClickHouse's own Avro input
-- with this view's checks ~30 (bench/avro_insert.py). household_state_avro takes the rows in the Avro's own types, wider
-- than the table's, and this view checks everything the Python path refuses before it narrows
-- them into household_state: a failed check fails the whole insert (throwIf), and the loader then
-- decodes that batch in Python, which dead-letters each bad record (sinks/avro_batch.py).
--
-- The container puts the Kafka coordinates and 8 random bytes before each body and the same 8
-- bytes after it (_begin, _end): ClickHouse reads a record and skips what follows it in its
-- block, so bytes after a record (or two records glued together) show as _end != _begin. Its
-- schema writes each enum as the int it is on the wire (its symbol's index): ClickHouse's Avro
-- reader looks an index up in the symbols unchecked, so this view checks it, then names it.
-- A Null table stores nothing; the view's insert into household_state carries the batch's
-- deduplication token on (deduplicate_blocks_in_dependent_materialized_views), so a batch
-- retried the same way is dropped there, and household_state's own views run as for any insert.
CREATE TABLE IF NOT EXISTS household_state_avro{on_cluster}
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _begin FixedString(8),
    event_id String,
    source String,
    source_record_id String,
    event_time Int64,
    ingest_time Int64,
    schema_version Int32,
    household_key String,
    province String,
    district String,
    subdistrict String,
    village Nullable(String),
    version Int64,
    data_year Nullable(Int32),
    on_target_list Bool,
    members Int32,
    target_poor_persons Int32,
    failed_indicators Array(Int32),
    failed_dimensions Array(Int32),
    income_per_person_baht Nullable(Int64),
    welfare_card_holders Int32,
    welfare_registered_members Int32,
    elderly_members Int32,
    disabled_members Int32,
    bedridden_members Int32,
    chronic_illness_members Int32,
    school_age_members Int32,
    has_elderly Bool,
    has_disabled Bool,
    has_bedridden Bool,
    child_out_of_school Bool,
    insecure_housing Bool,
    income_below_threshold Bool,
    no_income Bool,
    no_caregiver Bool,
    has_welfare_card Bool,
    target_list_time Nullable(Int64),
    thaiqm_case_id Nullable(String),
    open_problems Int32,
    open_problems_by_dimension Map(String, Int32),
    closed_problems Int32,
    open_problem_list Array(Tuple(
        problem_id String,
        dimension Nullable(Int32),
        problem_code Nullable(String),
        status String,
        reported_at Nullable(Int64),
        status_since Int64)),
    last_visit_time Nullable(Int64),
    visits Int32,
    last_visit_findings Array(String),
    last_assistance_time Nullable(Int64),
    assistance_counts Map(String, Int32),
    assistance_baht Map(String, Float64),
    referrals Int32,
    elderly_allowances Int32,
    disability_allowances Int32,
    allowance_monthly_baht Float64,
    clean_data_years Int32,
    stage Int32,
    stage_rule String,
    _end FixedString(8)
)
ENGINE = Null;

-- Which way a stored row came: a batch stored before a crash is inserted again the same way
-- (sinks/loader.py reinsert_uncommitted), so its deduplication tokens are the first attempt's.
ALTER TABLE household_state{on_cluster} ADD COLUMN IF NOT EXISTS _avro Bool DEFAULT false;

-- household_latest shows every column, as 0009 made it
CREATE OR REPLACE VIEW household_latest{on_cluster} SQL SECURITY INVOKER AS
SELECT *, area_code, failed_dimension_mask, open_problem_dimension_mask, assistance_given, assistance_baht_total
FROM household_state FINAL;

-- Times: DateTime64(3)'s range (1900-01-01 .. 2299-12-31 in epoch ms); a time outside it goes the
-- Python way, as do codes written in digits other than ASCII's (which the Python check takes).
CREATE MATERIALIZED VIEW IF NOT EXISTS household_state_avro_mv{on_cluster} TO household_state AS
SELECT
    household_key,
    toUInt64(version) AS version,
    toUUID(event_id) AS event_id,
    source,
    source_record_id,
    fromUnixTimestamp64Milli(event_time, 'UTC') AS event_time,
    fromUnixTimestamp64Milli(ingest_time, 'UTC') AS ingest_time,
    toUInt16(schema_version) AS schema_version,
    province,
    district,
    subdistrict,
    village,
    CAST(data_year, 'Nullable(UInt16)') AS data_year,
    on_target_list,
    toUInt16(members) AS members,
    toUInt16(target_poor_persons) AS target_poor_persons,
    CAST(failed_indicators, 'Array(UInt8)') AS failed_indicators,
    arrayMap(x -> CAST(toInt8(x + 1), 'Enum8(\'health\' = 1, \'living\' = 2, \'education\' = 3, \'income\' = 4, \'access\' = 5)'), failed_dimensions) AS failed_dimensions,
    _topic,
    toUInt32(_partition) AS _partition,
    toUInt64(_offset) AS _offset,
    income_per_person_baht,
    toUInt16(welfare_card_holders) AS welfare_card_holders,
    toUInt16(elderly_members) AS elderly_members,
    toUInt16(disabled_members) AS disabled_members,
    toUInt16(bedridden_members) AS bedridden_members,
    toUInt16(school_age_members) AS school_age_members,
    has_elderly,
    has_disabled,
    has_bedridden,
    child_out_of_school,
    insecure_housing,
    income_below_threshold,
    no_income,
    no_caregiver,
    has_welfare_card,
    if(target_list_time IS NULL, NULL, fromUnixTimestamp64Milli(assumeNotNull(target_list_time), 'UTC')) AS target_list_time,
    thaiqm_case_id,
    toUInt32(open_problems) AS open_problems,
    CAST(open_problems_by_dimension, 'Map(String, UInt32)') AS open_problems_by_dimension,
    toUInt32(closed_problems) AS closed_problems,
    arrayMap(p -> (p.1, if(p.2 IS NULL, NULL, CAST(toInt8(assumeNotNull(p.2) + 1), 'Enum8(\'health\' = 1, \'living\' = 2, \'education\' = 3, \'income\' = 4, \'access\' = 5)')), p.3, p.4,
                   if(p.5 IS NULL, NULL, fromUnixTimestamp64Milli(assumeNotNull(p.5), 'UTC')),
                   fromUnixTimestamp64Milli(p.6, 'UTC')), open_problem_list) AS open_problem_list,
    if(last_visit_time IS NULL, NULL, fromUnixTimestamp64Milli(assumeNotNull(last_visit_time), 'UTC')) AS last_visit_time,
    toUInt32(visits) AS visits,
    last_visit_findings,
    if(last_assistance_time IS NULL, NULL, fromUnixTimestamp64Milli(assumeNotNull(last_assistance_time), 'UTC')) AS last_assistance_time,
    CAST(assistance_counts, 'Map(String, UInt32)') AS assistance_counts,
    assistance_baht,
    toUInt32(referrals) AS referrals,
    toUInt16(elderly_allowances) AS elderly_allowances,
    toUInt16(disability_allowances) AS disability_allowances,
    allowance_monthly_baht,
    toUInt16(clean_data_years) AS clean_data_years,
    CAST(toInt8(stage + 1), 'Enum8(\'SURVIVE\' = 1, \'SUFFICIENT\' = 2, \'SUSTAINABLE\' = 3)') AS stage,
    stage_rule,
    toUInt16(welfare_registered_members) AS welfare_registered_members,
    toUInt16(chronic_illness_members) AS chronic_illness_members,
    true AS _avro
FROM (SELECT * FROM household_state_avro
-- checked before the outer query's names (the narrowed columns' aliases) exist
WHERE throwIf(NOT (
    _end = _begin AND _partition >= 0 AND _offset >= 0
    -- every string valid UTF-8 (the Python decoder refuses the record otherwise)
    AND isValidUTF8(_topic) AND isValidUTF8(event_id) AND isValidUTF8(source) AND isValidUTF8(source_record_id)
    AND isValidUTF8(household_key) AND isValidUTF8(coalesce(thaiqm_case_id, '')) AND isValidUTF8(stage_rule)
    AND arrayAll(x -> isValidUTF8(x), last_visit_findings)
    AND arrayAll(x -> isValidUTF8(x), mapKeys(assistance_counts)) AND arrayAll(x -> isValidUTF8(x), mapKeys(assistance_baht))
    AND arrayAll(p -> isValidUTF8(p.1) AND isValidUTF8(coalesce(p.3, '')) AND isValidUTF8(p.4), open_problem_list)
    -- the codes nest (sinks/area_codes.py); a village is 8 digits or TPMAP's 10
    AND match(province, '^[0-9]{2}$') AND match(district, '^[0-9]{4}$') AND startsWith(district, province)
    AND match(subdistrict, '^[0-9]{6}$') AND startsWith(subdistrict, district)
    AND (village IS NULL OR (match(village, '^[0-9]{8}([0-9]{2})?$') AND startsWith(village, subdistrict)))
    -- an event id in the one form ClickHouse's toUUID reads whole (other forms go the Python way)
    AND match(event_id, '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
    -- enums as their symbols' indexes: within the symbols (0020's names follow the schema's order)
    AND arrayAll(x -> x BETWEEN 0 AND 4, failed_dimensions) AND stage BETWEEN 0 AND 2
    AND arrayAll(p -> p.2 IS NULL OR assumeNotNull(p.2) BETWEEN 0 AND 4, open_problem_list)
    -- a key once in each map (fastavro keeps a repeated key's last value, ClickHouse both)
    AND length(mapKeys(open_problems_by_dimension)) = length(arrayDistinct(mapKeys(open_problems_by_dimension)))
    AND length(mapKeys(assistance_counts)) = length(arrayDistinct(mapKeys(assistance_counts)))
    AND length(mapKeys(assistance_baht)) = length(arrayDistinct(mapKeys(assistance_baht)))
    -- problem counts only under dimensions (sinks/household_state.py _by_dimension)
    AND arrayAll(k -> k IN ('health', 'living', 'education', 'income', 'access'), mapKeys(open_problems_by_dimension))
    -- every number fits its column
    AND version >= 0 AND schema_version BETWEEN 0 AND 65535 AND (data_year IS NULL OR assumeNotNull(data_year) BETWEEN 0 AND 65535)
    AND members BETWEEN 0 AND 65535 AND target_poor_persons BETWEEN 0 AND 65535 AND welfare_card_holders BETWEEN 0 AND 65535 AND welfare_registered_members BETWEEN 0 AND 65535
    AND elderly_members BETWEEN 0 AND 65535 AND disabled_members BETWEEN 0 AND 65535 AND bedridden_members BETWEEN 0 AND 65535 AND chronic_illness_members BETWEEN 0 AND 65535
    AND school_age_members BETWEEN 0 AND 65535 AND elderly_allowances BETWEEN 0 AND 65535 AND disability_allowances BETWEEN 0 AND 65535 AND clean_data_years BETWEEN 0 AND 65535
    AND open_problems >= 0 AND closed_problems >= 0 AND visits >= 0 AND referrals >= 0
    AND arrayAll(x -> x BETWEEN 0 AND 255, failed_indicators)
    AND arrayAll(x -> x >= 0, mapValues(open_problems_by_dimension)) AND arrayAll(x -> x >= 0, mapValues(assistance_counts))
    AND event_time BETWEEN -2208988800000 AND 10413791999999 AND ingest_time BETWEEN -2208988800000 AND 10413791999999
    AND (target_list_time IS NULL OR assumeNotNull(target_list_time) BETWEEN -2208988800000 AND 10413791999999)
    AND (last_visit_time IS NULL OR assumeNotNull(last_visit_time) BETWEEN -2208988800000 AND 10413791999999)
    AND (last_assistance_time IS NULL OR assumeNotNull(last_assistance_time) BETWEEN -2208988800000 AND 10413791999999)
    AND arrayAll(p -> (p.5 IS NULL OR assumeNotNull(p.5) BETWEEN -2208988800000 AND 10413791999999) AND p.6 BETWEEN -2208988800000 AND 10413791999999, open_problem_list)
), 'a household state the loader must decode itself (sinks/avro_batch.py)') = 0);
