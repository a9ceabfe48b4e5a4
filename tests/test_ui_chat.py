"""The minimal chat page: launched for real, asked over Gradio's HTTP API, answered by the served model."""

import pytest
from gradio_client import Client

from tests.conftest import free_port
from ui.chat import build

pytestmark = pytest.mark.llm


def test_chat_page_answers_from_the_served_model(llm_settings):
    settings = llm_settings.model_copy(update={"ui_port": free_port()})
    page = build(settings)
    page.queue().launch(server_name="127.0.0.1", server_port=settings.ui_port, prevent_thread_lock=True)
    try:
        client = Client(f"http://127.0.0.1:{settings.ui_port}/", verbose=False)
        reply = client.predict("Hello! What can you help me with?", api_name="/respond_plain")
        assert isinstance(reply, str) and reply.strip()
        assert "unavailable" not in reply
    finally:
        page.close()


def test_chat_page_says_when_the_model_is_down(settings):
    settings = settings.model_copy(update={"ui_port": free_port(), "llm_port": free_port(), "llm_retries": 0})
    page = build(settings)
    page.queue().launch(server_name="127.0.0.1", server_port=settings.ui_port, prevent_thread_lock=True)
    try:
        reply = Client(f"http://127.0.0.1:{settings.ui_port}/", verbose=False).predict("hi", api_name="/respond_plain")
        assert "assistant is unavailable" in reply and "kefu llm serve" in reply
    finally:
        page.close()


def test_assistant_page_answers_with_real_products(shop_settings):
    from assistant.loop import Assistant
    from tests.conftest import real_services
    from tests.fake_llm import ScriptedLLM, reading

    services = real_services(shop_settings, shop_settings.data_dir / "ui-records.sqlite")
    assistant = Assistant(services, ScriptedLLM([reading(product="cheese", max_price=5)], ["Cheese picks."]))
    port = free_port()
    page = build(shop_settings, assistant)
    page.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        reply = client.predict("cheese under $5", "1111", api_name="/respond_assistant")
        text = reply[0] if isinstance(reply, tuple | list) else reply
        assert "matches for" in text and "$" in text  # the lead-in composed from the results, then the cards
    finally:
        page.close()
