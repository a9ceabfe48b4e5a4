"""The support agents' copilot (``/copilot``): live and recent conversations (filterable), the selected one's
customer card and per-turn timeline, suggested replies to edit and send into the shopper's chat, products to
insert, and the handoff queue.

Views only: the desk (``assistant/desk.py``) gathers and shapes everything; this module renders it. Shopper,
model and catalogue text is always shown as plain text (escaped HTML; no Markdown is rendered anywhere), since
product titles and messages can carry links or markup.
"""

from __future__ import annotations

import html
import json

import gradio as gr

from assistant.desk import FILTERS, ConversationItem, CustomerCard, Desk
from assistant.events import card_price_text
from assistant.suggest import MAX_SUGGESTIONS, card_line
from assistant.timeline import CaseView, TurnView
from kefu.errors import KefuError
from ui.hub import Conversation
from ui.web import Server

FILTER_LABELS = {"all": "All", "handoff": "Handoff", "no_match": "No match", "thumbs_down": "Thumbs down"}
CSS = """
#copilot-timeline .turn, #copilot-customer .card, #copilot-queue .case {border:1px solid #ddd;border-radius:6px;
  padding:.5rem .7rem;margin:.4rem 0;font-size:.9rem}
.k-muted {color:#666} .k-bad {color:#b00020} .k-ok {color:#1b5e20} .k-note {background:#fff8e1;padding:.4rem .6rem}
.k-msg {white-space:pre-wrap} .k-tag {display:inline-block;background:#eef;border-radius:4px;padding:0 .3rem}
"""


def esc(value: object) -> str:
    """Plain text into HTML: escaped, so a title's ``<img>`` or a message's ``[link](…)`` stays text."""
    return html.escape("" if value is None else str(value))


def _notes(notes: list[str]) -> str:
    return "".join(f'<div class="k-note">{esc(n)}</div>' for n in notes)


def _args(arguments: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in arguments.items())


def conversation_label(item: ConversationItem) -> str:
    who = f"customer {item.customer_id}" if item.customer_id else "guest"
    flags = sorted({o for o in item.outcomes if o in ("handoff", "no_match", "declined", "refused")})
    flags += ["thumbs down"] if item.thumbs_down else []
    tail = f" · {', '.join(flags)}" if flags else ""
    state = "live" if item.live else "logged"
    return f"{state} · {who} · {item.turns} turn(s) · {item.last_at[11:19]} · {item.conversation_id}{tail}"


def customer_html(card: CustomerCard) -> str:
    if card.customer_id is None:
        return f'<div class="card">{_notes(card.notes)}</div>'
    rows = [("Segment", card.segment), ("Persona", card.persona)]
    if card.rfm is not None:
        rows.append(("RFM scores", " / ".join("–" if s is None else str(s) for s in card.rfm) + " (R / F / M)"))
    if card.clv_expected_value is not None:
        alive = f", {card.alive_band}" if card.alive_band else ""
        rows.append(("CLV (90 days)", f"${card.clv_expected_value:.2f} expected{alive}"))
    if card.propensity is not None:
        rows.append(("Propensity to buy", f"{card.propensity:.0%}"))
    rows += [("Price band", card.price_band), ("Top categories", ", ".join(card.top_categories) or None)]
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows if v is not None)
    orders = "".join(
        f"<li>{esc(o['order_id'])} · {esc(o['ordered_at'])} · {esc(o['status'])} · {esc(o['items'])} item(s) · "
        f"${o['total']:.2f}</li>"
        for o in card.orders
    )
    orders = f"<div><b>Last orders</b><ul>{orders}</ul></div>" if orders else ""
    return (f'<div class="card"><b>Customer {esc(card.customer_id)}</b><table>{table}</table>{orders}'
            f"{_notes(card.notes)}</div>")  # fmt: skip


def turn_html(t: TurnView) -> str:
    outcome_class = "k-bad" if t.outcome in ("no_match", "handoff", "refused") else "k-ok"
    rating = {1: " · thumbs up", -1: ' · <span class="k-bad">thumbs down</span>'}.get(t.rating or 0, "")
    goal = f" · goal <span class='k-tag'>{esc(t.goal)}</span>" if t.goal else ""
    head = (f"<b>Turn {t.turn}</b> · intent <span class='k-tag'>{esc(t.intent or '—')}</span> "
            f"<span class='k-muted'>({esc(t.source)})</span>{goal} · outcome "
            f"<span class='{outcome_class}'>{esc(t.outcome)}</span>{rating}")  # fmt: skip
    parts = [head, f'<div class="k-msg"><b>Shopper:</b> {esc(t.message)}</div>']
    if t.slots:
        parts.append(f"<div><b>Slots:</b> {esc(_args(t.slots))}</div>")
    if t.trace:
        rules = " → ".join(f"<code>{esc(r)}</code>" for r in t.trace)
        parts.append(f'<div class="k-trace"><b>Rules:</b> {rules}</div>')
    for step in t.tools:
        mark = '<span class="k-ok">ok</span>' if step.ok else '<span class="k-bad">error</span>'
        parts.append(f"<div>tool <code>{esc(step.name)}({esc(_args(step.arguments))})</code> → {mark} "
                     f"<span class='k-muted'>{esc(step.brief())}</span></div>")  # fmt: skip
    if t.cards:
        shown = "; ".join(f"{c.title} — {card_price_text(c)}" for c in t.cards[:5])
        parts.append(f"<div><b>Shown{' (alternatives)' if t.alternatives else ''}:</b> {esc(shown)}</div>")
    elif t.product_ids:
        parts.append(f"<div><b>Shown:</b> {esc(', '.join(t.product_ids[:5]))}</div>")
    if t.coupon:
        parts.append(f"<div><b>Coupon offered:</b> {esc(t.coupon.get('coupon_upc'))}</div>")
    if t.repairs or t.repair_count:
        what = "; ".join(t.repairs) if t.repairs else f"{t.repair_count} repair(s)"
        parts.append(f"<div><b>Repairs:</b> {esc(what)}</div>")
    if t.handoff_case:
        parts.append(f"<div><b>Case opened:</b> {esc(t.handoff_case)}</div>")
    parts.append(f'<div class="k-msg"><b>Assistant:</b> {esc(t.reply)}</div>')
    return '<div class="turn">' + "".join(parts) + "</div>"


def timeline_html(turns: list[TurnView], live: Conversation | None) -> str:
    if not turns:
        return '<div class="k-muted">No turns in this conversation.</div>'
    said = ""
    if live is not None and live.agent_messages:
        said = "".join(f'<div class="k-msg"><b>{esc(m.agent)} (agent):</b> {esc(m.text)}</div>'
                       for m in live.agent_messages)  # fmt: skip
        said = f'<div class="turn"><b>Sent by agents</b>{said}</div>'
    note = "" if live is not None else '<div class="k-note">From the log: this conversation is no longer live.</div>'
    return note + "".join(turn_html(t) for t in turns) + said


def case_html(case: CaseView, titles: dict[str, str]) -> str:
    taken = (f' · <span class="k-ok">taken by {esc(case.taken_by)} at {esc(case.taken_at)}</span>'
             if case.status == "taken" else ' · <span class="k-bad">open</span>')  # fmt: skip
    who = f"customer {case.customer_id}" if case.customer_id else "guest"
    items = ", ".join(titles.get(p, p) for p in case.items_shown) or "none"
    rows = [("Reason", case.reason), ("Intents", ", ".join(case.intents) or "none"),
            ("Slots", _args(case.slots) or "none"), ("Items shown", items),
            ("Tools tried", "; ".join(case.tried) or "none")]  # fmt: skip
    body = "".join(f"<div><b>{esc(k)}:</b> {esc(v)}</div>" for k, v in rows)
    return (f'<div class="case"><b>{esc(case.case_id)}</b> · {esc(case.priority)} priority · {esc(who)} · '
            f"{esc(case.created_at)} · conversation {esc(case.conversation_id)}{taken}{body}</div>")  # fmt: skip


def build_copilot(server: Server) -> gr.Blocks:
    desk = Desk.open(server.settings, server.assistant, server.unavailable)
    hub = server.hub

    def listing(what: str, selected: str | None):
        items = desk.conversations(hub.live(), what)
        choices = [(conversation_label(i), i.conversation_id) for i in items]
        value = selected if any(v == selected for _, v in choices) else None
        empty = "" if choices else "No conversations yet: live ones appear here as shoppers chat."
        return gr.Radio(choices=choices, value=value, info=empty or None)

    def queue():
        cases = desk.queue()
        titles = desk.titles(sorted({p for c in cases for p in c.items_shown}))
        body = "".join(case_html(c, titles) for c in cases) or '<div class="k-muted">No handoff cases.</div>'
        open_ones = [(f"{c.case_id} · {c.priority} · {c.reason[:60]}", c.case_id) for c in cases if c.status == "open"]
        info = None if open_ones else "No open cases."
        return body, gr.Dropdown(choices=open_ones, value=open_ones[0][1] if open_ones else None, info=info)

    def views(conversation_id: str | None):
        """(customer html, timeline html, turns) of the selected conversation."""
        if not conversation_id:
            return '<div class="k-muted">Select a conversation.</div>', "", []
        live = hub.get(conversation_id)
        try:
            turns = desk.timeline(conversation_id, live)
            card = desk.customer(desk.customer_of(conversation_id, live))
        except KefuError as exc:
            return _notes([str(exc)]), "", []
        return customer_html(card), timeline_html(turns, live), turns

    def refresh(what: str, selected: str | None):
        customer, timeline, _ = views(selected)
        return listing(what, selected), customer, timeline, *queue()

    def select(conversation_id: str | None, agent: str):
        customer, timeline, turns = views(conversation_id)
        texts = [""] * MAX_SUGGESTIONS
        products = gr.Dropdown(choices=[], value=None)
        if conversation_id:
            live = hub.get(conversation_id)
            suggestions, cards = desk.suggestions(conversation_id, turns, desk.customer_of(conversation_id, live),
                                                  agent.strip())  # fmt: skip
            for i, s in enumerate(suggestions[:MAX_SUGGESTIONS]):
                texts[i] = s.text
            lines = [card_line(c) for c in cards]
            products = gr.Dropdown(choices=lines, value=lines[0] if lines else None)
        return customer, timeline, *texts, products

    def send(conversation_id: str | None, text: str, agent: str):
        if not conversation_id:
            return '<span class="k-bad">Select a conversation first.</span>', gr.skip()
        if not text.strip():
            return '<span class="k-bad">The reply is empty.</span>', gr.skip()
        note = f"Conversation {esc(conversation_id)} is no longer live (only in the log): nothing was sent."
        try:
            hub.say(conversation_id, text, agent.strip() or "agent")
        except KeyError:  # not live on this server (logged only, or it expired)
            return f'<span class="k-bad">{note}</span>', gr.skip()
        _, timeline, _ = views(conversation_id)
        return f'<span class="k-ok">Sent to the shopper as {esc(agent.strip() or "agent")}.</span>', timeline

    def insert(line: str | None, target: str, *texts: str):
        out = [gr.skip()] * MAX_SUGGESTIONS
        if line:
            i = int(target.split()[-1]) - 1
            out[i] = (texts[i].rstrip() + "\n" if texts[i].strip() else "") + line
        return out

    def take(case_id: str | None, agent: str):
        if not case_id:
            return '<span class="k-bad">No open case selected.</span>', *queue()
        try:
            case = desk.take(case_id, agent.strip() or "agent")
        except (KefuError, KeyError) as exc:
            return f'<span class="k-bad">{esc(exc)}</span>', *queue()
        who = f"Case {case.case_id} is taken by {case.taken_by}."
        return f'<span class="k-ok">{esc(who)}</span>', *queue()

    with gr.Blocks(title="Kefu copilot") as page:
        gr.HTML("<h2>Kefu — agent copilot</h2>")
        gr.HTML(_notes(desk.notes), elem_id="copilot-status")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                what = gr.Radio([(v, k) for k, v in FILTER_LABELS.items() if k in FILTERS], value="all",
                                label="Show", elem_id="copilot-filter")  # fmt: skip
                refresh_button = gr.Button("Refresh", elem_id="copilot-refresh", size="sm")
                conversations = gr.Radio([], label="Conversations", elem_id="copilot-conversations")
                agent = gr.Textbox("agent", label="You (agent name)", elem_id="copilot-agent", max_lines=1)
            with gr.Column(scale=2):
                customer = gr.HTML('<div class="k-muted">Select a conversation.</div>', elem_id="copilot-customer")
                timeline = gr.HTML("", elem_id="copilot-timeline")
            with gr.Column(scale=2):
                gr.HTML("<b>Suggested replies</b> <span class='k-muted'>(edit, then send)</span>")
                boxes, buttons = [], []
                for i in range(MAX_SUGGESTIONS):
                    boxes.append(gr.Textbox(label=f"Reply {i + 1}", lines=3, elem_id=f"copilot-suggestion-{i}"))
                    buttons.append(gr.Button(f"Send reply {i + 1}", elem_id=f"copilot-send-{i}", size="sm"))
                sent = gr.HTML("", elem_id="copilot-sent")
                products = gr.Dropdown([], label="Products to insert", elem_id="copilot-products")
                target = gr.Radio([f"Reply {i + 1}" for i in range(MAX_SUGGESTIONS)], value="Reply 1",
                                  label="Insert into", elem_id="copilot-insert-target")  # fmt: skip
                insert_button = gr.Button("Insert product", elem_id="copilot-insert", size="sm")
        gr.HTML("<h3>Handoff queue</h3>")
        with gr.Row():
            case = gr.Dropdown([], label="Open case", elem_id="copilot-case", scale=3)
            take_button = gr.Button("Take case", elem_id="copilot-take", scale=1)
        taken = gr.HTML("", elem_id="copilot-taken")
        cases = gr.HTML("", elem_id="copilot-queue")

        listed = [conversations, customer, timeline, cases, case]
        page.load(refresh, [what, conversations], listed)
        refresh_button.click(refresh, [what, conversations], listed)
        what.input(refresh, [what, conversations], listed)
        gr.Timer(10).tick(refresh, [what, conversations], listed)
        conversations.input(select, [conversations, agent], [customer, timeline, *boxes, products])
        for box, button in zip(boxes, buttons, strict=True):
            button.click(send, [conversations, box, agent], [sent, timeline])
        insert_button.click(insert, [products, target, *boxes], boxes)
        take_button.click(take, [case, agent], [taken, cases, case])
    return page
