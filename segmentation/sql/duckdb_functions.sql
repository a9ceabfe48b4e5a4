-- The engine-specific functions the portable SQL (features.sql, rfm*.sql) calls, for DuckDB (temporary macros).
-- spark_functions.sql defines the same three for Spark; the parity test checks they agree.
--   days_between(a, b)     whole calendar days from a's date to b's date (BIGINT)
--   seconds_between(a, b)  seconds from timestamp a to timestamp b (BIGINT)
--   is_weekend(t)          t falls on a Saturday or Sunday (DuckDB dayofweek: 0 = Sunday, 6 = Saturday)
CREATE OR REPLACE TEMP MACRO days_between(a, b) AS date_diff('day', CAST(a AS DATE), CAST(b AS DATE));
CREATE OR REPLACE TEMP MACRO seconds_between(a, b) AS date_diff('second', a, b);
CREATE OR REPLACE TEMP MACRO is_weekend(t) AS dayofweek(t) IN (0, 6)
