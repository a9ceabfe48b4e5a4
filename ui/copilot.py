"""The support agents' copilot (``/copilot``): the handoff queue first (unclosed cases by priority and waiting
time: take, assign, close with a note; "only my cases"), then the conversation list (searchable by customer,
outcome, thumbs-down, unread, "mine" or words; 20 a page, paged in SQL), the selected conversation's customer
card and per-turn timeline, and suggested replies to edit and send into the shopper's chat, products to insert.
The two lists' HTML is ``ui/copilot_queue.py``.

Views only: the desk (``assistant/desk.py``) gathers and shapes everything; this module renders it. Shopper,
model and catalogue text is always shown as plain text (escaped HTML; no Markdown is rendered anywhere), since
product titles and messages can carry links or markup.
"""

from __future__ import annotations

import json

import gradio as gr

from assistant.desk import SHOW, CustomerCard, Desk, list_query
from assistant.events import card_price_text
from assistant.suggest import MAX_SUGGESTIONS, card_line
from assistant.timeline import CaseView, TurnView
from kefu.errors import KefuError
from ui.copilot_queue import CSS as LISTS_CSS
from ui.copilot_queue import ROW_CLICK, conversations_html, esc, pager_text, queue_html
from ui.hub import Conversation
from ui.web import Server

SHOW_LABELS = {"all": "All", "unread": "Unread", "waiting": "Waiting for an agent", "mine": "Mine (my cases)",
               "handoff": "Handoff", "no_match": "No match", "declined": "Declined", "refused": "Refused",
               "thumbs_down": "Thumbs down"}  # fmt: skip
CSS = (
    """
#copilot-timeline .turn, #copilot-customer .card, #copilot-queue .case {border:1px solid #ddd;border-radius:6px;
  padding:.5rem .7rem;margin:.4rem 0;font-size:.9rem}
.k-muted {color:#666} .k-bad {color:#b00020} .k-ok {color:#1b5e20} .k-note {background:#fff8e1;padding:.4rem .6rem}
.k-msg {white-space:pre-wrap} .k-tag {display:inline-block;background:#eef;border-radius:4px;padding:0 .3rem}
"""
    + LISTS_CSS
)


def _notes(notes: list[str]) -> str:
    return "".join(f'<div class="k-note">{esc(n)}</div>' for n in notes)


def _args(arguments: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in arguments.items())


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
    if t.readers:
        by: dict[str, list[str]] = {}
        for field, reader in t.readers.items():
            by.setdefault(reader, []).append(field.replace("_", " "))
        read = " · ".join(
            f"{esc(r)}: {esc(', '.join(f))}" for r, f in sorted(by.items(), key=lambda x: x[0] != "model")
        )
        parts.append(f'<div class="k-readers"><b>Read by</b> {read}</div>')
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
    if case.status == "closed":
        taken = f' · <span class="k-ok">closed by {esc(case.closed_by)} at {esc(case.closed_at)}</span>'
    elif case.status == "taken":
        taken = f' · <span class="k-ok">taken by {esc(case.taken_by)} at {esc(case.taken_at)}</span>'
    else:
        taken = ' · <span class="k-bad">open</span>'

    who = f"customer {case.customer_id}" if case.customer_id else "guest"
    items = ", ".join(titles.get(p, p) for p in case.items_shown) or "none"
    rows = [("Reason", case.reason), ("Intents", ", ".join(case.intents) or "none"),
            ("Slots", _args(case.slots) or "none"), ("Items shown", items),
            ("Tools tried", "; ".join(case.tried) or "none")]  # fmt: skip
    rows += [("Closing note", case.close_note)] if case.close_note else []
    body = "".join(f"<div><b>{esc(k)}:</b> {esc(v)}</div>" for k, v in rows)
    return (f'<div class="case"><b>{esc(case.case_id)}</b> · {esc(case.priority)} priority · {esc(who)} · '
            f"{esc(case.created_at)} · conversation {esc(case.conversation_id)}{taken}{body}</div>")  # fmt: skip


def build_copilot(server: Server) -> gr.Blocks:
    desk = Desk.open(server.settings, server.assistant, server.unavailable)
    hub = server.hub

    def lists(show: str, customer: str, text: str, agent: str, page: int, selected: str, mine: bool, case_id):
        """Both lists as they stand: the queue (only the agent's cases with ``mine``) and one page of
        conversations; returns (queue html, case dropdown, conversations html, pager html, page)."""
        name = agent.strip() or "agent"
        cases = desk.queue(name if mine else None)
        choices = [(f"{c.case_id} · {c.priority} · {c.reason[:50]}", c.case_id) for c in cases]
        value = case_id if any(v == case_id for _, v in choices) else (choices[0][1] if choices else None)
        case_box = gr.Dropdown(choices=choices, value=value, info=None if choices else "No open cases.")
        try:
            items, listed = desk.conversations(set(hub.live_ids()),
                                               list_query(show, customer, text, name, int(page or 1)))  # fmt: skip
        except KefuError as exc:  # StateError included: the shared store is down
            return queue_html(cases, name if mine else None), case_box, _notes([str(exc)]), "", 1
        return (queue_html(cases, name if mine else None), case_box, conversations_html(items, selected),
                pager_text(listed), listed.page)  # fmt: skip

    def case_detail(case_id: str | None) -> str:
        if not case_id:
            return ""
        try:
            view = desk.case(case_id)
        except KefuError as exc:
            return _notes([str(exc)])
        return case_html(view, desk.titles(view.items_shown))

    def views(conversation_id: str | None):
        """(customer html, timeline html, turns) of the selected conversation."""
        if not conversation_id:
            return '<div class="k-muted">Select a conversation.</div>', "", []
        try:
            live = hub.get(conversation_id)
            turns = desk.timeline(conversation_id, live)
            card = desk.customer(desk.customer_of(conversation_id, live))
        except KefuError as exc:
            return _notes([str(exc)]), "", []
        return customer_html(card), timeline_html(turns, live), turns

    def refresh(selected: str | None, *args):
        customer, timeline, _ = views(selected.strip() if selected else None)
        return customer, timeline, *lists(*args[:5], selected, *args[5:])

    def pick(case_id, evt: gr.EventData):
        """A row of either list was clicked: its conversation (and its case, for a queue row) is selected."""
        data = evt._data or {}
        return data.get("conversation") or gr.skip(), data.get("case") or case_id

    def select(conversation_id: str | None, agent: str):
        conversation_id = conversation_id.strip() if conversation_id else None
        customer, timeline, turns = views(conversation_id)
        texts = [""] * MAX_SUGGESTIONS
        products = gr.Dropdown(choices=[], value=None)
        if conversation_id and turns:
            desk.opened(conversation_id)
            try:
                live = hub.get(conversation_id)
            except KefuError:  # the shared store went down since the views were drawn
                live = None
            suggestions, cards = desk.suggestions(conversation_id, turns, desk.customer_of(conversation_id, live),
                                                  agent.strip())  # fmt: skip
            for i, s in enumerate(suggestions[:MAX_SUGGESTIONS]):
                texts[i] = s.text
            lines = [card_line(c) for c in cards]
            products = gr.Dropdown(choices=lines, value=lines[0] if lines else None)
        return customer, timeline, *texts, products

    def send(conversation_id: str | None, text: str, agent: str):
        conversation_id = conversation_id.strip() if conversation_id else None
        if not conversation_id:
            return '<span class="k-bad">Select a conversation first.</span>', gr.skip()
        if not text.strip():
            return '<span class="k-bad">The reply is empty.</span>', gr.skip()
        note = f"Conversation {esc(conversation_id)} is no longer live (only in the log): nothing was sent."
        try:
            hub.say(conversation_id, text, agent.strip() or "agent")
        except KeyError:  # not live (logged only, or it expired)
            return f'<span class="k-bad">{note}</span>', gr.skip()
        except KefuError as exc:  # the shared store is down
            return f'<span class="k-bad">{esc(exc)}</span>', gr.skip()
        desk.replied(conversation_id)
        _, timeline, _ = views(conversation_id)
        return f'<span class="k-ok">Sent to the shopper as {esc(agent.strip() or "agent")}.</span>', timeline

    def insert(line: str | None, target: str, *texts: str):
        out = [gr.skip()] * MAX_SUGGESTIONS
        if line:
            i = int(target.split()[-1]) - 1
            out[i] = (texts[i].rstrip() + "\n" if texts[i].strip() else "") + line
        return out

    def act(what: str):
        """A case action (take, assign, close) on the selected case; returns the message shown."""

        def run(case_id: str | None, agent: str, assignee: str, note: str) -> str:
            if not case_id:
                return '<span class="k-bad">Select a case in the queue first.</span>'
            me = agent.strip() or "agent"
            try:
                if what == "take":
                    case = desk.take(case_id, me)
                    done = f"Case {case.case_id} is taken by {case.taken_by}."
                elif what == "assign":
                    if not assignee.strip():
                        return '<span class="k-bad">Type the agent to assign the case to.</span>'
                    case = desk.assign(case_id, assignee)
                    done = f"Case {case.case_id} is assigned to {case.taken_by}."
                else:
                    case = desk.close(case_id, me, note)
                    done = f"Case {case.case_id} is closed by {case.closed_by}: {case.close_note}"
            except KefuError as exc:
                return f'<span class="k-bad">{esc(exc)}</span>'
            return f'<span class="k-ok">{esc(done)}</span>'

        return run

    def small(label: str, elem_id: str, scale: int = 2, value: str = "") -> gr.Textbox:
        return gr.Textbox(value, label=label, placeholder=label, show_label=False, container=False,
                          elem_id=elem_id, max_lines=1, scale=scale, min_width=100)  # fmt: skip

    def button(label: str, elem_id: str) -> gr.Button:
        return gr.Button(label, elem_id=elem_id, size="sm", scale=0, min_width=80)

    with gr.Blocks(title="Kefu copilot") as page:
        with gr.Row(elem_id="copilot-head"):
            gr.HTML("<h2>Kefu — agent copilot</h2>", scale=3)
            gr.HTML('<span class="k-muted">You (agent name):</span>', scale=0, min_width=130)
            agent = small("You (agent name)", "copilot-agent", 1, "agent")
            mine = gr.Checkbox(False, label="Only my cases", elem_id="copilot-mine", scale=0, min_width=140)
            refresh_button = button("Refresh", "copilot-refresh")
        gr.HTML(_notes(desk.notes), elem_id="copilot-status")
        with gr.Row():
            with gr.Column(scale=7):
                gr.HTML('<h3 class="k-h3">Handoff queue</h3>')
                cases = gr.HTML("", elem_id="copilot-queue", js_on_load=ROW_CLICK)
            with gr.Column(scale=5, elem_id="copilot-case-actions"):
                case = gr.Dropdown([], label="Case", elem_id="copilot-case")
                with gr.Row(equal_height=True):
                    take_button = button("Take case", "copilot-take")
                    assignee = small("Assign to (agent name)", "copilot-assignee")
                    assign_button = button("Assign", "copilot-assign")
                with gr.Row(equal_height=True):
                    note = small("Closing note: how it was resolved", "copilot-close-note", 4)
                    close_button = button("Close case", "copilot-close")
                taken = gr.HTML("", elem_id="copilot-taken")
        with gr.Row():
            with gr.Column(scale=7, min_width=480):
                gr.HTML('<h3 class="k-h3">Conversations</h3>')
                with gr.Row(equal_height=True):
                    show = gr.Dropdown([(SHOW_LABELS[k], k) for k in SHOW], value="all", show_label=False,
                                       container=False, elem_id="copilot-filter", scale=2, min_width=100)  # fmt: skip
                    customer_search = small("Customer id", "copilot-customer-search")
                    text_search = small("Words", "copilot-search", 3)
                    search_button = button("Search", "copilot-search-button")
                conversations = gr.HTML("", elem_id="copilot-conversations", js_on_load=ROW_CLICK)
                with gr.Row(equal_height=True):
                    prev_button = button("← Newer", "copilot-prev")
                    pager = gr.HTML("", elem_id="copilot-pager")
                    next_button = button("Older →", "copilot-next")
                page_number = gr.State(1)
            with gr.Column(scale=4, min_width=260):
                selected = gr.Textbox(label="Conversation", elem_id="copilot-selected", max_lines=1,
                                      placeholder="click a row, or paste an id and press Enter")  # fmt: skip
                detail = gr.HTML("", elem_id="copilot-case-detail")
                customer = gr.HTML('<div class="k-muted">Select a conversation.</div>', elem_id="copilot-customer")
                timeline = gr.HTML("", elem_id="copilot-timeline")
            with gr.Column(scale=3, min_width=240):
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

        controls = [show, customer_search, text_search, agent, page_number]
        list_in = [*controls, selected, mine, case]
        list_out = [cases, case, conversations, pager, page_number]
        page.load(refresh, [selected, *controls, mine, case], [customer, timeline, *list_out])
        refresh_button.click(refresh, [selected, *controls, mine, case], [customer, timeline, *list_out])
        gr.Timer(10).tick(lists, list_in, list_out)
        first = [lambda: 1, None, page_number]
        for trigger in (show.input, customer_search.submit, text_search.submit, search_button.click, mine.input):
            trigger(*first).then(lists, list_in, list_out)
        prev_button.click(lambda n: max(1, int(n or 1) - 1), page_number, page_number).then(lists, list_in, list_out)
        next_button.click(lambda n: int(n or 1) + 1, page_number, page_number).then(lists, list_in, list_out)
        opened = [customer, timeline, *boxes, products]
        for listed in (conversations, cases):
            listed.click(pick, case, [selected, case]).then(select, [selected, agent], opened).then(
                lists, list_in, list_out
            )
        selected.submit(select, [selected, agent], opened).then(lists, list_in, list_out)
        for box, button in zip(boxes, buttons, strict=True):
            button.click(send, [selected, box, agent], [sent, timeline]).then(lists, list_in, list_out)
        insert_button.click(insert, [products, target, *boxes], boxes)
        for button, what in ((take_button, "take"), (assign_button, "assign"), (close_button, "close")):
            button.click(act(what), [case, agent, assignee, note], taken).then(lists, list_in, list_out).then(
                case_detail, case, detail
            )
        case.change(case_detail, case, detail)
    return page
