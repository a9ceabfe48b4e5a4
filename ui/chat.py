"""A minimal Gradio chat page that talks to the served model (the full shopper UI comes with the assistant)."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import gradio as gr

from assistant.errors import LLMError
from assistant.llm import LLM
from assistant.settings import Settings


def system_prompt() -> str:
    return resources.files("assistant").joinpath("prompts/chat_system.md").read_text()


def build(settings: Settings) -> gr.Blocks:
    llm = LLM.from_settings(settings)
    system = system_prompt()

    def respond(message: str, history: list[dict]) -> Iterator[str]:
        messages = [{"role": "system", "content": system}]
        messages += [{"role": m["role"], "content": _text(m["content"])} for m in history]
        messages.append({"role": "user", "content": message[:4000]})
        reply = ""
        try:
            for chunk in llm.stream(messages, max_tokens=256):
                reply += chunk
                yield reply
        except LLMError as exc:
            yield (reply + "\n\n" if reply else "") + f"Sorry, the assistant is unavailable: {exc}"

    with gr.Blocks(title="Kefu shopping assistant") as page:
        gr.Markdown("## Kefu — shopping assistant")
        gr.ChatInterface(respond, chatbot=gr.Chatbot(height=480), textbox=gr.Textbox(placeholder="Ask about products…"))
    return page


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # gradio 6 may pass content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def launch(settings: Settings) -> None:
    build(settings).queue().launch(server_name=settings.ui_host, server_port=settings.ui_port, show_error=True)
