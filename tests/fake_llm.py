"""A scripted stand-in for ``kefu.llm.client.LLM`` in unit tests of the dialogue loop (never the only test of a
feature: the real vLLM server is exercised in test_llm_server.py and test_assistant_real_llm.py)."""

from __future__ import annotations

import threading

from kefu.errors import LLMError
from kefu.llm.client import Reply, ToolCall


class ScriptedLLM:
    def __init__(self, readings=None, replies=None, tool_calls=None, down: bool = False) -> None:
        self.readings = list(readings or [])  # dicts for LLMReading, one per turn
        self.replies = list(replies or [])  # reply intros, one per streamed reply
        self.tool_call_script = list(tool_calls or [])  # lists of ToolCall
        self.down = down
        self.calls: list[tuple[str, list]] = []
        self._lock = threading.Lock()

    def structured(self, messages, schema, **_):
        self._check("structured", messages)
        with self._lock:
            data = (
                self.readings.pop(0)
                if self.readings
                else {"intent": "chitchat", "product": "", "brand": "", "max_price": None}
            )
        return schema.model_validate(data)

    def stream(self, messages, **_):
        self._check("stream", messages)
        with self._lock:
            text = self.replies.pop(0) if self.replies else "Here you go."
        for word in text.split(" "):
            yield word + " "

    def tool_calls(self, messages, tools, **_):
        self._check("tool_calls", messages)
        with self._lock:
            calls = self.tool_call_script.pop(0) if self.tool_call_script else []
        return [ToolCall(name=n, arguments=a) for n, a in calls], Reply(text="")

    def _check(self, kind, messages):
        with self._lock:
            self.calls.append((kind, list(messages)))  # a copy: the native loop extends its list
        if self.down:
            raise LLMError("Cannot reach the LLM server (scripted); start it with `kefu llm serve`.")


def reading(intent="product_search", product="", max_price=None, brand=""):
    return {"intent": intent, "product": product, "brand": brand, "max_price": max_price}
