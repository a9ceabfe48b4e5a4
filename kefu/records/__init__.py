"""What the assistant writes: the conversation log, support cases, return requests and feedback, in one database
with one migration list (``kefu/records/migrations.py``): a SQLite file (``settings.records_path``, the default) or
PostgreSQL (``KEFU_RECORDS_URL``), opened through ``kefu/records/db.py``. The DuckDB store stays read-only for the
assistant."""
