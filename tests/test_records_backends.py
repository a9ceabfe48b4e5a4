"""Choosing and reaching the records backend: KEFU_RECORDS_URL picks PostgreSQL for every reader and writer
(the assistant, the copilot's desk, `kefu eval logs`), SQLite otherwise; a wrong URL, a server that is down, a
driver that is missing each say what to do; workers starting together migrate once; a restarted server is
reconnected to. Real PostgreSQL servers (tests/postgres_server.py), nothing assumed running."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from assistant.desk import Desk
from kefu.errors import ConfigError, KefuError, RecordsError
from kefu.records.conversations import ConversationLog, TurnRecord
from kefu.records.db import Records
from kefu.records.migrations import MIGRATIONS
from kefu.settings import Settings
from tests.postgres_server import PostgresServer, free_port, require_driver
from ui.cli import app


def turn(conversation_id: str, number: int = 1) -> TurnRecord:
    return TurnRecord(conversation_id, number, "1111", "cheese under $5", "Here you go.", outcome="answered")


def test_the_records_url_picks_postgres_for_every_reader(postgres_server, settings, monkeypatch):
    url = postgres_server.new_database()
    monkeypatch.setenv("KEFU_RECORDS_URL", url)
    shared = Settings(data_dir=settings.data_dir)
    assert shared.records_location == url
    writer = Records.open(shared)
    assert writer.dialect.name == "postgresql" and writer.where == url
    ConversationLog(writer).record(turn("pg1"))
    ConversationLog(writer).feedback("pg1", 1, -1, "no")
    desk = Desk.open(shared, None, "not built")  # the copilot without an assistant reads the same database
    assert [r.conversation_id for r in desk.conversations(set(), desk_query())[1].rows] == ["pg1"]
    result = CliRunner().invoke(app, ["eval", "logs", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["log"] == url and report["turns"] == 1 and report["thumbs"] == {"up": 0, "down": 1}
    assert not shared.records_path.exists()  # nothing went to SQLite


def desk_query():
    from assistant.desk import list_query

    return list_query("all")


def test_without_a_url_the_records_are_one_sqlite_file(settings):
    assert settings.records_location == settings.records_path
    records = Records.open(settings)
    assert records.dialect.name == "sqlite" and settings.records_path.is_file()
    assert records.version() == len(MIGRATIONS)


def test_a_url_that_is_not_postgres_is_refused_with_what_to_write(settings, monkeypatch):
    with pytest.raises(ValidationError, match="KEFU_RECORDS_URL takes a PostgreSQL URL, postgresql://"):
        Settings(records_url="mysql://kefu@db/records")
    monkeypatch.setenv("KEFU_RECORDS_URL", "sqlite:///tmp/records.sqlite")
    result = CliRunner().invoke(app, ["eval", "logs", "--json"])
    assert isinstance(result.exception, KefuError) and "KEFU_RECORDS_URL takes a PostgreSQL URL" in str(
        result.exception
    )
    with pytest.raises(ConfigError, match="is not a PostgreSQL URL: write postgresql://USER:PASSWORD@HOST"):
        Records("mysql://kefu@db/records")


def test_a_server_that_is_down_says_to_start_it_and_never_shows_the_password():
    require_driver()
    url = f"postgresql://kefu:s3cret@127.0.0.1:{free_port()}/records"  # nothing listens there
    with pytest.raises(RecordsError, match="Cannot reach the records database at postgresql://kefu:\\*\\*\\*@") as e:
        Records(url)
    assert "start the PostgreSQL server" in str(e.value) and "s3cret" not in str(e.value)
    with pytest.raises(RecordsError, match='invalid integer value "notaport"'):
        Records("postgresql://kefu@127.0.0.1:notaport/records")


def test_a_wrong_database_name_is_reported(postgres_server):
    url = postgres_server.url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(RecordsError, match='database "no_such_db" does not exist'):
        Records(url)


def test_the_desk_says_the_records_server_is_down(settings, monkeypatch):
    require_driver()
    monkeypatch.setenv("KEFU_RECORDS_URL", f"postgresql://kefu@127.0.0.1:{free_port()}/records")
    desk = Desk.open(Settings(data_dir=settings.data_dir), None, "not built")
    assert any("Cannot reach the records database" in note for note in desk.notes)
    assert desk.conversations(set(), desk_query())[1].total == 0


def test_a_missing_driver_says_to_install_the_scale_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(ConfigError, match=r"psycopg 3\) is not installed: pip install -r requirements/scale.txt"):
        Records("postgresql://kefu@127.0.0.1:5432/records")


def test_workers_starting_together_migrate_once(postgres_server):
    url = postgres_server.new_database()
    with ThreadPoolExecutor(4) as pool:
        workers = list(pool.map(lambda _: Records(url), range(4)))
    assert {w.version() for w in workers} == {len(MIGRATIONS)}
    for i, records in enumerate(workers):
        ConversationLog(records).record(turn(f"w{i}"))
    assert workers[0].rows("SELECT count(*) AS n FROM conversations") == [{"n": 4}]


def test_a_restarted_server_is_reconnected_to(tmp_path: Path):
    require_driver()
    server = PostgresServer().start()
    try:
        records = Records(server.new_database())
        log = ConversationLog(records)
        log.record(turn("r1"))
        server.stop()
        with pytest.raises(RecordsError, match="did not answer .*check that the PostgreSQL server is running"):
            log.record(turn("r1", 2))
        with pytest.raises(KefuError, match="Cannot reach the records database"):
            log.turns("r1")  # still down: the reconnect fails with what to do
        server.start()  # the same port
        log.record(turn("r1", 2))
        assert [t["turn"] for t in log.turns("r1")] == [1, 2]
    finally:
        server.remove()
