"""The shopper's chat page (Gradio). With an assistant it runs full turns (tools, products, grounded replies);
without one (no product index yet) it chats with the served model directly."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import gradio as gr

from assistant.events import Products, Refused, TextChunk
from assistant.session import Session
from kefu.errors import LLMError
from kefu.llm.client import LLM
from kefu.settings import Settings


def system_prompt() -> str:
    return resources.files("assistant").joinpath("prompts/chat_system.md").read_text()


def build_chat(server) -> gr.Blocks:
    return build(server.settings, server.assistant)


def build(settings: Settings, assistant=None) -> gr.Blocks:
    llm = LLM.from_settings(settings)
    system = system_prompt()

    def respond_plain(message: str, history: list[dict]) -> Iterator[str]:
        messages = [{"role": "system", "content": system}]
        messages += [{"role": m["role"], "content": _text(m["content"])} for m in history]
        messages.append({"role": "user", "content": message[: settings.max_message_chars]})
        reply = ""
        try:
            for chunk in llm.stream(messages, max_tokens=256):
                reply += chunk
                yield reply
        except LLMError as exc:
            yield (reply + "\n\n" if reply else "") + f"Sorry, the assistant is unavailable: {exc}"

    def respond_assistant(message: str, history: list[dict], customer: str, session: Session | None):
        customer = (customer or "").strip() or None
        if session is None or session.customer_id != customer:
            session = Session(customer_id=customer)
        reply = ""
        for event in assistant.turn(session, message):
            if isinstance(event, TextChunk):
                reply += event.text
                yield reply, session
            elif isinstance(event, Refused):
                reply = event.message
                yield reply, session
            elif isinstance(event, Products) and not reply and not event.alternatives:
                yield "Looking at " + ", ".join(p.title for p in event.items[:3]) + "…", session
        yield reply, session

    with gr.Blocks(title="Kefu shopping assistant") as page:
        gr.Markdown("## Kefu — shopping assistant")
        chatbot = gr.Chatbot(height=480, elem_id="kefu-chat")
        textbox = gr.Textbox(placeholder="Ask about products, orders, returns…", elem_id="kefu-input")
        if assistant is None:
            gr.ChatInterface(respond_plain, chatbot=chatbot, textbox=textbox)
        else:
            customer = gr.Textbox(label="Signed in as customer (demo)", value="", elem_id="kefu-customer")
            state = gr.State(None)
            gr.ChatInterface(
                respond_assistant,
                chatbot=chatbot,
                textbox=textbox,
                additional_inputs=[customer, state],
                additional_outputs=[state],
            )
    return page


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # gradio 6 may pass content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)
