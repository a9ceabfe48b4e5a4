"""The records database: the conversation log and the case book share one database and one migration list, in
SQLite and in PostgreSQL alike (``records_location`` runs each test on both)."""

from __future__ import annotations

import json

from kefu.records.cases import CaseBook
from kefu.records.conversations import ConversationLog, ToolCallRecord, TurnRecord
from kefu.records.db import Records
from kefu.records.migrations import MIGRATIONS


def test_log_cases_and_returns_live_in_one_migrated_database(records_location):
    records = Records(records_location)
    log, cases = ConversationLog(records), CaseBook(records)
    case_id = cases.open_case("conv1", "1111", "high", "call me on (415) 555-0100", {"intents": ["complaint"]})
    return_id = cases.create_return("1111", "40000000001", None, "broken")
    turn_id = log.record(TurnRecord(
        conversation_id="conv1", turn=1, customer_id="1111", message="mail jane@example.com", reply="ok",
        handoff_case=case_id, tools=[ToolCallRecord("handoff_to_human", {"reason": "x"}, True, [], 1.5, "opened")],
    ))  # fmt: skip
    records.close()

    again = Records(records_location)  # reopening applies nothing twice
    assert again.version() == len(MIGRATIONS)
    for table, n in [("turns", 1), ("tool_calls", 1), ("cases", 1), ("returns", 1), ("conversations", 1)]:
        assert again.rows(f"SELECT count(*) AS n FROM {table}") == [{"n": n}]
    row = ConversationLog(again).turns("conv1")[0]
    assert row["handoff_case"] == case_id and "jane@" not in row["message"] and "[EMAIL]" in row["message"]
    assert ConversationLog(again).tool_calls(turn_id)[0]["name"] == "handoff_to_human"
    assert CaseBook(again).rows("returns")[0]["return_id"] == return_id


KEPT = ["order 32445856036", "product 1082185", "case CASE-1A2B3C4D", "coupon 10000089073", "return RET-9F00AA12",
        "$12.99 on 2018-01-03", "40000000001"]  # fmt: skip
REMOVED = [
    ("card 4111 1111 1111 1111", "4111", "[CARD]"),
    ("card 5500-0000-0000-0004", "5500", "[CARD]"),
    ("call me on (415) 555-0100", "555-0100", "[PHONE]"),
    ("ring 415-555-0100 today", "555-0100", "[PHONE]"),
    ("+1 415 555 0100", "555 0100", "[PHONE]"),
    ("+44 (20) 7946 0958", "7946", "[PHONE]"),
    ("call 4155550100 after six", "4155550100", "[PHONE]"),
    ("mail jane.doe+shop@example.co.uk", "jane.doe", "[EMAIL]"),
    ("ship it to 742 Evergreen Terrace please", "Evergreen", "[ADDRESS]"),
]


def test_redaction_keeps_ids_and_removes_cards_phones_emails_addresses():
    from kefu.records.redact import redact

    for text in KEPT:
        assert redact(text) == text
    for text, hidden, tag in REMOVED:
        out = redact(text)
        assert hidden not in out and tag in out, (text, out)
    mixed = redact("Order 32445856036: refund to card 4111 1111 1111 1111, call (415) 555-0100")
    assert mixed == "Order 32445856036: refund to card [CARD], call [PHONE]"
    assert redact("card 4111 1111 1111 1112") == "card 4111 1111 1111 1112"  # fails Luhn: not a card number


def test_case_reasons_are_redacted(records_location):
    records = Records(records_location)
    CaseBook(records).open_case("c", "1111", "normal", "order 32445856036, call me on (415) 555-0100",
                                {"note": "mail jane@example.com"})  # fmt: skip
    case = CaseBook(records).rows("cases")[0]
    assert case["reason"] == "order 32445856036, call me on [PHONE]" and "jane@" not in case["summary"]


BESIDE = [  # (text, what stays, what goes): an order id right beside a card number, in either order
    ("order 32445856036 5500 0000 0000 0004", "32445856036", "5500"),
    ("order 32445856036 4111111111111111", "32445856036", "4111"),
    ("4111 1111 1111 1111 32445856036", "32445856036", "4111"),
    ("orders 40000000001 40000000002 and card 4111-1111-1111-1111", "40000000001 40000000002", "4111"),
]


def test_redaction_with_order_ids_beside_card_numbers():
    from kefu.records.redact import redact

    for text, kept, hidden in BESIDE:
        out = redact(text)
        assert kept in out and hidden not in out and "[CARD]" in out, (text, out)
    assert redact("order 32445856036 1234") == "order 32445856036 1234"  # an id and a short number: no card


def test_logs_and_cases_are_redacted_alike(records_location):
    """The same message, with an order id beside a card, a phone, an email and an address, in every column."""
    pii = "order 32445856036 4111 1111 1111 1111, call (415) 555-0100, jane@example.com, 742 Evergreen Terrace"
    records = Records(records_location)
    log, cases = ConversationLog(records), CaseBook(records)
    log.record(TurnRecord(
        conversation_id="c", turn=1, customer_id="1111", message=pii, reply=pii,
        understanding={"intent": "order_status", "slots": {"order_id": "32445856036", "query": pii}},
        tools=[ToolCallRecord("order_status", {"order_id": "32445856036", "note": pii}, False, [], 1.0, pii)],
    ))  # fmt: skip
    cases.open_case("c", "1111", "normal", pii, {"tried": [pii]})
    cases.create_return("1111", "32445856036", None, pii)
    turn = log.turns("c")[0]
    texts = [turn["message"], turn["reply"], turn["understanding"]]
    texts += [v for k, v in log.tool_calls(turn["id"])[0].items() if k in ("arguments", "summary")]
    texts += [cases.rows("cases")[0]["reason"], cases.rows("cases")[0]["summary"], cases.rows("returns")[0]["reason"]]
    for text in texts:
        assert "32445856036" in text, text
        assert not any(s in text for s in ("4111", "555-0100", "jane@", "Evergreen")), text
    assert json.loads(turn["understanding"])["slots"]["order_id"] == "32445856036"  # still valid JSON
