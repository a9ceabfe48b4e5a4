"""The records database: the conversation log and the case book share one SQLite file and one migration list."""

from __future__ import annotations

import sqlite3

from kefu.records.cases import CaseBook
from kefu.records.conversations import ConversationLog, ToolCallRecord, TurnRecord
from kefu.records.db import MIGRATIONS, Records


def test_log_cases_and_returns_live_in_one_migrated_database(tmp_path):
    path = tmp_path / "records.sqlite"
    records = Records(path)
    log, cases = ConversationLog(records), CaseBook(records)
    case_id = cases.open_case("conv1", "1111", "high", "call me on (415) 555-0100", {"intents": ["complaint"]})
    return_id = cases.create_return("1111", "40000000001", None, "broken")
    turn_id = log.record(TurnRecord(
        conversation_id="conv1", turn=1, customer_id="1111", message="mail jane@example.com", reply="ok",
        handoff_case=case_id, tools=[ToolCallRecord("handoff_to_human", {"reason": "x"}, True, [], 1.5, "opened")],
    ))  # fmt: skip
    records.close()

    again = Records(path)  # reopening applies nothing twice
    con = sqlite3.connect(str(path))
    assert con.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= {
        "turns", "tool_calls", "cases", "returns"}  # fmt: skip
    row = ConversationLog(again).turns("conv1")[0]
    assert row["handoff_case"] == case_id and "jane@" not in row["message"] and "[EMAIL]" in row["message"]
    assert ConversationLog(again).tool_calls(turn_id)[0]["name"] == "handoff_to_human"
    assert CaseBook(again).rows("returns")[0]["return_id"] == return_id
