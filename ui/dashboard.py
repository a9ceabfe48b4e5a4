"""The analysts' segments dashboard (``/dashboard``). (Being built.)"""

from __future__ import annotations

import gradio as gr

from ui.web import Server


def build_dashboard(server: Server) -> gr.Blocks:
    with gr.Blocks(title="Kefu segments") as page:
        gr.Markdown("## Kefu — customer segments")
    return page
