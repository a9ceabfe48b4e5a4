"""The embeddable widget (``ui/widget.py``): ``/widget.js``, the frame-ancestors policy from ``KEFU_EMBED_ORIGINS``,
the token handover (``POST /v1/tokens``), and in Debian's Chromium a plain product page on another origin (the
shop's own site) with the snippet: the launcher opens the chat in its embedded layout, signed in as the shop's
customer, and a question gets an answer with cards from the real served model, index and store. A page on an
origin that is not allowed gets no chat: the browser refuses to frame it."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import httpx
import pytest
from pydantic import ValidationError

from assistant.display import display_title
from assistant.events import TurnDone
from kefu.settings import Settings
from tests.browser import chromium, html_site, screens_dir, served
from tests.conftest import free_port
from tests.test_ui_chat import make_assistant
from ui.auth import Tokens
from ui.web import build_server
from ui.widget import demo_page, static_text

SECRET = "widget-test-secret-0123456789"
SHOP_KEY = "the-shops-backend-key"


EXAMPLE = {
    "title": "Cheese crackers, 7 oz",
    "price": "$2.99",
    "brand": "National",
    "size": "7 OZ",
    "department": "GROCERY",
    "category": "CRACKERS/MISC BKD FD",
}


@pytest.fixture
def widget_settings(settings) -> Settings:
    """A server without a built shop (the chat page says so), a secret, a token key and one allowed origin."""
    return settings.model_copy(
        update={
            "auth_secret": SECRET,
            "token_key": SHOP_KEY,
            "llm_port": 9,
            "llm_retries": 0,
            "embed_origins": ["https://shop.example"],
        }
    )


def test_widget_js_is_the_package_file_served_as_javascript(widget_settings):
    with served(widget_settings) as (base, _), httpx.Client(base_url=base, timeout=30) as client:
        answer = client.get("/widget.js")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/javascript")
    assert answer.text == static_text("widget.js")
    assert 'id = "kefu-launcher"' in answer.text and 'id = "kefu-frame"' in answer.text


def test_only_the_allowed_origins_may_frame_the_chat_page_and_no_one_the_staff_pages(widget_settings):
    with served(widget_settings) as (base, _), httpx.Client(base_url=base, timeout=30) as client:
        chat = client.get("/?embed=1")
        staff = client.get("/staff")
        copilot = client.get("/copilot/", follow_redirects=False)
    assert chat.status_code == 200 and "kefu-input" in chat.text and "kefu-embed" in chat.text
    assert chat.headers["content-security-policy"] == "frame-ancestors 'self' https://shop.example"
    assert "x-frame-options" not in chat.headers  # it would refuse the allowed origin too
    for response in (staff, copilot):
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert response.headers["x-frame-options"] == "DENY"

    alone = widget_settings.model_copy(update={"embed_origins": []})
    with served(alone) as (base, _):
        assert httpx.get(base + "/?embed=1", timeout=30).headers["content-security-policy"] == "frame-ancestors 'self'"


def test_embed_origins_are_read_from_the_environment_and_bad_ones_say_how_to_write_them(settings, monkeypatch):
    monkeypatch.setenv("KEFU_EMBED_ORIGINS", "https://shop.example, http://127.0.0.1:8080/")
    assert Settings().embed_origins == ["https://shop.example", "http://127.0.0.1:8080"]
    monkeypatch.setenv("KEFU_EMBED_ORIGINS", '["https://*.shop.example"]')
    assert Settings().embed_origins == ["https://*.shop.example"]
    for bad in ("shop.example", "https://shop.example/products", "https://shop.example; script-src *", "*"):
        monkeypatch.setenv("KEFU_EMBED_ORIGINS", bad)
        with pytest.raises(ValidationError, match=r"not an origin .* scheme://host\[:port\]"):
            Settings()


def test_the_shops_back_end_gets_a_token_for_its_customer_with_its_key(widget_settings):
    shop = {"Authorization": f"Bearer {SHOP_KEY}"}
    with served(widget_settings) as (base, _), httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post("/v1/tokens", json={"customer_id": "1111"}, headers=shop)
        wrong = client.post("/v1/tokens", json={"customer_id": "1111"}, headers={"Authorization": "Bearer guess"})
        missing = client.post("/v1/tokens", json={"customer_id": "1111"})
        bad_id = client.post("/v1/tokens", json={"customer_id": "a\nb"}, headers=shop)
    assert answer.status_code == 200
    body = answer.json()
    assert Tokens(SECRET, 3600).customer(body["token"]) == "1111"
    assert body["customer_id"] == "1111" and body["expires_in_s"] == widget_settings.session_token_ttl_s
    assert wrong.status_code == missing.status_code == 401 and "KEFU_TOKEN_KEY" in wrong.json()["detail"]
    assert bad_id.status_code == 422 and bad_id.json()["detail"][0]["loc"] == ["body", "customer_id"]

    off = widget_settings.model_copy(update={"token_key": None})
    with served(off) as (base, _):
        refused = httpx.post(base + "/v1/tokens", json={"customer_id": "1111"}, headers={"Authorization": "Bearer x"})
    assert refused.status_code == 503 and "KEFU_TOKEN_KEY" in refused.json()["detail"]


def test_the_widget_demo_page_is_a_demo_mode_page(widget_settings):
    with served(widget_settings) as (base, _):
        assert httpx.get(base + "/widget-demo", timeout=30).status_code == 404
    with served(widget_settings.model_copy(update={"demo": True})) as (base, _):
        answer = httpx.get(base + "/widget-demo", timeout=30)
    assert answer.status_code == 503 and "not set up" in answer.text  # no shop built in this data dir


def test_the_demo_page_escapes_what_it_shows():
    page = demo_page("https://kefu.example", {**EXAMPLE, "title": "<img src=x onerror=alert(1)>"}, 'a"b')
    assert "<img" not in page and "&lt;img src=x" in page and 'data-kefu-token="a&quot;b"' in page
    assert '<script src="https://kefu.example/widget.js" data-kefu-title="Ask Corner Grocer"' in page


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def test_a_page_on_an_origin_not_allowed_gets_no_chat(settings, browser):
    allowed_port = free_port()
    kefu_settings = settings.model_copy(
        update={
            "auth_secret": SECRET,
            "llm_port": 9,
            "llm_retries": 0,
            "embed_origins": [f"http://127.0.0.1:{allowed_port}"],
        }
    )
    with served(kefu_settings) as (kefu, _), html_site(demo_page(kefu, EXAMPLE)) as stranger:
        page = browser.new_page()
        refusals: list[str] = []
        page.on("console", lambda m: refusals.append(m.text) if "frame-ancestors" in m.text else None)
        page.goto(stranger + "/")
        page.click("#kefu-launcher")
        page.wait_for_timeout(5000)
        frame = page.frame_locator("#kefu-frame")
        assert frame.locator("#kefu-input").count() == 0
        assert refusals and f"http://127.0.0.1:{allowed_port}" in refusals[0]  # Chromium names the policy
        page.close()


def a_product(store: Path) -> dict:
    con = duckdb.connect(str(store), read_only=True)
    row = con.execute(
        "SELECT title, price, brand, package_size, department, category, product_type FROM products "
        "WHERE category = 'CRACKERS/MISC BKD FD' AND price IS NOT NULL ORDER BY product_id LIMIT 1"
    ).fetchone()
    con.close()
    title, price, brand, size, department, category, ptype = row
    return {
        "title": display_title(ptype, category, size, brand, title),
        "price": f"${price:.2f}",
        "brand": brand or "",
        "size": size or "",
        "department": department,
        "category": category,
    }


def finished_turn(server, timeout_s: float = 180) -> TurnDone:
    """The first conversation's first turn, once it is done."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in server.hub.live():
            last = c.turns[-1] if c.turns else []
            if last and isinstance(last[-1], TurnDone) and not server.hub.busy(c.id):
                return last[-1]
        time.sleep(0.3)
    raise AssertionError(f"no turn finished in {timeout_s} s")


@pytest.mark.llm
def test_the_widget_on_a_shop_page_opens_the_chat_signed_in_and_answers_with_cards(
    shop_settings, llm_settings, intent_classifier, browser, tmp_path_factory
):
    shop_port = free_port()
    kefu_settings = shop_settings.model_copy(
        update={
            "llm_url": llm_settings.llm_base_url,
            "llm_served_name": llm_settings.llm_served_name,
            "llm_retries": 0,
            "auth_secret": SECRET,
            "token_key": SHOP_KEY,
            "demo": False,
            "embed_origins": [f"http://127.0.0.1:{shop_port}"],
        }
    )
    records = tmp_path_factory.mktemp("widget") / "records.sqlite"
    server = build_server(kefu_settings, make_assistant(kefu_settings, intent_classifier, records))
    shots = screens_dir(tmp_path_factory)
    with served(kefu_settings, server=server) as (kefu, _):
        # The shop's back end asks for its signed-in customer's token and writes it into the snippet.
        token = httpx.post(kefu + "/v1/tokens", json={"customer_id": "1111"},
                           headers={"Authorization": f"Bearer {SHOP_KEY}"}, timeout=30).json()["token"]  # fmt: skip
        html = demo_page(kefu, a_product(kefu_settings.store_path), token)
        with html_site(html, shop_port) as shop:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(shop + "/")
            launcher = page.locator("#kefu-launcher")
            assert launcher.get_attribute("aria-expanded") == "false"
            assert page.locator("#kefu-frame").count() == 0  # the chat page loads on the first open only
            box = launcher.bounding_box()
            assert box["x"] > 1280 - 120 and box["y"] > 800 - 120  # bottom right

            page.keyboard.press("Tab")  # the page's own button first, then the launcher
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.id") == "kefu-launcher"
            page.keyboard.press("Enter")
            assert launcher.get_attribute("aria-expanded") == "true"
            assert launcher.get_attribute("aria-label") == "Close Ask Corner Grocer"
            frame_box = page.locator("#kefu-frame").bounding_box()
            assert (frame_box["width"], frame_box["height"]) == (380, 600)

            chat = page.frame_locator("#kefu-frame")
            chat.locator("#kefu-input textarea").wait_for(timeout=60_000)
            frame = page.locator("#kefu-frame").element_handle().content_frame()
            assert "embed=1" in frame.url
            frame.wait_for_function("document.querySelector('#kefu-who').innerText.includes('1111')", timeout=30_000)
            assert not chat.locator("#kefu-header").is_visible()  # the embedded layout: no header, no banner
            assert frame.evaluate("document.documentElement.scrollWidth") <= 380  # nothing wider than the frame

            chat.locator("#kefu-input textarea").fill("crackers under $4")
            chat.locator("#kefu-send").click()
            done = finished_turn(server)
            frame.wait_for_function(
                "t => [...document.querySelectorAll('#kefu-chat .bot')].some(b => b.innerText.includes(t))",
                arg=(done.lead_in or done.reply)[:40],
                timeout=30_000,
            )
            chat.locator("#kefu-card-body-0 .kefu-card-title").wait_for(timeout=30_000)
            assert server.hub.live()[0].customer_id == "1111"  # the shop's customer, from the token
            assert done.products and all(c.price <= 4.0 for c in done.products if c.price is not None)
            assert chat.locator("#kefu-card-body-0 .kefu-card-title").inner_text().split(". ", 1)[1] == (
                done.products[0].title
            )
            assert chat.locator("#kefu-send").is_visible()  # the input still fits in the frame after the answer
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shots / "widget-open.png"))

            page.keyboard.press("Escape")  # from inside the chat: it asks the shop page to close it
            page.wait_for_function("document.getElementById('kefu-launcher').getAttribute('aria-expanded') === 'false'")
            assert not page.locator("#kefu-frame").is_visible()
            launcher.click()  # opens again on the same conversation
            assert page.locator("#kefu-frame").is_visible()
            page.close()
