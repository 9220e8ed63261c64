-- The live household figures (0011, 0012) at a cost that does not grow with the country: a
-- household_state insert looks up only the granules of its own households in
-- household_contributions, not the whole table.
--
-- Measured (bench/live_figures_insert.py, README "Sizing"): household_contributions_mv's lookup
-- of each household's previous contribution (`s`, `household_key IN (the block's households)`)
-- selected every granule of household_contributions once it held about as many households as
-- there are granules x the block's households: with ClickHouse's default index_granularity of
-- 8,192 rows, a block of 300 random households lands in ~300 different granules, i.e. all of
-- them up to ~2.5M rows, so an insert read the whole table (its three contribution tuples) and
-- cost ~100 ms at 100k households and ~330 ms at 1.1M rows in the pipeline.
--
-- Fix: household_contributions again, with index_granularity = 128 and every part in the compact
-- format: a lookup reads one granule of 128 rows per household of the block (300 x 128 = 38k
-- rows, whatever the table's size) instead of every granule. Compact, because the lookup reads
-- four tuples' and four plain columns' subcolumns, ~30 files in a wide part, each decompressed
-- around every granule asked for: with small granules alone a wide table cost about as much
-- (a probe at 1M households, CPU of the lookup: 8,192-row wide ~150 ms, 128-row wide 85-150 ms,
-- 128-row compact 35-50 ms). bench/live_figures_insert.py at 1M: the lookup 76.5 -> 27.2 ms CPU,
-- a 300-row insert with its views 150 -> 80 ms (66 ms at 100k before). A compact part keeps a
-- granule's columns together in one file; min_bytes_for_wide_part of 10 GB keeps every part
-- compact (12.9M households: ~230 MiB). The primary index grows to one mark per 128 rows
-- (12.9M households: ~100k marks, a few MiB in memory). index_granularity cannot be altered on
-- an existing table, so a new table is made, the rows moved into it (the batch and base columns
-- of 0012 too, so a retry still finds its batch's rows), and it takes the old table's name; the
-- two views are created again on it, unchanged (0012's household_contributions_mv, 0011's
-- area_household_figures_mv).
-- The views are dropped before the rows move, so nothing is counted twice or missed: migrations
-- run before the worker starts its loaders. area_household_figures keeps its rows and its
-- deduplication tokens. Three steps: this file makes the table and drops the views; the rows
-- move and the table takes the old one's name in sinks/figures.py (an INSERT cannot run ON
-- CLUSTER: on one host, and the Replicated table brings them to the other replicas; a retried
-- migration resumes from the tables it finds); 0014 gives the views back.
CREATE TABLE IF NOT EXISTS household_contributions_0013{on_cluster}
(
    household_key String,
    version UInt64,
    contribution Tuple(UInt32, UInt16, UInt16, Bool, UInt16, UInt8,
        Enum8('SURVIVE' = 1, 'SUFFICIENT' = 2, 'SUSTAINABLE' = 3), UInt32, UInt8, UInt32, Float64, Bool),
    has_previous Bool,
    previous Tuple(UInt32, UInt16, UInt16, Bool, UInt16, UInt8,
        Enum8('SURVIVE' = 1, 'SUFFICIENT' = 2, 'SUSTAINABLE' = 3), UInt32, UInt8, UInt32, Float64, Bool),
    batch UInt64,
    base_found Bool,
    base_version UInt64,
    base Tuple(UInt32, UInt16, UInt16, Bool, UInt16, UInt8,
        Enum8('SURVIVE' = 1, 'SUFFICIENT' = 2, 'SUSTAINABLE' = 3), UInt32, UInt8, UInt32, Float64, Bool)
)
ENGINE = {engine:ReplacingMergeTree(version)}
ORDER BY household_key
SETTINGS index_granularity = 128, min_bytes_for_wide_part = 10000000000, non_replicated_deduplication_window = 1000;

DROP VIEW IF EXISTS household_contributions_mv{on_cluster};
DROP VIEW IF EXISTS area_household_figures_mv{on_cluster};
