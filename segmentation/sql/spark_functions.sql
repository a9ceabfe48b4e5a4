-- The engine-specific functions the portable SQL (features.sql, rfm*.sql) calls, for Spark (temporary SQL
-- functions; Spark inlines them). duckdb_functions.sql documents them; the parity test checks they agree.
-- Timestamps are TIMESTAMP_NTZ (the Spark engine sets spark.sql.timestampType): wall-clock times, no zone.
--   is_weekend: Spark's dayofweek counts 1 = Sunday .. 7 = Saturday (DuckDB's 0 .. 6).
CREATE OR REPLACE TEMPORARY FUNCTION days_between(a TIMESTAMP_NTZ, b TIMESTAMP_NTZ)
    RETURNS BIGINT RETURN CAST(datediff(CAST(b AS DATE), CAST(a AS DATE)) AS BIGINT);
CREATE OR REPLACE TEMPORARY FUNCTION seconds_between(a TIMESTAMP_NTZ, b TIMESTAMP_NTZ)
    RETURNS BIGINT RETURN timestampdiff(SECOND, a, b);
CREATE OR REPLACE TEMPORARY FUNCTION is_weekend(t TIMESTAMP_NTZ) RETURNS BOOLEAN RETURN dayofweek(t) IN (1, 7)
