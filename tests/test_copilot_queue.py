"""The copilot's queue at the records level: the conversation list paged and filtered in SQL (customer, outcome,
thumbs-down, words, unread, waiting, "mine"), the handoff queue's order (priority, then the longest-waiting
shopper), assigning and closing a case with a note, and the migration that adds all this to a records database
that already holds conversations. A real records database, each test on SQLite and on PostgreSQL; the
conversations are synthetic turns written through the real ConversationLog and CaseBook (no assistant runs
here)."""

from __future__ import annotations

import time

import pytest

from assistant.desk import Desk, list_query
from kefu.errors import CaseError, KefuError
from kefu.records.cases import CaseBook
from kefu.records.conversations import ConversationLog, TurnRecord
from kefu.records.db import Records
from kefu.records.listing import ConversationList, ConversationQuery


def say(log: ConversationLog, conversation_id: str, turn: int, customer: str | None, message: str, **kw) -> None:
    log.record(TurnRecord(conversation_id, turn, customer, message, kw.pop("reply", "Here you go."), **kw))


@pytest.fixture
def records(records_location):
    return Records(records_location)


@pytest.fixture
def book(records):
    """45 conversations, oldest first (c00 … c44), customer = 1000 + i; every 5th a handoff with a case."""
    log, cases = ConversationLog(records), CaseBook(records)
    for i in range(45):
        cid = f"c{i:02d}"
        say(log, cid, 1, str(1000 + i), f"looking for pasta number {i}")
        if i % 5 == 0:
            say(log, cid, 2, str(1000 + i), "a person please", outcome="handoff")
            cases.open_case(cid, str(1000 + i), "high" if i in (10, 30) else "normal", f"wants a person ({i})", {})
        time.sleep(0.002)  # distinct shopper times (the log keeps milliseconds)
    return log, cases, ConversationList(records)


def ids(page) -> list[str]:
    return [r.conversation_id for r in page.rows]


def test_the_list_pages_twenty_at_a_time_newest_shopper_message_first(book):
    _, _, listing = book
    first = listing.page(ConversationQuery())
    assert (first.total, first.pages, first.page) == (45, 3, 1)
    assert ids(first) == [f"c{i:02d}" for i in range(44, 24, -1)]
    third = listing.page(ConversationQuery(page=3))
    assert ids(third) == [f"c{i:02d}" for i in range(4, -1, -1)]
    assert listing.page(ConversationQuery(page=99)).page == 3  # past the end: the last page
    row = first.rows[0]
    assert row.customer_id == "1044" and row.turns == 1 and row.last_message == "looking for pasta number 44"
    assert row.unread and not row.waiting and 0 <= row.waiting_s < 60
    handoff = next(r for r in first.rows if r.conversation_id == "c40")
    assert handoff.turns == 2 and handoff.outcomes == ("answered", "handoff") and handoff.waiting
    assert handoff.case_id.startswith("CASE-") and handoff.case_status == "open"


def test_search_by_customer_outcome_words_and_thumbs_down(book):
    log, _, listing = book
    assert ids(listing.page(ConversationQuery(customer_id="1017"))) == ["c17"]
    assert ids(listing.page(ConversationQuery(customer_id=" 1017 "))) == ["c17"]  # as pasted
    handoffs = listing.page(ConversationQuery(outcome="handoff"))
    assert ids(handoffs) == ["c40", "c35", "c30", "c25", "c20", "c15", "c10", "c05", "c00"]
    assert ids(listing.page(ConversationQuery(text="NUMBER 33"))) == ["c33"]  # case-insensitive
    say(log, "c50", 1, None, "is 100% cotton_wool in stock?")
    assert ids(listing.page(ConversationQuery(text="100%"))) == ["c50"]  # LIKE's wildcards are literal
    assert ids(listing.page(ConversationQuery(text="o_t"))) == []
    assert ids(listing.page(ConversationQuery(text="here you go", customer_id="1003"))) == ["c03"]  # the reply too
    log.feedback("c07", 1, -1, "no")
    log.feedback("c08", 1, 1)
    assert ids(listing.page(ConversationQuery(thumbs_down=True))) == ["c07"]
    assert listing.page(ConversationQuery(customer_id="nobody")).total == 0


def test_unread_and_waiting_follow_the_agent_and_the_shopper(book):
    log, _, listing = book
    log.mark_read("c40")
    assert "c40" not in ids(listing.page(ConversationQuery(unread=True, per_page=100)))
    assert "c40" in ids(listing.page(ConversationQuery(waiting=True)))  # read, but no agent answered yet
    log.mark_replied("c40")
    assert "c40" not in ids(listing.page(ConversationQuery(waiting=True)))
    time.sleep(0.002)
    say(log, "c40", 3, "1040", "hello? anyone there?")  # the shopper writes again
    row = listing.page(ConversationQuery(customer_id="1040")).rows[0]
    assert row.unread and row.waiting and row.turns == 3 and row.last_message == "hello? anyone there?"
    assert ids(listing.page(ConversationQuery()))[0] == "c40"  # now the newest shopper message


def test_the_queue_is_by_priority_then_the_longest_wait_and_mine_filters_it(book):
    _, cases, listing = book
    queue = cases.queue()
    order = [r["conversation_id"] for r in queue]
    assert order == ["c10", "c30", "c00", "c05", "c15", "c20", "c25", "c35", "c40"]  # high first, then oldest
    assert all(a["waiting_s"] >= b["waiting_s"] for a, b in zip(queue[2:], queue[3:], strict=False))
    c20 = next(r["case_id"] for r in queue if r["conversation_id"] == "c20")
    cases.assign(c20, "Dana")
    assert [r["case_id"] for r in cases.queue(assigned_to="Dana")] == [c20]
    assert ids(listing.page(ConversationQuery(assigned_to="Dana"))) == ["c20"]
    assert listing.page(ConversationQuery(assigned_to="Lee")).total == 0


def test_assigning_and_closing_a_case_with_a_note(book):
    _, cases, listing = book
    case_id = cases.queue()[0]["case_id"]
    assert cases.take(case_id, "Dana")["taken_by"] == "Dana"
    assert cases.take(case_id, "Lee")["taken_by"] == "Dana"  # taking keeps the first taker
    assert cases.assign(case_id, "Lee")["taken_by"] == "Lee"  # assigning hands it over
    with pytest.raises(CaseError, match="note"):
        cases.close(case_id, "Lee", "   ")
    closed = cases.close(case_id, "Lee", "Refunded; mailed a label to jo@example.com")
    assert closed["status"] == "closed" and closed["closed_by"] == "Lee" and closed["closed_at"]
    assert closed["close_note"] == "Refunded; mailed a label to [EMAIL]"  # redacted like the log
    assert case_id not in {r["case_id"] for r in cases.queue()}
    assert listing.page(ConversationQuery(assigned_to="Lee")).total == 0  # "mine" holds unclosed cases only
    row = listing.page(ConversationQuery(customer_id=closed["customer_id"])).rows[0]
    assert row.case_status == "closed" and not row.waiting
    with pytest.raises(CaseError, match="already closed by Lee"):
        cases.close(case_id, "Dana", "again")
    with pytest.raises(CaseError, match="closed case cannot be assigned"):
        cases.assign(case_id, "Dana")
    with pytest.raises(CaseError, match="no case CASE-NONE"):
        cases.assign("CASE-NONE", "Dana")


def test_the_desk_reads_the_copilots_controls(book, records):
    log, cases, _ = book
    desk = Desk(None, log, cases)
    items, page = desk.conversations({"c44"}, list_query("all"))
    assert len(items) == 20 and items[0].live and not items[1].live and page.total == 45
    _, mine = desk.conversations(set(), list_query("mine", agent="Dana"))
    assert mine.total == 0
    desk.assign(desk.queue()[0].case_id, "Dana")
    items, _ = desk.conversations(set(), list_query("mine", agent="Dana"))
    assert [i.conversation_id for i in items] == ["c10"]
    assert [i.conversation_id for i in desk.conversations(set(), list_query(customer="1002"))[0]] == ["c02"]
    with pytest.raises(KefuError, match="Unknown list filter 'nope'"):
        list_query("nope")


def test_the_migration_keeps_an_older_databases_conversations_and_cases(records_location):
    old = Records(records_location, upto=5)  # a database from before the copilot's queue
    with old.transaction() as tx:
        for turn, (when, message) in enumerate(
            [("2026-11-30T10:00:00.000Z", "hi"), ("2026-11-30T10:05:00.000Z", "bye")]
        ):
            tx.execute(
                "INSERT INTO turns (conversation_id, turn, customer_id, created_at, message, reply, product_ids, "
                "timings, outcome) VALUES ('old', ?, '7', ?, ?, 'ok', '[]', '{}', 'handoff')",
                (turn + 1, when, message),
            )
        tx.execute(
            "INSERT INTO cases (case_id, conversation_id, customer_id, priority, reason, summary, status) "
            "VALUES ('CASE-OLD', 'old', '7', 'normal', 'help', '{}', 'open')"
        )
    assert old.version() == 5
    old.close()
    records = Records(records_location)
    (row,) = ConversationList(records).page(ConversationQuery()).rows
    assert (row.conversation_id, row.customer_id, row.turns) == ("old", "7", 2)
    assert (row.started_at, row.last_at, row.last_message) == (
        "2026-11-30T10:00:00.000Z",
        "2026-11-30T10:05:00.000Z",
        "bye",
    )
    assert row.waiting and row.case_id == "CASE-OLD" and row.waiting_s > 3600
    closed = CaseBook(records).close("CASE-OLD", "Dana", "sorted out")
    assert closed["close_note"] == "sorted out" and len(ConversationLog(records).turns("old")) == 2
