"""The copilot's two lists, as HTML: the handoff queue (unclosed cases by priority and waiting time) and one page
of the conversation list (waiting time since the shopper's last message, unread and waiting markers, outcomes).

Every row is a button carrying its ids in ``data-`` attributes; one click listener on the list (``ROW_CLICK``,
Gradio's ``js_on_load``) sends the clicked row's ids to the server as the event's data, so a row is a typed
selection, reachable by keyboard, and the list re-renders without re-binding anything. All text is escaped.
"""

from __future__ import annotations

import html

from assistant.desk import ConversationItem
from assistant.timeline import CaseView
from kefu.records.listing import ConversationPage

ROW_CLICK = """
element.addEventListener('click', (e) => {
  const row = e.target.closest('[data-conversation]');
  if (row) trigger('click', {conversation: row.dataset.conversation, case: row.dataset.case || null});
});
"""
CSS = """
#copilot-head h2 {margin:.2rem 0} .k-h3 {margin:.1rem 0 0 0}
.k-list {display:flex;flex-direction:column;gap:2px}
.k-row {display:grid;grid-template-columns:4.4rem 3.4rem 5rem 2.6rem 6.5rem minmax(0,1fr);gap:.4rem;
  align-items:center;text-align:left;width:100%;border:1px solid #e3e3e3;border-radius:4px;padding:.1rem .45rem;
  background:#fff;font-size:.82rem;font-weight:normal;line-height:1.2;cursor:pointer;margin:0}
.k-row > span {overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
.k-row:hover, .k-row:focus {background:#f3f6ff;outline:2px solid #99b}
.k-row.k-selected {background:#e8eeff;border-color:#667}
.k-case-row {grid-template-columns:3.5rem 3.4rem 7.5rem 5rem minmax(0,1fr) 7rem}
.k-row.k-head, .k-row.k-head:hover {border-color:transparent;background:none;cursor:default;color:#666;
  font-size:.75rem;outline:none}
.k-high {color:#b00020;font-weight:600}
.k-unread {color:#0d47a1;font-weight:600} .k-waiting {color:#b00020;font-weight:600}
.k-snippet {color:#333}
.k-pager {font-size:.85rem;color:#555}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def waited(seconds: float | None) -> str:
    """How long a shopper has waited, compactly: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    s = int(seconds or 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _who(customer_id: str | None) -> str:
    return customer_id or "guest"


def _head(classes: str, *names: str) -> str:
    cells = "".join(f"<span>{n}</span>" for n in names)
    return f'<div class="k-row k-head {classes}" aria-hidden="true">{cells}</div>'


def queue_html(cases: list[CaseView], mine: str | None = None) -> str:
    """The unclosed cases, in the queue's order (highest priority, then the longest-waiting shopper, first)."""
    if not cases:
        return (
            f'<div class="k-muted">{"No unclosed cases assigned to " + esc(mine) if mine else "No open cases."}</div>'
        )
    rows = []
    for c in cases:
        priority = f'<span class="{"k-high" if c.priority in ("high", "urgent") else ""}">{esc(c.priority)}</span>'
        owner = f"taken by {esc(c.taken_by)}" if c.status == "taken" else '<span class="k-waiting">unassigned</span>'
        rows.append(
            f'<button type="button" class="k-row k-case-row" data-case="{esc(c.case_id)}" '
            f'data-conversation="{esc(c.conversation_id or "")}">{priority}'
            f'<span title="since the shopper\'s last message">{esc(waited(c.waiting_s))}</span>'
            f"<span><b>{esc(c.case_id)}</b></span><span>{esc(_who(c.customer_id))}</span>"
            f'<span class="k-snippet">{esc(c.reason)}</span><span>{owner}</span></button>'
        )
    head = _head("k-case-row", "Priority", "Waiting", "Case", "Customer", "Reason", "Assigned")
    return f'<div class="k-list">{head}{"".join(rows)}</div>'


def _flags(item: ConversationItem) -> str:
    row = item.row
    flags = [o.replace("_", " ") for o in row.outcomes if o in ("handoff", "no_match", "declined", "refused")]
    flags += ["thumbs down"] if row.thumbs_down else []
    if row.case_status == "closed":
        flags.append("case closed")
    elif row.assigned_to:
        flags.append(f"case: {row.assigned_to}")
    return ", ".join(flags)


def conversation_row(item: ConversationItem, selected: str | None = None) -> str:
    row = item.row
    marks = []
    if row.waiting:
        marks.append('<span class="k-waiting">waiting</span>')
    elif row.unread:
        marks.append('<span class="k-unread">● unread</span>')
    if item.live:
        marks.append('<span class="k-tag">live</span>')
    chosen = " k-selected" if row.conversation_id == selected else ""
    return (
        f'<button type="button" class="k-row{chosen}" data-conversation="{esc(row.conversation_id)}" '
        f'title="{esc(row.conversation_id)}"><span>{" ".join(marks) or "&nbsp;"}</span>'
        f'<span title="since the shopper\'s last message">{esc(waited(row.waiting_s))}</span>'
        f"<span>{esc(_who(row.customer_id))}</span><span>{row.turns}</span>"
        f'<span class="k-bad">{esc(_flags(item))}</span><span class="k-snippet">{esc(row.last_message)}</span></button>'
    )


def conversations_html(items: list[ConversationItem], selected: str | None = None) -> str:
    if not items:
        return '<div class="k-muted">No conversations match: live ones appear here as shoppers chat.</div>'
    head = _head("", "", "Waiting", "Customer", "Turns", "Flags", "Last message")
    return f'<div class="k-list">{head}{"".join(conversation_row(i, selected) for i in items)}</div>'


def pager_text(page: ConversationPage) -> str:
    if page.total == 0:
        return '<span class="k-pager">0 conversations</span>'
    first = (page.page - 1) * page.per_page + 1
    last = min(page.total, page.page * page.per_page)
    return (f'<span class="k-pager">Page {page.page} of {page.pages} · conversations {first}–{last} of '
            f"{page.total}</span>")  # fmt: skip
