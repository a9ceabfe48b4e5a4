"""The support agents' copilot (``/copilot``): live and recent conversations, the customer card, the per-turn
timeline, suggested replies, the handoff queue. (Being built.)"""

from __future__ import annotations

import gradio as gr

from ui.web import Server


def build_copilot(server: Server) -> gr.Blocks:
    with gr.Blocks(title="Kefu copilot") as page:
        gr.Markdown("## Kefu — agent copilot")
    return page
