"""The SQLite side of Kefu: the conversation log, support cases and return requests, in one database
(``settings.records_path``) with one migration list (``kefu/records/db.py``). The DuckDB store stays read-only
for the assistant; everything the assistant writes lands here."""
