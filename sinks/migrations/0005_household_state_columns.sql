-- The rest of povhub.household.state.v1 (issue 4): every field of the state record becomes a
-- column, so analysts and the level figures read them without JSON. Rows stored before this
-- migration read the Avro defaults (0, false, empty, NULL, SURVIVE), which is what a record
-- written without the field decodes to.
-- Types as in 0002: cheap to encode in clickhouse-connect (plain String, Enum8, Map(String, …)
-- instead of LowCardinality). Counts are unsigned: a negative count cannot be encoded, so the
-- record goes to the dead-letter topic instead of into the figures.
-- Timestamps are Nullable(DateTime64(3, 'UTC')) like the Avro union null|timestamp-millis; ages
-- (days since the last visit) are computed at query time, never stored.
ALTER TABLE household_state{on_cluster}
    ADD COLUMN IF NOT EXISTS income_per_person_baht Nullable(Int64),
    ADD COLUMN IF NOT EXISTS welfare_card_holders UInt16,
    ADD COLUMN IF NOT EXISTS elderly_members UInt16,
    ADD COLUMN IF NOT EXISTS disabled_members UInt16,
    ADD COLUMN IF NOT EXISTS bedridden_members UInt16,
    ADD COLUMN IF NOT EXISTS school_age_members UInt16,
    ADD COLUMN IF NOT EXISTS has_elderly Bool,
    ADD COLUMN IF NOT EXISTS has_disabled Bool,
    ADD COLUMN IF NOT EXISTS has_bedridden Bool,
    ADD COLUMN IF NOT EXISTS child_out_of_school Bool,
    ADD COLUMN IF NOT EXISTS insecure_housing Bool,
    ADD COLUMN IF NOT EXISTS income_below_threshold Bool,
    ADD COLUMN IF NOT EXISTS no_income Bool,
    ADD COLUMN IF NOT EXISTS no_caregiver Bool,
    ADD COLUMN IF NOT EXISTS has_welfare_card Bool,
    ADD COLUMN IF NOT EXISTS target_list_time Nullable(DateTime64(3, 'UTC')),
    ADD COLUMN IF NOT EXISTS thaiqm_case_id Nullable(String),
    ADD COLUMN IF NOT EXISTS open_problems UInt32,
    ADD COLUMN IF NOT EXISTS open_problems_by_dimension Map(String, UInt32),
    ADD COLUMN IF NOT EXISTS closed_problems UInt32,
    ADD COLUMN IF NOT EXISTS open_problem_list Array(Tuple(
        problem_id String,
        dimension Nullable(Enum8('health' = 1, 'living' = 2, 'education' = 3, 'income' = 4, 'access' = 5)),
        problem_code Nullable(String),
        status String,
        reported_at Nullable(DateTime64(3, 'UTC')),
        status_since DateTime64(3, 'UTC'))),
    ADD COLUMN IF NOT EXISTS last_visit_time Nullable(DateTime64(3, 'UTC')),
    ADD COLUMN IF NOT EXISTS visits UInt32,
    ADD COLUMN IF NOT EXISTS last_visit_findings Array(String),
    ADD COLUMN IF NOT EXISTS last_assistance_time Nullable(DateTime64(3, 'UTC')),
    ADD COLUMN IF NOT EXISTS assistance_counts Map(String, UInt32),
    ADD COLUMN IF NOT EXISTS assistance_baht Map(String, Float64),
    ADD COLUMN IF NOT EXISTS referrals UInt32,
    ADD COLUMN IF NOT EXISTS elderly_allowances UInt16,
    ADD COLUMN IF NOT EXISTS disability_allowances UInt16,
    ADD COLUMN IF NOT EXISTS allowance_monthly_baht Float64,
    ADD COLUMN IF NOT EXISTS clean_data_years UInt16,
    ADD COLUMN IF NOT EXISTS stage Enum8('SURVIVE' = 1, 'SUFFICIENT' = 2, 'SUSTAINABLE' = 3) DEFAULT 'SURVIVE',
    ADD COLUMN IF NOT EXISTS stage_rule String;

-- Derived once at insert, so the level figures aggregate plain numbers instead of maps:
-- open_problem_dimension_mask has bit d-1 set when Thai QM has an open problem in dimension d
-- (same bits as failed_dimension_mask, for the TPMAP-Thai QM comparison); a map lookup of an
-- absent key gives 0.
ALTER TABLE household_state{on_cluster}
    ADD COLUMN IF NOT EXISTS open_problem_dimension_mask UInt8
        MATERIALIZED toUInt8((open_problems_by_dimension['health'] > 0) + 2 * (open_problems_by_dimension['living'] > 0)
            + 4 * (open_problems_by_dimension['education'] > 0) + 8 * (open_problems_by_dimension['income'] > 0)
            + 16 * (open_problems_by_dimension['access'] > 0)),
    ADD COLUMN IF NOT EXISTS assistance_given UInt32 MATERIALIZED toUInt32(arraySum(mapValues(assistance_counts))),
    ADD COLUMN IF NOT EXISTS assistance_baht_total Float64 MATERIALIZED arraySum(mapValues(assistance_baht));

-- household_latest was created with the columns of 0002 and 0004; re-created to show all of them
CREATE OR REPLACE VIEW household_latest{on_cluster} SQL SECURITY INVOKER AS
SELECT *, area_code, failed_dimension_mask, open_problem_dimension_mask, assistance_given, assistance_baht_total
FROM household_state FINAL;
