"""The copilot working a real-sized queue, in a real browser (Debian's Chromium through Playwright) against the
whole web server: 500 logged conversations and 6 handoff cases in the records database. The conversations are
synthetic (turns written through the real ConversationLog and CaseBook, no model runs): the page reads only the
records, so the assistant is left unbuilt here. The first screen shows the queue and 20 conversations; a search
finds one by customer id; a row opens its conversation; the pager turns; a case is assigned, filtered as "mine"
and closed with a note."""

from __future__ import annotations

import pytest

from kefu.records.cases import CaseBook
from kefu.records.conversations import ConversationLog, TurnRecord
from kefu.records.db import Records
from tests.browser import chromium, screens_dir, web_server

CONVERSATIONS = 500
HANDOFFS = {17: "high", 140: "normal", 260: "normal", 333: "high", 420: "normal", 488: "normal"}
PRODUCTS = ["pasta", "cheddar", "oat milk", "crackers", "coffee", "dog food", "shampoo", "bananas"]
FIRST_SCREEN = {"width": 1440, "height": 1100}


def conv_id(i: int) -> str:
    return f"conv-{i:04d}"


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A records database with 500 conversations (customer 2000 + i, every 7th a guest), the handoffs with cases."""
    data = tmp_path_factory.mktemp("queue")
    records = Records(data / "logs" / "records.sqlite")  # settings.records_path under data_dir
    log, cases = ConversationLog(records), CaseBook(records)
    for i in range(CONVERSATIONS):
        customer = None if i % 7 == 0 else str(2000 + i)
        product = PRODUCTS[i % len(PRODUCTS)]
        outcome = "answered" if i % 11 else "no_match"
        log.record(TurnRecord(conv_id(i), 1, customer, f"do you have {product} under ${3 + i % 5}?",
                              f"Here are some {product} options.", outcome=outcome))  # fmt: skip
        if i in HANDOFFS:
            log.record(TurnRecord(conv_id(i), 2, customer, "I want to talk to a person about my order",
                                  "A person will reply here.", outcome="handoff"))  # fmt: skip
            cases.open_case(conv_id(i), customer, HANDOFFS[i], f"order question from conversation {i}", {})
        if i % 50 == 3:
            log.feedback(conv_id(i), 1, -1, "not what I asked")
    records.close()
    return data


@pytest.fixture
def site(settings, logged):
    settings = settings.model_copy(update={"data_dir": logged, "demo": True, "llm_port": 9, "llm_retries": 0})
    with web_server(settings) as base:
        yield base


def rows(page, where: str = "#copilot-conversations"):
    return page.locator(f"{where} button.k-row")  # the header row is no button


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return screens_dir(tmp_path_factory)  # before `settings` clears KEFU_* (KEFU_TEST_SCREENS included)


def test_the_first_screen_shows_the_queue_and_twenty_conversations(shots, site):
    with chromium() as browser:
        page = browser.new_page(viewport=FIRST_SCREEN)
        page.goto(site + "/copilot/")
        page.locator("#copilot-pager", has_text="of 500").wait_for(timeout=30_000)
        assert rows(page).count() == 20 and rows(page, "#copilot-queue").count() == len(HANDOFFS)
        assert "Page 1 of 25" in page.locator("#copilot-pager").inner_text()
        queue = [rows(page, "#copilot-queue").nth(i).get_attribute("data-conversation") for i in range(6)]
        assert queue[:2] == [conv_id(17), conv_id(333)]  # high priority first, the longest wait first within it
        assert queue[2:] == [conv_id(i) for i in (140, 260, 420, 488)]
        listed = [rows(page).nth(i).get_attribute("data-conversation") for i in range(20)]
        assert listed == [conv_id(i) for i in range(499, 479, -1)]  # newest shopper message first
        assert "waiting" in rows(page).nth(11).inner_text()  # conv-0488: a handoff nobody answered
        assert "unread" in rows(page).nth(0).inner_text() and "2499" in rows(page).nth(0).inner_text()
        for locator in (page.locator("#copilot-queue"), rows(page).nth(19)):  # on the first screen, no scrolling
            box = locator.bounding_box()
            assert box is not None and box["y"] + box["height"] <= FIRST_SCREEN["height"]
        page.screenshot(path=str(shots / "copilot-500.png"))

        page.locator("#copilot-customer-search input, #copilot-customer-search textarea").fill("2123")
        page.locator("#copilot-customer-search input, #copilot-customer-search textarea").press("Enter")
        page.locator("#copilot-pager", has_text="of 1").wait_for(timeout=30_000)
        assert [rows(page).nth(i).get_attribute("data-conversation") for i in range(rows(page).count())] == [
            conv_id(123)
        ]
        rows(page).first.click()
        page.locator("#copilot-timeline", has_text="do you have crackers").wait_for(timeout=30_000)
        assert page.locator("#copilot-selected input, #copilot-selected textarea").input_value() == conv_id(123)
        page.wait_for_function(
            "!document.querySelector('#copilot-conversations button.k-row').innerText.includes('unread')"
        )
        assert "k-selected" in rows(page).first.get_attribute("class")


def test_paging_filters_and_a_case_assigned_mine_and_closed(site):
    with chromium() as browser:
        page = browser.new_page(viewport=FIRST_SCREEN)
        page.goto(site + "/copilot/")
        page.locator("#copilot-pager", has_text="of 500").wait_for(timeout=30_000)
        page.locator("#copilot-next").click()
        page.locator("#copilot-pager", has_text="Page 2 of 25").wait_for(timeout=30_000)
        assert rows(page).first.get_attribute("data-conversation") == conv_id(479)
        page.locator("#copilot-search input, #copilot-search textarea").fill("dog food")
        page.locator("#copilot-search-button").click()
        dog_food = sum(1 for i in range(CONVERSATIONS) if PRODUCTS[i % len(PRODUCTS)] == "dog food")  # 62
        page.locator("#copilot-pager", has_text=f"of {dog_food}").wait_for(timeout=30_000)
        assert "Page 1 of 4" in page.locator("#copilot-pager").inner_text()
        assert all("dog food" in rows(page).nth(i).inner_text() for i in range(20))

        first = rows(page, "#copilot-queue").first  # a queue row opens its case and its conversation
        first.click()
        page.locator("#copilot-timeline", has_text="talk to a person").wait_for(timeout=30_000)
        page.locator("#copilot-case-detail", has_text="CASE-").wait_for(timeout=30_000)
        case_id = first.get_attribute("data-case")
        assert case_id.startswith("CASE-") and case_id in page.locator("#copilot-case-detail").inner_text()
        page.locator("#copilot-assignee input, #copilot-assignee textarea").fill("Lee")
        page.locator("#copilot-assign").click()
        page.locator("#copilot-taken", has_text="is assigned to Lee").wait_for(timeout=30_000)
        page.locator("#copilot-agent input, #copilot-agent textarea").fill("Lee")
        page.locator("#copilot-mine input").check()
        page.wait_for_function("document.querySelectorAll('#copilot-queue button.k-row').length === 1")
        assert "taken by Lee" in rows(page, "#copilot-queue").first.inner_text()

        page.locator("#copilot-close").click()  # no note yet: refused, with what to do
        page.locator("#copilot-taken", has_text="Write a note").wait_for(timeout=30_000)
        page.locator("#copilot-close-note input, #copilot-close-note textarea").fill("Order found; refunded.")
        page.locator("#copilot-close").click()
        page.locator("#copilot-taken", has_text="is closed by Lee").wait_for(timeout=30_000)
        page.locator("#copilot-queue", has_text="No unclosed cases assigned to Lee").wait_for(timeout=30_000)
        page.locator("#copilot-mine input").uncheck()
        page.wait_for_function(
            f"document.querySelectorAll('#copilot-queue button.k-row').length === {len(HANDOFFS) - 1}"
        )
        assert case_id not in page.locator("#copilot-queue").inner_text()
