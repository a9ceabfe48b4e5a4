"""The support agents' copilot page. In a real browser (Debian's Chromium through Playwright) against the whole
web server with the real assistant: the served SmolLM2, the real intent classifier, an indexed demo shop and a
fitted segmentation. Shopper turns run through the server's hub; the agent selects the conversation, sees the
customer's segment and the turns' intents and tools, edits a suggested reply and sends it into the shopper's
conversation, inserts a product, and takes the handoff case. Plus the page's failure states and its escaping."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from assistant.loop import Assistant
from assistant.timeline import TurnView
from kefu.llm.client import LLM
from kefu.records.conversations import ConversationLog
from tests.browser import chromium, screens_dir, served, web_server
from tests.conftest import real_services
from ui.copilot import esc, turn_html
from ui.hub import Hub

CUSTOMER = "1111"
LINK_MESSAGE = "is [this one](http://evil.example/x) good? <img src=x onerror=alert(1)>"


def test_shopper_and_catalogue_text_is_escaped():
    view = TurnView(turn=1, message=LINK_MESSAGE, reply="See <b>this</b> [deal](http://evil.example/d)")
    rendered = turn_html(view)
    assert "<img" not in rendered and "<b>this" not in rendered and 'href="http://evil.example' not in rendered
    assert esc("[this one](http://evil.example/x)") in rendered  # the Markdown stays as its literal text
    assert esc("<img src=x onerror=alert(1)>") in rendered


def test_without_an_assistant_records_or_profiles_the_page_says_what_to_run(settings):
    settings = settings.model_copy(update={"demo": True, "llm_port": 9, "llm_retries": 0})
    with web_server(settings) as base:
        page = httpx.get(base + "/copilot/", timeout=30).text
    assert "kefu index" in page and "kefu segment fit" in page and "Traceback" not in page


def test_the_copilot_needs_the_agent_key_outside_demo_mode(settings):
    settings = settings.model_copy(update={"agent_key": "k-123", "auth_secret": "s" * 32, "llm_port": 9})
    with web_server(settings) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/copilot/").status_code == 303  # to /staff
        assert "agent copilot" not in client.get("/copilot/", follow_redirects=True).text
        client.post("/staff", data={"key": "k-123", "next": "/copilot/"})
        assert "agent copilot" in client.get("/copilot/").text
    with web_server(settings.model_copy(update={"agent_key": None})) as base:
        assert httpx.get(base + "/copilot/", timeout=30).status_code == 404  # no key: the page is off


@pytest.fixture(scope="module")
def site(llm_settings, shop_settings, intent_classifier, demo_store, tmp_path_factory):
    """The web server with the real assistant, and a customer's conversation that ended in a handoff."""
    from segmentation.profiles import ProfileStore
    from tests.segmentation_fit import fitted_data_dir

    fitted, _ = fitted_data_dir(demo_store, tmp_path_factory.mktemp("fit"))
    profiles = ProfileStore.load(shop_settings.model_copy(update={"data_dir": fitted}))
    data = tmp_path_factory.mktemp("copilot")
    services = real_services(shop_settings, data / "records.sqlite", profiles)
    log = ConversationLog(services.cases.records)
    assistant = Assistant(services, LLM.from_settings(llm_settings), classifier=intent_classifier, log=log)
    settings = llm_settings.model_copy(update={"data_dir": data, "demo": True})
    with served(settings, assistant) as (base, server):
        conversation = server.hub.open(None, CUSTOMER)
        for text in ["cheese under $5", LINK_MESSAGE, "I want to speak to a human agent"]:
            list(server.hub.turn(assistant, conversation, text))
        gone = Hub().open(None, CUSTOMER)  # logged by the assistant, never live on this server
        list(Hub().turn(assistant, gone, "pasta under $2"))
        yield base, server, assistant, conversation, gone


@pytest.mark.llm
def test_an_agent_reads_the_conversation_and_answers_in_the_shoppers_chat(site, tmp_path, tmp_path_factory):
    base, server, _, conversation, _ = site
    done = conversation.last_done()
    assert done is not None and done.outcome == "handoff" and done.handoff_case  # the served stack opened a case
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1400})
        page.goto(base + "/copilot/")
        page.locator(f'#copilot-conversations button[data-conversation="{conversation.id}"]').click()
        customer, timeline = page.locator("#copilot-customer"), page.locator("#copilot-timeline")
        customer.get_by_text("Segment").wait_for(timeout=30_000)
        segment = server.assistant.services.profiles.get(CUSTOMER).segment
        assert segment and segment in customer.inner_text() and "Last orders" in customer.inner_text()
        text = timeline.inner_text()
        assert "product_search" in text and "search_products(" in text and "handoff_to_human(" in text
        assert "Rules:" in text and "product-words" in text  # each turn's understanding trace
        assert "Read by" in text and "rules: " in text  # which reader filled each field of the reading
        assert "goal search" in text or "goal recommendation" in text  # the conversation's goal, each turn
        # a Markdown link in the shopper's message is text, not a link; the <img> is text too
        assert "[this one](http://evil.example/x)" in text
        assert page.locator('a[href^="http://evil.example"]').count() == 0
        assert page.locator("#copilot-timeline img").count() == 0

        reply = page.locator("#copilot-suggestion-0 textarea")
        assert done.handoff_case in reply.input_value()  # the handoff greeting names the case
        reply.fill(reply.input_value() + " Which cheese would you like?")
        page.locator("#copilot-products input").click()
        page.locator("#copilot-products [role=option]").first.click()
        page.locator("#copilot-insert").click()
        page.wait_for_function("document.querySelector('#copilot-suggestion-0 textarea').value.includes(' — $')")
        sent_text = reply.input_value()
        page.locator("#copilot-send-0").click()
        page.locator("#copilot-sent", has_text="Sent to the shopper").wait_for(timeout=30_000)
        assert [m.text for m in conversation.agent_messages] == [sent_text.strip()]
        assert conversation.messages[-1] == ("agent", sent_text.strip()) and " — $" in sent_text

        page.locator("#copilot-take").click()
        page.locator("#copilot-taken", has_text="is taken by agent").wait_for(timeout=30_000)
        queued = page.locator(f'#copilot-queue button[data-case="{done.handoff_case}"]')
        queued.filter(has_text="taken by agent").wait_for(timeout=30_000)
        assert queued.get_attribute("data-conversation") == conversation.id
        (case,) = [c for c in server.assistant.services.cases.rows("cases") if c["case_id"] == done.handoff_case]
        assert case["status"] == "taken" and case["taken_by"] == "agent"
        page.screenshot(path=str(screens_dir(tmp_path_factory) / "copilot.png"), full_page=True)


@pytest.mark.llm
def test_a_logged_only_conversation_is_no_longer_live(site, tmp_path):
    base, server, _, _, gone = site
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(base + "/copilot/")
        page.locator(f'#copilot-conversations button[data-conversation="{gone.id}"]').click()
        page.locator("#copilot-timeline", has_text="no longer live").wait_for(timeout=30_000)
        page.locator("#copilot-suggestion-1 textarea").fill("Hello?")
        page.locator("#copilot-send-1").click()
        page.locator("#copilot-sent", has_text="no longer live").wait_for(timeout=30_000)
        page.screenshot(path=str(Path(tmp_path) / "logged.png"), full_page=True)
    assert server.hub.get(gone.id) is None
