"""The shopper's chat page (``/``): streamed replies, product cards from the turn's ``Products`` event with
"more like this" and "compare" (sent as typed actions, ``assistant/actions.py``: no text understanding for them;
the chat history shows a short label), follow-up chips (typed too where the chip has an action), thumbs up/down
stored in the conversation log, a "talk to a person" button, visible no-match / declined / refused states,
messages from support agents, and a banner when the language model is down. The page only turns the loop's
typed events into views.

Identity: the page acts for a customer only after a verified sign-in — a session token (pasted, in the
``kefu_session`` cookie or ``?token=``), or in demo mode a pick from the demo customers, which the server signs
itself. The customer lives in the page's server-side state; no handler takes a customer id from the browser.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from assistant.actions import Action, Compare, Similar, label
from assistant.events import CardGroup, ProductCard, Products, Refused, TextChunk, TurnDone, Understood, card_price_text
from assistant.follow_ups import FollowUp, follow_ups
from kefu.errors import ConversationBusy, StateError
from kefu.llm.server import is_healthy
from ui.auth import SESSION_COOKIE, AuthError
from ui.limits import TOO_MANY
from ui.web import Server

MAX_CARDS = 9  # a list of three items shows three cards under each
MAX_CHIPS = 3
DEMO_CUSTOMERS = 12
HANDOFF_MESSAGE = "I'd like to talk to a person"
POLL_S = 2.0

CSS = """
#kefu-cards { flex-wrap: wrap; gap: 8px; }
.kefu-card { border: 1px solid #d0d7de; border-radius: 10px; padding: 8px; min-width: 160px; max-width: 100%; }
.kefu-card-title { font-weight: 600; }
.kefu-card-group { font-weight: 700; text-transform: none; margin: 4px 0 2px; color: #555; }
.kefu-card-price { font-size: 1.1em; margin: 2px 0; }
.kefu-card-meta, .kefu-card-reason { color: #57606a; font-size: 0.9em; }
.kefu-badge { display: inline-block; padding: 4px 10px; border-radius: 12px; background: #fff4e5; }
.kefu-badge.declined, .kefu-badge.refused { background: #f6f8fa; }
.kefu-badge.handoff { background: #e7f3ff; }
.kefu-banner { padding: 8px 12px; border-radius: 8px; margin: 4px 0; }
.kefu-banner.demo { background: #fff8c5; }
.kefu-banner.down { background: #ffebe9; }
#kefu-chips, #kefu-signin { flex-wrap: wrap; }
/* The embedded layout (/?embed=1, the widget's iframe; ui/static/embed.js sets .kefu-embed): fits 380 x 600. */
.kefu-embed #kefu-header, .kefu-embed #kefu-demo-banner, .kefu-embed footer { display: none !important; }
.kefu-embed #kefu-token, .kefu-embed #kefu-sign-in, .kefu-embed .kefu-card-reason { display: none !important; }
.kefu-embed #kefu-banner:not(:has(.kefu-banner)), .kefu-embed #kefu-outcome:not(:has(.kefu-badge)),
.kefu-embed #kefu-cards-label:not(:has(p)) { display: none !important; }
.kefu-embed .gradio-container { padding: 4px 8px !important; max-width: 100% !important; min-width: 0 !important; }
.kefu-embed main, .kefu-embed .main, .kefu-embed .wrap.app { padding: 0 !important; margin: 0 !important; }
.kefu-embed .column, .kefu-embed .row { gap: 6px !important; }
.kefu-embed #kefu-who { flex: 1 1 100% !important; min-width: 0 !important; font-size: 13px; }
.kefu-embed #kefu-who p { margin: 0; }
.kefu-embed #kefu-chat { height: 200px !important; min-height: 0 !important; }
.kefu-embed #kefu-cards, .kefu-embed #kefu-chips { flex-wrap: nowrap !important; overflow-x: auto; }
.kefu-embed .kefu-card { flex: 0 0 150px !important; min-width: 150px !important; padding: 6px; font-size: 13px; }
.kefu-embed .kefu-card button, .kefu-embed #kefu-chips button { font-size: 12px !important; padding: 2px 8px !important;
  min-width: 0 !important; white-space: nowrap; flex: 0 0 auto !important; }
"""

OUTCOME_TEXT = {
    "no_match": "Not in our catalogue",
    "declined": "Outside what this shop assistant does",
    "refused": "Message not read",
    "handoff": "Passed to a person",
}


@dataclass
class ChatState:
    """One browser tab's state, kept on the server (the browser cannot set it)."""

    customer_id: str | None = None
    conversation_id: str | None = None
    turn_of: dict[int, int] = field(default_factory=dict)  # chat message index -> the turn that wrote it
    agent_seen: int = 0
    cards: list[ProductCard] = field(default_factory=list)
    groups: list[CardGroup] = field(default_factory=list)  # a list's items: a heading above each item's first card
    alternatives: bool = False
    chips: list[FollowUp] = field(default_factory=list)
    compare: list[int] = field(default_factory=list)
    outcome: str = ""
    case: str | None = None
    llm_down: bool = False


def card_html(card: ProductCard, position: int, heading: str | None = None) -> str:
    """A product card as escaped HTML: every text comes from the catalogue row and is shown as plain text.
    ``heading``: the list item this card is the first of ("Milk"), shown above it."""
    meta = " · ".join(html.escape(x) for x in (card.brand, card.size, card.department) if x)
    reason = f'<div class="kefu-card-reason">{html.escape(card.reason)}</div>' if card.reason else ""
    head = f'<div class="kefu-card-group">{html.escape(heading.capitalize())}</div>' if heading else ""
    return (
        f'{head}<div class="kefu-card-body" data-product-id="{html.escape(card.product_id)}">'
        f'<div class="kefu-card-title">{position}. {html.escape(card.title)}</div>'
        f'<div class="kefu-card-price">{html.escape(card_price_text(card))}</div>'
        f'<div class="kefu-card-meta">{meta}</div>{reason}</div>'
    )


def headings(cards: list[ProductCard], groups: list[CardGroup]) -> list[str | None]:
    """Per card, the list item it opens (its group's first card), else None."""
    first = {}
    for g in groups:
        pid = next((p for p in g.product_ids if p not in first.values()), None)
        if g.carried and pid is not None:
            first[g.item] = pid
    by_card = {pid: item for item, pid in first.items()}
    return [by_card.get(c.product_id) for c in cards]


def outcome_html(state: ChatState) -> str:
    if not state.outcome or state.outcome == "answered":
        return ""
    text = OUTCOME_TEXT.get(state.outcome, state.outcome)
    if state.outcome == "handoff" and state.case:
        text += f": case {state.case}"
    if state.outcome == "no_match" and state.alternatives:
        text += " — the products below are alternatives"
    return f'<span class="kefu-badge {state.outcome}" data-outcome="{state.outcome}">{html.escape(text)}</span>'


def banner_html(server: Server, state: ChatState) -> str:
    parts = []
    if server.settings.demo:
        parts.append('<div class="kefu-banner demo" id="kefu-demo-banner">Demo mode: pick any demo customer to '
                     "act as them. Not for a public shop.</div>")  # fmt: skip
    if server.assistant is None:
        parts.append(f'<div class="kefu-banner down" id="kefu-setup-banner">The shop assistant is not set up: '
                     f"{html.escape(server.unavailable or 'unknown reason')}</div>")  # fmt: skip
    elif state.llm_down:
        parts.append('<div class="kefu-banner down" id="kefu-llm-banner">The assistant\'s language model is not '
                     "answering, so replies come from the shop's search and rules for now. Retry when it is back "
                     "(<code>kefu llm serve</code> starts it).</div>")  # fmt: skip
    return "".join(parts)


def who_text(state: ChatState) -> str:
    if state.customer_id:
        return f"Signed in as customer **{state.customer_id}**"
    return "Guest — sign in to see your orders and personal picks"


def build_chat(server: Server) -> gr.Blocks:
    settings, tokens, hub, assistant = server.settings, server.tokens, server.hub, server.assistant
    log = assistant.log if assistant is not None else None

    def views(state: ChatState, history: list[dict]) -> list[Any]:
        """Every output of a turn, from the state: chat, state, outcome, banner, retry, cards, chips."""
        out: list[Any] = [history, state, outcome_html(state), banner_html(server, state)]
        out.append(gr.update(visible=state.llm_down and assistant is not None))
        out.append("Alternatives we do carry:" if state.alternatives and state.cards else "")
        heads = headings(state.cards, state.groups)
        for i in range(MAX_CARDS):
            card = state.cards[i] if i < len(state.cards) else None
            out.append(gr.update(visible=card is not None))
            out.append(card_html(card, i + 1, heads[i]) if card else "")
            out.append(gr.update(value="Selected" if i + 1 in state.compare else "Compare"))
        for i in range(MAX_CHIPS):
            chip = state.chips[i] if i < len(state.chips) else None
            out.append(gr.update(visible=chip is not None, value=chip.label if chip else ""))
        return out

    def send(message: str | Action, history: list[dict], state: ChatState, request: gr.Request):
        action = None if isinstance(message, str) or message is None else message  # a card button or a chip
        if action is not None:
            message = label(action, {c.product_id: c for c in state.cards})
        message = (message or "").strip()
        history = [_plain(m) for m in history or []]
        if not message:
            yield views(state, history)
            return
        history.append({"role": "user", "content": html.escape(message)})  # shown as typed, never as HTML
        if assistant is None:
            text = f"Sorry, the shop assistant is not set up yet: {server.unavailable}"
            history.append({"role": "assistant", "content": html.escape(text)})
            yield views(state, history)
            return
        try:
            allowed = server.limits.allow(request.client.host if request.client else None, state.customer_id)
            if allowed:
                conversation = hub.open(state.conversation_id, state.customer_id)
                turn = hub.turn(assistant, conversation, message, action)
        except (ConversationBusy, StateError) as exc:  # a turn of it runs (another tab, worker), or Redis is down
            history.append({"role": "assistant", "content": html.escape(str(exc))})
            yield views(state, history)
            return
        if not allowed:
            history.append({"role": "assistant", "content": html.escape(TOO_MANY)})
            state.outcome = "refused"
            yield views(state, history)
            return
        state.conversation_id, state.compare = conversation.id, []
        history.append({"role": "assistant", "content": ""})
        reply, intent = "", None
        for event in turn:
            if isinstance(event, Understood):
                intent = event.understanding.intent
            elif isinstance(event, Products):
                state.cards, state.alternatives = event.items[:MAX_CARDS], event.alternatives
                state.groups = event.groups
                yield views(state, history)
            elif isinstance(event, TextChunk) and not event.listing:  # the cards are drawn, not listed
                reply += event.text
                history[-1] = {"role": "assistant", "content": html.escape(reply)}
                yield views(state, history)
            elif isinstance(event, Refused):
                history[-1] = {"role": "assistant", "content": html.escape(event.message)}
            elif isinstance(event, TurnDone):
                history[-1] = {"role": "assistant", "content": html.escape(event.lead_in or event.reply)}
                state.turn_of[len(history) - 1] = event.turn
                state.cards, state.groups = event.products[:MAX_CARDS], event.groups
                state.alternatives = state.alternatives and event.outcome == "no_match" and bool(event.products)
                state.outcome, state.case = event.outcome, event.handoff_case
                state.chips = follow_ups(event, intent, signed_in=state.customer_id is not None)[:MAX_CHIPS]
        state.llm_down = not is_healthy(settings.llm_base_url, timeout_s=1.5)
        yield views(state, history)

    def poll(history: list[dict], state: ChatState):
        """Messages support agents sent into this conversation since the last poll."""
        if not state.conversation_id:
            return gr.skip(), gr.skip()
        try:
            new = hub.agent_messages_since(state.conversation_id, state.agent_seen)
        except StateError:  # the shared store is down: the next poll tries again
            return gr.skip(), gr.skip()
        if not new:
            return gr.skip(), gr.skip()
        state.agent_seen += len(new)
        history = [_plain(m) for m in history or []]
        history += [{"role": "assistant", "content": html.escape(f"Support agent: {m.text}")} for m in new]
        return history, state

    def feedback(data: gr.LikeData, state: ChatState) -> None:
        index = data.index[0] if isinstance(data.index, list | tuple) else data.index
        turn = state.turn_of.get(int(index))
        if turn is None or log is None or not state.conversation_id:
            return
        liked = data.liked
        if liked in (True, "Like"):
            log.feedback(state.conversation_id, turn, 1)
        elif liked in (False, "Dislike"):
            log.feedback(state.conversation_id, turn, -1)

    def retry(history: list[dict], state: ChatState):
        state.llm_down = not is_healthy(settings.llm_base_url, timeout_s=3.0)
        if state.llm_down:
            gr.Warning("The language model is still not answering.")
        return views(state, [_plain(m) for m in history or []])

    def signed_in(state: ChatState, customer_id: str | None) -> list[Any]:
        state = ChatState(customer_id=customer_id, llm_down=state.llm_down)  # a new conversation
        return [who_text(state), *views(state, [])]

    def sign_in_with_token(token: str, state: ChatState):
        try:
            customer_id = tokens.customer((token or "").strip())
        except AuthError as exc:
            gr.Warning(str(exc))
            return [gr.skip(), *[gr.skip()] * len(outputs)]
        return signed_in(state, customer_id)

    def pick_demo_customer(choice: str, state: ChatState):
        if not settings.demo:  # the picker exists only in demo mode; refuse a call made without it
            raise gr.Error("Demo customers are off on this server.")
        customer_id = None if choice in (None, "", "Guest") else tokens.customer(tokens.issue(choice))
        return signed_in(state, customer_id)

    def on_load(state: ChatState, request: gr.Request):
        token = request.cookies.get(SESSION_COOKIE) or request.query_params.get("token")
        customer_id = None
        if token:
            try:
                customer_id = tokens.customer(token)
            except AuthError as exc:
                gr.Warning(str(exc))
        return signed_in(state, customer_id)

    def chip_message(i: int):
        """What chip ``i`` sends: its typed action, else its message."""
        return lambda state: (state.chips[i].action or state.chips[i].message) if i < len(state.chips) else ""

    def card_more(i: int):
        return lambda state: Similar(product_id=state.cards[i].product_id) if i < len(state.cards) else ""

    def card_compare(i: int):
        def pick(state: ChatState):
            if i >= len(state.cards):
                return "", state
            position = i + 1
            if position in state.compare:
                state.compare.remove(position)
            else:
                state.compare.append(position)
            if len(state.compare) >= 2:
                return Compare(product_ids=[state.cards[p - 1].product_id for p in state.compare[:2]]), state
            gr.Info("Pick another card to compare with.")
            return "", state

        return pick

    with gr.Blocks(title="Kefu shopping assistant") as page:
        state = gr.State(ChatState())
        pending = gr.State("")
        gr.Markdown("## Shopping assistant", elem_id="kefu-header")
        banner = gr.HTML(banner_html(server, ChatState()), elem_id="kefu-banner")
        retry_button = gr.Button("Retry", elem_id="kefu-retry", visible=False, size="sm")
        with gr.Row(elem_id="kefu-signin"):
            who = gr.Markdown(who_text(ChatState()), elem_id="kefu-who")
            if settings.demo and assistant is not None:
                choices = ["Guest", *assistant.services.orders.busiest_customers(DEMO_CUSTOMERS)]
                picker = gr.Dropdown(choices, value="Guest", label="Demo customer", elem_id="kefu-customer")
            else:
                picker = None
                token_box = gr.Textbox(label="Session token", type="password", elem_id="kefu-token", scale=3)
                sign_in = gr.Button("Sign in", elem_id="kefu-sign-in", size="sm")
        chatbot = gr.Chatbot(
            elem_id="kefu-chat", height=420, render_markdown=False, sanitize_html=True, allow_tags=False,
            feedback_options=("Like", "Dislike"), placeholder="Ask about products, orders, returns…",
            show_label=False, group_consecutive_messages=False,
        )  # fmt: skip
        outcome = gr.HTML("", elem_id="kefu-outcome")
        cards_label = gr.Markdown("", elem_id="kefu-cards-label")
        card_parts = []
        with gr.Row(elem_id="kefu-cards"):
            for i in range(MAX_CARDS):
                with gr.Column(visible=False, min_width=160, elem_classes="kefu-card", elem_id=f"kefu-card-{i}") as c:
                    body = gr.HTML("", elem_id=f"kefu-card-body-{i}")
                    with gr.Row():
                        more = gr.Button("More like this", size="sm", elem_id=f"kefu-more-{i}")
                        cmp = gr.Button("Compare", size="sm", elem_id=f"kefu-compare-{i}")
                card_parts.append((c, body, more, cmp))
        with gr.Row(elem_id="kefu-chips"):
            chips = [gr.Button("", visible=False, size="sm", elem_id=f"kefu-chip-{i}") for i in range(MAX_CHIPS)]
        with gr.Row():
            textbox = gr.Textbox(
                show_label=False, placeholder="Type a message", elem_id="kefu-input", scale=5, max_length=20_000
            )
            send_button = gr.Button("Send", variant="primary", elem_id="kefu-send", scale=1, min_width=80)
        handoff = gr.Button("Talk to a person", size="sm", elem_id="kefu-handoff")
        timer = gr.Timer(POLL_S)

        outputs: list[Any] = [chatbot, state, outcome, banner, retry_button, cards_label]
        for c, body, _more, cmp in card_parts:
            outputs += [c, body, cmp]
        outputs += chips

        turn_args = {"fn": send, "inputs": [pending, chatbot, state], "outputs": outputs}
        textbox.submit(lambda m: (m, ""), textbox, [pending, textbox]).then(**turn_args)
        send_button.click(lambda m: (m, ""), textbox, [pending, textbox]).then(**turn_args)
        handoff.click(lambda: HANDOFF_MESSAGE, None, pending).then(**turn_args)
        for i, chip in enumerate(chips):
            chip.click(chip_message(i), state, pending).then(**turn_args)
        for i, (_c, _body, more, cmp) in enumerate(card_parts):
            more.click(card_more(i), state, pending).then(**turn_args)
            cmp.click(card_compare(i), state, [pending, state]).then(**turn_args)
        chatbot.like(feedback, state, None)
        retry_button.click(retry, [chatbot, state], outputs)
        timer.tick(poll, [chatbot, state], [chatbot, state], show_progress="hidden")
        signin_outputs = [who, *outputs]
        page.load(on_load, state, signin_outputs, show_progress="hidden")
        if picker is not None:
            picker.change(pick_demo_customer, [picker, state], signin_outputs)
        else:
            token_box.submit(sign_in_with_token, [token_box, state], signin_outputs)
            sign_in.click(sign_in_with_token, [token_box, state], signin_outputs)
    return page


def _plain(message: dict) -> dict:
    """A chat message as the page sends it back (gradio may wrap content in parts), as role + plain text."""
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return {"role": message.get("role", "assistant"), "content": content if isinstance(content, str) else ""}
