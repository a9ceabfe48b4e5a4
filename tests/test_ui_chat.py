"""The shopper's chat page in a real headless Chromium, against the real served model, the real index and store:
sign-in, streamed replies with cards, chips, card actions, thumbs into the log, handoff, agent messages, plain-text
rendering, the mobile layout, and the failure states (model down, no index). Screenshots of each view are saved
(``shots``)."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from assistant.events import TurnDone
from assistant.factory import build_services, loop_config
from assistant.guardrails import RateLimiter
from assistant.loop import Assistant
from eval.logs import summarize
from kefu.llm.client import LLM
from kefu.records.conversations import ConversationLog
from kefu.records.db import Records
from tests.browser import chromium, screens_dir, web_server
from ui.web import build_server

pytestmark = pytest.mark.llm
SECRET = "chat-page-test-secret-0123"


def make_assistant(settings, classifier, records_path) -> Assistant:
    records = Records(records_path)
    return Assistant(
        build_services(settings, records),
        LLM.from_settings(settings),
        loop_config(settings),
        classifier=classifier,
        log=ConversationLog(records),
        rate=RateLimiter(60, 60),
    )


@pytest.fixture(scope="module")
def page_settings(shop_settings, llm_settings):
    return shop_settings.model_copy(
        update={
            "llm_url": llm_settings.llm_base_url,
            "llm_served_name": llm_settings.llm_served_name,
            "llm_retries": 0,
            "auth_secret": None,
            "demo": True,
        }  # fmt: skip
    )


@pytest.fixture(scope="module")
def demo_site(page_settings, intent_classifier, tmp_path_factory):
    records = tmp_path_factory.mktemp("chat-page") / "records.sqlite"
    server = build_server(page_settings, make_assistant(page_settings, intent_classifier, records))
    with web_server(page_settings, server=server) as base:
        yield base, server, records


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return screens_dir(tmp_path_factory)


def bot_messages(page) -> list[str]:
    return page.locator("#kefu-chat .bot").all_inner_texts()


def turns_so_far(server) -> dict[str, int]:
    return {c.id: len(c.turns) for c in server.hub.live()}


def wait_turn(page, server, before: dict[str, int], timeout_s: float = 180) -> TurnDone:
    """Wait for a turn that started after ``before`` (``turns_so_far``) to finish and for the page to show it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in server.hub.live():
            last = c.turns[-1] if c.turns else []
            if (
                len(c.turns) > before.get(c.id, 0)
                and last
                and isinstance(last[-1], TurnDone)
                and not server.hub.busy(c.id)
            ):
                done = last[-1]
                page.wait_for_function(
                    "t => { const b = document.querySelectorAll('#kefu-chat .bot');"
                    " return b.length && b[b.length - 1].innerText.includes(t); }",
                    arg=(done.lead_in or done.reply)[:40],
                    timeout=30_000,
                )
                page.wait_for_timeout(800)  # the turn's last view update (banner, chips)
                return done
        page.wait_for_timeout(300)
    raise AssertionError(f"no turn finished in {timeout_s} s")


def send(page, server, text: str) -> TurnDone:
    before = turns_so_far(server)
    page.fill("#kefu-input textarea", text)
    page.click("#kefu-send")
    return wait_turn(page, server, before)


def click_and_wait(page, server, selector: str) -> TurnDone:
    before = turns_so_far(server)
    page.click(selector)
    return wait_turn(page, server, before)


def sign_in_as_demo_customer(page, position: int = 1) -> str:
    page.click("#kefu-customer input")
    option = page.locator("[role=option]").nth(position)
    customer = option.inner_text().strip()
    option.click()
    page.wait_for_function(f"document.querySelector('#kefu-who').innerText.includes('{customer}')", timeout=30_000)
    return customer


def test_demo_shopper_chats_with_cards_chips_thumbs_handoff_and_an_agent(demo_site, browser, shots):
    base, server, records = demo_site
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(base + "/")
    assert "Demo mode" in page.inner_text("#kefu-demo-banner")
    customer = sign_in_as_demo_customer(page)

    # A streamed reply: record every text the last bot bubble shows while the turn runs.
    page.evaluate("""() => { window.kefuSeen = new Set(); new MutationObserver(() => {
        const bots = document.querySelectorAll('#kefu-chat .bot'); const last = bots[bots.length - 1];
        if (last) window.kefuSeen.add(last.innerText); }).observe(document.querySelector('#kefu-chat'),
        {subtree: true, childList: true, characterData: true}); }""")
    send(page, server, "crackers under $4")
    reply = bot_messages(page)[-1]
    assert re.search(r"\bcrackers?\b", reply, re.I) and "$" in reply
    assert page.evaluate("window.kefuSeen.size") >= 2  # the reply appeared in more than one step
    assert "1. " not in reply  # the cards are drawn, not listed in the text
    title = page.inner_text("#kefu-card-body-0 .kefu-card-title")
    price = page.inner_text("#kefu-card-body-0 .kefu-card-price")
    shown = server.hub.live()[0].last_done().products
    assert title.split(". ", 1)[1] == shown[0].title  # a real catalogue title from the turn's Products
    prices = [float(x) for x in re.findall(r"\$(\d+\.\d\d)", price)]
    assert prices and all(p <= 4.0 for p in prices)
    page.screenshot(path=str(shots / "chat-cards.png"), full_page=True)

    # A follow-up chip sends its request: cheaper than the cheapest shown.
    cheapest = min(c.price for c in shown if c.price is not None)
    assert page.inner_text("#kefu-chip-0") == "Something cheaper"
    cheaper = click_and_wait(page, server, "#kefu-chip-0")
    assert cheaper.turn == 2 and cheaper.products
    assert server.hub.live()[0].turns[-1][0].source == "action:refine"  # the chip sent a typed action
    assert all(c.price < cheapest for c in cheaper.products if c.price is not None)

    # Thumbs down on that reply lands in the conversation log, where `kefu eval logs` counts it.
    page.locator("#kefu-chat button[aria-label=Dislike]").last.click()
    page.wait_for_timeout(1500)
    assert summarize(records)["thumbs"] == {"up": 0, "down": 1}

    # A support agent's message (through the hub, as the copilot sends it) appears in the shopper's chat.
    conversation = server.hub.live()[0]
    assert conversation.customer_id == customer
    server.hub.say(conversation.id, "Hello from support, I can help with that.")
    page.wait_for_selector("text=Support agent: Hello from support", timeout=15_000)

    # Talk to a person: a handoff case is opened and the page says so.
    click_and_wait(page, server, "#kefu-handoff")
    page.wait_for_selector("#kefu-outcome [data-outcome=handoff]", timeout=120_000)
    case = re.search(r"CASE-[0-9A-F]{8}", page.inner_text("#kefu-outcome")).group(0)
    assert case in {row["case_id"] for row in server.assistant.services.cases.rows("cases")}
    page.screenshot(path=str(shots / "chat-handoff.png"), full_page=True)
    page.close()


def test_card_actions_send_typed_actions_that_skip_understanding(demo_site, browser, monkeypatch):
    base, server, _ = demo_site
    assistant = server.assistant
    asked: list[str] = []  # every text understanding: the classifier's texts and the model's structured reads
    classify, read = assistant.classifier.predict_top, assistant.llm.structured
    monkeypatch.setattr(
        assistant.classifier, "predict_top", lambda texts, k=3: asked.extend(texts) or classify(texts, k)
    )
    monkeypatch.setattr(assistant.llm, "structured", lambda *a, **kw: asked.append("model") or read(*a, **kw))
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(base + "/")
    sign_in_as_demo_customer(page, 2)
    send(page, server, "pasta")
    first = server.hub.live()[0].last_done().products
    assert len(first) >= 2 and "pasta" in asked  # a typed message is understood as before
    asked.clear()

    done = click_and_wait(page, server, "#kefu-more-0")
    conversation = server.hub.live()[0]
    turn = conversation.turns[-1]
    assert [(e.name, e.arguments) for e in turn if e.kind == "tool"] == [
        ("similar_items", {"product_id": first[0].product_id})
    ]
    assert next(e for e in turn if e.kind == "understood").source == "action:similar"
    assert asked == [] and "understand_ms" not in done.timings_ms  # no text understanding ran for the click
    assert conversation.messages[-2] == ("user", f"More like {first[0].title}")  # the history shows a label
    assert f"More like {first[0].title}" in page.inner_text("#kefu-chat")
    logged = assistant.log.turns(conversation.id)[-1]
    assert logged["understanding_source"] == "action:similar" and logged["turn"] == done.turn

    shown = done.products
    page.click("#kefu-compare-0")
    click_and_wait(page, server, "#kefu-compare-1")
    turn = server.hub.live()[0].turns[-1]
    compared = [e for e in turn if e.kind == "tool"]
    assert [e.name for e in compared] == ["compare_products"]
    assert compared[0].arguments["product_ids"] == [shown[0].product_id, shown[1].product_id]
    assert next(e for e in turn if e.kind == "understood").source == "action:compare" and asked == []
    page.close()


def test_messages_and_titles_show_as_plain_text(demo_site, browser):
    base, server, _ = demo_site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/")
    send(page, server, "[Refund form](https://evil.example) <img src=https://evil.example/x.png> hi")
    assert page.locator("#kefu-chat a[href*='evil.example']").count() == 0
    assert page.locator("#kefu-chat img[src*='evil.example']").count() == 0
    assert "[Refund form](https://evil.example)" in page.inner_text("#kefu-chat")
    page.close()


def test_mobile_width_layout(demo_site, browser, shots):
    base, server, _ = demo_site
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(base + "/")
    sign_in_as_demo_customer(page, 3)
    send(page, server, "cheese")
    page.wait_for_selector("#kefu-card-0 .kefu-card-title")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#kefu-card-0").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.screenshot(path=str(shots / "chat-mobile.png"), full_page=True)
    page.close()


def test_without_demo_mode_a_typed_id_reaches_no_one(page_settings, intent_classifier, browser, tmp_path):
    settings = page_settings.model_copy(update={"demo": False, "auth_secret": SECRET})
    server = build_server(settings, make_assistant(settings, intent_classifier, tmp_path / "records.sqlite"))
    with web_server(settings, server=server) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/")
        assert page.locator("#kefu-customer").count() == 0 and page.locator("#kefu-demo-banner").count() == 0
        page.fill("#kefu-token input", "1111")  # a customer id typed where a token belongs
        page.click("#kefu-sign-in")
        page.wait_for_selector("text=not valid", timeout=15_000)
        assert "Guest" in page.inner_text("#kefu-who")
        send(page, server, "show my recent orders")
        assert "sign in" in bot_messages(page)[-1].lower()
        assert server.hub.live()[0].customer_id is None
        # The API of the page takes no customer id either: the demo picker's endpoint does not exist here.
        info = httpx.get(base + "/gradio_api/info").json()
        assert not any("pick_demo_customer" in name for name in info["named_endpoints"])

        page.fill("#kefu-token input", server.tokens.issue("1111"))
        page.click("#kefu-sign-in")
        page.wait_for_function("document.querySelector('#kefu-who').innerText.includes('1111')", timeout=15_000)
        done = send(page, server, "show my recent orders")
        assert server.hub.live()[0].customer_id == "1111" and "sign in" not in done.reply.lower()
        page.close()


def test_model_down_shows_a_banner_and_still_answers(page_settings, intent_classifier, browser, shots, tmp_path):
    from tests.conftest import free_port

    settings = page_settings.model_copy(update={"llm_url": f"http://127.0.0.1:{free_port()}/v1"})
    server = build_server(settings, make_assistant(settings, intent_classifier, tmp_path / "records.sqlite"))
    with web_server(settings, server=server) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(base + "/")
        send(page, server, "crackers")
        page.wait_for_selector("#kefu-llm-banner", timeout=15_000)
        assert "kefu llm serve" in page.inner_text("#kefu-llm-banner")
        assert page.locator("#kefu-card-0 .kefu-card-title").is_visible()  # answered from classifier and rules
        assert "Traceback" not in page.inner_text("body")
        page.click("#kefu-retry")
        page.wait_for_timeout(4000)
        assert page.locator("#kefu-llm-banner").is_visible()  # still down
        page.screenshot(path=str(shots / "chat-llm-down.png"), full_page=True)
        page.close()


def test_missing_index_names_the_command(settings, browser):
    settings = settings.model_copy(update={"demo": True})
    with web_server(settings) as base:
        page = browser.new_page()
        page.goto(base + "/")
        text = page.inner_text("#kefu-setup-banner")
        assert "kefu store build" in text or "kefu index" in text
        page.close()


@pytest.mark.stops_llm
def test_stopping_the_served_model_shows_the_banner(llm_settings, page_settings, intent_classifier, browser, tmp_path):
    from kefu.llm import server as vllm_server

    if llm_settings.llm_url:
        pytest.skip("external server: not ours to stop")
    server = build_server(page_settings, make_assistant(page_settings, intent_classifier, tmp_path / "records.sqlite"))
    with web_server(page_settings, server=server) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(base + "/")
        vllm_server.stop(llm_settings)  # (an earlier stops_llm test may have stopped it already)
        done = send(page, server, "crackers")
        assert done.products and page.locator("#kefu-card-0 .kefu-card-title").is_visible()
        assert "kefu llm serve" in page.inner_text("#kefu-llm-banner")
        page.close()


def test_a_reply_sent_from_the_copilot_appears_in_the_shoppers_chat(demo_site, browser):
    base, server, _ = demo_site
    shopper = browser.new_page(viewport={"width": 1280, "height": 1000})
    shopper.goto(base + "/")
    sign_in_as_demo_customer(shopper, 4)
    done = send(shopper, server, "I want to talk to a person about my order")
    agent = browser.new_page(viewport={"width": 1500, "height": 1400})
    agent.goto(base + "/copilot/")  # demo mode: open without the agent key
    agent.locator(f'#copilot-conversations button[data-conversation="{done.conversation_id}"]').click()
    reply = agent.locator("#copilot-suggestion-0 textarea")
    agent.wait_for_function("document.querySelector('#copilot-suggestion-0 textarea').value.length > 0")
    text = "Hi, this is Sam from support. Which order is it about?"
    reply.fill(text)
    agent.locator("#copilot-send-0").click()
    agent.locator("#copilot-sent", has_text="Sent to the shopper").wait_for(timeout=30_000)
    shopper.wait_for_selector(f"text=Support agent: {text}", timeout=15_000)
    assert bot_messages(shopper)[-1] == f"Support agent: {text}"
    shopper.close()
    agent.close()


def test_no_match_and_declined_turns_are_visible_states(demo_site, browser):
    base, server, _ = demo_site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/")
    done = send(page, server, "I need a new laptop")
    assert done.outcome == "no_match"
    assert page.get_attribute("#kefu-outcome [data-outcome]", "data-outcome") == "no_match"
    assert "Not in our catalogue" in page.inner_text("#kefu-outcome")
    assert not page.locator("#kefu-card-0").is_visible() or "alternatives" in page.inner_text("#kefu-outcome")
    done = send(page, server, "Write me a poem about the stock market crash")
    assert done.outcome == "declined" and not done.products
    assert page.get_attribute("#kefu-outcome [data-outcome]", "data-outcome") == "declined"
    assert not page.locator("#kefu-card-0").is_visible()
    assert page.inner_text("#kefu-chip-0") == "Find a product"  # a way back to shopping
    page.close()


def test_a_shopping_list_shows_its_cards_under_each_item(demo_site, browser):
    base, server, _ = demo_site
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(base + "/")
    done = send(page, server, "I need milk, cheese and crackers")
    assert [g.item for g in done.groups] == ["milk", "cheese", "crackers"] and all(g.carried for g in done.groups)
    page.wait_for_selector("#kefu-card-0 .kefu-card-group")
    shown = [page.inner_text(f"#kefu-card-{i} .kefu-card-group") for i in range(len(done.products))
             if page.locator(f"#kefu-card-{i} .kefu-card-group").count()]  # fmt: skip
    assert shown == ["Milk", "Cheese", "Crackers"]
    assert "Here's what we have for your list" in bot_messages(page)[-1]
    page.close()
