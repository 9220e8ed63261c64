"""Where a stage keeps its committed state: in memory (tests, small areas) or on disk (RocksDB)."""
